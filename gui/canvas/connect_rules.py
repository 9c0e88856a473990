"""What dropping a dragged connection on a port would do, decided from the model alone.

A drag starts at an output (forwards), at a free input (backwards), or picks up the end
of an existing edge at its input (moving it). Each candidate port gets a :class:`Plan`:
the edge to add, the edges to remove first (an edge that occupied the port, the edge being
moved) or the reason the drop is refused, in words for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.graph.model import OUT, Edge, Graph
from gui import commands

PortKind = Literal["in", "out"]


@dataclass(frozen=True)
class PortRef:
    """One port of one node: ``kind`` "in" with an input name, or "out" with an output name (``"out"``
    for most layers, ``out1``, ``out2``... for a Chunk or Split)."""

    node_id: str
    kind: PortKind
    port: str


@dataclass(frozen=True)
class Plan:
    """The outcome of a drop.

    Args:
        edge: The edge to connect, or ``None`` when nothing changes.
        removed: Edges to disconnect first (in this order).
        reason: Why the drop is refused; ``None`` when it is allowed.
    """

    edge: Edge | None = None
    removed: tuple[Edge, ...] = ()
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        """The drop changes the graph."""
        return self.reason is None and self.edge is not None

    @property
    def replaces(self) -> bool:
        """The drop takes an input port from another edge."""
        return self.edge is not None and any(
            (e.target, e.target_port) == (self.edge.target, self.edge.target_port) for e in self.removed)


def plan_connection(graph: Graph, source: str, target: str, port: str, moving: Edge | None = None,
                    source_port: str = OUT) -> Plan:
    """What connecting output ``source_port`` of ``source`` to input ``port`` of ``target`` means.

    Args:
        graph: The model.
        source: The node whose output the edge leaves.
        target: The node whose input it enters.
        port: The input port.
        moving: An existing edge whose target end is being moved (it is removed first).
        source_port: The output port it leaves.

    Returns:
        The plan: edges to remove and add, nothing (dropping an edge back where it was), or a
        refusal with its reason.
    """
    if moving is not None and (moving.source, moving.source_port, moving.target, moving.target_port) == (
            source, source_port, target, port):
        return Plan()
    if source == target:
        return Plan(reason=f"would connect {source} to itself")
    problem = graph.connection_problem(source, target, port, source_port)
    existing = graph.edge_into(target, port)
    occupied = existing is not None and port in graph.nodes[target].input_ports()
    if problem is not None and not occupied:
        return Plan(reason=problem)
    removed = (moving,) if moving is not None else ()
    if occupied and existing is not None and existing != moving:
        if (existing.source, existing.source_port) == (source, source_port):
            return Plan(reason=f"input {port!r} of node {target} is already connected to {source}")
        removed = (*removed, existing)
    return Plan(Edge(source, target, port, source_port), removed)


def plan_for_ports(graph: Graph, anchor: PortRef, other: PortRef, moving: Edge | None = None) -> Plan:
    """The plan for a drag that started at ``anchor`` and ends on port ``other``."""
    if anchor.kind == other.kind:
        kind = "an output" if anchor.kind == "out" else "an input"
        return Plan(reason=f"cannot connect {kind} to {kind}: drag from an output to an input")
    if anchor.kind == "out":
        return plan_connection(graph, anchor.node_id, other.node_id, other.port, moving, anchor.port)
    return plan_connection(graph, other.node_id, anchor.node_id, anchor.port, moving, other.port)


def candidate_ports(graph: Graph, anchor: PortRef, moving: Edge | None = None) -> dict[str, dict[str, Plan]]:
    """Every port a drag from ``anchor`` may drop on, per node id, with its plan.

    For a drag from an output these are inputs (free ones and occupied ones it would take
    over); for a drag from an input, the outputs of other nodes.
    """
    result: dict[str, dict[str, Plan]] = {}
    for node in graph:
        if anchor.kind == "out":
            ports = {port: plan_connection(graph, anchor.node_id, node.id, port, moving, anchor.port)
                     for port in node.input_ports()}
        elif node.layer.has_output:
            ports = {out: plan_connection(graph, node.id, anchor.node_id, anchor.port, moving, out)
                     for out in node.output_ports()}
        else:
            continue
        allowed = {port: plan for port, plan in ports.items() if plan.allowed}
        if allowed:
            result[node.id] = allowed
    return result


def command_for(graph: Graph, plan: Plan) -> commands.GraphCommand:
    """The undo command carrying out an allowed plan (one undo step)."""
    assert plan.edge is not None
    if len(plan.removed) <= 1:
        return commands.connect(graph, plan.edge, replace=plan.removed[0] if plan.removed else None)
    steps: list[commands.Step] = [commands.RemoveEdgeStep(graph, e) for e in plan.removed]
    steps.append(commands.AddEdgeStep(graph, plan.edge))
    return commands.GraphCommand(f"Connect {plan.edge.source} to {plan.edge.target}", steps)
