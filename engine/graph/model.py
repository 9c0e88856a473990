"""The document model: nodes, ports, edges, and their mutators.

Every change goes through a mutator that emits one event. Mutators come in
identity-preserving pairs (``add_node``/``remove_node``, ``add_edge``/``remove_edge``) so
an undo command can re-insert the very object it removed. Cycles and shape problems are
allowed in the model (they are diagnosed, not refused): a half-drawn graph is a normal
document. What the model refuses are structural impossibilities: duplicate ids, unknown
types, ports that do not exist, two edges into one input port, values of the wrong kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator

import networkx as nx

from engine.graph.events import (EdgeAdded, EdgeRemoved, GraphEvent, Listener, NodeAdded, NodeRemoved,
                                 NodesMoved, ParamChanged, TrainingChanged)
from engine.layers import LayerType, ParamKindError, get_layer

NODE_ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_COORDINATE = 1e9
#: Bounds of a node's learning-rate multiplier (``lr_scale``).
LR_SCALE_MIN, LR_SCALE_MAX = 0.0, 100.0
#: The node-level training options and their defaults (saved in a file only when not default).
TRAINING_OPTIONS: dict[str, Any] = {"trainable": True, "lr_scale": 1.0}


class GraphError(ValueError):
    """A mutation that would make the document structurally impossible."""


@dataclass(eq=False)
class Node:
    """One layer on the canvas.

    Args:
        id: Stable identifier, a Python identifier (it names the submodule in generated code).
        type_id: Registered layer type id.
        params: Parameter values; missing ones are filled with defaults when added to a graph.
        position: Canvas position of the node's top-left corner.
        group: Dotted path of the module an imported layer belongs to (``layer1.0`` for
            ResNet's first block), so the hierarchy can become blocks; empty for drawn layers.
        trainable: Whether training updates the node's parameters (off: frozen, its batch-norm
            statistics too). Meaningful for layers with parameters; a node-level option, not a
            layer parameter, so every layer has it without declaring it.
        lr_scale: Multiplier of the learning rate for the node's parameters
            (:data:`LR_SCALE_MIN` to :data:`LR_SCALE_MAX`).
    """

    id: str
    type_id: str
    params: dict[str, Any] = field(default_factory=dict)
    position: tuple[float, float] = (0.0, 0.0)
    group: str = ""
    trainable: bool = True
    lr_scale: float = 1.0

    def copy(self, **changes: Any) -> "Node":
        """An independent copy (its own params dict), with ``changes`` applied (``id=``, ``position=``)."""
        return replace(self, params=dict(self.params), **changes)

    @property
    def layer(self) -> LayerType:
        """The layer declaration of this node's type."""
        return get_layer(self.type_id)

    def input_ports(self) -> tuple[str, ...]:
        """Input port names for the current parameter values."""
        return self.layer.input_ports(self.params)

    def output_ports(self) -> tuple[str, ...]:
        """Output port names for the current parameter values (one, ``out``, for most layers)."""
        return self.layer.output_ports(self.params)


#: The output port of every layer with one output.
OUT = "out"


@dataclass(frozen=True)
class Edge:
    """A connection from output ``source_port`` of ``source`` to input port ``target_port`` of ``target``."""

    source: str
    target: str
    target_port: str
    source_port: str = OUT


