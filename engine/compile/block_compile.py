"""Compile a graph with block instances: flatten, then the ordinary compiler.

The flat graph (:func:`engine.graph.flatten.flatten`) holds only ordinary layers, so the
GraphModule is the one :func:`~engine.compile.fx_builder.compile_graph` builds for that flat
graph: one submodule per inner layer, named by its flat id (``layer1_0__conv1``), and the same
straight-line code, so speed is unchanged. Errors name inner layers by their paths.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from engine.compile.fx_builder import CompiledModel, GraphInvalidError, compile_graph
from engine.graph.blocks import BlockDefinition
from engine.graph.flatten import Flattened, flatten
from engine.graph.model import Graph
from engine.shapes import Diagnostic, analyze


def format_flat(diagnostic: Diagnostic, flat: Flattened) -> str:
    """``node <path> (<Title>): <message>`` for a diagnostic of the flat graph."""
    if diagnostic.node is None:
        return f"graph: {diagnostic.message}"
    title = flat.graph.nodes[diagnostic.node].layer.title
    message = flat.errors.get(diagnostic.node, diagnostic.message)
    return f"node {flat.paths[diagnostic.node]} ({title}): {message}"


def compile_with_blocks(graph: Graph, definitions: Mapping[str, BlockDefinition],
                        outputs: Sequence[str] | None = None) -> tuple[CompiledModel, Flattened]:
    """Flatten ``graph`` and compile the result.

    Args:
        graph: A graph that may hold block instances.
        definitions: Block definitions by name.
        outputs: As for :func:`~engine.compile.fx_builder.compile_graph` (top-level Output ids).

    Returns:
        The compiled model (its ``analysis`` is the flat graph's) and the flattened graph,
        whose ``paths`` name each submodule's layer.

    Raises:
        BlockError: An instance cannot be expanded (one line naming it).
        GraphInvalidError: The flat graph has errors; its lines name inner layers by path.
    """
    flat = flatten(graph, definitions)
    analysis = analyze(flat.graph)
    if not analysis.valid:
        errors = analysis.errors
        raise GraphInvalidError(errors, [format_flat(d, flat) for d in errors])
    return compile_graph(flat.graph, analysis, outputs), flat
