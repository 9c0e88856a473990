"""Blocks expanded in place, for viewing: a copy of a level's graph with some instances opened up.

Expanding is a way of looking, not an edit: :func:`expanded_graph` returns a new graph in which
each chosen instance is replaced by its inside (every copy, chained, as
:func:`engine.graph.grouping.plan_ungroup` lays it out) and the nodes after it along the flow are
pushed aside to make room, so nothing overlaps. The document's graph is untouched; collapsing
shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from engine.graph.blocks import BlockLibrary
from engine.graph.grouping import apply_ungroup, plan_ungroup
from engine.graph.layout import COLUMN_SPACING, ROW_SPACING
from engine.graph.model import Graph

#: How far expanded layers sit below the card they replace in a top-to-bottom flow (their frame's name goes there).
FRAME_ROOM = 48.0


@dataclass
class ExpandedGraph:
    """The result of :func:`expanded_graph`.

    Args:
        graph: The copy, with the chosen instances replaced by their layers.
        members: Per expanded instance id, the ids of the nodes that stand for its inside.
        origin: Per node id of ``graph`` that came from an expanded instance, that instance's id.
        inner: Per such node id, ``(copy, id inside the definition)``.
    """

    graph: Graph
    members: dict[str, list[str]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    inner: dict[str, tuple[int, str]] = field(default_factory=dict)


def expanded_graph(graph: Graph, library: BlockLibrary, instance_ids: Iterable[str]) -> ExpandedGraph:
    """A copy of ``graph`` with ``instance_ids`` expanded one level (see the module docstring).

    Instances that cannot be expanded (a missing definition) stay as they are.
    """
    result = ExpandedGraph(graph.copy())
    display = result.graph
    for instance_id in [n for n in graph.nodes if n in set(instance_ids)]:
        try:
            plan = plan_ungroup(display, instance_id, library)
        except ValueError:
            continue
        anchor = display.nodes[instance_id].position
        definition = library[display.nodes[instance_id].params["definition"]]
        ports = {*definition.inputs, *definition.outputs}
        layers = [n.id for n in definition.graph if n.id not in ports]  # plan_ungroup's order, per copy
        downward = _flows_down(display, instance_id)
        apply_ungroup(display, plan)
        ids = [n.id for n in plan.nodes]
        result.members[instance_id] = ids
        result.origin.update(dict.fromkeys(ids, instance_id))
        result.inner.update({new: (i // len(layers), layers[i % len(layers)]) for i, new in enumerate(ids)})
        if downward:  # room above the expanded layers for their frame's name
            display.move_nodes({n: (display.nodes[n].position[0], display.nodes[n].position[1] + FRAME_ROOM)
                                for n in ids})
        _make_room(display, set(ids), anchor, downward)
    return result


def _flows_down(graph: Graph, node_id: str) -> bool:
    """Whether the graph around ``node_id`` runs top to bottom (its neighbours lie more above or
    below it than beside it)."""
    x, y = graph.nodes[node_id].position
    neighbours = [e.target if e.source == node_id else e.source for e in graph.edges_of(node_id)]
    dx = sum(abs(graph.nodes[n].position[0] - x) for n in neighbours)
    dy = sum(abs(graph.nodes[n].position[1] - y) for n in neighbours)
    return dy > dx


def _make_room(graph: Graph, inside: set[str], anchor: tuple[float, float], downward: bool) -> None:
    """Push the nodes past ``anchor`` along the flow by the room the expanded nodes take beyond one card."""
    if not inside:
        return
    axis = 1 if downward else 0
    spacing = ROW_SPACING if downward else COLUMN_SPACING
    extent = max(graph.nodes[n].position[axis] for n in inside) - anchor[axis]
    if extent <= 0:
        return
    moves = {}
    for node in graph:
        if node.id not in inside and node.position[axis] > anchor[axis]:
            position = list(node.position)
            position[axis] += extent + spacing * 0.25
            moves[node.id] = (position[0], position[1])
    graph.move_nodes(moves)
