"""Where edges run: return routes between wrapped rows and bends of long skip edges.

Pure geometry over node rectangles, kept apart from drawing (:mod:`gui.canvas.edge_item`)
so the scene can decide routes for many edges at once against one index of the nodes
(:class:`NodeRects`) instead of asking the scene's item index per edge.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF

#: How far around an edge's ports the nodes that can change its route lie.
ROUTE_MARGIN = 60.0
#: A backward edge that drops at least this far runs as a rounded return route.
RETURN_MIN_DROP = 60.0
RETURN_STUB = 24.0
RETURN_RADIUS = 12.0


def is_return_route(start: QPointF, end: QPointF) -> bool:
    """Whether the edge from ``start`` to ``end`` goes back (leftwards) and down or up a row."""
    return end.x() < start.x() and abs(end.y() - start.y()) >= RETURN_MIN_DROP


def return_band(start: QPointF, end: QPointF) -> QRectF:
    """The scene area a return route's run crosses: nodes in it are what the run must avoid."""
    return QRectF(QPointF(end.x() - RETURN_STUB, min(start.y(), end.y())),
                  QPointF(start.x() + RETURN_STUB, max(start.y(), end.y())))


def free_lane(start: QPointF, end: QPointF, spans: Iterable[tuple[float, float]]) -> float:
    """The y of a return route's run: the middle of the widest free gap between obstacles.

    ``spans`` are the (top, bottom) of the node rectangles in :func:`return_band`. Every
    return edge of one source into one row finds the same gap, so their runs coincide.
    With no free gap the run goes halfway between the ports.
    """
    top, bottom = min(start.y(), end.y()), max(start.y(), end.y())
    covered = sorted((max(y0, top), min(y1, bottom)) for y0, y1 in spans if y1 > top and y0 < bottom)
    best_size, best_y, reached = 0.0, (top + bottom) / 2, top
    for low, high in covered:
        if low - reached > best_size:
            best_size, best_y = low - reached, (reached + low) / 2
        reached = max(reached, high)
    if covered and bottom - reached > best_size:
        best_y = (reached + bottom) / 2
    return best_y


#: How wide the S bend of a long edge that keeps to one row is.
BEND_WIDTH = 160.0


def bend_bands(start: QPointF, end: QPointF) -> tuple[QRectF, QRectF] | None:
    """For a long edge that changes rows: the straight runs of a late and of an early bend.

    A skip connection spans several columns. As one S curve from port to port it crosses
    the rows between diagonally and grazes the nodes there; it reads better when it keeps
    to the row of its source and bends just before its target (late), or bends right away
    and then keeps to its target's row (early). The bands are where that straight run goes:
    a bend is drawn only where its band holds no node. ``None`` for short or level edges.
    """
    if end.x() - start.x() < 2 * BEND_WIDTH or abs(end.y() - start.y()) < 8:
        return None
    late = QRectF(QPointF(start.x() + 8, start.y() - 6), QPointF(end.x() - BEND_WIDTH, start.y() + 6))
    early = QRectF(QPointF(start.x() + BEND_WIDTH, end.y() - 6), QPointF(end.x() - 8, end.y() + 6))
    return late, early



class NodeRects:
    """The nodes' rectangles, sorted by top edge, for many band queries at once.

    A query looks only at rectangles whose top lies above the band's bottom and within the
    tallest node's height of its top, so a band one row high reads one or two rows of nodes.

    Args:
        rects: Scene rectangles of the nodes.
    """

    def __init__(self, rects: Iterable[QRectF]) -> None:
        boxes = sorted((r.top(), r.bottom(), r.left(), r.right()) for r in rects)
        self.tops = [box[0] for box in boxes]
        self.boxes = boxes
        self.tallest = max((box[1] - box[0] for box in boxes), default=0.0)

    def spans_in(self, band: QRectF) -> list[tuple[float, float]]:
        """(top, bottom) of every rectangle that meets ``band``."""
        first = bisect.bisect_left(self.tops, band.top() - self.tallest)
        last = bisect.bisect_right(self.tops, band.bottom())
        left, right, top = band.left(), band.right(), band.top()
        return [(y0, y1) for y0, y1, x0, x1 in self.boxes[first:last] if y1 > top and x1 > left and x0 < right]

    def any_in(self, band: QRectF) -> bool:
        """Whether any rectangle meets ``band``."""
        return bool(self.spans_in(band))

    def route(self, start: QPointF, end: QPointF) -> tuple[float | None, str | None]:
        """``(lane_y, bend)`` for the edge from ``start`` to ``end`` (see ``edge_item.edge_path``)."""
        if is_return_route(start, end):
            return free_lane(start, end, self.spans_in(return_band(start, end))), None
        bands = bend_bands(start, end)
        if bands is None:
            return None, None
        return None, next((name for name, band in zip(("late", "early"), bands) if not self.any_in(band)), None)


def route_area(start: QPointF, end: QPointF) -> QRectF:
    """Where a node must be to change the route of the edge from ``start`` to ``end``."""
    return QRectF(start, end).normalized().adjusted(-ROUTE_MARGIN, -ROUTE_MARGIN, ROUTE_MARGIN, ROUTE_MARGIN)


def needs_route(start: QPointF, end: QPointF) -> bool:
    """Whether the edge's drawing depends on the nodes around it (a return route or a bend)."""
    return is_return_route(start, end) or bend_bands(start, end) is not None