class Graph:
    """A directed graph of layer nodes with change events.

    The networkx view (:meth:`nx_graph`) is kept in step with every mutation, so graph
    algorithms never rebuild it.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._edges_in: dict[tuple[str, str], Edge] = {}
        self._edges_by_node: dict[str, set[Edge]] = {}
        self._incoming: dict[str, dict[str, Edge]] = {}
        self._nx = nx.MultiDiGraph()
        self._listeners: list[Listener] = []

    # ----------------------------------------------------------- observers
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: GraphEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # -------------------------------------------------------------- queries
    @property
    def edges(self) -> list[Edge]:
        """All edges, in insertion order."""
        return list(self._edges_in.values())

    def edges_of(self, node_id: str) -> list[Edge]:
        """Edges touching ``node_id`` (in or out), in a stable order."""
        return sorted(self._edges_by_node.get(node_id, ()),
                      key=lambda e: (e.source, e.source_port, e.target, e.target_port))

    def incoming(self, node_id: str) -> dict[str, Edge]:
        """Edges into ``node_id`` keyed by input port (a live view: do not modify)."""
        return self._incoming.get(node_id, {})

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``."""
        return [e for e in self.edges_of(node_id) if e.source == node_id]

    def edge_into(self, node_id: str, port: str) -> Edge | None:
        """The edge connected to input ``port`` of ``node_id``, if any."""
        return self._edges_in.get((node_id, port))

    def node_index(self, node_id: str) -> int:
        """Position of ``node_id`` in document order."""
        return list(self.nodes).index(node_id)

    def edge_index(self, edge: Edge) -> int:
        """Position of ``edge`` in document order."""
        return list(self._edges_in).index((edge.target, edge.target_port))

    def nx_graph(self) -> nx.MultiDiGraph:
        """The live networkx view (node ids; one keyed edge per connection). Do not mutate."""
        return self._nx

    def new_id(self, prefix: str) -> str:
        """A fresh node id ``prefix<n>`` (``conv1``, ``conv2``, ...)."""
        prefix = prefix or "node"
        n = 1
        while f"{prefix}{n}" in self.nodes:
            n += 1
        return f"{prefix}{n}"

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    # ------------------------------------------------------------ mutators
    def add_node(self, node: Node, index: int | None = None) -> None:
        """Insert ``node`` (the same object, for undo). Fills missing params with defaults.

        Args:
            node: The node.
            index: Position in document order (undo puts a node back where it was; the order
                decides the order of model inputs and outputs). Default: at the end.

        Raises:
            GraphError: Bad or duplicate id, unknown type, unknown parameter, wrong value kind.
        """
        if not isinstance(node.id, str) or not NODE_ID_PATTERN.match(node.id):
            raise GraphError(f"node id {node.id!r} must be a Python identifier of at most 64 characters")
        if node.id in self.nodes:
            raise GraphError(f"node id {node.id!r} is already used")
        try:
            layer = get_layer(node.type_id)
        except KeyError:
            raise GraphError(f"node {node.id}: unknown layer type {node.type_id!r}") from None
        node.params = normalize_params(layer, node.params, where=f"node {node.id}")
        node.position = _position(node.position, node.id)
        for name in TRAINING_OPTIONS:
            problem = training_option_problem(name, getattr(node, name))
            if problem:
                raise GraphError(f"node {node.id} ({layer.title}): {name} {problem}")
        self.nodes[node.id] = node
        if index is not None and index < len(self.nodes) - 1:
            items = list(self.nodes.items())
            items.insert(index, items.pop())
            self.nodes = dict(items)
        self._edges_by_node[node.id] = set()
        self._incoming[node.id] = {}
        self._nx.add_node(node.id)
        self._emit(NodeAdded(node))

    def remove_node(self, node_id: str) -> Node:
        """Remove and return a node. Its edges must have been removed first.

        Raises:
            GraphError: Unknown node, or it still has edges.
        """
        node = self._node(node_id)
        if self._edges_by_node[node_id]:
            raise GraphError(f"node {node_id} still has {len(self._edges_by_node[node_id])} edge(s)")
        del self.nodes[node_id]
        del self._edges_by_node[node_id]
        del self._incoming[node_id]
        self._nx.remove_node(node_id)
        self._emit(NodeRemoved(node))
        return node

    def add_edge(self, edge: Edge, index: int | None = None) -> None:
        """Connect ``edge`` (the same object, for undo), at ``index`` in document order.

        Raises:
            GraphError: Missing node, no output on the source, unknown or occupied input port.
        """
        problem = self.connection_problem(edge.source, edge.target, edge.target_port, edge.source_port)
        if problem:
            raise GraphError(problem)
        self._edges_in[(edge.target, edge.target_port)] = edge
        if index is not None and index < len(self._edges_in) - 1:
            items = list(self._edges_in.items())
            items.insert(index, items.pop())
            self._edges_in = dict(items)
        self._edges_by_node[edge.source].add(edge)
        self._edges_by_node[edge.target].add(edge)
        self._incoming[edge.target][edge.target_port] = edge
        self._nx.add_edge(edge.source, edge.target, key=edge.target_port)
        self._emit(EdgeAdded(edge))

    def connection_problem(self, source: str, target: str, port: str, source_port: str = OUT) -> str | None:
        """Why ``source.source_port -> target.port`` cannot be connected structurally, or ``None``."""
        if source not in self.nodes:
            return f"no node {source!r}"
        if target not in self.nodes:
            return f"no node {target!r}"
        if not self.nodes[source].layer.has_output:
            return f"node {source} ({self.nodes[source].layer.title}) has no output"
        outputs = self.nodes[source].output_ports()
        if source_port not in outputs:
            return f"node {source} ({self.nodes[source].layer.title}) has no output {source_port!r}"
        ports = self.nodes[target].input_ports()
        if port not in ports:
            return f"node {target} ({self.nodes[target].layer.title}) has no input {port!r}"
        if (target, port) in self._edges_in:
            return f"input {port!r} of node {target} is already connected"
        return None

    def remove_edge(self, edge: Edge) -> Edge:
        """Disconnect and return ``edge``.

        Raises:
            GraphError: The edge is not in the graph.
        """
        if self._edges_in.get((edge.target, edge.target_port)) != edge:
            raise GraphError(f"no edge {edge.source} -> {edge.target}.{edge.target_port}")
        stored = self._edges_in.pop((edge.target, edge.target_port))
        self._edges_by_node[edge.source].discard(stored)
        self._edges_by_node[edge.target].discard(stored)
        del self._incoming[edge.target][edge.target_port]
        self._nx.remove_edge(edge.source, edge.target, key=edge.target_port)
        self._emit(EdgeRemoved(stored))
        return stored

    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        """Set one parameter and return its previous value.

        Out-of-bounds values are accepted (and diagnosed); values of the wrong kind are not,
        nor a value that would remove a connected input port (lowering a merge's input
        count): disconnect those edges first (the GUI does so in the same undo step).

        Raises:
            GraphError: Unknown node or parameter, a value of the wrong kind, or connected
                ports that would vanish.
        """
        node = self._node(node_id)
        try:
            decl = node.layer.param(name)
        except KeyError:
            raise GraphError(f"node {node_id} ({node.layer.title}) has no parameter {name!r}") from None
        try:
            value = decl.coerce(value)
        except ParamKindError as exc:
            raise GraphError(f"node {node_id} ({node.layer.title}): {name} {exc}") from None
        old = node.params[name]
        if old == value and type(old) is type(value):
            return old
        changed = {**node.params, name: value}
        ports, outputs = node.layer.input_ports(changed), node.layer.output_ports(changed)
        orphaned = [f"input {e.target_port} (from {e.source})" for port, e in self.incoming(node_id).items()
                    if port not in ports]
        orphaned += [f"output {e.source_port} (to {e.target})" for e in self.outgoing(node_id)
                     if e.source_port not in outputs]
        if orphaned:
            raise GraphError(f"node {node_id} ({node.layer.title}): {name} {value} would remove connected "
                             f"{', '.join(orphaned)}: disconnect them first")
        node.params[name] = value
        self._emit(ParamChanged(node_id, name, old, value))
        return old

    def set_training(self, node_id: str, name: str, value: Any) -> Any:
        """Set a node's training option (``trainable`` or ``lr_scale``) and return its previous value.

        Raises:
            GraphError: Unknown node or option, or a value of the wrong kind or out of bounds.
        """
        node = self._node(node_id)
        if name not in TRAINING_OPTIONS:
            raise GraphError(f"node {node_id}: no training option {name!r} (options: {', '.join(TRAINING_OPTIONS)})")
        problem = training_option_problem(name, value)
        if problem:
            raise GraphError(f"node {node_id} ({node.layer.title}): {name} {problem}")
        value = bool(value) if name == "trainable" else float(value)
        old = getattr(node, name)
        if old == value:
            return old
        setattr(node, name, value)
        self._emit(TrainingChanged(node_id, name, old, value))
        return old

    def move_nodes(self, positions: dict[str, tuple[float, float]]) -> None:
        """Move several nodes at once (one event).

        Raises:
            GraphError: Unknown node.
        """
        moves = {}
        for node_id, pos in positions.items():
            node = self._node(node_id)
            new = _position(pos, node_id)
            if new != node.position:
                moves[node_id] = (node.position, new)
                node.position = new
        if moves:
            self._emit(NodesMoved(moves))

    def _node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"no node {node_id!r}") from None

    # --------------------------------------------------------------- bulk
    def extend(self, nodes: Iterable[Node], edges: Iterable[Edge]) -> None:
        """Add nodes then edges (used by loaders and paste)."""
        for node in nodes:
            self.add_node(node)
        for edge in edges:
            self.add_edge(edge)

    def copy(self) -> "Graph":
        """An independent deep copy with no listeners (a frozen snapshot for training)."""
        clone = Graph()
        clone.extend((n.copy() for n in self),
                     (Edge(e.source, e.target, e.target_port, e.source_port) for e in self.edges))
        return clone


