"""Undoable edits of blocks: group, ungroup, make unique, and adding definitions with an instance.

Each is one :class:`~gui.commands.GraphCommand`. A definition enters or leaves the project's
library through a :class:`LibraryStep` placed so that a definition is always present while an
instance of it is in a graph (added before its instance on redo, removed after it on undo).
``notify`` is :meth:`gui.document.Document.library_changed`: the document then follows the new
definition's edits and re-checks the level it shows. The plans (what to remove and add) come
from :mod:`engine.graph.grouping`; this module only turns them into steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, free_name
from engine.graph.grouping import GroupPlan, UngroupPlan
from engine.graph.model import Graph, Node
from engine.layers.block import BLOCK_TYPE
from gui.commands import (AddEdgeStep, AddNodeStep, GraphCommand, RemoveEdgeStep, RemoveNodeStep, SetParamStep,
                          Step)


@dataclass
class LibraryStep:
    """Add (``add=True``) or remove one definition of a project's library; undo does the opposite."""

    library: BlockLibrary
    definition: BlockDefinition
    add: bool
    notify: Callable[[], None]

    def redo(self) -> None:
        self._apply(self.add)

    def undo(self) -> None:
        self._apply(not self.add)

    def _apply(self, add: bool) -> None:
        if add:
            self.library.add(self.definition)
        else:
            self.library.remove(self.definition.name)
        self.notify()


def _adding(library: BlockLibrary, definitions: Iterable[BlockDefinition],
            notify: Callable[[], None]) -> list[Step]:
    """Steps adding the definitions the library does not hold yet (dependencies first, as given)."""
    return [LibraryStep(library, d, True, notify) for d in definitions if d.name not in library]


def group(graph: Graph, library: BlockLibrary, plan: GroupPlan, notify: Callable[[], None]) -> GraphCommand:
    """Replace the planned nodes by one instance of the plan's new definition."""
    steps: list[Step] = [RemoveEdgeStep(graph, e) for e in plan.remove_edges]
    steps += [RemoveNodeStep(graph, graph.nodes[n]) for n in plan.remove_nodes]
    steps += _adding(library, [plan.definition], notify)
    steps.append(AddNodeStep(graph, plan.instance))
    steps += [AddEdgeStep(graph, e) for e in plan.add_edges]
    count = len(plan.remove_nodes)
    return GraphCommand(f"Group {count} node{'s' if count != 1 else ''} into {plan.definition.name}", steps)


def ungroup(graph: Graph, plan: UngroupPlan) -> GraphCommand:
    """Replace one instance by its inside (the definition stays in the project's Blocks)."""
    steps: list[Step] = [RemoveEdgeStep(graph, e) for e in plan.remove_edges]
    steps.append(RemoveNodeStep(graph, plan.instance))
    steps += [AddNodeStep(graph, n) for n in plan.nodes]
    steps += [AddEdgeStep(graph, e) for e in plan.add_edges]
    return GraphCommand(f"Ungroup {plan.instance.id}", steps)


@dataclass
class RenameStep:
    """Give a definition of the library another name (the same object, re-filed under it)."""

    library: BlockLibrary
    definition: BlockDefinition
    old: str
    new: str
    notify: Callable[[], None]

    def redo(self) -> None:
        self._rename(self.old, self.new)

    def undo(self) -> None:
        self._rename(self.new, self.old)

    def _rename(self, before: str, after: str) -> None:
        self.library.remove(before)
        self.definition.name = after
        self.library.add(self.definition)
        self.notify()


def rename_definition(top: Graph, library: BlockLibrary, old: str, new: str,
                      notify: Callable[[], None]) -> GraphCommand:
    """Rename definition ``old`` to ``new`` and every instance's reference to it, in one step.

    Raises:
        BlockError: ``new`` is not a Python identifier or names another definition.
    """
    if new != old and new in library:
        raise BlockError(f"a block definition named {new!r} already exists: choose another name")
    BlockDefinition(new)  # validates the name (one line when it is not an identifier)
    definition = library[old]
    steps: list[Step] = [RenameStep(library, definition, old, new, notify)]
    for graph in [top, *(d.graph for d in library.values())]:
        steps += [SetParamStep(graph, n.id, "definition", old, new) for n in graph
                  if n.type_id == BLOCK_TYPE and n.params["definition"] == old]
    return GraphCommand(f"Rename block {old} to {new}", steps)


def make_unique(graph: Graph, node_id: str, library: BlockLibrary, notify: Callable[[], None]) -> GraphCommand:
    """Give instance ``node_id`` its own copy of its definition (edits then change it alone)."""
    node = graph.nodes[node_id]
    definition = library[node.params["definition"]]
    clone = BlockDefinition(free_name(library, definition.name), definition.graph.copy(), definition.doc)
    steps: list[Step] = [LibraryStep(library, clone, True, notify),
                         SetParamStep(graph, node_id, "definition", definition.name, clone.name)]
    return GraphCommand(f"Make {node_id} unique ({clone.name})", steps)


def add_instance(graph: Graph, library: BlockLibrary, definitions: list[BlockDefinition], node: Node,
                 notify: Callable[[], None]) -> GraphCommand:
    """Add the definitions the project lacks (a built-in or library block and what it uses) and one
    instance ``node`` of the last of them, in one step."""
    steps = _adding(library, definitions, notify)
    steps.append(AddNodeStep(graph, node))
    return GraphCommand(f"Add block {node.params['definition']}", steps)
