"""Layered auto-layout: left to right (as before), top to bottom for deep networks, and ``auto``."""

from __future__ import annotations

from engine.graph import Edge, Graph
from engine.graph.layout import CARD_WIDTH, COLUMN_SPACING, card_height, layered_layout
from tests.graph_builders import add, chain, connect, node


def deep_chain(length: int) -> Graph:
    g = Graph()
    chain(g, node("input", "x", shape=[4]), *[node("relu", f"r{i}") for i in range(length)], node("output", "y"))
    return g


def residual_tower(blocks: int) -> Graph:
    """x -> (conv -> relu -> conv -> add(+ skip)) * blocks -> y: each skip spans four generations."""
    g = Graph()
    last = add(g, "input", "x", shape=[4, 8, 8])
    for b in range(blocks):
        h = chain(g, last, node("conv2d", f"c{b}a", out_channels=4, padding=[1, 1]), node("relu", f"r{b}"),
                  node("conv2d", f"c{b}b", out_channels=4, padding=[1, 1]))
        add(g, "add", f"a{b}")
        connect(g, h, f"a{b}", "in1")
        connect(g, last, f"a{b}", "in2")
        last = f"a{b}"
    chain(g, last, node("output", "y"))
    return g


def rectangles(graph: Graph, positions: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float, float, float]]:
    """Each node's card (x, y, width, height) at its new position."""
    result = {}
    for node_id, (x, y) in positions.items():
        n = graph.nodes[node_id]
        result[node_id] = (x, y, CARD_WIDTH, card_height(max(len(n.input_ports()), len(n.output_ports()))))
    return result


def overlaps(cards: dict[str, tuple[float, float, float, float]]) -> list[tuple[str, str]]:
    items = list(cards.items())
    return [(a, b) for i, (a, (ax, ay, aw, ah)) in enumerate(items) for b, (bx, by, bw, bh) in items[i + 1:]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah]


def test_right_is_the_original_layout_with_its_wrapping() -> None:
    g = deep_chain(10)
    positions = layered_layout(g, direction="right")
    assert [positions[n] for n in ("x", "r0", "r1")] == [(0.0, 0.0), (240.0, 0.0), (480.0, 0.0)]
    wrapped = layered_layout(g, max_columns=4, direction="right")
    assert wrapped["r3"] == (0.0, 280.0) and wrapped["r2"] == (720.0, 0.0)
    assert layered_layout(g, max_columns=4, direction="right") == layered_layout(g, (0.0, 0.0), 4, "right")


def test_down_puts_generations_in_rows_and_branches_side_by_side() -> None:
    g = Graph()
    chain(g, node("input", "x", shape=[4]), node("linear", "left", out_features=4))
    chain(g, "x", node("relu", "right"))
    add(g, "add", "sum")
    connect(g, "left", "sum", "in1")
    connect(g, "right", "sum", "in2")
    chain(g, "sum", node("output", "y"))
    positions = layered_layout(g, origin=(10.0, 20.0), direction="down")
    assert positions["x"][1] == 20.0 < positions["left"][1] == positions["right"][1] < positions["sum"][1]
    assert positions["right"][0] - positions["left"][0] == COLUMN_SPACING
    assert positions["x"][0] == positions["sum"][0] == (positions["left"][0] + positions["right"][0]) / 2
    assert min(x for x, _ in positions.values()) == 10.0
    assert not overlaps(rectangles(g, positions))


def test_down_gives_skip_connections_a_lane_beside_the_layers_they_pass() -> None:
    g = residual_tower(3)
    positions = layered_layout(g, direction="down")
    assert not overlaps(rectangles(g, positions))
    for b in range(3):
        start = positions["x" if b == 0 else f"a{b - 1}"]
        for passed in (f"c{b}a", f"r{b}", f"c{b}b"):
            assert positions[passed][0] != start[0]  # the straight way down from the skip's source is free
            assert start[1] < positions[passed][1] < positions[f"a{b}"][1]
    xs = {x for x, _ in positions.values()}
    assert max(xs) - min(xs) <= COLUMN_SPACING  # one lane: two columns at most


def test_auto_picks_down_for_deep_narrow_graphs_and_right_otherwise() -> None:
    shallow, deep = deep_chain(3), deep_chain(12)
    assert layered_layout(shallow) == layered_layout(shallow, direction="right")
    assert layered_layout(deep) == layered_layout(deep, direction="down")
    positions = layered_layout(deep, max_columns=4)  # max_columns only wraps "right"
    assert len({x for x, _ in positions.values()}) == 1 and len({y for _, y in positions.values()}) == 14
    wide = Graph()
    add(wide, "input", "x", shape=[4])
    for i in range(6):  # ten generations, six branches side by side: deep but not narrow
        chain(wide, "x", *[node("relu", f"b{i}_{k}") for k in range(9)])
    assert layered_layout(wide) == layered_layout(wide, direction="right")


def test_cycles_and_edges_back_up_still_get_positions() -> None:
    g = deep_chain(9)
    g.add_node(g.nodes["r0"].copy(id="loop_a"))
    g.add_node(g.nodes["r0"].copy(id="loop_b"))
    g.add_edge(Edge("loop_a", "loop_b", "in"))
    g.add_edge(Edge("loop_b", "loop_a", "in"))
    positions = layered_layout(g, direction="down")
    assert set(positions) == set(g.nodes) and not overlaps(rectangles(g, positions))