def _position(pos: Any, node_id: str) -> tuple[float, float]:
    """``pos`` as two finite floats within the canvas bounds (+-1e9)."""
    try:
        x, y = float(pos[0]), float(pos[1])
    except (TypeError, ValueError, IndexError):
        raise GraphError(f"node {node_id}: position must be two numbers, got {pos!r}") from None
    if not (abs(x) <= MAX_COORDINATE and abs(y) <= MAX_COORDINATE):
        raise GraphError(f"node {node_id}: position {pos!r} is outside the canvas (+-{MAX_COORDINATE:g})")
    return x, y


def training_option_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``trainable`` (true/false) or ``lr_scale`` (a number in bounds), else ``None``."""
    if name == "trainable":
        return None if isinstance(value, bool) else f"expected true or false, got {_shown(value)}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"expected a number, got {_shown(value)}"
    if not LR_SCALE_MIN <= value <= LR_SCALE_MAX:  # NaN fails too
        return f"must be from {LR_SCALE_MIN:g} to {LR_SCALE_MAX:g}, got {value!r}"
    return None


def _shown(value: Any) -> str:
    """``str 'yes'``: a value's kind and (shortened) text, for one-line messages."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def normalize_params(layer: LayerType, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Return ``values`` with defaults filled in and each value coerced to its kind.

    Args:
        layer: The declaration the values belong to.
        values: Raw values (from a file, the clipboard, or code).
        where: Prefix for error messages, e.g. ``"node conv1"``.

    Raises:
        GraphError: An unknown parameter name or a value of the wrong kind.
    """
    if not isinstance(values, dict):
        raise GraphError(f"{where}: params must be an object")
    known = {decl.name for decl in layer.params}
    for name in values:
        if name not in known:
            raise GraphError(f"{where} ({layer.title}): unknown parameter {name!r}")
    result = {}
    for decl in layer.params:
        try:
            result[decl.name] = decl.coerce(values.get(decl.name, decl.default))
        except ParamKindError as exc:
            raise GraphError(f"{where} ({layer.title}): {decl.name} {exc}") from None
    return result
