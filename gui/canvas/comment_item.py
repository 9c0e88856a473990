"""A comment on the canvas: a note, or a frame around some layers, with text people write.

The item shows one :class:`~engine.graph.comments.Comment` of the project. It is grabbed by
its text band or its border (a click inside a frame's body still reaches the canvas and the
layers in it). Dragging it moves the layers that lie inside it too; the corner handle resizes
it; a double-click edits the text (Enter or a click elsewhere keeps it, Esc drops it). Each of
these is one undo step, pushed when the gesture ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFocusEvent, QFont, QKeyEvent, QPainter, QPainterPath, QTextCursor
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsSceneMouseEvent, QGraphicsTextItem,
                               QStyleOptionGraphicsItem, QWidget)

from engine.graph.comments import MIN_SIDE, Comment
from gui.canvas.paint_kit import SNAP, PaintKit

if TYPE_CHECKING:  # pragma: no cover
    from gui.canvas.scene import CanvasScene

#: Width of the border that grabs the comment, the corner handle's size, the text's margins.
GRAB, HANDLE, PAD = 8.0, 14.0, 8.0
TEXT_POINTS = 15.0
MIN_BAND = 30.0


class _CommentText(QGraphicsTextItem):
    """The comment's text; editable while the comment is being edited."""

    def __init__(self, owner: "CommentItem") -> None:
        super().__init__(owner)
        self.owner = owner

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape:
            self.owner.finish_editing(keep=False)
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.owner.finish_editing(keep=True)  # Shift+Enter: a new line
        else:
            super().keyPressEvent(event)
        event.accept()

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt override
        super().focusOutEvent(event)
        if self.owner.editing:
            self.owner.finish_editing(keep=True)


