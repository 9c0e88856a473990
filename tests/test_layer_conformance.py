"""Conformance of every registered layer declaration with the module it builds.

For each layer and each of its declared examples: the defaults validate; the analytic
output shape equals the real output shape (two batch sizes); the analytic parameter count
equals the built module's; the analytic FLOPs equal torch.utils.flop_counter's count; and
a project holding the node survives a save/load round trip.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import fx, nn
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from engine.graph import Graph, Node, Project
from engine.graph.fileformat import dumps, loads
from engine.layers import Example, LayerType, Params, TensorSpec, all_layers
from engine.layers.base import EmitContext

LAYERS = all_layers()
WITH_INPUTS = [layer for layer in LAYERS if layer.role != "input"]
CASES = [(layer, example) for layer in LAYERS if layer.role == "layer" for example in layer.examples]


def _case_id(case: object) -> str:
    if isinstance(case, LayerType):
        return case.type_id
    return ""


def _lstm_reference_flops(module: nn.Module, x: torch.Tensor) -> int:
    """flop_counter sees no matmul inside the fused LSTM kernel; count the unrolled cell."""
    lstm = next(m for m in module.modules() if isinstance(m, nn.LSTM))
    batch, steps = x.shape[0], x.shape[1]
    total = 0
    for layer in range(lstm.num_layers):
        in_size = lstm.input_size if layer == 0 else lstm.hidden_size * (2 if lstm.bidirectional else 1)
        hidden = lstm.hidden_size
        per_step = 2 * 4 * hidden * (in_size + hidden) + (2 * hidden * lstm.proj_size if lstm.proj_size else 0)
        total += per_step * steps * (2 if lstm.bidirectional else 1)
    return total * batch


def _cpu_flash_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    """flop_counter has no formula for the CPU flash-attention kernel that attention uses
    without dropout; count it as the GPU kernels are counted."""
    return flop_counter.sdpa_flop_count(*(getattr(t, "shape", t) for t in (query, key, value)))


#: Counts for kernels flop_counter does not know, so analytic rules are checked against them too.
CUSTOM_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}

#: Layers whose torch kernels flop_counter cannot see into get a reference of their own.
FLOP_REFERENCES: dict[str, Callable[[nn.Module, torch.Tensor], int]] = {"lstm": _lstm_reference_flops}


def _module_for(layer: LayerType, p: Params, specs: list[TensorSpec]) -> fx.GraphModule:
    graph = fx.Graph()
    root = nn.Module()
    args = [graph.placeholder(f"x{i}") for i in range(len(specs))]
    graph.output(layer.emit(EmitContext(graph, root, "layer"), p, args, specs))
    return fx.GraphModule(root, graph)


def _sample(spec: TensorSpec, batch: int) -> torch.Tensor:
    if spec.dtype == "long":
        return torch.randint(0, 2, (batch, *spec.dims))
    return torch.randn(batch, *spec.dims)


@pytest.mark.parametrize("layer", LAYERS, ids=_case_id)
def test_defaults_validate_and_examples_exist(layer: LayerType) -> None:
    assert layer.check_params(layer.defaults()) == []
    assert layer.title and layer.doc and all(decl.doc for decl in layer.params)
    if layer.role != "input":
        assert len(layer.examples) >= 2, "declare at least two example input shapes"


@pytest.mark.parametrize(("layer", "example"), CASES, ids=[f"{l.type_id}-{i}" for l, e in CASES
                                                            for i in [l.examples.index(e)]])
def test_inference_matches_built_module(layer: LayerType, example: Example) -> None:
    torch.manual_seed(0)
    p = Params({**layer.defaults(), **example.params})
    assert layer.check_params(p) == []
    specs = example.specs()
    assert len(specs) == len(layer.input_ports(p))
    inference = layer.infer(p, specs)
    module = _module_for(layer, p, specs)
    module.train()

    for batch in (2, 3):  # batch 1 cannot train BatchNorm on (N, C)
        out = module(*[_sample(s, batch) for s in specs])
        results = list(out) if isinstance(out, (tuple, list)) else [out]
        expected = inference.outputs or (inference.output,)
        assert len(results) == len(expected) == len(layer.output_ports(p))  # one tensor per output port
        for result, spec in zip(results, expected):
            assert tuple(result.shape) == (batch, *spec.dims)
            assert (result.dtype == torch.long) == (spec.dtype == "long")

    real_params = sum(t.numel() for t in module.parameters() if t.requires_grad)
    assert inference.parameters == real_params

    batch = 2
    x = [_sample(s, batch) for s in specs]
    reference = FLOP_REFERENCES.get(layer.type_id)
    if reference is not None:
        expected = reference(module, x[0])
    else:
        with FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOP_FORMULAS) as counter:
            module(*x)
        expected = counter.get_total_flops()
    assert inference.flops * batch == expected


@pytest.mark.parametrize("layer", WITH_INPUTS + [l for l in LAYERS if l.role == "input"], ids=_case_id)
def test_node_round_trips_through_project_file(layer: LayerType) -> None:
    values = {**layer.defaults(), **(layer.examples[-1].params if layer.examples else {})}
    graph = Graph()
    graph.add_node(Node("n1", layer.type_id, values, (12.5, -3.0)))
    text = dumps(Project(graph=graph))
    again = loads(text).graph.nodes["n1"]
    assert again.type_id == layer.type_id
    assert again.params == {k: layer.param(k).coerce(v) for k, v in values.items()}
    assert again.position == (12.5, -3.0)
    assert dumps(loads(text)) == text
