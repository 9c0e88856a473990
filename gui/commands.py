"""Undoable edits: one QUndoCommand per user action, calling model mutators only.

A :class:`GraphCommand` holds an ordered list of steps (plain Python objects with ``redo``
and ``undo``), run forwards on redo and backwards on undo. Steps hold ids, plain values
and the very Node / Edge objects they removed (so undo re-inserts the same objects), never
graphics items. Deleting a node first removes its edges as steps of the same command; a
drag is one :class:`GraphCommand` pushed on release; consecutive edits of one parameter of
one node merge into one undo step.

Child QUndoCommands with a Qt parent are avoided on purpose: PySide6 may delete the Python
side of a child before the parent runs it, which crashes. Steps are plain Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from PySide6.QtGui import QUndoCommand

from engine.graph.comments import Comment
from engine.graph.model import Edge, Graph, Node

#: QUndoCommand.id of parameter edits, which merge with the next edit of the same parameter.
SET_PARAM_ID = 1001


class Step(Protocol):
    """One reversible change of the model."""

    def redo(self) -> None: ...

    def undo(self) -> None: ...


@dataclass
class AddNodeStep:
    """Insert a node (the same object every redo)."""

    graph: Graph
    node: Node

    def redo(self) -> None:
        self.graph.add_node(self.node)

    def undo(self) -> None:
        self.graph.remove_node(self.node.id)


@dataclass
class RemoveNodeStep:
    """Remove a node whose edges are already gone; undo puts it back at its place."""

    graph: Graph
    node: Node
    index: int = -1

    def redo(self) -> None:
        self.index = self.graph.node_index(self.node.id)
        self.graph.remove_node(self.node.id)

    def undo(self) -> None:
        self.graph.add_node(self.node, self.index)


@dataclass
class AddEdgeStep:
    """Connect an edge."""

    graph: Graph
    edge: Edge

    def redo(self) -> None:
        self.graph.add_edge(self.edge)

    def undo(self) -> None:
        self.graph.remove_edge(self.edge)


@dataclass
class RemoveEdgeStep:
    """Disconnect an edge; undo puts it back at its place."""

    graph: Graph
    edge: Edge
    index: int = -1

    def redo(self) -> None:
        self.index = self.graph.edge_index(self.edge)
        self.graph.remove_edge(self.edge)

    def undo(self) -> None:
        self.graph.add_edge(self.edge, self.index)


@dataclass
class SetParamStep:
    """Change one parameter value."""

    graph: Graph
    node_id: str
    name: str
    old: Any
    new: Any

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)

    def _set(self, value: Any) -> None:
        self.graph.set_param(self.node_id, self.name, value)


@dataclass
class SetTrainingStep(SetParamStep):
    """Change a node's training option (``trainable`` or ``lr_scale``)."""

    def _set(self, value: Any) -> None:
        self.graph.set_training(self.node_id, self.name, value)


@dataclass
class MoveStep:
    """Move nodes between two sets of positions."""

    graph: Graph
    old: dict[str, tuple[float, float]]
    new: dict[str, tuple[float, float]]

    def redo(self) -> None:
        self.graph.move_nodes(self.new)

    def undo(self) -> None:
        self.graph.move_nodes(self.old)


_UNSET = object()


@dataclass
class SetSettingStep:
    """Set (or remove, with ``_UNSET``) one key of a project section: ``dataset`` or ``training``."""

    section: dict[str, Any]
    key: str
    old: Any
    new: Any
    notify: Callable[[], None]

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def _apply(self, value: Any) -> None:
        if value is _UNSET:
            self.section.pop(self.key, None)
        else:
            self.section[self.key] = value
        self.notify()


