"""A layer with several outputs on the canvas: one port per part, wired, undone and saved by port."""

from __future__ import annotations

import pytest

from engine.graph import Edge, Graph, Node, Project
from engine.graph.fileformat import dumps, loads
from gui import commands
from gui.canvas.view import CanvasView
from gui.document import Document
from tests.gui.test_canvas import drag, settle


def split_document() -> Document:
    """x (N, 6) -> split into 2, 3, 1 -> out2 feeds fc; out3 feeds relu."""
    graph = Graph()
    graph.extend([Node("x", "input", {"shape": [6]}, (0, 0)),
                  Node("parts", "split", {"sizes": [2, 3, 1], "dim": 1}, (240, 0)),
                  Node("fc", "linear", {"out_features": 4}, (520, -60)),
                  Node("relu", "relu", {}, (520, 160)),
                  Node("out", "output", {}, (780, -60))],
                 [Edge("x", "parts", "in"), Edge("parts", "fc", "in", "out2"), Edge("parts", "relu", "in", "out3"),
                  Edge("fc", "out", "in")])
    return Document(Project(graph))


@pytest.fixture
def view(qtbot) -> CanvasView:  # noqa: ANN001
    canvas = CanvasView(split_document())
    qtbot.addWidget(canvas)
    canvas.resize(1200, 700)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_zoom(1.0)
    canvas.centerOn(400, 50)
    return canvas


def test_each_part_has_its_port_and_its_shape(view: CanvasView) -> None:
    item = view.scene().nodes["parts"]
    assert item.layout.outputs == ("out1", "out2", "out3")
    ys = [item.output_scene_pos(p).y() for p in item.layout.outputs]
    assert ys == sorted(ys) and len(set(ys)) == 3
    assert item.connected_outputs == frozenset({"out2", "out3"})
    analysis = view.document.analysis
    assert analysis.nodes["fc"].output.dims == (4,) and analysis.nodes["relu"].output.dims == (1,)
    edge_item = view.scene().edges[Edge("parts", "fc", "in", "out2")]
    assert edge_item.label == "(N, 3)" and "parts.out2" in edge_item.toolTip()


def test_dragging_from_a_part_connects_that_part(view: CanvasView) -> None:
    graph = view.document.graph
    view.push(commands.add_node(graph, Node("relu2", "relu", {}, (520, 320))))
    settle(view)
    scene = view.scene()
    drag(view, scene.nodes["parts"].output_scene_pos("out1"), scene.nodes["relu2"].input_scene_pos("in"))
    settle(view)
    assert graph.edge_into("relu2", "in") == Edge("parts", "relu2", "in", "out1")
    assert view.document.analysis.nodes["relu2"].output.dims == (2,)


def test_fewer_parts_disconnect_the_vanished_port_in_the_same_undo_step(view: CanvasView) -> None:
    graph = view.document.graph
    view.push(commands.set_param(graph, "parts", "sizes", [2, 4]))
    assert graph.edge_into("relu", "in") is None and graph.edge_into("fc", "in") is not None
    view.document.undo_stack.undo()
    assert graph.edge_into("relu", "in") == Edge("parts", "relu", "in", "out3")


def test_the_file_names_the_port_only_when_it_is_not_out() -> None:
    text = dumps(split_document().project)
    assert '"source_port": "out2"' in text and text.count('"source_port"') == 2
    again = loads(text).graph
    assert again.edge_into("relu", "in") == Edge("parts", "relu", "in", "out3")
    assert dumps(loads(text)) == text
    bad = text.replace('"source_port": "out3"', '"source_port": "out9"')
    with pytest.raises(Exception, match=r"graph\.edges\[\d\]: node parts \(Split\) has no output 'out9'"):
        loads(bad, source="p.json")
