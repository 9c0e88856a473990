"""Edges that wrap from the end of one row to the start of the next run through the gap between rows."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPathStroker

from engine.graph.fileformat import load_project
from gui.canvas import CanvasView
from gui.canvas.edge_item import edge_path
from gui.canvas.edge_routes import free_lane, is_return_route
from gui.document import Document
from tests.conftest import ROOT

TEMPLATES = sorted((ROOT / "templates").glob("*.json"))


def test_free_lane_is_the_middle_of_the_widest_gap() -> None:
    start, end = QPointF(500, 0), QPointF(0, 200)
    rows = [(-25, 25), (40, 60), (170, 230)]  # spans of three nodes: row 1 reaches 60
    assert free_lane(start, end, rows) == pytest.approx((60 + 170) / 2)
    assert free_lane(start, end, []) == pytest.approx(100)  # nothing in the way: halfway


def test_only_backward_edges_that_change_rows_take_the_return_route() -> None:
    assert not is_return_route(QPointF(0, 0), QPointF(200, 300))  # forward
    assert not is_return_route(QPointF(300, 0), QPointF(0, 30))  # back within a row: the looping curve
    assert is_return_route(QPointF(300, 0), QPointF(0, 200))
    path = edge_path(QPointF(300, 0), QPointF(0, 200), lane_y=110)
    assert path.boundingRect().right() > 300 and path.boundingRect().left() < 0  # leaves right, enters left
    assert path.intersects(QRectF(100, 109, 100, 2))  # runs back along the lane


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_no_template_edge_crosses_a_node(qtbot, template) -> None:  # noqa: ANN001
    view = CanvasView(Document(load_project(template)))
    qtbot.addWidget(view)
    scene = view.scene()
    stroker = QPainterPathStroker()
    stroker.setWidth(2)
    for edge, item in scene.edges.items():
        outline = stroker.createStroke(item.mapToScene(item._path))  # noqa: SLF001 - the drawn path
        for node_id, node in scene.nodes.items():
            if node_id in (edge.source, edge.target):
                continue
            body = node.mapToScene(node.shape()).boundingRect().adjusted(2, 2, -2, -2)
            assert not outline.intersects(body), \
                f"{template.stem}: edge {edge.source} -> {edge.target} crosses {node_id}"