@dataclass
class CommentStep:
    """Add (``old`` is ``None``), remove (``new`` is ``None``) or change one comment of a project;
    ``notify`` gets the comment's id (the canvas redraws it)."""

    comments: list[Comment]
    old: Comment | None
    new: Comment | None
    notify: Callable[[str], None]
    index: int = -1

    def redo(self) -> None:
        self._apply(self.old, self.new)

    def undo(self) -> None:
        self._apply(self.new, self.old)

    def _apply(self, before: Comment | None, after: Comment | None) -> None:
        key = (after or before).id  # type: ignore[union-attr]
        at = next((i for i, c in enumerate(self.comments) if c.id == key), None)
        if after is None:
            if at is not None:
                self.index = at
                del self.comments[at]
        elif at is None:
            self.comments.insert(self.index if 0 <= self.index <= len(self.comments) else len(self.comments), after)
        else:
            self.comments[at] = after
        self.notify(key)


class GraphCommand(QUndoCommand):
    """One undo step made of model steps.

    Args:
        text: What the Edit menu and the undo history show.
        steps: Applied in order on redo, in reverse on undo.
        merge_key: Commands with the same key (not ``None``) merge when pushed back to back.
    """

    def __init__(self, text: str, steps: list[Step], merge_key: tuple[Any, ...] | None = None) -> None:
        super().__init__(text)
        self.steps = steps
        self.merge_key = merge_key

    def id(self) -> int:
        return SET_PARAM_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, GraphCommand) or other.merge_key != self.merge_key:
            return False
        mine, theirs = self.steps[-1], other.steps[-1]
        mergeable = (SetParamStep, SetSettingStep, SetTrainingStep)
        if not (isinstance(mine, mergeable) and type(theirs) is type(mine)) or len(other.steps) > 1:
            return False
        mine.new = theirs.new
        if mine.new == mine.old:
            self.setObsolete(True)  # back where it started: the stack drops the step
        return True

    def redo(self) -> None:
        for step in self.steps:
            step.redo()

    def undo(self) -> None:
        for step in reversed(self.steps):
            step.undo()


# ------------------------------------------------------------------ builders
def add_node(graph: Graph, node: Node) -> GraphCommand:
    """Add one node."""
    return GraphCommand(f"Add {node.layer.title}", [AddNodeStep(graph, node)])


def connect(graph: Graph, edge: Edge, replace: Edge | None = None) -> GraphCommand:
    """Connect an edge, first disconnecting ``replace`` (the edge it takes the port from)."""
    steps: list[Step] = [RemoveEdgeStep(graph, replace)] if replace is not None else []
    steps.append(AddEdgeStep(graph, edge))
    return GraphCommand(f"Connect {edge.source} to {edge.target}", steps)


def disconnect(graph: Graph, edges: Iterable[Edge]) -> GraphCommand:
    """Disconnect edges."""
    edges = list(edges)
    return GraphCommand(f"Disconnect {len(edges)} connection(s)" if len(edges) != 1 else
                        f"Disconnect {edges[0].source} from {edges[0].target}",
                        [RemoveEdgeStep(graph, e) for e in edges])


def set_param(graph: Graph, node_id: str, name: str, value: Any) -> GraphCommand:
    """Change a parameter; lowering a merge's input count (or a Chunk's parts) also disconnects the
    edges of the ports that vanish, in the same undo step.

    Raises:
        ParamKindError: ``value`` is not of the parameter's kind.
    """
    node = graph.nodes[node_id]
    new = node.layer.param(name).coerce(value)
    changed = {**node.params, name: new}
    ports, outputs = set(node.layer.input_ports(changed)), set(node.layer.output_ports(changed))
    steps: list[Step] = [RemoveEdgeStep(graph, edge) for port, edge in graph.incoming(node_id).items()
                         if port not in ports]
    steps += [RemoveEdgeStep(graph, edge) for edge in graph.outgoing(node_id) if edge.source_port not in outputs]
    steps.append(SetParamStep(graph, node_id, name, node.params[name], new))
    return GraphCommand(f"Set {node_id}.{name}", steps, None if len(steps) > 1 else (id(graph), node_id, name))


