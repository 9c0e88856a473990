"""Layered auto-layout from networkx topological generations: left to right, or top to bottom.

``direction="right"`` puts each generation in a column (the original layout; long models can
wrap into bands with ``max_columns``). ``direction="down"`` puts each generation in a row, as
Netron draws deep networks: branches side by side, and every edge that skips generations (a
residual connection) gets a lane of its own beside the layers it passes, so it never runs
under them. ``direction="auto"`` picks ``down`` for deep, narrow graphs and ``right`` otherwise.
"""

from __future__ import annotations

from typing import Literal

import networkx as nx

from engine.graph.model import Graph

COLUMN_SPACING = 240.0
ROW_SPACING = 140.0
#: ``auto`` lays a graph out top to bottom from this many generations on, when it is at least
#: twice as deep as it is wide.
DEEP_GENERATIONS = 8
#: The canvas's node card (scene units): its width, and its height for a given number of ports.
CARD_WIDTH = 150.0
_CARD_HEADER, _CARD_BODY, _PORT_PITCH, _CARD_PADDING = 26.0, 62.0, 18.0, 14.0
#: Vertical gap between two rows of cards (``down``).
ROW_GAP = 52.0

Direction = Literal["auto", "right", "down"]


def layered_layout(graph: Graph, origin: tuple[float, float] = (0.0, 0.0),
                   max_columns: int | None = None, direction: Direction = "auto") -> dict[str, tuple[float, float]]:
    """Positions that place each topological generation in its own column (``right``) or row (``down``).

    Nodes on cycles (which have no generation) go into one extra generation at the end.
    ``right``: within a column, nodes keep document order and are centred vertically.
    ``down``: within a row, nodes are ordered by where their inputs are (document order on
    ties) and centred horizontally; edges that skip rows have their own lane.

    Args:
        graph: The graph to lay out.
        origin: Position of the first column's (row's) top-left.
        max_columns: ``right`` only: wrap long models like text: after this many columns,
            continue in a new band below, again from the left (``None``: one band).
        direction: ``right``, ``down``, or ``auto`` (:func:`pick_direction`).

    Returns:
        Node id -> new position, for :meth:`Graph.move_nodes`.
    """
    generations = _generations(graph)
    if direction == "auto":
        direction = pick_direction(generations)
    if direction == "down":
        return _down(graph, generations, origin)
    if direction != "right":
        raise ValueError(f"direction must be auto, right or down, got {direction!r}")
    order = {node_id: index for index, node_id in enumerate(graph.nodes)}
    tallest = max((len(gen) for gen in generations), default=0)
    positions = {}
    band_height = (tallest + 1) * ROW_SPACING
    for index, generation in enumerate(generations):
        band, column = divmod(index, max_columns) if max_columns else (0, index)
        generation.sort(key=order.__getitem__)
        top = origin[1] + band * band_height + (tallest - len(generation)) * ROW_SPACING / 2
        for row, node_id in enumerate(generation):
            positions[node_id] = (origin[0] + column * COLUMN_SPACING, top + row * ROW_SPACING)
    return positions


def pick_direction(generations: list[list[str]]) -> Literal["right", "down"]:
    """``down`` for a deep, narrow graph (at least :data:`DEEP_GENERATIONS` generations and at least
    twice as many generations as nodes in its widest one), else ``right``."""
    widest = max((len(gen) for gen in generations), default=0)
    deep = len(generations) >= DEEP_GENERATIONS and len(generations) >= 2 * widest
    return "down" if deep else "right"


def card_height(ports: int) -> float:
    """Height of a node card with ``ports`` ports on its busier side (as the canvas draws it)."""
    return _CARD_HEADER + max(_CARD_BODY, ports * _PORT_PITCH + _CARD_PADDING)


def _generations(graph: Graph) -> list[list[str]]:
    g = graph.nx_graph()
    try:
        return [list(gen) for gen in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:
        cyclic = {n for comp in nx.strongly_connected_components(g) if len(comp) > 1 for n in comp}
        cyclic.update(n for n in g.nodes if g.has_edge(n, n))
        acyclic = g.subgraph(n for n in g.nodes if n not in cyclic)
        return [list(gen) for gen in nx.topological_generations(acyclic)] + [sorted(cyclic)]


def _down(graph: Graph, generations: list[list[str]], origin: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """Rows of generations; a dummy slot per row for each edge passing it (its lane)."""
    order = {node_id: index for index, node_id in enumerate(graph.nodes)}
    level = {node_id: index for index, gen in enumerate(generations) for node_id in gen}
    rows: list[list[object]] = [list(gen) for gen in generations]
    # a slot is a node id, or ("lane", edge index, row) for a long edge passing that row
    parents: dict[object, list[object]] = {node_id: [] for node_id in graph.nodes}
    for index, edge in enumerate(graph.edges):
        start, end = level.get(edge.source), level.get(edge.target)
        if start is None or end is None or end <= start:
            continue
        previous: object = edge.source
        for row in range(start + 1, end):
            lane = ("lane", index, row)
            rows[row].append(lane)
            parents[lane] = [previous]
            previous = lane
        parents[edge.target].append(previous)
    slot: dict[object, float] = {}
    for row in rows:
        def key(item: object) -> tuple[float, int]:
            above = [slot[p] for p in parents.get(item, []) if p in slot]
            centre = sum(above) / len(above) if above else float("inf")
            rank = order.get(item, len(order)) if isinstance(item, str) else len(order)
            return centre, rank
        row.sort(key=key)
        for index, item in enumerate(row):
            slot[item] = index - (len(row) - 1) / 2
    widest = max((len(row) for row in rows), default=0)
    positions = {}
    y = origin[1]
    for row in rows:
        tallest = 0.0
        for item in row:
            if isinstance(item, str):
                node = graph.nodes[item]
                ports = max(len(node.input_ports()), len(node.output_ports()))
                tallest = max(tallest, card_height(ports))
                positions[item] = (origin[0] + (slot[item] + (widest - 1) / 2) * COLUMN_SPACING, y)
        y += max(ROW_SPACING, tallest + ROW_GAP)
    return positions


def flows_down(graph: Graph) -> bool:
    """Whether the graph's layout runs top to bottom: most connections lead down more than across
    (the canvas then puts ports on the cards' top and bottom edges, as Netron draws)."""
    nodes = graph.nodes
    down = across = 0
    for edge in graph.edges:
        (sx, sy), (tx, ty) = nodes[edge.source].position, nodes[edge.target].position
        if ty - sy > abs(tx - sx):
            down += 1
        else:
            across += 1
    return down > across
