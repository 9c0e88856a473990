"""What both importers share: building the graph node by node, weights, and the final checks.

An importer walks a foreign graph (torch.fx or ONNX) and, for each operation, either adds a
canvas node (with the tensors of its module) or records the operation as unmapped. Nothing
is half-imported: :meth:`GraphBuilder.finish` refuses the whole import when anything was
unmapped, listing every unmapped operation, and otherwise checks that the graph is valid
and that the weights fill every tensor of the compiled model.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from engine.compile.fx_builder import CompiledModel, GraphInvalidError, attribute_name, compile_graph
from engine.compile.weights import apply_weights
from engine.errors import UserError
from engine.graph.fileformat import MAX_GROUP_LENGTH
from engine.graph.layout import layered_layout
from engine.graph.model import OUT, Edge, Graph, GraphError, Node
from engine.graph.project import Project
from engine.layers import get_layer


#: What feeds an input port: a node id, or ``(node id, output port)``.
Source = str | tuple[str, str]
#: Layers with a ``flatten`` parameter that absorb a Flatten right after them.
_FLATTENING_POOLS = frozenset({"adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_maxpool1d", "adaptive_maxpool2d"})


class ImportProblem(UserError):
    """A model cannot be imported; the message lists every unmapped operation."""


def sanitize_id(text: str, fallback: str = "node") -> str:
    """A node id (a Python identifier of at most 64 characters) from any name."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_")
    name = re.sub(r"_+", "_", name)[:60] or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"[:60]
    return name


