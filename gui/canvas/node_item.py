"""One node on the canvas: a card with a category header, key values and ports.

The item is a view of a model node: it shows what the model and the latest analysis say
and owns no state of its own beyond what it draws. Its position is the node's top-left
corner; while the user drags it moves freely (the scene pushes one move command on
release), and the model's ``NodesMoved`` events move it back on undo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.graph.model import Node
from engine.shapes import NodeInfo
from gui.canvas import labels
from gui.canvas.node_layout import NodeLayout, layout_for
from gui.canvas.node_paint import (BADGE_RADIUS, FREE, REPLACE, paint_badge, paint_compact_texts, paint_frozen_badge,
                                   paint_port)
from gui.canvas.paint_kit import HEADER_HEIGHT, LOD_COMPACT, LOD_TEXT, PORT_RADIUS, SNAP, PaintKit

if TYPE_CHECKING:  # pragma: no cover
    from gui.canvas.scene import CanvasScene

_TEXT_LEFT = 12.0
_MARGIN = PORT_RADIUS + 4.0
#: Point sizes of a card's title at full detail: the usual one, then smaller ones for two lines.
TITLE_POINTS = (9.0, 8.0, 7.5)
#: Zoomed out, ports keep at least this radius on screen (pixels), within the card's margin.
COMPACT_PORT_PIXELS = 3.0


class NodeItem(QGraphicsItem):
    """The card of one model node.

    Args:
        node: The model node shown.
        kit: Pens, brushes and fonts of the current theme.
    """

    def __init__(self, node: Node, kit: PaintKit, vertical: bool = False) -> None:
        super().__init__()
        self.node = node
        self.vertical = vertical
        self.kit = kit
        self.info: NodeInfo | None = None
        self.input_shape: str | None = None
        self.connected_inputs: frozenset[str] = frozenset()
        self.connected_outputs: frozenset[str] = frozenset()
        self.highlights: dict[str, str] = {}
        self.output_highlights: frozenset[str] = frozenset()
        self.layout: NodeLayout = layout_for(node.layer, node.params, vertical)
        self._rows: list[tuple[str, str]] = []
        self._title: tuple[str, ...] = ()
        self._title_size = TITLE_POINTS[0]
        self._id = ""
        self._bounds = QRectF()
        self._shape = QPainterPath()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsMovable
                      | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(1.0)
        self.setPos(QPointF(*node.position))  # not in a scene yet: no drag bookkeeping
        self._relayout()

    # ------------------------------------------------------------ model -> view
    @property
    def node_id(self) -> str:
        """The id of the node shown."""
        return self.node.id

    @property
    def title(self) -> str:
        """The card's title (a block shows its definition's name)."""
        return labels.node_title(self.node.layer, self.node.params)

    def set_vertical(self, vertical: bool) -> None:
        """Put the ports on the top and bottom edges (data flowing down) or on the sides."""
        if vertical != self.vertical:
            self.vertical = vertical
            self.refresh_params()

    def refresh_params(self) -> None:
        """Re-read the node's parameters (key values, number of input ports)."""
        layout = layout_for(self.node.layer, self.node.params, self.vertical)
        if layout != self.layout:
            self.prepareGeometryChange()
            self.layout = layout
        self._relayout()

    def set_info(self, info: NodeInfo | None, input_shape: str | None = None) -> None:
        """Show a new analysis result (output shape, parameters, diagnostics)."""
        if info == self.info and input_shape == self.input_shape:
            return
        self.info, self.input_shape = info, input_shape
        self.setToolTip(labels.tooltip_text(self.node.id, self.node.layer, info, input_shape, self.title))
        self._relayout()

    def set_connections(self, inputs: frozenset[str], outputs: frozenset[str]) -> None:
        """Which ports have edges (connected ports are drawn filled)."""
        if inputs != self.connected_inputs or outputs != self.connected_outputs:
            self.connected_inputs, self.connected_outputs = inputs, outputs
            self.update()

    @property
    def output_connected(self) -> bool:
        """Whether any output port has an edge."""
        return bool(self.connected_outputs)

    def set_highlights(self, inputs: dict[str, str], outputs: frozenset[str] = frozenset()) -> None:
        """Light up ports a dragged connection may drop on (empty to clear)."""
        if inputs != self.highlights or outputs != self.output_highlights:
            self.highlights, self.output_highlights = inputs, outputs
            self.update()

    def set_kit(self, kit: PaintKit) -> None:
        """Repaint with another theme (the tooltip's error and warning lines too)."""
        self.kit = kit
        self.setToolTip(labels.tooltip_text(self.node.id, self.node.layer, self.info, self.input_shape, self.title))
        self._relayout()

    @property
    def frozen(self) -> bool:
        """Whether the node is a layer whose parameters training keeps (``trainable`` off)."""
        return not self.node.trainable and self.node.layer.role == "layer"

    @property
    def has_error(self) -> bool:
        """Whether the analysis reports an error on this node."""
        return self.info is not None and any(d.severity == "error" for d in self.info.diagnostics)

    @property
    def has_warning(self) -> bool:
        """Whether the analysis reports a warning (and no error) on this node."""
        return (self.info is not None and not self.has_error
                and any(d.severity == "warning" for d in self.info.diagnostics))

    def _relayout(self) -> None:
        """Recompute the (elided) texts and the bounds; called only when they may change."""
        kit, layout = self.kit, self.layout
        width = layout.width
        info = self.info
        self._id, id_in_header = self._header_texts(width)
        shape = labels.shape_text(info, self.node.layer.has_output, self.input_shape)
        subtle = (labels.count_text(info.parameters if info else 0) if self.node.layer.role == "layer"
                  else f"model {self.node.layer.role}")
        if self.frozen:
            subtle += " · frozen"
        elif self.node.lr_scale != 1.0 and self.node.layer.role == "layer":
            subtle += f" · lr ×{self.node.lr_scale:g}"
        rows = [("text", labels.key_params_text(self.node.layer, self.node.params)),
                ("unknown" if info is None or (info.output is None and self.node.layer.has_output) else "text", shape),
                ("subtle", subtle if id_in_header else f"{self.node.id} · {subtle}")]
        room = width - self._text_left() - _TEXT_LEFT
        self._rows = [(style, kit.body_metrics.elidedText(text, Qt.TextElideMode.ElideRight, room))
                      for style, text in rows if text]
        self._bounds = layout.rect.adjusted(-_MARGIN, -BADGE_RADIUS - 2, _MARGIN, 4)
        self._shape = QPainterPath()
        self._shape.addRect(layout.rect.adjusted(-PORT_RADIUS - 2, 0, PORT_RADIUS + 2, 0))
        self.update()

    def _header_texts(self, width: float) -> tuple[str, bool]:
        """Lay out the title (``_title``, ``_title_size``); returns the id to show in the header
        and whether it fits there (else it joins the parameter-count row).

        The title reads in full: beside the id when both fit, alone on the line when only it
        fits, else on two lines in a slightly smaller type.
        """
        kit, title = self.kit, self.title
        room = width - 2 * _TEXT_LEFT
        node_id = self.node.id
        id_width = kit.id_metrics.horizontalAdvance(node_id)
        title_width = kit.title_metrics.horizontalAdvance(title)
        self._title_size = TITLE_POINTS[0]
        if title_width + id_width + 8 <= room and id_width <= width * 0.45:
            self._title = (title,)
            return node_id, True
        if title_width <= room:
            self._title = (title,)
            return "", False
        for size in TITLE_POINTS[1:]:
            lines = kit.wrapped(title, size, True, room, 2)
            if lines is not None:
                self._title, self._title_size = lines, size
                return "", False
        self._title = (kit.title_metrics.elidedText(title, Qt.TextElideMode.ElideRight, room),)
        return "", False

    def _text_left(self) -> float:
        if len(self.layout.inputs) <= 1 or self.vertical:  # port names are written beside side ports only
            return _TEXT_LEFT
        widest = max(self.kit.port_metrics.horizontalAdvance(p) for p in self.layout.inputs)
        return PORT_RADIUS + 6 + widest + 8

    # ----------------------------------------------------------------- ports
    def input_scene_pos(self, port: str) -> QPointF:
        """Scene position of input ``port``."""
        return self.pos() + self.layout.input_pos(port)

    def output_scene_pos(self, port: str = "out") -> QPointF:
        """Scene position of output ``port``."""
        return self.pos() + self.layout.output_pos(port)

    def port_at(self, scene_pos: QPointF, tolerance: float) -> tuple[str, str] | None:
        """The port within ``tolerance`` of ``scene_pos``: ``("in", name)`` or ``("out", name)``."""
        local = scene_pos - self.pos()
        best, best_distance = None, tolerance
        for port in self.layout.outputs if self.layout.output_ys else ():
            distance = _distance(local, self.layout.output_pos(port))
            if distance <= best_distance:
                best, best_distance = ("out", port), distance
        for port in self.layout.inputs:
            distance = _distance(local, self.layout.input_pos(port))
            if distance <= best_distance:
                best, best_distance = ("in", port), distance
        return best

    # ------------------------------------------------------------ QGraphicsItem
    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def shape(self) -> QPainterPath:
        return self._shape

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:  # noqa: N802
        scene: CanvasScene | None = self.scene()  # type: ignore[assignment]
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionChange and scene is not None:
            if not scene.applying_model:  # the user drags: the model follows on release
                if not scene.user_moves(self):
                    return self.pos()
                if scene.snap_to_grid:
                    return QPointF(round(value.x() / SNAP) * SNAP, round(value.y() / SNAP) * SNAP)
        elif change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and scene is not None:
            scene.node_item_moved(self)
        return super().itemChange(change, value)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        kit, layout = self.kit, self.layout
        paths = layout.paths
        frozen = self.frozen
        accent, tint = (kit.frozen_brushes if frozen else kit.header_brushes)(self.node.layer.category)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        outline = self._outline_pen()
        if lod < LOD_COMPACT:
            painter.setPen(outline or Qt.PenStyle.NoPen)
            painter.setBrush(accent)
            painter.drawRect(layout.rect)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(kit.shadow_brush)
        painter.drawPath(paths.outline.translated(0, 1.5))
        painter.setBrush(kit.body_brush if lod >= LOD_TEXT else tint)
        painter.drawPath(paths.outline)
        if lod >= LOD_TEXT:
            painter.setBrush(tint)
            painter.drawPath(paths.header)
        painter.setBrush(accent)
        painter.drawPath(paths.accent)
        painter.setPen(kit.border_pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if lod >= LOD_TEXT:
            painter.drawLine(QPointF(0.5, HEADER_HEIGHT), QPointF(layout.width - 0.5, HEADER_HEIGHT))
            painter.drawPath(paths.outline)
            self._paint_texts(painter)
            self._paint_ports(painter)
        else:
            painter.drawPath(paths.outline)
            paint_compact_texts(painter, kit, layout.rect, self.title,
                                labels.compact_shape_text(self.info, self.node.layer.has_output), lod)
            self._paint_ports(painter, min(PORT_RADIUS + 3.0, max(PORT_RADIUS, COMPACT_PORT_PIXELS / lod)))
        if outline is not None:
            painter.setPen(outline)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(paths.outline)
        flagged = self.has_error or self.has_warning
        if flagged:
            paint_badge(painter, kit, layout.width, self.has_error)
        if frozen:  # left of the problem badge when there is one
            paint_frozen_badge(painter, kit, layout.width - 4.0 - (2 * BADGE_RADIUS + 3.0 if flagged else 0.0))

    def _outline_pen(self):  # noqa: ANN202 - QPen | None
        if self.isSelected():
            return self.kit.selected_pen
        if self.has_error:
            return self.kit.error_pen
        if self.has_warning:
            return self.kit.warning_pen
        return None

    def _paint_texts(self, painter: QPainter) -> None:
        kit, width = self.kit, self.layout.width
        header = QRectF(_TEXT_LEFT, 3.0, width - 2 * _TEXT_LEFT, HEADER_HEIGHT - 3.0)
        painter.setPen(kit.text_pen)
        if len(self._title) == 1:
            painter.setFont(kit.title_font if self._title_size == TITLE_POINTS[0] else
                            kit.scaled_font(self._title_size, True)[0])
            painter.drawText(header, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._title[0])
        else:  # two tight lines fill the header
            font, metrics = kit.scaled_font(self._title_size, True)
            painter.setFont(font)
            pitch = metrics.ascent() + 1.0
            top = header.center().y() - (pitch * len(self._title) + metrics.descent() - 1.0) / 2
            for index, text in enumerate(self._title):
                painter.drawText(QPointF(header.left(), top + metrics.ascent() + index * pitch), text)
        if self._id:
            painter.setFont(kit.id_font)
            painter.setPen(kit.subtle_pen)
            painter.drawText(header, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self._id)
        painter.setFont(kit.body_font)
        left = self._text_left()
        top = self.layout.body_center - len(self._rows) * 8.0
        for index, (style, text) in enumerate(self._rows):
            painter.setPen(kit.subtle_pen if style != "text" else kit.text_pen)
            right = _TEXT_LEFT + (36.0 if len(self.layout.output_ys) > 1 and not self.vertical else 0.0)
            row = QRectF(left, top + index * 16.0, width - left - right, 16.0)
            painter.drawText(row, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        if self.vertical:  # ports along the top and bottom edges: their names are in the tooltip
            return
        if len(self.layout.inputs) > 1:
            painter.setFont(kit.port_font)
            painter.setPen(kit.subtle_pen)
            for port, y in zip(self.layout.inputs, self.layout.input_ys):
                painter.drawText(QRectF(PORT_RADIUS + 5, y - 8, 40, 16),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, port)
        if len(self.layout.output_ys) > 1:  # name the parts of a Chunk or Split
            painter.setFont(kit.port_font)
            painter.setPen(kit.subtle_pen)
            for port, y in zip(self.layout.outputs, self.layout.output_ys):
                painter.drawText(QRectF(width - PORT_RADIUS - 45, y - 8, 40, 16),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, port)

    def _paint_ports(self, painter: QPainter, radius: float = PORT_RADIUS) -> None:
        for port in self.layout.inputs:
            paint_port(painter, self.kit, self.layout.input_pos(port), port in self.connected_inputs,
                       self.highlights.get(port), radius)
        for port in self.layout.outputs if self.layout.output_ys else ():
            paint_port(painter, self.kit, self.layout.output_pos(port), port in self.connected_outputs,
                       FREE if port in self.output_highlights else None, radius)


__all__ = ["FREE", "REPLACE", "NodeItem"]


def _distance(a: QPointF, b: QPointF) -> float:
    delta = a - b
    return (delta.x() ** 2 + delta.y() ** 2) ** 0.5
