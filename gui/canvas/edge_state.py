"""What an edge shows, derived from the model and the analysis: its label, whether the
node it feeds rejects its inputs, and its hover text."""

from __future__ import annotations

from dataclasses import dataclass

from engine.graph.model import Edge, Graph
from engine.shapes import NodeInfo


@dataclass(frozen=True)
class EdgeState:
    """The look of one edge.

    Args:
        label: The shape it carries, e.g. ``(N, 16, 8, 8)`` (empty when unknown).
        error: The target rejects what arrives (or the edge's port no longer exists).
        tooltip: Source, target and shape, plus the target's input errors.
    """

    label: str
    error: bool
    tooltip: str


def inputs_rejected(graph: Graph, edge: Edge, target_info: NodeInfo | None) -> bool:
    """Whether ``edge``'s target has an error about its inputs.

    An edge on a port that no longer exists is always wrong. Otherwise the target's
    errors that name no parameter count, but only once every input is connected (before
    that, they are about the missing connection, not about this edge).
    """
    target = graph.nodes[edge.target]
    ports = target.input_ports()
    if edge.target_port not in ports:
        return True
    if target_info is None:
        return False
    incoming = graph.incoming(edge.target)
    if any(port not in incoming for port in ports):
        return False
    vanished = sum(1 for port in incoming if port not in ports)  # each has an error of its own
    general = sum(1 for d in target_info.diagnostics if d.severity == "error" and d.field is None)
    return general > vanished


def edge_state(graph: Graph, edge: Edge, source_info: NodeInfo | None, target_info: NodeInfo | None) -> EdgeState:
    """The label, error mark and tooltip of ``edge``."""
    output = source_info.output_of(edge.source_port) if source_info is not None else None
    error = inputs_rejected(graph, edge, target_info)
    port = f".{edge.target_port}" if len(graph.nodes[edge.target].input_ports()) > 1 else ""
    out = f".{edge.source_port}" if len(graph.nodes[edge.source].output_ports()) > 1 else ""
    lines = [f"{edge.source}{out} → {edge.target}{port}", f"carries {output}" if output else "shape unknown"]
    if error and target_info is not None:
        lines += [f"error: {d.message}" for d in target_info.diagnostics if d.severity == "error" and d.field is None]
    return EdgeState(str(output) if output else "", error, "\n".join(lines))
