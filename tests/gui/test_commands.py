"""Undo commands restore exactly what they changed."""

from __future__ import annotations

from engine.graph import Edge, Node
from engine.graph.fileformat import dumps
from gui import commands
from gui.document import Document
from tests.training.helpers import mlp_project


def make_document(qtbot) -> Document:  # noqa: ANN001
    return Document(mlp_project())


def test_delete_node_removes_its_edges_and_undo_restores_both(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    before = dumps(doc.project)
    node = doc.graph.nodes["act1"]
    doc.push(commands.remove(doc.graph, ["act1"]))
    assert "act1" not in doc.graph.nodes and len(doc.graph.edges) == 3
    doc.undo_stack.undo()
    assert doc.graph.nodes["act1"] is node and dumps(doc.project) == before
    doc.undo_stack.redo()
    assert "act1" not in doc.graph.nodes


def test_deleting_two_connected_nodes_removes_the_shared_edge_once(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    before = dumps(doc.project)
    doc.push(commands.remove(doc.graph, ["act1", "drop"]))
    assert len(doc.graph.edges) == 2
    doc.undo_stack.undo()
    assert dumps(doc.project) == before


def test_parameter_edits_merge_into_one_undo_step(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    for value in (17, 18, 19, 20):
        doc.push(commands.set_param(doc.graph, "fc1", "out_features", value))
    assert doc.undo_stack.count() == 1 and doc.graph.nodes["fc1"].params["out_features"] == 20
    doc.undo_stack.undo()
    assert doc.graph.nodes["fc1"].params["out_features"] == 16


def test_lowering_merge_inputs_disconnects_and_undo_reconnects(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    doc.push(commands.add_many(doc.graph, [Node("add", "add", {"num_inputs": 3})],
                      [Edge("x", "add", "in1"), Edge("x", "add", "in2"), Edge("x", "add", "in3")], "Add"))
    doc.push(commands.set_param(doc.graph, "add", "num_inputs", 2))
    assert doc.graph.edge_into("add", "in3") is None
    doc.undo_stack.undo()
    assert doc.graph.edge_into("add", "in3") is not None


def test_analysis_follows_edits_once_per_event_loop_turn(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    seen = []
    doc.analysis_changed.connect(seen.append)
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 40))
    doc.push(commands.move_nodes(doc.graph, {"fc1": (0, 0)}, {"fc1": (10, 10)}))
    doc.push(commands.add_node(doc.graph, Node("extra", "relu")))
    qtbot.waitUntil(lambda: len(seen) == 1)
    assert seen[0].nodes["fc2"].parameters == 40 * 2 + 2
    assert any(d.node == "extra" for d in seen[0].diagnostics)


def test_read_only_document_refuses_edits(qtbot) -> None:  # noqa: ANN001
    doc = make_document(qtbot)
    doc.read_only_reason = "training is running"
    assert not doc.push(commands.set_param(doc.graph, "fc1", "out_features", 3))
    assert doc.graph.nodes["fc1"].params["out_features"] == 16
