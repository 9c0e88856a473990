"""The importers' tables come from the layer declarations: every recognizer names something real."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from engine.compile.importers.onnx_ops import handlers
from engine.compile.importers.torch_fx import _call_tables
from engine.compile.importers.torch_modules import custom_leaves, map_module
from engine.layers import all_layers, modules
from engine.layers.recognize import FromCall, FromModule, FromOnnx, recognizers


#: Module classes of other libraries that layers recognize by name alone (timm's DropPath and LayerScale2d).
FOREIGN_CLASSES = {"DropPath", "LayerScale2d"}


def test_every_recognized_module_class_exists() -> None:
    for type_id, recognizer in recognizers(FromModule):
        for name in recognizer.classes:
            if name in FOREIGN_CLASSES:
                continue
            found = getattr(nn, name[3:], None) if name.startswith("nn.") else getattr(modules, name, None)
            assert isinstance(found, type), f"{type_id}: {name} is no module class"
    assert {"RecurrentBlock", "SelfAttention", "LearnedPositionalEncoding"} <= custom_leaves()


def test_every_recognized_call_and_onnx_operator_exists() -> None:
    functions, methods, _named = _call_tables()
    assert torch.flatten in functions and torch.nn.functional.relu in functions and "view" in methods
    for type_id, recognizer in recognizers(FromCall):
        assert recognizer.functions or recognizer.methods, type_id
        for method in recognizer.methods:
            assert hasattr(torch.Tensor, method), f"{type_id}: Tensor.{method}"
    for type_id, recognizer in recognizers(FromOnnx):
        for op in recognizer.ops:
            assert onnx.defs.has(op), f"{type_id}: {op} is no ONNX operator"
    assert {"Conv", "Gemm", "Relu", "Identity", "Dropout"} <= set(handlers())


def test_layers_that_build_torch_modules_import_them_back() -> None:
    """A layer whose module is a plain ``torch.nn`` class recognizes that class (so export -> import works)."""
    from engine.layers import Params

    missing = []
    for layer in all_layers():
        if layer.role != "layer" or not layer.examples:
            continue
        example = layer.examples[0]
        params = Params({**layer.defaults(), **example.params})
        try:
            call = layer.constructor(params, example.specs())
        except NotImplementedError:
            continue  # a functional layer: emits calls, recognized by FromCall
        if call.target.startswith("nn.") and call.target != "nn.Sequential":
            names = {name for r in layer.imports if isinstance(r, FromModule) for name in r.classes}
            if call.target not in names:
                missing.append(f"{layer.type_id} builds {call.target}")
    assert not missing, missing


@pytest.mark.parametrize(("module", "type_id", "params"), [
    (nn.Conv2d(3, 8, 3, padding=1), "conv2d", {"out_channels": 8, "kernel_size": [3, 3], "padding": [1, 1]}),
    (nn.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
    (nn.LSTM(4, 8, batch_first=True), "lstm", {"hidden_size": 8, "output": "sequence"}),
    (nn.AdaptiveAvgPool2d(1), "adaptive_avgpool2d", {"output_size": [1, 1]}),
])
def test_a_module_maps_to_its_layer(module: nn.Module, type_id: str, params: dict) -> None:
    mapped = map_module(module)
    assert mapped is not None and mapped[0] == type_id
    assert params.items() <= mapped[1].items()
    assert map_module(nn.Conv2d(3, 8, 3, padding_mode="reflect")) is None


def test_a_pattern_of_calls_is_asked_before_its_last_call_alone() -> None:
    functions, methods, _named = _call_tables()
    for table, key in ((methods, "view"), (methods, "flatten"), (functions, torch.reshape)):
        assert table[key][0][0] == "channel_shuffle", key
        priorities = [recognizer.priority for _, recognizer in table[key]]
        assert priorities == sorted(priorities, reverse=True)
    assert {type_id for type_id, _ in methods["max"]} == {"reduce"}
    assert [r.tuple_output for _, r in functions[torch.min]] == [0]


def test_a_module_class_can_have_several_recognizers_picked_by_its_call() -> None:
    from engine.compile.importers.torch_modules import module_candidates

    found = [type_id for type_id, *_ in module_candidates(nn.MultiheadAttention(8, 2, batch_first=True))]
    assert found == ["multihead_attention", "self_attention"]  # self-attention only through the causal mask
    assert [type_id for type_id, *_ in module_candidates(nn.MultiheadAttention(8, 2, kdim=4, vdim=4,
                                                                               batch_first=True))] \
        == ["multihead_attention"]
