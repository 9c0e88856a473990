"""Shape, parameter and FLOP inference with diagnostics, incremental under edits.

:class:`ShapeInference` observes a :class:`~engine.graph.model.Graph` and keeps one
:class:`NodeInfo` per node. After an edit, :meth:`ShapeInference.analyze` re-runs the
analytic rules only for the edited nodes and for nodes downstream whose inputs actually
changed, so editing one parameter of a 1,000-node graph costs a few rules, not a thousand.
Structural facts (topological order, cycles, what reaches an Output) are recomputed only
when nodes or edges are added or removed.

Inference never raises for any document: every problem becomes a :class:`Diagnostic`
naming its node (and parameter, where one is at fault) and saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx

from engine.graph.events import (EdgeAdded, EdgeRemoved, GraphEvent, NodeAdded, NodeRemoved, NodesMoved,
                                 ParamChanged)
from engine.graph.model import Graph, Node
from engine.layers import Params, ShapeError, TensorSpec
from engine.layers.base import Inference

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a graph.

    Args:
        node: The node at fault, or ``None`` for a problem of the whole graph.
        severity: ``"error"`` makes the graph invalid; ``"warning"`` does not.
        message: What is wrong and what to do.
        field: The parameter at fault, when there is one.
    """

    node: str | None
    severity: Severity
    message: str
    field: str | None = None

    def format(self, graph: Graph) -> str:
        """``node <id> (<Title>): <message>``, or ``graph: <message>``."""
        if self.node is None:
            return f"graph: {self.message}"
        node = graph.nodes.get(self.node)
        title = node.layer.title if node is not None else "?"
        return f"node {self.node} ({title}): {self.message}"

    def to_json(self) -> dict[str, str | None]:
        """Plain JSON data, as in ``summary --json``."""
        return {"node": self.node, "severity": self.severity, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class NodeInfo:
    """What inference knows about one node.

    Args:
        output: Output tensor, or ``None`` when unknown (an error here or upstream) or absent;
            for a node with several output ports, the first port's.
        parameters: Trainable parameters (0 when unknown).
        flops: Forward FLOPs per sample (0 when unknown).
        diagnostics: Problems of this node.
        port_outputs: For a node with several output ports, ``(port, tensor)`` of each, in
            port order; empty for one output.
    """

    output: TensorSpec | None
    parameters: int = 0
    flops: int = 0
    diagnostics: tuple[Diagnostic, ...] = ()
    port_outputs: tuple[tuple[str, TensorSpec], ...] = ()

    def output_of(self, port: str = "out") -> TensorSpec | None:
        """The tensor that leaves output ``port`` (``None`` when unknown or no such port)."""
        if not self.port_outputs:
            return self.output if port == "out" else None
        return next((spec for name, spec in self.port_outputs if name == port), None)


@dataclass
class Analysis:
    """Inference results for a whole graph.

    Args:
        nodes: Per node id, in topological order (nodes on cycles last).
        graph_diagnostics: Problems of the whole graph (no Input, no Output, cycles).
        in_model: Ids of the nodes that lead to an Output (what compiles into the model).
        order: Topological order of the nodes not on a cycle.
    """

    nodes: dict[str, NodeInfo]
    graph_diagnostics: list[Diagnostic]
    in_model: frozenset[str]
    order: list[str] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every diagnostic: graph-level first, then per node in topological order."""
        result = list(self.graph_diagnostics)
        for info in self.nodes.values():
            result.extend(info.diagnostics)
        return result

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics that make the graph invalid."""
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def valid(self) -> bool:
        """True when nothing stops the graph from compiling."""
        return not any(d.severity == "error" for d in self.graph_diagnostics) and not any(
            d.severity == "error" for info in self.nodes.values() for d in info.diagnostics)

    @property
    def parameters(self) -> int:
        """Trainable parameters of the model (nodes that lead to an Output)."""
        return sum(self.nodes[n].parameters for n in self.in_model if n in self.nodes)

    @property
    def flops(self) -> int:
        """Forward FLOPs per sample of the model."""
        return sum(self.nodes[n].flops for n in self.in_model if n in self.nodes)


@dataclass
class _Structure:
    order: list[str]
    cycle_nodes: set[str]
    in_model: frozenset[str]
    graph_diagnostics: list[Diagnostic]


class ShapeInference:
    """Incremental inference over a live graph. Call :meth:`close` when done with it.

    Args:
        graph: The graph to observe.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._infos: dict[str, NodeInfo] = {}
        self._dirty: set[str] = set(graph.nodes)
        self._structure: _Structure | None = None
        self._cycle_nodes: set[str] = set()
        self._cycle_paths: dict[str, str] = {}
        self._last: Analysis | None = None
        # per node, until its parameters change: parameter problems, input ports, output ports
        self._by_params: dict[str, tuple[list[Diagnostic], tuple[str, ...], tuple[str, ...], tuple[Any, ...]]] = {}
        # A layer's rule is a function of its type, parameters and input tensors: copies of one block
        # definition that receive the same tensors (and undo / redo) reuse a result (bounded).
        self._results: dict[tuple[Any, ...], Inference | ShapeError] = {}
        self._unsubscribe = graph.subscribe(self._on_event)

    def close(self) -> None:
        """Stop observing the graph."""
        self._unsubscribe()

    def _on_event(self, event: GraphEvent) -> None:
        if not isinstance(event, NodesMoved):
            self._last = None
        if isinstance(event, NodeAdded):
            self._dirty.add(event.node.id)
            self._structure = None
        elif isinstance(event, NodeRemoved):
            self._infos.pop(event.node.id, None)
            self._by_params.pop(event.node.id, None)
            self._dirty.discard(event.node.id)
            self._structure = None
        elif isinstance(event, (EdgeAdded, EdgeRemoved)):
            self._dirty.add(event.edge.target)
            self._structure = None
        elif isinstance(event, ParamChanged):
            self._dirty.add(event.node_id)
            self._by_params.pop(event.node_id, None)

    # ------------------------------------------------------------ analysis
    def analyze(self) -> Analysis:
        """Bring every node up to date and return the results (cached while nothing changed)."""
        if self._last is not None and not self._dirty and self._structure is not None:
            return self._last
        structure = self._structure or self._build_structure()
        self._structure = structure
        graph = self.graph
        changed: set[str] = set()
        for node_id in structure.cycle_nodes:  # before the others, so nodes downstream see the change
            old = self._infos.get(node_id)
            if old is None or old.output is not None:
                changed.add(node_id)
            self._infos[node_id] = NodeInfo(None, diagnostics=(self._cycle_diagnostic(node_id),))
        dirty, incoming = self._dirty, graph.incoming
        for node_id in structure.order:
            if node_id in dirty or (changed and any(e.source in changed for e in incoming(node_id).values())):
                info = self._infer_node(graph.nodes[node_id])
                old = self._infos.get(node_id)
                if old is None or (old.output, old.port_outputs) != (info.output, info.port_outputs):
                    changed.add(node_id)
                self._infos[node_id] = info
        self._dirty.clear()
        ordered = {n: self._infos[n] for n in structure.order}
        ordered.update((n, self._infos[n]) for n in graph.nodes if n in structure.cycle_nodes)
        for node_id in structure.order:
            if node_id not in structure.in_model:
                info = ordered[node_id]
                ordered[node_id] = NodeInfo(info.output, info.parameters, info.flops,
                                            (*info.diagnostics, _dead_end_warning(node_id)), info.port_outputs)
        self._last = Analysis(ordered, list(structure.graph_diagnostics), structure.in_model, list(structure.order))
        return self._last

    def _build_structure(self) -> _Structure:
        graph = self.graph
        g = graph.nx_graph()
        try:
            order = list(nx.topological_sort(g))
            cycle_nodes: set[str] = set()
        except nx.NetworkXUnfeasible:
            cycle_nodes = {n for comp in nx.strongly_connected_components(g) if len(comp) > 1 for n in comp}
            cycle_nodes.update(n for n in g.nodes if g.has_edge(n, n))
            order = list(nx.topological_sort(g.subgraph(n for n in g.nodes if n not in cycle_nodes)))
        previous = self._cycle_nodes
        self._dirty.update(n for n in previous if n in graph.nodes and n not in cycle_nodes)
        self._cycle_nodes = cycle_nodes
        roles = {n.id: n.layer.role for n in graph}
        outputs = [n for n, role in roles.items() if role == "output"]
        in_model = ancestors_and_self(g, outputs) if outputs else frozenset(graph.nodes)
        diagnostics = []
        if not any(role == "input" for role in roles.values()):
            diagnostics.append(Diagnostic(None, "error", "the graph has no Input: drag an Input from the "
                                                         "palette and connect it to the first layer"))
        if not outputs:
            diagnostics.append(Diagnostic(None, "error", "the graph has no Output: connect an Output to the "
                                                         "layer whose result the model returns"))
        self._cycle_paths = self._describe_cycles(g, cycle_nodes)
        return _Structure(order, cycle_nodes, in_model, diagnostics)

    @staticmethod
    def _describe_cycles(g: nx.MultiDiGraph, cycle_nodes: set[str]) -> dict[str, str]:
        paths: dict[str, str] = {}
        for component in nx.strongly_connected_components(g.subgraph(cycle_nodes)):
            start = min(component)
            try:
                edges = nx.find_cycle(g.subgraph(component), source=start)
                names = [edges[0][0], *(edge[1] for edge in edges)]
            except nx.NetworkXNoCycle:  # pragma: no cover - component is cyclic by construction
                names = [start, start]
            path = " -> ".join(names)
            for node_id in component:
                paths[node_id] = path
        return paths

    def _cycle_diagnostic(self, node_id: str) -> Diagnostic:
        path = self._cycle_paths.get(node_id, node_id)
        return Diagnostic(node_id, "error", f"is part of a cycle {path}: data must flow one way; "
                                            "remove one of these connections")

    def _infer_node(self, node: Node) -> NodeInfo:
        """Run one node's rule on its current inputs; never raises."""
        layer = node.layer
        known = self._by_params.get(node.id)
        if known is None:  # what depends on the parameters alone is found once per change of them
            known = self._by_params[node.id] = (
                [Diagnostic(node.id, "error", f"{name} {problem}", name) for name, problem in layer.check_params(node.params)],
                layer.input_ports(node.params), layer.output_ports(node.params),
                (node.type_id, *((name, _frozen(value)) for name, value in node.params.items())))
        checked, ports, out_ports, params_key = known
        problems = list(checked)
        incoming = self.graph.incoming(node.id)
        specs: list[TensorSpec] = []
        missing_upstream = False
        for port in ports:
            edge = incoming.get(port)
            if edge is None:
                problems.append(Diagnostic(node.id, "error", self._unconnected_message(layer.role, port, ports)))
                continue
            upstream = self._infos.get(edge.source)
            spec = upstream.output_of(edge.source_port) if upstream is not None else None
            if spec is None:
                missing_upstream = True
            else:
                specs.append(spec)
        if problems or missing_upstream:  # every problem so far is an error
            return NodeInfo(None, diagnostics=tuple(problems))
        key: tuple[Any, ...] | None = (params_key, *specs)
        try:
            result = self._results.get(key)  # type: ignore[arg-type]
        except TypeError:  # a value that cannot be a key: no reuse
            key, result = None, None
        try:
            if result is None:
                try:
                    result = layer.infer(Params(node.params), specs)
                except ShapeError as exc:
                    result = exc
                if key is not None:
                    if len(self._results) >= MAX_REMEMBERED:
                        self._results.clear()
                    self._results[key] = result
        except Exception as exc:  # noqa: BLE001 - a rule bug must not take the editor down
            problems.append(Diagnostic(node.id, "error", f"cannot infer the output shape ({type(exc).__name__}: "
                                                         f"{exc}); please report this"))
            return NodeInfo(None, diagnostics=tuple(problems))
        if isinstance(result, ShapeError):
            problems.append(Diagnostic(node.id, "error", result.message, result.field))
            return NodeInfo(None, diagnostics=tuple(problems))
        inference = result
        output = inference.output
        every = inference.outputs or ((output,) if output is not None else ())
        if any(d <= 0 for spec in every for d in spec.dims):
            problems.append(Diagnostic(node.id, "error", f"output {output} has a size of zero or less: the "
                                                         "input is too small for these settings"))
            return NodeInfo(None, diagnostics=tuple(problems))
        ports = out_ports
        port_outputs = tuple(zip(ports, inference.outputs)) if len(ports) > 1 else ()
        if len(ports) > 1 and len(inference.outputs) != len(ports):
            problems.append(Diagnostic(node.id, "error", f"gives {len(inference.outputs)} outputs for its "
                                                         f"{len(ports)} output ports; please report this"))
            return NodeInfo(None, diagnostics=tuple(problems))
        problems += [Diagnostic(node.id, "warning", message) for message in inference.warnings]
        return NodeInfo(output, inference.parameters, inference.flops, tuple(problems), port_outputs)

    @staticmethod
    def _unconnected_message(role: str, port: str, ports: tuple[str, ...]) -> str:
        if role == "output":
            return "nothing is connected to this Output: connect the layer whose result the model returns"
        name = "its input" if len(ports) == 1 else f"input {port!r}"
        return f"{name} is not connected: drag a connection from a layer's output to it"


#: Most layer results one inference keeps for reuse (then it starts over).
MAX_REMEMBERED = 50_000


def _frozen(value: Any) -> Any:
    """A parameter value as a hashable key part (lists become tuples)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def _dead_end_warning(node_id: str) -> Diagnostic:
    return Diagnostic(node_id, "warning", "does not lead to an Output: it is left out of the model; "
                                          "connect it or delete it")


def ancestors_and_self(g: nx.MultiDiGraph, targets: list[str]) -> frozenset[str]:
    """``targets`` and every node with a path to one of them."""
    seen = set(targets)
    stack = list(targets)
    while stack:
        for pred in g.predecessors(stack.pop()):
            if pred not in seen:
                seen.add(pred)
                stack.append(pred)
    return frozenset(seen)


def analyze(graph: Graph) -> Analysis:
    """One-shot inference of ``graph`` (no observation afterwards)."""
    inference = ShapeInference(graph)
    try:
        return inference.analyze()
    finally:
        inference.close()
