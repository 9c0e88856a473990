"""The document model: mutators, events, identity-preserving undo pairs, networkx view."""

from __future__ import annotations

import networkx as nx
import pytest

from engine.graph import (Edge, EdgeAdded, EdgeRemoved, Graph, GraphError, Node, NodeAdded, NodeRemoved,
                          NodesMoved, ParamChanged)
from engine.graph.layout import layered_layout


@pytest.fixture
def graph() -> Graph:
    g = Graph()
    g.add_node(Node("x", "input", {"shape": [4]}))
    g.add_node(Node("fc", "linear", {"out_features": 3}))
    g.add_node(Node("out", "output"))
    g.add_edge(Edge("x", "fc", "in"))
    g.add_edge(Edge("fc", "out", "in"))
    return g


def test_add_node_fills_defaults_and_coerces_kinds() -> None:
    g = Graph()
    node = Node("c", "conv2d", {"kernel_size": [5, 5]})
    g.add_node(node)
    assert node.params["kernel_size"] == (5, 5)
    assert node.params["out_channels"] == 16


@pytest.mark.parametrize(("node", "message"), [
    (Node("1bad", "relu"), "Python identifier"),
    (Node("a", "no_such_layer"), "unknown layer type"),
    (Node("a", "linear", {"out_features": "64"}), "out_features expected an integer"),
    (Node("a", "linear", {"width": 3}), "unknown parameter 'width'"),
    (Node("a", "dropout", {"p": float("nan")}), "p expected a finite number"),
])
def test_add_node_refuses_impossible_nodes(node: Node, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        Graph().add_node(node)


def test_duplicate_ids_and_occupied_ports_are_refused(graph: Graph) -> None:
    with pytest.raises(GraphError, match="already used"):
        graph.add_node(Node("fc", "relu"))
    graph.add_node(Node("y", "input"))
    with pytest.raises(GraphError, match="already connected"):
        graph.add_edge(Edge("y", "fc", "in"))
    with pytest.raises(GraphError, match="has no input 'b'"):
        graph.add_edge(Edge("y", "fc", "b"))
    with pytest.raises(GraphError, match="has no output"):
        graph.add_edge(Edge("out", "fc", "in"))


def test_events_are_emitted_for_every_change(graph: Graph) -> None:
    events = []
    unsubscribe = graph.subscribe(events.append)
    edge = graph.edge_into("out", "in")
    graph.remove_edge(edge)
    node = graph.remove_node("out")
    graph.add_node(node)
    graph.add_edge(edge)
    graph.set_param("fc", "out_features", 7)
    graph.set_param("fc", "out_features", 7)  # no change, no event
    graph.move_nodes({"fc": (10, 20)})
    assert [type(e) for e in events] == [EdgeRemoved, NodeRemoved, NodeAdded, EdgeAdded, ParamChanged, NodesMoved]
    assert events[4] == ParamChanged("fc", "out_features", 3, 7)
    assert events[5].moves == {"fc": ((0.0, 0.0), (10.0, 20.0))}
    unsubscribe()
    graph.set_param("fc", "out_features", 8)
    assert len(events) == 6


def test_undo_pairs_reinsert_the_same_objects(graph: Graph) -> None:
    edges = graph.edges_of("fc")
    removed_edges = [graph.remove_edge(e) for e in edges]
    node = graph.remove_node("fc")
    graph.add_node(node)
    for edge in removed_edges:
        graph.add_edge(edge)
    assert graph.nodes["fc"] is node
    assert all(any(e is kept for kept in graph.edges) for e in removed_edges)


def test_a_node_with_edges_cannot_be_removed(graph: Graph) -> None:
    with pytest.raises(GraphError, match="still has 2 edge"):
        graph.remove_node("fc")


def test_networkx_view_tracks_edits(graph: Graph) -> None:
    g = graph.nx_graph()
    assert list(nx.topological_sort(g)) == ["x", "fc", "out"]
    graph.add_node(Node("add", "add"))
    graph.add_edge(Edge("x", "add", "in1"))
    graph.add_edge(Edge("x", "add", "in2"))  # two edges between one pair of nodes
    assert g.number_of_edges("x", "add") == 2
    graph.remove_edge(graph.edge_into("add", "in2"))
    assert g.number_of_edges("x", "add") == 1


def test_copy_is_independent(graph: Graph) -> None:
    clone = graph.copy()
    clone.set_param("fc", "out_features", 99)
    assert graph.nodes["fc"].params["out_features"] == 3
    assert [(e.source, e.target) for e in clone.edges] == [(e.source, e.target) for e in graph.edges]


def test_new_id_is_fresh(graph: Graph) -> None:
    assert graph.new_id("fc") == "fc1"
    graph.add_node(Node("fc1", "linear"))
    assert graph.new_id("fc") == "fc2"


def test_layered_layout_puts_generations_in_columns(graph: Graph) -> None:
    graph.add_node(Node("skip", "identity"))
    graph.add_edge(Edge("x", "skip", "in"))
    positions = layered_layout(graph)
    assert positions["x"][0] < positions["fc"][0] == positions["skip"][0] < positions["out"][0]
    assert positions["fc"][1] != positions["skip"][1]
