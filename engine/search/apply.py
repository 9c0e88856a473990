"""A trial's project: the searched values written into a copy of the project.

The copy is what the trial trains (its run folder's ``project.json``), what "open trial as
project" shows, and what "Apply best" writes, so a trial can do everything a run can.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.errors import UserError
from engine.graph.fileformat import dumps, loads
from engine.graph.model import Edge, Graph, GraphError, Node
from engine.graph.project import Project


def apply_values(project: Project, values: Mapping[str, Any]) -> Project:
    """A copy of ``project`` with each searched value written where its target says.

    Args:
        project: The project the search started from (left unchanged).
        values: ``{target: value}`` as :func:`engine.search.sampling.suggest` gives them;
            an optional layer's value says whether it is kept.

    Returns:
        The trial's project, without the ``search`` section (a trial searches nothing).

    Raises:
        UserError: A value cannot be written (for example a merge's input count with its
            ports connected); the message names the target.
    """
    trial = loads(dumps(project), source="project")
    trial.search = {}
    ordered = sorted(values.items(), key=lambda item: _order(item[0]))
    for target, value in ordered:
        try:
            _apply_one(trial, target, value)
        except GraphError as exc:
            raise UserError(f"search.space.{target}: {exc}") from None
    return trial


def _order(target: str) -> int:
    """Layer types first (their parameters then apply to the new type), bypassed layers last."""
    parts = target.split(".")
    if parts[0] == "nodes" and len(parts) == 3 and parts[2] == "type":
        return 0
    return 2 if parts[0] == "nodes" and len(parts) == 2 else 1


def _apply_one(project: Project, target: str, value: Any) -> None:
    parts = target.split(".")
    if parts[0] == "training":
        project.training[parts[1]] = value
    elif parts[0] == "nodes" and len(parts) == 2:
        if not value:
            bypass(project.graph, parts[1])
    elif parts[0] == "nodes" and parts[2] == "type":
        replace_type(project.graph, parts[1], str(value))
    elif parts[0] == "nodes":
        project.graph.set_param(parts[1], parts[2], value)
    else:
        project.blocks[parts[1]].graph.set_param(parts[2], parts[3], value)


def bypass(graph: Graph, node_id: str) -> None:
    """Leave the layer ``node_id`` out: the output feeding its one input feeds its consumers instead."""
    (incoming,) = graph.incoming(node_id).values()
    outgoing = graph.outgoing(node_id)
    for edge in [incoming, *outgoing]:
        graph.remove_edge(edge)
    graph.remove_node(node_id)
    for edge in outgoing:
        graph.add_edge(Edge(incoming.source, edge.target, edge.target_port, incoming.source_port))


def replace_type(graph: Graph, node_id: str, type_id: str) -> None:
    """Make ``node_id`` a layer of type ``type_id`` in place: same id, position and connections;
    the parameters both types declare keep their values, the others take the new type's defaults."""
    old = graph.nodes[node_id]
    if old.type_id == type_id:
        return
    index, edges = graph.node_index(node_id), graph.edges_of(node_id)
    for edge in edges:
        graph.remove_edge(edge)
    graph.remove_node(node_id)
    new = Node(node_id, type_id, position=old.position, group=old.group, trainable=old.trainable,
               lr_scale=old.lr_scale)
    declared = {p.name for p in new.layer.params}
    new.params = {k: v for k, v in old.params.items() if k in declared}
    graph.add_node(new, index)
    for edge in edges:
        graph.add_edge(edge)
