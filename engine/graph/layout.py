"""Layered left-to-right auto-layout from networkx topological generations."""

from __future__ import annotations

import networkx as nx

from engine.graph.model import Graph

COLUMN_SPACING = 240.0
ROW_SPACING = 140.0


def layered_layout(graph: Graph, origin: tuple[float, float] = (0.0, 0.0),
                   max_columns: int | None = None) -> dict[str, tuple[float, float]]:
    """Positions that place each topological generation in its own column.

    Nodes on cycles (which have no generation) go into one extra column at the right.
    Within a column, nodes keep document order and are centred vertically.

    Args:
        graph: The graph to lay out.
        origin: Position of the first column's centre line top.
        max_columns: Wrap long models like text: after this many columns, continue in a
            new band below, again from the left (``None``: one band).

    Returns:
        Node id -> new position, for :meth:`Graph.move_nodes`.
    """
    g = graph.nx_graph()
    try:
        generations = [list(gen) for gen in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:
        cyclic = {n for comp in nx.strongly_connected_components(g) if len(comp) > 1 for n in comp}
        cyclic.update(n for n in g.nodes if g.has_edge(n, n))
        acyclic = g.subgraph(n for n in g.nodes if n not in cyclic)
        generations = [list(gen) for gen in nx.topological_generations(acyclic)] + [sorted(cyclic)]
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
