"""Graph -> torch.fx GraphModule.

The compiled module is ordinary PyTorch: one submodule per layer node and straight-line
generated code (``gm.code``), so a forward pass costs what the hand-written module costs.
Torch is imported when this module is imported; keep imports of it lazy in GUI code.
"""

from __future__ import annotations

import builtins
import keyword
import operator
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import fx, nn

from engine.graph.model import Graph
from engine.layers import Params, TensorSpec
from engine.layers.base import EmitContext
from engine.shapes import Analysis, Diagnostic, ancestors_and_self, analyze

MODEL_CLASS_NAME = "NeuralCanvasModel"


class GraphInvalidError(ValueError):
    """The graph cannot be compiled; ``diagnostics`` holds every error.

    Args:
        diagnostics: The error diagnostics.
        lines: The same, formatted ``node <id> (<Type>): <message>``.
    """

    def __init__(self, diagnostics: list[Diagnostic], lines: list[str]) -> None:
        summary = lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more problem(s))"
        super().__init__(f"the graph is invalid: {summary}")
        self.diagnostics = diagnostics
        self.lines = lines


@dataclass
class CompiledModel:
    """A compiled graph and what its callers need to feed it.

    Args:
        module: The GraphModule; ``module(*inputs)`` returns one tensor or a tuple.
        input_ids: Input node ids, in argument order.
        input_specs: Per-sample spec of each input.
        output_ids: Output node ids, in result order.
        output_specs: Per-sample spec of each output.
        analysis: The shape analysis the model was built from.
    """

    module: fx.GraphModule
    input_ids: list[str]
    input_specs: list[TensorSpec]
    output_ids: list[str]
    output_specs: list[TensorSpec]
    analysis: Analysis

    def example_inputs(self, batch: int = 2, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of the right shapes and dtypes (token ids are 0 or 1)."""
        result = []
        for spec in self.input_specs:
            if spec.dtype == "long":
                result.append(torch.randint(0, 2, (batch, *spec.dims), generator=generator))
            else:
                result.append(torch.randn(batch, *spec.dims, generator=generator))
        return tuple(result)


def compile_graph(graph: Graph, analysis: Analysis | None = None,
                  outputs: Sequence[str] | None = None) -> CompiledModel:
    """Compile ``graph`` into a torch.fx GraphModule.

    Nodes that do not lead to an Output are left out. Inputs become arguments in the
    order their nodes were added; several Outputs return a tuple in the same order.

    Args:
        graph: The graph to compile.
        analysis: A current analysis of ``graph``; computed when omitted.
        outputs: Compile only the part of the graph that these Output node ids need
            (e.g. a GAN's generator); all Outputs when omitted.

    Returns:
        The compiled model.

    Raises:
        GraphInvalidError: The graph has errors; all of them are attached.
    """
    analysis = analysis or analyze(graph)
    if not analysis.valid:
        errors = analysis.errors
        raise GraphInvalidError(errors, [d.format(graph) for d in errors])
    all_outputs = [node.id for node in graph if node.layer.role == "output"]
    if outputs is None:
        output_ids = all_outputs
        needed = analysis.in_model
    else:
        unknown = [o for o in outputs if o not in all_outputs]
        if unknown:
            raise ValueError(f"not Output nodes: {', '.join(unknown)}")
        output_ids = [o for o in all_outputs if o in outputs]
        needed = ancestors_and_self(graph.nx_graph(), output_ids)

    fx_graph = fx.Graph()
    root = nn.Module()
    values: dict[str, fx.Node] = {}
    ports: dict[tuple[str, str], fx.Node] = {}  # (node id, output port) -> element of a several-output result

    def value(source: str, port: str) -> fx.Node:
        """The fx value leaving output ``port`` of node ``source``."""
        names = graph.nodes[source].output_ports()
        if len(names) <= 1:
            return values[source]
        if (source, port) not in ports:
            ports[(source, port)] = fx_graph.create_node(
                "call_function", operator.getitem, (values[source], names.index(port)),
                name=f"{attribute_name(source)}_{port}")
        return ports[(source, port)]

    input_ids: list[str] = []
    for node in graph:  # placeholders first, in document order
        if node.layer.role == "input" and node.id in needed:
            values[node.id] = fx_graph.placeholder(attribute_name(node.id))
            input_ids.append(node.id)
    for node_id in analysis.order:
        node = graph.nodes[node_id]
        layer = node.layer
        if node_id not in needed or layer.role == "input":
            continue
        incoming = [graph.incoming(node_id)[port] for port in layer.input_ports(node.params)]
        if layer.role == "output":
            values[node_id] = value(incoming[0].source, incoming[0].source_port)
            continue
        specs = [analysis.nodes[e.source].output_of(e.source_port) for e in incoming]
        ctx = EmitContext(fx_graph, root, attribute_name(node_id))
        args = [value(e.source, e.source_port) for e in incoming]
        values[node_id] = layer.emit(ctx, Params(node.params), args, specs)  # type: ignore[arg-type]
    results = [values[i] for i in output_ids]
    fx_graph.output(results[0] if len(results) == 1 else tuple(results))
    _activations_in_place(fx_graph, root)
    fx_graph.lint()
    module = fx.GraphModule(root, fx_graph, class_name=MODEL_CLASS_NAME)
    feeding = [graph.incoming(i)["in"] for i in output_ids]
    return CompiledModel(
        module=module,
        input_ids=input_ids,
        input_specs=[analysis.nodes[i].output for i in input_ids],  # type: ignore[misc]
        output_ids=output_ids,
        output_specs=[analysis.nodes[e.source].output_of(e.source_port) for e in feeding],  # type: ignore[misc]
        analysis=analysis,
    )


def _activations_in_place(fx_graph: fx.Graph, root: nn.Module) -> None:
    """Let ReLU, ReLU6 and LeakyReLU overwrite their input where nothing else reads it and its
    producer's backward does not need it (a convolution, Linear, batch norm or sum), as
    torchvision's ``inplace=True`` does: one tensor less to allocate and write per activation
    (ResNeXt and Wide ResNet train 4-5% faster). A value read elsewhere (a skip connection, a
    probe of Look Inside) is never overwritten.
    """
    import torch.nn.functional as F

    in_place = {F.relu, F.relu6, F.leaky_relu}
    for node in fx_graph.nodes:
        source = node.args[0] if node.op == "call_function" and node.target in in_place and node.args else None
        if not isinstance(source, fx.Node) or len(source.users) != 1:
            continue
        if source.op == "call_module":
            overwritable = isinstance(root.get_submodule(str(source.target)), _OVERWRITABLE_MODULES)
        else:
            overwritable = source.op == "call_function" and source.target in (operator.add, torch.add)
        if overwritable:
            node.kwargs = {**node.kwargs, "inplace": True}


#: Modules whose backward reads their input and weights but never their output.
_OVERWRITABLE_MODULES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)

#: Names a node id cannot take as a submodule or variable: members of a GraphModule instance
#: (methods and attributes such as ``training`` and ``code``), keywords, builtins, and the
#: names generated code relies on.
_RESERVED = (frozenset(dir(fx.GraphModule(nn.Module(), fx.Graph()))) | frozenset(keyword.kwlist)
             | frozenset(dir(builtins)) | {"self", "torch", "device", "dtype", "operator"})


def attribute_name(node_id: str) -> str:
    """A submodule / variable name for a node id that cannot shadow nn.Module members."""
    return f"{node_id}_" if node_id in _RESERVED or node_id.startswith("_") else node_id