class CommentItem(QGraphicsItem):
    """The canvas item of one comment.

    Args:
        comment: The comment shown.
        kit: Pens, brushes and fonts of the theme.
    """

    def __init__(self, comment: Comment, kit: PaintKit) -> None:
        super().__init__()
        self.comment = comment
        self.kit = kit
        self.editing = False
        self._size = QRectF()
        self._band = MIN_BAND
        self._press: dict[str, Any] | None = None
        self.label = _CommentText(self)
        font = QFont()
        font.setPointSizeF(TEXT_POINTS)
        self.label.setFont(font)
        self.label.setPos(PAD, PAD / 2)
        self.label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setZValue(-2.0)
        self.show_comment(comment)

    # ------------------------------------------------------------ model -> view
    @property
    def comment_id(self) -> str:
        """The id of the comment shown."""
        return self.comment.id

    def show_comment(self, comment: Comment) -> None:
        """Show ``comment`` (text, place and size) as the model has it now."""
        self.comment = comment
        x, y, width, height = comment.rect
        self.prepareGeometryChange()
        self._size = QRectF(0.0, 0.0, width, height)
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if scene is not None:
            scene.applying_model = True
        try:
            self.setPos(x, y)
        finally:
            if scene is not None:
                scene.applying_model = False
        if not self.editing:
            self.label.setPlainText(comment.text)
        self.label.setDefaultTextColor(self.kit.comment_text)
        self.label.setTextWidth(max(10.0, width - 2 * PAD))
        self._band = max(MIN_BAND, min(height, self.label.boundingRect().height() + PAD))
        self.update()

    def set_kit(self, kit: PaintKit) -> None:
        """Repaint with another theme."""
        self.kit = kit
        self.label.setDefaultTextColor(kit.comment_text)
        self.update()

    def scene_rect(self) -> QRectF:
        """Where the comment is, in scene coordinates."""
        return self._size.translated(self.pos())

    # ------------------------------------------------------------ QGraphicsItem
    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._size.adjusted(-2.0, -2.0, 2.0, 2.0)

    def shape(self) -> QPainterPath:
        """The text band, the border and the corner handle: the body lets clicks through."""
        path = QPainterPath()
        rect = self._size
        path.addRect(QRectF(rect.left(), rect.top(), rect.width(), self._band))
        ring = QPainterPath()
        ring.addRect(rect.adjusted(-GRAB / 2, -GRAB / 2, GRAB / 2, GRAB / 2))
        inner = QPainterPath()
        inner.addRect(rect.adjusted(GRAB / 2, GRAB / 2, -GRAB / 2, -GRAB / 2))
        path.addPath(ring.subtracted(inner))
        path.addRect(self._handle())
        return path.simplified()

    def _handle(self) -> QRectF:
        return QRectF(self._size.right() - HANDLE, self._size.bottom() - HANDLE, HANDLE, HANDLE)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        kit, rect = self.kit, self._size
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(kit.comment_selected_pen if self.isSelected() else kit.comment_pen)
        painter.setBrush(kit.comment_brush)
        painter.drawRoundedRect(rect, 6.0, 6.0)
        band = QPainterPath()
        band.addRoundedRect(rect, 6.0, 6.0)
        clip = QPainterPath()
        clip.addRect(QRectF(rect.left(), rect.top(), rect.width(), self._band))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(kit.comment_header_brush)
        painter.drawPath(band.intersected(clip))
        handle = self._handle()
        painter.setPen(kit.comment_pen)
        for offset in (4.0, 8.0):  # two short diagonal strokes: "drag to resize"
            painter.drawLine(QPointF(handle.right() - offset, handle.bottom() - 2.0),
                             QPointF(handle.right() - 2.0, handle.bottom() - offset))

    # ------------------------------------------------------------- gestures
    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:  # noqa: N802
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and scene is not None \
                and not scene.applying_model:
            if scene.document.edit_lock is not None or self._press is None:
                return self.pos()
            return QPointF(round(value.x() / SNAP) * SNAP, round(value.y() / SNAP) * SNAP)
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and scene is not None \
                and not scene.applying_model and self._press is not None:
            scene.carry_nodes(self._press["carried"], self.pos() - self._press["pos"])
        return super().itemChange(change, value)

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 - Qt override
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if scene is None or event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        if scene.document.edit_lock is not None:
            scene.refused.emit(f"Cannot edit: {scene.document.edit_lock}")
            event.accept()
            return
        resizing = self._handle().contains(event.pos())
        self._press = {"pos": QPointF(self.pos()), "resize": resizing, "size": QRectF(self._size),
                       "carried": {} if resizing else scene.nodes_inside(self)}
        if resizing:
            self.setSelected(True)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 - Qt override
        press = self._press
        if press is not None and press["resize"]:
            width = max(MIN_SIDE * 3, round(event.pos().x() / SNAP) * SNAP)
            height = max(MIN_BAND + HANDLE, round(event.pos().y() / SNAP) * SNAP)
            self.prepareGeometryChange()
            self._size = QRectF(0.0, 0.0, width, height)
            self.label.setTextWidth(max(10.0, width - 2 * PAD))
            self._band = max(MIN_BAND, min(height, self.label.boundingRect().height() + PAD))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 - Qt override
        press, self._press = self._press, None
        super().mouseReleaseEvent(event)
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if press is None or scene is None:
            return
        x, y = self.pos().x(), self.pos().y()
        new = Comment(self.comment.id, self.comment.text, (x, y, self._size.width(), self._size.height()))
        if new == self.comment:
            return
        carried = press["carried"]
        delta = self.pos() - press["pos"]
        moves = ({node_id: start for node_id, start in carried.items()},
                 {node_id: (start[0] + delta.x(), start[1] + delta.y()) for node_id, start in carried.items()})
        text = "Resize comment" if press["resize"] else "Move comment" + (" and its layers" if carried else "")
        command = scene.document.comment_command([(self.comment, new)], text, moves if carried else None)
        if not scene.push(command):
            self.show_comment(self.comment)
            scene.carry_nodes(carried, QPointF(0.0, 0.0))

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:  # noqa: N802 - Qt override
        self.start_editing()
        event.accept()

    # -------------------------------------------------------------- editing
    def start_editing(self) -> None:
        """Edit the text in place (all of it selected)."""
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if scene is None or scene.document.edit_lock is not None:
            if scene is not None:
                scene.refused.emit(f"Cannot edit: {scene.document.edit_lock}")
            return
        self.editing = True
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextEditorInteraction)
        self.label.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.label.setFocus(Qt.FocusReason.MouseFocusReason)
        cursor = self.label.textCursor()
        cursor.select(QTextCursor.SelectionType.Document)
        self.label.setTextCursor(cursor)

    def finish_editing(self, keep: bool) -> None:
        """Stop editing; with ``keep`` the new text is one undo step."""
        if not self.editing:
            return
        self.editing = False
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        cursor = self.label.textCursor()
        cursor.clearSelection()
        self.label.setTextCursor(cursor)
        self.label.clearFocus()
        text = self.label.toPlainText()
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if keep and scene is not None and text != self.comment.text:
            new = Comment(self.comment.id, text, self.comment.rect)
            if scene.push(scene.document.comment_command([(self.comment, new)], "Edit comment")):
                return
        self.show_comment(self.comment)
