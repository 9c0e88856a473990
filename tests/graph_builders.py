"""Small helpers for building graphs in tests with the engine API.

``chain`` wires nodes one after another, so a sequential model reads top to bottom::

    graph = Graph()
    chain(graph, node("input", "x", shape=[20]), node("linear", "fc1", out_features=64),
          node("relu", "relu1"), node("output", "out"))
"""

from __future__ import annotations

import itertools
from typing import Any

from engine.graph import Edge, Graph, Node
from engine.layers import get_layer

#: What :func:`chain` accepts: a node to add, or the id of a node already in the graph.
Link = Node | str


def node(type_id: str, node_id: str, **params: Any) -> Node:
    """A new :class:`Node` of ``type_id`` with the given parameter values (not yet in a graph)."""
    return Node(node_id, type_id, dict(params))


def add(graph: Graph, type_id: str, node_id: str | None = None, **params: Any) -> str:
    """Add a node (a fresh id from the layer's prefix when ``node_id`` is omitted) and return its id."""
    node_id = node_id or graph.new_id(get_layer(type_id).id_prefix)
    graph.add_node(Node(node_id, type_id, dict(params)))
    return node_id


def connect(graph: Graph, source: str, target: str, port: str | None = None) -> Edge:
    """Connect ``source`` (its first output port) to ``port`` of ``target`` (its first free
    input port when omitted)."""
    if port is None:
        port = first_free_port(graph, target)
    outputs = graph.nodes[source].output_ports()
    edge = Edge(source, target, port, outputs[0]) if outputs else Edge(source, target, port)
    graph.add_edge(edge)
    return edge


def first_free_port(graph: Graph, node_id: str) -> str:
    """The first input port of ``node_id`` that nothing is connected to yet.

    Raises:
        ValueError: Every input port is taken (or the node has none).
    """
    for port in graph.nodes[node_id].input_ports():
        if graph.edge_into(node_id, port) is None:
            return port
    raise ValueError(f"node {node_id} has no free input port")


def chain(graph: Graph, *links: Link) -> str:
    """Add the :class:`Node` links that are not in ``graph`` yet and connect each link to the
    next one's first free input port. Returns the id of the last link."""
    ids: list[str] = []
    for link in links:
        if isinstance(link, Node):
            if link.id not in graph.nodes:
                graph.add_node(link)
            ids.append(link.id)
        else:
            ids.append(link)
    for source, target in itertools.pairwise(ids):
        connect(graph, source, target)
    return ids[-1]


def sequential(input_shape: tuple[int, ...], *layers: tuple[str, dict[str, Any]]) -> Graph:
    """A graph ``Input(input_shape) -> layers... -> Output`` with ids ``x``, ``l1``, ``l2``, ..., ``out``.

    Args:
        input_shape: Per-sample input shape.
        layers: ``(type_id, params)`` pairs in order.
    """
    graph = Graph()
    links = [node("input", "x", shape=list(input_shape))]
    links += [node(type_id, f"l{i + 1}", **params) for i, (type_id, params) in enumerate(layers)]
    links.append(node("output", "out"))
    chain(graph, *links)
    return graph


def describe(graph: Graph) -> str:
    """The graph as code that rebuilds it, for hypothesis failure reports."""
    lines = ["graph = Graph()"]
    for n in graph:
        lines.append(f"graph.add_node(Node({n.id!r}, {n.type_id!r}, {n.params!r}))")
    for e in graph.edges:
        lines.append(f"graph.add_edge(Edge({e.source!r}, {e.target!r}, {e.target_port!r}))")
    return "\n".join(lines)
