"""One connection on the canvas: a Bézier curve (or a return route) labelled with the tensor shape it carries."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneHoverEvent, QStyleOptionGraphicsItem, QWidget

from engine.graph.model import Edge
from gui.canvas.edge_routes import BEND_WIDTH, RETURN_RADIUS, RETURN_STUB, is_return_route
from gui.canvas.paint_kit import LOD_EDGE_LABEL, LOD_TEXT, PORT_RADIUS, PaintKit

_LABEL_PAD_X = 4.0
_LABEL_HEIGHT = 14.0
_HIT_WIDTH = 10.0


def bezier_path(start: QPointF, end: QPointF) -> QPainterPath:
    """A left-to-right S curve from an output port at ``start`` to an input port at ``end``.

    The handles leave and enter horizontally; when the target lies left of the source the
    handles grow so the curve loops around instead of folding over itself.
    """
    dx = end.x() - start.x()
    reach = max(abs(dx) * 0.5, 40.0) if dx >= 0 else max(80.0, min(abs(dx) * 0.5, 200.0))
    path = QPainterPath(start)
    path.cubicTo(QPointF(start.x() + reach, start.y()), QPointF(end.x() - reach, end.y()), end)
    return path


def vertical_bezier_path(start: QPointF, end: QPointF) -> QPainterPath:
    """A top-to-bottom S curve from an output port on a card's bottom edge to an input port on a
    top edge (looping around when the target lies above the source)."""
    dy = end.y() - start.y()
    reach = max(abs(dy) * 0.5, 30.0) if dy >= 0 else max(80.0, min(abs(dy) * 0.5, 200.0))
    path = QPainterPath(start)
    path.cubicTo(QPointF(start.x(), start.y() + reach), QPointF(end.x(), end.y() - reach), end)
    return path


def edge_path(start: QPointF, end: QPointF, lane_y: float | None = None, bend: str | None = None) -> QPainterPath:
    """The drawn path of an edge: an S curve, a bent long edge, or a return route.

    A layout that wraps a long chain into rows has edges from the end of one row to the
    start of the next. As a curve they cut diagonally across the whole row; instead they
    leave to the right, drop to ``lane_y`` (the gap between the rows,
    :func:`~gui.canvas.edge_routes.free_lane`;
    halfway by default), run back left, drop again and enter from the left, with rounded
    corners. Edges that go back within about one row keep the looping curve. ``bend``
    ("late" or "early", see :func:`~gui.canvas.edge_routes.bend_bands`) straightens a long forward edge.
    """
    if not is_return_route(start, end):
        if bend == "late":
            corner = QPointF(end.x() - BEND_WIDTH, start.y())
            path = QPainterPath(start)
            path.lineTo(corner)
            path.connectPath(bezier_path(corner, end))
            return path
        if bend == "early":
            corner = QPointF(start.x() + BEND_WIDTH, end.y())
            path = bezier_path(start, corner)
            path.lineTo(end)
            return path
        return bezier_path(start, end)
    middle_y = (start.y() + end.y()) / 2 if lane_y is None else lane_y
    right, left = start.x() + RETURN_STUB, end.x() - RETURN_STUB
    corners = [QPointF(right, start.y()), QPointF(right, middle_y), QPointF(left, middle_y), QPointF(left, end.y())]
    return rounded_polyline([start, *corners, end], RETURN_RADIUS)


def rounded_polyline(points: list[QPointF], radius: float) -> QPainterPath:
    """A path through ``points`` whose inner corners are rounded with ``radius`` (less on short legs)."""
    path = QPainterPath(points[0])
    for before, corner, after in zip(points, points[1:], points[2:]):
        into = _toward(corner, before, radius)
        out_of = _toward(corner, after, radius)
        path.lineTo(into)
        path.quadTo(corner, out_of)
    path.lineTo(points[-1])
    return path


def _toward(origin: QPointF, target: QPointF, distance: float) -> QPointF:
    """The point ``distance`` from ``origin`` toward ``target`` (at most half the way)."""
    dx, dy = target.x() - origin.x(), target.y() - origin.y()
    length = (dx * dx + dy * dy) ** 0.5
    if length == 0:
        return QPointF(origin)
    step = min(distance, length / 2) / length
    return QPointF(origin.x() + dx * step, origin.y() + dy * step)


class EdgeItem(QGraphicsItem):
    """The curve of one model edge.

    Args:
        edge: The model edge shown.
        kit: Pens, brushes and fonts of the current theme.
    """

    def __init__(self, edge: Edge, kit: PaintKit) -> None:
        super().__init__()
        self.edge = edge
        self.kit = kit
        self.label = ""
        self.error = False
        self.hovered = False
        self._start = QPointF()
        self._end = QPointF()
        self._route: tuple[float | None, str | None, bool] = (None, None, False)
        self.vertical = False  # ports on the top and bottom edges: curves leave downwards
        self._path = QPainterPath()
        self._hit: QPainterPath | None = None
        self._label_rect = QRectF()
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(0.0)

    # ------------------------------------------------------------ model -> view
    def set_ends(self, start: QPointF, end: QPointF, lane_y: float | None = None, bend: str | None = None) -> None:
        """Follow the ports: ``start`` is the source's output, ``end`` the target's input.

        ``lane_y`` is where a return route runs back, ``bend`` how a long edge bends
        (:mod:`gui.canvas.edge_routes`); see :func:`edge_path`.
        """
        route = (lane_y, bend, self.vertical)
        if start == self._start and end == self._end and route == self._route and not self._path.isEmpty():
            return
        self.prepareGeometryChange()
        self._start, self._end, self._route = QPointF(start), QPointF(end), route
        self._path = vertical_bezier_path(start, end) if self.vertical else edge_path(start, end, lane_y, bend)
        self._hit = None
        self._place_label()

    def set_state(self, label: str, error: bool, tooltip: str) -> None:
        """Show the carried shape (``label``) and whether the target rejects its inputs."""
        if label == self.label and error == self.error and tooltip == self.toolTip():
            return
        if label != self.label:
            self.prepareGeometryChange()
            self.label = label
            self._place_label()
        self.error = error
        self.setToolTip(tooltip)
        self.update()

    def set_kit(self, kit: PaintKit) -> None:
        """Repaint with another theme."""
        self.prepareGeometryChange()
        self.kit = kit
        self._place_label()

    def _place_label(self) -> None:
        mid = self._path.pointAtPercent(0.5) if not self._path.isEmpty() else QPointF()
        width = self.kit.edge_metrics.horizontalAdvance(self.label) + 2 * _LABEL_PAD_X if self.label else 0.0
        self._label_rect = QRectF(mid.x() - width / 2, mid.y() - _LABEL_HEIGHT / 2, width, _LABEL_HEIGHT)
        bounds = self._path.controlPointRect()
        if self.label:
            bounds = bounds.united(self._label_rect)
        self._bounds = bounds.adjusted(-_HIT_WIDTH, -_HIT_WIDTH, _HIT_WIDTH, _HIT_WIDTH)

    @property
    def start(self) -> QPointF:
        """Scene position of the source's output port."""
        return self._start

    @property
    def end(self) -> QPointF:
        """Scene position of the target's input port."""
        return self._end

    @property
    def label_fits(self) -> bool:
        """Whether the label fits between the two nodes without covering either."""
        room = self._end.x() - self._start.x() - 2 * PORT_RADIUS - 2
        return bool(self.label) and self._label_rect.width() <= room

    @property
    def label_visible(self) -> bool:
        """The label shows when it fits, and always while the edge is hovered or selected."""
        return bool(self.label) and (self.label_fits or self.hovered or self.isSelected())

    # ------------------------------------------------------------ QGraphicsItem
    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def shape(self) -> QPainterPath:
        if self._hit is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(_HIT_WIDTH)
            self._hit = stroker.createStroke(self._path)
        return self._hit

    def hoverEnterEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        self.hovered = True
        self.setZValue(2.0)  # above the nodes, so a label that does not fit still reads
        self.update()
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event: QGraphicsSceneHoverEvent) -> None:  # noqa: N802
        self.hovered = False
        self.setZValue(0.0)
        self.update()
        super().hoverLeaveEvent(event)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        kit = self.kit
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if self.isSelected():
            pen = kit.edge_selected_pen
        elif self.error:
            pen = kit.edge_error_pen
        elif self.hovered:
            pen = kit.edge_hover_pen
        else:
            pen = kit.edge_pen
        if lod >= LOD_TEXT / 2:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(self._path)
        if lod >= LOD_EDGE_LABEL and self.label_visible:
            painter.setPen(kit.edge_label_border if not (self.hovered or self.isSelected()) else pen)
            painter.setBrush(kit.edge_label_brush)
            painter.drawRoundedRect(self._label_rect, _LABEL_HEIGHT / 2, _LABEL_HEIGHT / 2)
            painter.setFont(kit.edge_font)
            painter.setPen(kit.error_text_pen if self.error else kit.edge_label_pen)
            painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self.label)
