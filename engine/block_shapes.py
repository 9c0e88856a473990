"""Shape, parameter and FLOP inference through block instances, incremental under edits.

:class:`BlockInference` keeps the flattened graph (:func:`engine.graph.flatten.flatten`) of a
top-level graph and an ordinary :class:`~engine.shapes.ShapeInference` over it, so every
instance's inside is inferred from the tensors that instance receives. A parameter edit of a
layer (at the top level or inside a definition used by many instances) is applied to the
layer's flat copies and re-infers only what changed; any other edit of a definition, of an
instance or of the graph's structure, and any change of the library, expands again.

The result is an ordinary :class:`~engine.shapes.Analysis` of the *top-level* graph: a block
instance is one node whose output is its (last copy's) output, whose parameters and FLOPs are
the totals of its inside, and whose diagnostics are those of its inside, each message led by
the inner node's path (``layer2.1/conv2: expects ...``). The flat analysis rides along for
compile and for listings of every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from engine.graph.blocks import BlockLibrary
from engine.graph.events import GraphEvent, NodesMoved, ParamChanged
from engine.graph.flatten import Flattened, InstanceInfo, flatten
from engine.graph.model import Graph
from engine.layers.block import BLOCK_TYPE
from engine.graph.project import Project
from engine.shapes import Analysis, Diagnostic, NodeInfo, ShapeInference, _dead_end_warning, analyze

#: The message of the warning on a layer that does not lead to an Output.
_DEAD_END = _dead_end_warning("").message


@dataclass
class BlockAnalysis:
    """Inference results of a graph with blocks.

    Args:
        analysis: The top-level analysis (one entry per top-level node; instances carry totals).
        flat: The flattened graph with its paths.
        flat_analysis: The analysis of the flat graph (every layer, by flat id).
    """

    analysis: Analysis
    flat: Flattened
    flat_analysis: Analysis

    def path(self, flat_id: str) -> str:
        """The path (``layer1.0/conv1``) of a flat node id."""
        return self.flat.paths[flat_id]


class BlockInference:
    """Incremental inference of ``graph`` with the definitions of ``library``. Call :meth:`close`.

    Args:
        graph: The top-level graph to observe.
        library: The block definitions its instances use.
    """

    def __init__(self, graph: Graph, library: BlockLibrary) -> None:
        self.graph = graph
        self.library = library
        self._flat: Flattened | None = None
        self._inference: ShapeInference | None = None
        self._revision = -1
        self._definition_unsubscribes: list[Callable[[], None]] = []
        self._owned: dict[str, list[str]] = {}
        self._top_of: dict[str, str] = {}
        self._unsubscribe = graph.subscribe(self._on_top_event)

    def close(self) -> None:
        """Stop observing the graph and the definitions."""
        self._unsubscribe()
        self._drop()

    def _drop(self) -> None:
        for unsubscribe in self._definition_unsubscribes:
            unsubscribe()
        self._definition_unsubscribes = []
        if self._inference is not None:
            self._inference.close()
        self._flat = self._inference = None

    # -------------------------------------------------------------- events
    def _on_top_event(self, event: GraphEvent) -> None:
        if isinstance(event, NodesMoved) or self._flat is None:
            return
        if isinstance(event, ParamChanged) and self.graph.nodes[event.node_id].type_id != BLOCK_TYPE:
            self._flat.graph.set_param(event.node_id, event.name, event.new)
        else:
            self._drop()

    def _on_definition_event(self, name: str, graph: Graph, event: GraphEvent) -> None:
        if isinstance(event, NodesMoved) or self._flat is None:
            return
        if isinstance(event, ParamChanged) and graph.nodes[event.node_id].type_id != BLOCK_TYPE:
            for flat_id in self._flat.copies.get((name, event.node_id), ()):
                self._flat.graph.set_param(flat_id, event.name, event.new)
        else:
            self._drop()

    def _rebuild(self) -> None:
        self._drop()
        flat = flatten(self.graph, self.library, strict=False)
        self._flat, self._inference, self._revision = flat, ShapeInference(flat.graph), self.library.revision
        self._top_of = {flat_id: Flattened.top_level(path) for flat_id, path in flat.paths.items()}
        self._owned = {}
        for flat_id, top in self._top_of.items():
            self._owned.setdefault(top, []).append(flat_id)
        for name in sorted({info.definition for info in flat.instances.values()}):
            definition = self.library[name]
            self._definition_unsubscribes.append(definition.graph.subscribe(
                lambda event, n=name, g=definition.graph: self._on_definition_event(n, g, event)))

    # ------------------------------------------------------------ analysis
    def analyze(self) -> BlockAnalysis:
        """Bring everything up to date and return the top-level and flat results."""
        if self._flat is None or self._revision != self.library.revision:
            self._rebuild()
        assert self._flat is not None and self._inference is not None
        flat, flat_analysis = self._flat, self._inference.analyze()
        infos = flat_analysis.nodes
        top_of = self._top_of
        in_model = frozenset(top_of[f] for f in flat_analysis.in_model)
        nodes: dict[str, NodeInfo] = {}
        for flat_id in [*flat_analysis.order, *infos]:
            top = top_of[flat_id]
            if top not in nodes:
                nodes[top] = (self._instance_info(top, flat, flat_analysis, top in in_model)
                              if top in flat.instances else self._plain_info(top, flat, infos))
        for node_id in self.graph.nodes:  # instances with nothing inside
            if node_id not in nodes:
                nodes[node_id] = self._instance_info(node_id, flat, flat_analysis, node_id in in_model)
        order = [n for n in nodes if n in self.graph.nodes]
        top = Analysis(nodes, list(flat_analysis.graph_diagnostics), in_model, order)
        return BlockAnalysis(top, flat, flat_analysis)

    @staticmethod
    def _plain_info(node_id: str, flat: Flattened, infos: dict[str, NodeInfo]) -> NodeInfo:
        info = infos[node_id]
        if node_id not in flat.errors:
            return info
        return NodeInfo(None, diagnostics=(Diagnostic(node_id, "error", flat.errors[node_id]),))

    def _instance_info(self, node_id: str, flat: Flattened, flat_analysis: Analysis, in_model: bool) -> NodeInfo:
        """Totals, outputs and re-attached diagnostics of top-level instance ``node_id``."""
        return instance_info(self.graph, node_id, flat.instances[node_id], self._owned.get(node_id, []),
                             flat, flat_analysis, in_model)


def instance_info(graph: Graph, node_id: str, instance: InstanceInfo, owned: list[str], flat: Flattened,
                  flat_analysis: Analysis, in_model: bool) -> NodeInfo:
    """What one block instance shows as a node of ``graph`` (the top level or a definition's inside).

    Args:
        graph: The graph holding the instance node.
        node_id: The instance's id in ``graph``.
        instance: Its expansion (:attr:`Flattened.instances` at its path).
        owned: The flat ids of every layer inside it (all copies, all depths).
        flat: The flattened top-level graph.
        flat_analysis: The analysis of ``flat.graph``.
        in_model: Whether the instance leads to an Output.

    Returns:
        The instance's output (its last copy's), parameter and FLOP totals, and the diagnostics of
        its inside, each led by the inner node's path.
    """
    infos = flat_analysis.nodes
    node = graph.nodes[node_id]
    unconnected = [port for port in node.input_ports() if graph.edge_into(node_id, port) is None]
    diagnostics: list[Diagnostic] = [
        Diagnostic(node_id, "error", ShapeInference._unconnected_message("layer", port, node.input_ports()))
        for port in unconnected]
    if not in_model:
        diagnostics.append(_dead_end_warning(node_id))
    for flat_id in owned if not unconnected else ():
        path = flat.paths[flat_id]
        for d in infos[flat_id].diagnostics:
            if not in_model and d.message == _DEAD_END:
                continue
            message = flat.errors.get(flat_id, d.message)
            prefix = _chain_context(instance, path, infos) if d.severity == "error" else ""
            diagnostics.append(Diagnostic(node_id, d.severity, f"{prefix}{path}: {message}"))
    outputs = [infos[s[0]].output_of(s[1]) if s is not None and s[0] in infos else None
               for s in instance.outputs]
    known = all(spec is not None for spec in outputs) and not unconnected
    ports = node.output_ports()
    return NodeInfo(
        outputs[0] if known and outputs else None,
        sum(infos[f].parameters for f in owned),
        sum(infos[f].flops for f in owned),
        tuple(diagnostics),
        tuple(zip(ports, outputs)) if known and len(ports) > 1 else (),  # type: ignore[arg-type]
    )


def _chain_context(instance: InstanceInfo, path: str, infos: dict[str, NodeInfo]) -> str:
    """For an error inside copy k >= 1 of a repeated instance that receives other tensors than
    copy 0: ``"the copies do not chain: copy 2 receives (N, 128, 8, 8) where copy 1 receives
    (N, 64, 16, 16): "``; else empty."""
    head = path.split("/", 1)[0]
    if "." not in head:
        return ""
    k = int(head.split(".", 1)[1])
    if k == 0:
        return ""

    def shapes(copy: int) -> str:
        specs = [infos[s[0]].output_of(s[1]) if s is not None and s[0] in infos else None
                 for s in instance.copy_inputs[copy]]
        return ", ".join(str(spec) if spec is not None else "?" for spec in specs)

    first, this = shapes(0), shapes(k)
    if first == this:
        return ""
    return f"the copies do not chain: copy {k + 1} receives {this} where copy 1 receives {first}: "


