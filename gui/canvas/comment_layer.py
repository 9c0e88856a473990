"""The comments of a canvas scene: one :class:`CommentItem` per comment, kept in step with the
document, and what comment gestures need from the scene (the layers inside a frame, moving
them along)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF

from gui.canvas.comment_item import CommentItem
from gui.canvas.paint_kit import PaintKit

if TYPE_CHECKING:  # pragma: no cover
    from gui.canvas.scene import CanvasScene


class CommentLayer:
    """The comment items of ``scene``'s document.

    Args:
        scene: The scene the items live in.
    """

    def __init__(self, scene: "CanvasScene") -> None:
        self.scene = scene
        self.items: dict[str, CommentItem] = {}
        for comment in scene.document.project.comments:
            self._add(comment.id)

    def _add(self, comment_id: str) -> None:
        comment = next(c for c in self.scene.document.project.comments if c.id == comment_id)
        item = CommentItem(comment, self.scene.kit)
        self.items[comment_id] = item
        self.scene.addItem(item)
        item.show_comment(comment)

    def changed(self, comment_id: str) -> None:
        """The model's comment ``comment_id`` was added, changed or removed."""
        comment = next((c for c in self.scene.document.project.comments if c.id == comment_id), None)
        item = self.items.get(comment_id)
        if comment is None:
            if item is not None:
                self.scene.removeItem(self.items.pop(comment_id))
        elif item is None:
            self._add(comment_id)
        else:
            item.show_comment(comment)

    def set_kit(self, kit: PaintKit) -> None:
        """Repaint every comment with another theme."""
        for item in self.items.values():
            item.set_kit(kit)

    def selected_ids(self) -> list[str]:
        """Selected comments, in document order."""
        chosen = {item.comment_id for item in self.scene.selectedItems() if isinstance(item, CommentItem)}
        return [c.id for c in self.scene.document.project.comments if c.id in chosen]

    def rect(self) -> QRectF:
        """The rectangle around every comment (empty when there is none)."""
        rect = QRectF()
        for item in self.items.values():
            rect = rect.united(item.scene_rect())
        return rect

    def nodes_inside(self, item: CommentItem) -> dict[str, tuple[float, float]]:
        """Layers whose cards lie inside ``item`` and are not selected (a drag of the comment
        carries them; selected ones move with the selection anyway), with their positions."""
        area = item.scene_rect()
        inside = {}
        for node_id, node_item in self.scene.nodes.items():
            body = node_item.shape().boundingRect().translated(node_item.pos())
            if area.contains(body) and not node_item.isSelected():
                inside[node_id] = (node_item.pos().x(), node_item.pos().y())
        return inside

    def carry_nodes(self, carried: dict[str, tuple[float, float]], delta: QPointF) -> None:
        """Put the carried layers at their start positions plus ``delta`` (edges follow)."""
        if not carried:
            return
        self.scene.applying_model = True
        try:
            for node_id, (x, y) in carried.items():
                node_item = self.scene.nodes.get(node_id)
                if node_item is not None:
                    node_item.setPos(x + delta.x(), y + delta.y())
        finally:
            self.scene.applying_model = False