class GraphBuilder:
    """Collects nodes, edges, weights and unmapped operations of one import.

    Args:
        source: What is imported (a file name or ``module:Class``), for messages.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.graph = Graph()
        self.weights: dict[str, torch.Tensor] = {}
        #: Operations without a canvas layer: kind (``module StochasticDepth``, ``Sin``) -> where they occur.
        self.unmapped: dict[str, list[str]] = {}
        #: The compiled graph with the weights, once :meth:`finish` has checked them.
        self.compiled: CompiledModel | None = None
        #: Module path -> its class (``module.QualName``), where the importer knows it (blocks use it).
        self.module_classes: dict[str, str] = {}

    def add(self, type_id: str, name: str, params: dict[str, Any], inputs: list[Source],
            tensors: dict[str, torch.Tensor] | None = None, group: str = "") -> str:
        """Add a node fed by ``inputs`` (in port order) and return its id.

        Args:
            type_id: Layer type.
            name: Preferred id (sanitised and made unique).
            params: Parameter values (checked later by validation).
            inputs: For each input port, in order: the source node id, or ``(node id, output
                port)`` for an output other than a node's only one.
            tensors: The module's tensors keyed as in its own state dict (``weight``, ...).
            group: The dotted path of the module the operation belongs to (kept on the node).
        """
        base = sanitize_id(name, get_layer(type_id).id_prefix or "node")
        node_id, n = base, 1
        while node_id in self.graph.nodes or attribute_name(node_id) != node_id:
            n += 1
            node_id = f"{base}_{n}"
        try:
            self.graph.add_node(Node(node_id, type_id, dict(params), group=group[:MAX_GROUP_LENGTH]))
            ports = self.graph.nodes[node_id].input_ports()
            for port, source in zip(ports, inputs):
                node, out = source if isinstance(source, tuple) else (source, OUT)
                self.graph.add_edge(Edge(node, node_id, port, out))
        except GraphError as exc:
            raise ImportProblem(f"{self.source}: cannot build node {node_id}: {exc}") from None
        for key, value in (tensors or {}).items():
            self.weights[f"{node_id}.{key}"] = value.detach().cpu().float().clone() \
                if value.is_floating_point() else value.detach().cpu().clone()
        return node_id

    def remove(self, node_id: str) -> None:
        """Take out a node added earlier, with its edges and tensors (a call that a later pattern's layer
        replaces, e.g. the ``view`` and ``transpose`` of a channel shuffle)."""
        for edge in list(self.graph.edges_of(node_id)):
            self.graph.remove_edge(edge)
        self.graph.remove_node(node_id)
        for key in [k for k in self.weights if k.startswith(f"{node_id}.")]:
            del self.weights[key]

    def skip(self, where: str, kind: str = "") -> None:
        """Record an operation that has no canvas counterpart.

        Args:
            where: The operation's name or module path (``features.3.getitem_2``).
            kind: What it does (``call_method expand``, ``Sin: <reason>``); the error lists each
                kind once, with a count and the first places it occurs.
        """
        places = self.unmapped.setdefault(kind or where, [])
        if where not in places:
            places.append(where)

    def unmapped_summary(self, most: int = 12) -> str:
        """``wave (Sin); call_method expand 3x: a, b, c; ...``: each kind once, most frequent first."""
        parts = []
        for kind, places in sorted(self.unmapped.items(), key=lambda item: -len(item[1]))[:most]:
            if places == [kind]:
                parts.append(kind)
            elif len(places) == 1:
                parts.append(f"{places[0]} ({kind})")
            else:
                shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
                parts.append(f"{kind} {len(places)}x: {shown}")
        rest = len(self.unmapped) - most
        return "; ".join(parts) + (f"; and {rest} more kind(s)" if rest > 0 else "")

    def _merge_pool_flatten(self) -> None:
        """An adaptive pooling (average or max, 1-d or 2-d) then Flatten (as exported code writes it) -> one
        pool with ``flatten``."""
        graph = self.graph
        for flat in [n for n in graph if n.type_id == "flatten"]:
            edge = graph.incoming(flat.id).get("in")
            pool = graph.nodes.get(edge.source) if edge else None
            if pool is None or pool.type_id not in _FLATTENING_POOLS or pool.params.get("flatten") \
                    or flat.params.get("start_dim") != 1 or flat.params.get("end_dim") != -1 \
                    or len(graph.outgoing(pool.id)) != 1:
                continue
            feeding = graph.incoming(pool.id)["in"]
            targets = [(e.target, e.target_port) for e in graph.outgoing(flat.id)]
            for e in [*graph.edges_of(flat.id), *graph.edges_of(pool.id)]:
                if e in graph.edges:
                    graph.remove_edge(e)
            graph.remove_node(flat.id)
            graph.remove_node(pool.id)
            graph.add_node(Node(flat.id, pool.type_id, {**pool.params, "flatten": True}, group=pool.group))
            graph.add_edge(Edge(feeding.source, flat.id, "in", feeding.source_port))
            for target, port in targets:
                graph.add_edge(Edge(flat.id, target, port))

    def finish(self, name: str, description: str) -> tuple[Project, dict[str, torch.Tensor]]:
        """Lay out, validate and check the weights; the project and its weights.

        Raises:
            ImportProblem: Unmapped operations (all listed), an invalid graph, or weights
                that do not fill the compiled model.
        """
        if self.unmapped:
            count = sum(len(places) for places in self.unmapped.values())
            raise ImportProblem(f"{self.source}: nothing imported: {count} operation(s) of {len(self.unmapped)} "
                                f"kind(s) have no canvas layer: {self.unmapped_summary()}")
        self._merge_pool_flatten()
        self.graph.move_nodes(layered_layout(self.graph, max_columns=8, direction="auto"))
        try:
            compiled = compile_graph(self.graph)
        except GraphInvalidError as exc:
            raise ImportProblem(f"{self.source}: the imported graph is invalid: {exc.lines[0]}") from None
        state = compiled.module.state_dict()
        for key in list(self.weights):
            if key not in state:
                del self.weights[key]  # e.g. num_batches_tracked where the canvas layer keeps none
        apply_weights(compiled.module, self.weights, self.source)
        self.compiled = compiled
        meta = {"name": name, "family": "fnn", "task": "", "description": description}
        return Project(graph=self.graph, meta=meta), {k: self.weights[k] for k in state}
