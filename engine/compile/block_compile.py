"""Compile a graph with block instances: flatten, then the ordinary compiler.

The flat graph (:func:`engine.graph.flatten.flatten`) holds only ordinary layers, so the
GraphModule is the one :func:`~engine.compile.fx_builder.compile_graph` builds for that flat
graph: one submodule per inner layer, named by its flat id (``layer1_0__conv1``), and the same
straight-line code, so speed is unchanged. Errors name inner layers by their paths.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from engine.block_shapes import format_path
from engine.compile.fx_builder import CompiledModel, GraphInvalidError, compile_graph
from engine.graph.blocks import BlockDefinition
from engine.graph.flatten import Flattened, flatten
from engine.graph.model import Graph
from engine.shapes import analyze


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
        raise GraphInvalidError(errors, [format_path(d, flat) for d in errors])
    return compile_graph(flat.graph, analysis, outputs), flat
