"""The zoomed-out picture of the whole graph, painted in one go.

Far out (below :data:`~gui.canvas.paint_kit.LOD_COMPACT`) a card is a few pixels wide, and
painting a thousand node and edge items one by one costs more in per-item overhead than
in pixels. There the scene marks its items as having no contents (they still take clicks,
selection and drags) and this single item paints every node as a coloured block and every
edge as a straight line, batched per colour. It reads the node items, so it is a view of
them: anything that moves, adds, removes, selects or re-marks an item makes it dirty, and
it rebuilds its batches on the next paint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

if TYPE_CHECKING:  # pragma: no cover
    from gui.canvas.scene import CanvasScene


class OverviewItem(QGraphicsItem):
    """All nodes and edges of a scene as blocks and lines.

    Args:
        scene: The canvas scene whose items it summarises.
    """

    def __init__(self, scene: "CanvasScene") -> None:
        super().__init__()
        self._canvas = scene
        self._dirty = True
        self._bounds = QRectF()
        self._blocks: dict[str, list[QRectF]] = {}
        self._selected: list[QRectF] = []
        self._errors: list[QRectF] = []
        self._lines: list[QLineF] = []
        self.setZValue(-1.0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setVisible(False)

    def mark_dirty(self) -> None:
        """Something shown changed: rebuild before the next paint."""
        if self.isVisible():
            self.prepareGeometryChange()
            self._dirty = True
            self.update()
        else:
            self._dirty = True

    def _rebuild(self) -> None:
        blocks: dict[str, list[QRectF]] = {}
        selected, errors = [], []
        bounds = QRectF()
        for item in self._canvas.nodes.values():
            rect = item.layout.rect.translated(item.pos())
            blocks.setdefault(item.node.layer.category, []).append(rect)
            if item.isSelected():
                selected.append(rect)
            elif item.has_error:
                errors.append(rect)
            bounds = bounds.united(rect)
        lines = [QLineF(e.start, e.end) for e in self._canvas.edges.values()]
        self._blocks, self._selected, self._errors, self._lines = blocks, selected, errors, lines
        self._bounds = bounds.adjusted(-20, -20, 20, 20)
        self._dirty = False

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        if self._dirty:
            self._rebuild()
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._dirty:
            self._rebuild()
        kit = self._canvas.kit
        painter.setPen(kit.edge_pen)
        painter.drawLines(self._lines)
        painter.setPen(Qt.PenStyle.NoPen)
        for category, rects in self._blocks.items():
            painter.setBrush(kit.header_brushes(category)[0])
            painter.drawRects(rects)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._errors:
            painter.setPen(kit.error_pen)
            painter.drawRects(self._errors)
        if self._selected:
            painter.setPen(kit.selected_pen)
            painter.drawRects(self._selected)