def format_path(diagnostic: Diagnostic, flat: Flattened) -> str:
    """``node <path> (<Title>): <message>`` for a diagnostic of the flat graph (no torch needed)."""
    if diagnostic.node is None:
        return f"graph: {diagnostic.message}"
    title = flat.graph.nodes[diagnostic.node].layer.title
    message = flat.errors.get(diagnostic.node, diagnostic.message)
    return f"node {flat.paths[diagnostic.node]} ({title}): {message}"


def analyze_blocks(graph: Graph, library: BlockLibrary) -> BlockAnalysis:
    """One-shot inference of a graph with blocks (no observation afterwards)."""
    inference = BlockInference(graph, library)
    try:
        return inference.analyze()
    finally:
        inference.close()


def model_analysis(project: Project) -> tuple[Analysis, list[str]]:
    """The analysis of the project's model (blocks flattened) and one line per error, as
    ``validate`` prints them (inside blocks named by their paths: ``layer2.1/conv2``)."""
    from engine.graph.flat_project import has_blocks

    if has_blocks(project):
        result = analyze_blocks(project.graph, project.blocks)
        return result.flat_analysis, [format_path(d, result.flat) for d in result.flat_analysis.errors]
    analysis = analyze(project.graph)
    return analysis, [diagnostic.format(project.graph) for diagnostic in analysis.errors]