def set_training(graph: Graph, node_id: str, name: str, value: Any) -> GraphCommand:
    """Change a node's ``trainable`` or ``lr_scale`` (repeated edits of one merge, as parameters do).

    Raises:
        GraphError: An unknown option or a value of the wrong kind or out of bounds.
    """
    from engine.graph.model import GraphError, training_option_problem

    problem = training_option_problem(name, value)
    if problem:
        raise GraphError(f"{name} {problem}")
    old = getattr(graph.nodes[node_id], name)
    return GraphCommand(f"Set {node_id}.{name}", [SetTrainingStep(graph, node_id, name, old, value)],
                        (id(graph), node_id, name))


def freeze(graph: Graph, node_ids: Iterable[str], trainable: bool) -> GraphCommand | None:
    """Freeze (or unfreeze, ``trainable=True``) several nodes in one step; ``None`` when none changes."""
    chosen = [graph.nodes[n] for n in dict.fromkeys(node_ids) if n in graph.nodes]
    steps: list[Step] = [SetTrainingStep(graph, n.id, "trainable", n.trainable, trainable) for n in chosen
                         if n.layer.role == "layer" and n.trainable != trainable]
    if not steps:
        return None
    verb = "Unfreeze" if trainable else "Freeze"
    return GraphCommand(f"{verb} {steps[0].node_id}" if len(steps) == 1 else f"{verb} {len(steps)} layers", steps)


def move_nodes(graph: Graph, old: dict[str, tuple[float, float]], new: dict[str, tuple[float, float]],
               text: str = "Move") -> GraphCommand:
    """Move nodes (a drag, an alignment, an auto-layout)."""
    label = f"{text} {next(iter(new))}" if len(new) == 1 else f"{text} {len(new)} nodes"
    return GraphCommand(label, [MoveStep(graph, dict(old), dict(new))])


def remove(graph: Graph, node_ids: Iterable[str], edges: Iterable[Edge] = ()) -> GraphCommand:
    """Delete nodes with all their edges, and further edges; each edge is removed once."""
    node_ids = [n for n in dict.fromkeys(node_ids) if n in graph.nodes]
    doomed: dict[Edge, None] = dict.fromkeys(edges)
    for node_id in node_ids:
        doomed.update(dict.fromkeys(graph.edges_of(node_id)))
    steps: list[Step] = [RemoveEdgeStep(graph, e) for e in doomed]
    steps += [RemoveNodeStep(graph, graph.nodes[n]) for n in node_ids]
    parts = [f"{len(node_ids)} node(s)"] if node_ids else []
    extra = len(doomed) - sum(1 for e in doomed if e.source in node_ids or e.target in node_ids)
    if extra:
        parts.append(f"{extra} connection(s)")
    return GraphCommand(f"Delete {' and '.join(parts) or 'nothing'}", steps)


def add_many(graph: Graph, nodes: list[Node], edges: list[Edge], text: str) -> GraphCommand:
    """Add nodes then edges in one step (paste, duplicate, quick-add with a connection)."""
    steps: list[Step] = [AddNodeStep(graph, n) for n in nodes]
    steps += [AddEdgeStep(graph, e) for e in edges]
    return GraphCommand(text, steps)


def set_settings(section: dict[str, Any], changes: dict[str, Any], notify: Callable[[], None], text: str,
                 merge: bool = True) -> GraphCommand:
    """Change keys of a project section (``None`` removes a key: it falls back to its default).

    One key edited repeatedly merges into one undo step (typing a learning rate digit by digit).
    """
    steps: list[Step] = [SetSettingStep(section, key, section.get(key, _UNSET),
                                        _UNSET if value is None else value, notify)
                         for key, value in changes.items()]
    key = (id(section), *changes) if merge and len(changes) == 1 else None
    return GraphCommand(text, steps, key)


def comment_steps(comments: list[Comment], changes: list[tuple[Comment | None, Comment | None]],
                  notify: Callable[[str], None]) -> list[Step]:
    """Steps adding, removing or changing comments: ``(old, new)`` pairs, ``None`` for absent."""
    return [CommentStep(comments, old, new, notify) for old, new in changes]
