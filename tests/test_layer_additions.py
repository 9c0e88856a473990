"""Rules of the layers added for modern architectures that the conformance test does not reach:
broadcasting merges, ceil_mode pooling, Reduce, GroupNorm and Select refusals, 64-input merges,
old pooling nodes, and how the new layers are recognized (torch modules, traced calls, ONNX)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.compile import compile_graph
from engine.compile.importers.torch_modules import map_module
from engine.graph import Graph
from engine.graph.fileformat import loads
from engine.layers import Params, ShapeError, TensorSpec, get_layer
from engine.layers.recognize import FromCall, recognizers
from engine.shapes import analyze
from tests.graph_builders import chain, connect, node


def _merge(type_id: str, *shapes: list[int]) -> Graph:
    graph = Graph()
    chain(graph, node(type_id, "merge", num_inputs=len(shapes)), node("output", "out"))
    for index, shape in enumerate(shapes):
        graph.add_node(node("input", f"x{index + 1}", shape=shape))
        connect(graph, f"x{index + 1}", "merge", f"in{index + 1}")
    return graph


def _message(graph: Graph, node_id: str) -> str:
    (problem,) = [d.message for d in analyze(graph).errors if d.node == node_id]
    return problem


# ------------------------------------------------------------- broadcasting
def test_add_and_multiply_broadcast_sizes_of_one() -> None:
    analysis = analyze(_merge("multiply", [8, 5, 5], [8, 1, 1]))  # squeeze-and-excitation
    assert analysis.valid and analysis.nodes["merge"].output.dims == (8, 5, 5)
    graph = _merge("add", [1, 4, 5], [3, 1, 5], [3, 4, 1])
    assert analyze(graph).nodes["merge"].output.dims == (3, 4, 5)
    x = [torch.randn(2, 1, 4, 5), torch.randn(2, 3, 1, 5), torch.randn(2, 3, 4, 1)]
    torch.testing.assert_close(compile_graph(graph).module(*x), x[0] + x[1] + x[2])


def test_broadcast_clash_names_the_sizes() -> None:
    message = _message(_merge("add", [8, 5, 5], [8, 5, 3]), "merge")
    assert message.startswith("input in2 is (N, 8, 5, 3) but in1 is (N, 8, 5, 5): sizes 5 and 3 of dim 3 clash")
    message = _message(_merge("multiply", [2, 4], [2, 1], [3, 4]), "merge")
    assert "the inputs before it broadcast to (N, 2, 4)" in message and "sizes 2 and 3 of dim 1" in message


def test_broadcast_of_another_rank_suggests_a_reshape() -> None:
    message = _message(_merge("multiply", [16, 7, 7], [16]), "merge")
    assert "same number of dimensions" in message and "Reshape to (16, 1, 1)" in message


# ----------------------------------------------------------------- pooling
@pytest.mark.parametrize("type_id", ["maxpool1d", "avgpool1d"])
def test_ceil_mode_output_sizes_match_torch(type_id: str) -> None:
    layer = get_layer(type_id)
    function = F.max_pool1d if type_id == "maxpool1d" else F.avg_pool1d
    for length, kernel, stride, padding, ceil in itertools.product(range(1, 10), range(1, 5), range(1, 4), range(3),
                                                                   (False, True)):
        p = Params({**layer.defaults(), "kernel_size": kernel, "stride": stride, "padding": padding,
                    "ceil_mode": ceil})
        if layer.check_params(p):
            continue  # padding above half the kernel: refused before any shape
        try:
            expected = function(torch.zeros(1, 2, length), kernel, stride, padding, ceil_mode=ceil).shape[-1]
        except RuntimeError:
            with pytest.raises(ShapeError):
                layer.infer(p, [TensorSpec((2, length))])
            continue
        assert layer.infer(p, [TensorSpec((2, length))]).output.dims == (2, expected), p


def test_ceil_mode_and_count_include_pad_reach_the_module_and_the_code() -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[3, 14, 13]),
          node("maxpool2d", "pool", kernel_size=[3, 3], stride=[2, 2], ceil_mode=True),
          node("avgpool2d", "avg", kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], count_include_pad=False),
          node("output", "out"))
    compiled = compile_graph(graph)
    x = torch.randn(2, 3, 14, 13)
    expected = F.avg_pool2d(F.max_pool2d(x, 3, 2, ceil_mode=True), 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(compiled.module(x), expected)
    assert analyze(graph).nodes["pool"].output.dims == (3, 7, 6)
    code = compiled.module.code.replace(" = ", "=")
    assert "ceil_mode=True" in code and "count_include_pad=False" in code


def test_pooling_nodes_of_old_files_keep_their_behaviour() -> None:
    text = ('{"format": "neural-canvas-project", "version": 1, "graph": {"nodes": ['
            '{"id": "x", "type": "input", "params": {"shape": [2, 8, 8]}},'
            '{"id": "pool", "type": "maxpool2d", "params": {"kernel_size": [2, 2], "stride": [0, 0],'
            ' "padding": [0, 0]}},'
            '{"id": "avg", "type": "avgpool2d", "params": {"kernel_size": [3, 3], "stride": [1, 1],'
            ' "padding": [1, 1]}},'
            '{"id": "out", "type": "output", "params": {}}], "edges": ['
            '{"source": "x", "target": "pool", "port": "in"}, {"source": "pool", "target": "avg", "port": "in"},'
            '{"source": "avg", "target": "out", "port": "in"}]}}')
    graph = loads(text).graph
    assert graph.nodes["pool"].params["ceil_mode"] is False and graph.nodes["avg"].params["count_include_pad"] is True
    code = compile_graph(graph).module.code
    assert "max_pool2d(x, (2, 2), (2, 2), (0, 0))" in code and "avg_pool2d(pool, (3, 3), (1, 1), (1, 1))" in code


# ------------------------------------------------------------------ reduce
def test_reduce_over_several_dims() -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[3, 4, 5]), node("reduce", "r", op="mean", dims=[1, -1]), node("output", "o"))
    assert analyze(graph).nodes["r"].output.dims == (4,)
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(compile_graph(graph).module(x), x.mean((1, 3)))
    graph.set_param("r", "keepdim", True)
    graph.set_param("r", "op", "max")
    assert analyze(graph).nodes["r"].output.dims == (1, 4, 1)
    torch.testing.assert_close(compile_graph(graph).module(x), x.amax((1, 3), keepdim=True))


@pytest.mark.parametrize(("dims", "words"), [([1, -3], "twice"), ([0], "batch dimension"), ([4], "does not exist"),
                                             ([1, 2, 3], "leaves only the batch")])
def test_reduce_refuses_bad_dims(dims: list[int], words: str) -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[3, 4, 5]), node("reduce", "r", dims=dims), node("output", "o"))
    assert words in _message(graph, "r")


# ----------------------------------------------------- groupnorm and select
def test_groupnorm_refuses_channels_not_divisible_by_its_groups() -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[30, 4, 4]), node("groupnorm", "gn", num_groups=8), node("output", "o"))
    message = _message(graph, "gn")
    assert message == ("receives 30 channels in (N, 30, 4, 4), which num_groups=8 does not divide: each group takes "
                       "an equal share of the channels; set num_groups to 6 or 10")
    graph.set_param("gn", "num_groups", 30)
    graph.set_param("x", "shape", [30, 1, 1])
    assert "single value" in _message(graph, "gn")


def test_select_index_outside_the_dimension() -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[5, 8]), node("select", "s", index=5), node("output", "o"))
    assert _message(graph, "s") == ("index 5 is outside dim 1 of (N, 5, 8), which has 5 positions: use 0 to 4, "
                                    "or -5 to -1 from the end")
    graph.set_param("s", "index", -1)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(compile_graph(graph).module(x), x[:, -1])


# ------------------------------------------------------------------- merges
def test_concatenate_takes_up_to_64_inputs() -> None:
    graph = _merge("concat", *([[2, 3, 3]] * 64))
    assert analyze(graph).nodes["merge"].output.dims == (128, 3, 3)
    assert get_layer("concat").check_params({"num_inputs": 65}) == [("num_inputs", "must be between 2 and 64, got 65")]


# -------------------------------------------------------------- recognizers
@pytest.mark.parametrize(("module", "type_id", "params"), [
    (nn.ReLU6(), "relu6", {}),
    (nn.Hardtanh(0.0, 6.0), "relu6", {}),
    (nn.Softplus(beta=2.0), "softplus", {"beta": 2.0, "threshold": 20.0}),
    (nn.PReLU(16), "prelu", {"per_channel": True}),
    (nn.GELU(approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (nn.GroupNorm(4, 16, affine=False), "groupnorm", {"num_groups": 4, "affine": False}),
    (nn.InstanceNorm2d(8, affine=True, track_running_stats=True), "instancenorm2d",
     {"affine": True, "track_running_stats": True}),
    (nn.MaxPool2d(3, 2, ceil_mode=True), "maxpool2d", {"ceil_mode": True, "kernel_size": [3, 3]}),
    (nn.AvgPool1d(3, 2, 1, count_include_pad=False), "avgpool1d", {"count_include_pad": False, "kernel_size": 3}),
    (nn.AdaptiveMaxPool2d((2, 3)), "adaptive_maxpool2d", {"output_size": [2, 3]}),
    (nn.AdaptiveAvgPool1d(4), "adaptive_avgpool1d", {"output_size": 4}),
    (nn.ChannelShuffle(4), "channel_shuffle", {"groups": 4}),
    (nn.MultiheadAttention(8, 2, batch_first=True), "multihead_attention", {"num_heads": 2}),
    (nn.TransformerDecoderLayer(8, 2, 16, batch_first=True), "transformer_decoder_layer",
     {"nhead": 2, "dim_feedforward": 16, "causal": False}),
])
def test_torch_modules_map_to_the_new_layers(module: nn.Module, type_id: str, params: dict) -> None:
    mapped = map_module(module)
    assert mapped is not None and mapped[0] == type_id
    assert params.items() <= mapped[1].items()


def test_modules_named_like_timm_and_torchvision_parts_map_by_name() -> None:
    class StochasticDepth(nn.Module):  # torchvision.ops.StochasticDepth's attributes
        def __init__(self) -> None:
            super().__init__()
            self.p, self.mode = 0.2, "batch"

    class LayerScale(nn.Module):  # timm's
        def __init__(self) -> None:
            super().__init__()
            self.gamma = nn.Parameter(torch.full((8,), 1e-5))

    class LayerNorm2d(nn.LayerNorm):  # ConvNeXt's
        pass

    assert map_module(StochasticDepth())[:2] == ("stochastic_depth", {"p": 0.2, "mode": "batch"})
    type_id, _, tensors = map_module(LayerScale())[:3]
    assert type_id == "layer_scale" and tensors["gamma"].shape == (8,)
    type_id, params, tensors = map_module(LayerNorm2d(16, eps=1e-6))[:3]
    assert type_id == "layernorm2d" and params["eps"] == 1e-6 and set(tensors) == {"weight", "bias"}


def test_traced_calls_map_to_the_new_layers() -> None:
    def read(name: str, args: list, kwargs: dict | None = None) -> tuple | None:
        """What the first recognizer of the function or method ``name`` that takes the call makes of it."""
        for type_id, recognizer in recognizers(FromCall):
            if name in recognizer.functions or name in recognizer.methods:
                found = recognizer.read(args, kwargs or {})
                if found is not None:
                    return type_id, found[0]
        return None

    x = torch.fx.Graph().placeholder("x")
    every = slice(None)
    assert read("F.hardtanh", [x, 0.0, 6.0]) == ("relu6", {})
    assert read("clamp", [x], {"min": 0, "max": 6}) == ("relu6", {})
    assert read("clamp", [x], {"min": 0, "max": 1}) is None
    assert read("torch.mean", [x, (2, 3)]) == ("reduce", {"op": "mean", "dims": [2, 3], "keepdim": False})
    assert read("amax", [x, -1, True]) == ("reduce", {"op": "max", "dims": [-1], "keepdim": True})
    assert read("torch.sum", [x]) is None  # a sum over everything, the batch included
    assert read("select", [x, 1, -1]) == ("select", {"dim": 1, "index": -1})
    assert read("operator.getitem", [x, (every, 0)]) == ("select", {"dim": 1, "index": 0})
    assert read("operator.getitem", [x, (every, every, -1, every)]) == ("select", {"dim": 2, "index": -1})
    assert read("operator.getitem", [x, (Ellipsis, 3)]) == ("select", {"dim": -1, "index": 3})
    assert read("operator.getitem", [x, (0,)]) is None  # the batch
    assert read("F.max_pool2d", [x, 3, 2], {"ceil_mode": True}) == (
        "maxpool2d", {"kernel_size": [3, 3], "stride": [2, 2], "padding": [0, 0], "ceil_mode": True})
    assert read("F.avg_pool1d", [x, 3, 2, 1, False, False]) == (
        "avgpool1d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": False, "count_include_pad": False})
    assert read("F.channel_shuffle", [x, 2]) == ("channel_shuffle", {"groups": 2})


def test_calls_with_learned_tensors_map_to_layers_that_hold_them() -> None:
    from engine.layers.recognize import Expanded

    graph = torch.fx.Graph()
    image, tokens = graph.placeholder("image"), graph.placeholder("tokens")
    image.meta["tensor_meta"] = _Meta((2, 16, 7, 7))
    tokens.meta["tensor_meta"] = _Meta((2, 5, 8))
    layer_scale = _call_reader("layer_scale")
    _, sources, tensors = layer_scale([torch.ones(16, 1, 1), image], {})  # torchvision's CNBlock
    assert sources == [image] and tensors["gamma"].shape == (16, 1, 1)
    assert layer_scale([tokens, torch.ones(1, 1, 8)], {})[2]["gamma"].shape == (8,)
    assert layer_scale([tokens, torch.ones(5, 1)], {}) is None  # not one scale per feature
    position = _call_reader("position_embedding")
    assert position([tokens, torch.zeros(1, 5, 8)], {})[2]["embedding"].shape == (1, 5, 8)
    assert position([tokens, torch.zeros(8)], {}) is None  # a bias, not a tensor of the input's shape
    class_token = _call_reader("class_token")
    _, sources, tensors = class_token([[Expanded(torch.zeros(1, 1, 8)), tokens]], {"dim": 1})
    assert sources == [tokens] and tensors["token"].shape == (1, 1, 8)
    prelu = _call_reader("prelu")
    assert prelu([image, torch.full((16,), 0.25)], {})[:2] == ({"per_channel": True}, [image])


def _call_reader(type_id: str) -> Any:
    """The read function of the layer's (first) traced-call recognizer."""
    return next(r for r in get_layer(type_id).imports if isinstance(r, FromCall)).read


class _Meta:
    """The part of torch.fx's ``TensorMetadata`` the recognizers read."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = torch.Size(shape)
