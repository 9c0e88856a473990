"""Writing a trial's values into the open document as one undo step ("Apply best").

:func:`~engine.search.apply.apply_values` gives the trial's project (a copy); this module
turns the difference between the document's project and that copy into the model steps of
:mod:`gui.commands` (training settings, parameters, a layer type swapped in place, a layer
left out with its input wired to its consumers), so redo and undo only call the model's
mutators and undo puts back the very objects it removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.graph.model import Graph, Node
from engine.graph.project import Project
from gui.commands import (
    AddEdgeStep,
    GraphCommand,
    RemoveEdgeStep,
    RemoveNodeStep,
    SetParamStep,
    Step,
    set_settings,
)
from gui.document import Document

_MISSING = object()


@dataclass
class InsertNodeStep:
    """Insert a node at a place in the graph's order (a layer whose type changed takes its old place)."""

    graph: Graph
    node: Node
    index: int

    def redo(self) -> None:
        self.graph.add_node(self.node, self.index)

    def undo(self) -> None:
        self.graph.remove_node(self.node.id)


def graph_steps(old: Graph, new: Graph) -> list[Step]:
    """Steps that make ``old`` hold what ``new`` holds (nodes, types, parameters, edges).

    Nodes that only ``new`` holds, or whose type differs, are inserted as ``new``'s objects
    (the document's graph takes them over); positions and training options are not compared.
    """
    replaced = [n for n in old.nodes if n in new.nodes and new.nodes[n].type_id != old.nodes[n].type_id]
    removed = [n for n in old.nodes if n not in new.nodes]
    added = [n for n in new.nodes if n not in old.nodes]
    new_edges, old_edges = set(new.edges), set(old.edges)
    doomed = [e for e in old.edges if e not in new_edges or e.source in replaced or e.target in replaced]
    steps: list[Step] = [RemoveEdgeStep(old, e) for e in doomed]
    steps += [RemoveNodeStep(old, old.nodes[n]) for n in removed + replaced]
    inserted = sorted(replaced + added, key=new.node_index)
    steps += [InsertNodeStep(old, new.nodes[n], new.node_index(n)) for n in inserted]
    for node_id, node in old.nodes.items():
        if node_id in new.nodes and node_id not in replaced:
            theirs = new.nodes[node_id].params
            steps += [SetParamStep(old, node_id, name, value, theirs[name]) for name, value in node.params.items()
                      if name in theirs and theirs[name] != value]
    again = set(doomed)  # an edge of a replaced layer goes back once the new layer is in
    steps += [AddEdgeStep(old, e) for e in new.edges if e not in old_edges or e in again]
    return steps


def apply_command(document: Document, trial: Project, text: str) -> GraphCommand | None:
    """One undo step that gives ``document`` the graph, blocks and training settings of ``trial``
    (a project made from the document's by :func:`~engine.search.apply.apply_values`);
    ``None`` when nothing would change."""
    project = document.project
    steps: list[Step] = []
    changes: dict[str, Any] = {k: v for k, v in trial.training.items() if project.training.get(k, _MISSING) != v}
    if changes:
        steps += set_settings(project.training, changes, document.settings_changed.emit, text, merge=False).steps
    steps += graph_steps(project.graph, trial.graph)
    for name, definition in trial.blocks.items():
        if name in project.blocks:
            steps += graph_steps(project.blocks[name].graph, definition.graph)
    return GraphCommand(text, steps) if steps else None


def trial_command(document: Document, params: dict[str, Any], study_space: Any,
                  text: str) -> tuple[GraphCommand | None, dict[str, Any]]:
    """The undo step that writes a trial's Optuna ``params`` into ``document``, and the values it writes.

    The params are read with the document's own search space (a kernel size comes back as a
    list), else with the study's (``study_space``) when the document's cannot be read now.

    Raises:
        UserError: A value cannot be written into the document's graph (the message names it).
    """
    from engine.errors import UserError
    from engine.search.apply import apply_values
    from engine.search.sampling import stored_values
    from engine.search.space import parse_space

    try:
        space = parse_space(document.project)
    except UserError:
        space = study_space
    values = stored_values(params, space) if space is not None else dict(params)
    return apply_command(document, apply_values(document.project, values), text), values
