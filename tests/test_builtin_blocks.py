"""Each built-in block definition computes exactly what its reference PyTorch module computes:
the same parameter count (analysis and built module) and the same outputs with the weights
copied in (eval mode, batch norm statistics randomised so they matter)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import Tensor, nn

from engine.block_shapes import analyze_blocks
from engine.compile.block_compile import compile_with_blocks
from engine.graph import Edge, Graph, Node
from engine.graph import builtin_blocks as bb
from engine.graph.blocks import BlockDefinition, BlockLibrary, instance_node
from engine.shapes import analyze
from tests.zoo import mobilenetv3, resnet
from tests.zoo.googlenet import BasicConv2d, Inception


class DoubleConv(nn.Sequential):
    """(3x3 conv, BN, ReLU) twice, as the common U-Net implementations."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.ReLU(), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class UNetDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool, self.conv = nn.MaxPool2d(2), DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.pool(x))


class UNetUp(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


RESNET = {"conv1": "conv1", "bn1": "bn1", "conv2": "conv2", "bn2": "bn2", "conv3": "conv3", "bn3": "bn3",
          "downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
INVERTED = {"expand_conv": "block.0.0", "expand_bn": "block.0.1", "depthwise_conv": "block.1.0",
            "depthwise_bn": "block.1.1", "se_fc1": "block.2.fc1", "se_fc2": "block.2.fc2",
            "project_conv": "block.3.0", "project_bn": "block.3.1"}
INCEPTION = {f"{ours}{part}": f"{theirs}.{part}" for ours, theirs in (
    ("branch1_", "branch1"), ("branch2_1x1_", "branch2.0"), ("branch2_3x3_", "branch2.1"), ("branch3_1x1_", "branch3.0"),
    ("branch3_5x5_", "branch3.1"), ("branch4_", "branch4.1")) for part in ("conv", "bn")}
ENCODER = {"self_attn.attention": "self_attn", "linear1": "linear1", "linear2": "linear2", "norm1": "norm1",
           "norm2": "norm2"}
UNET = {"conv1_conv": "conv.0", "conv1_bn": "conv.1", "conv2_conv": "conv.3", "conv2_bn": "conv.4"}


def _projection(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(resnet.conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))


def _inception_5x5() -> nn.Module:
    module = Inception(192, 64, 96, 128, 16, 32, 32)
    module.branch3[1] = BasicConv2d(16, 32, kernel_size=5, padding=2)
    return module


def _inverted(stride: int, in_channels: int) -> nn.Module:
    config = mobilenetv3.InvertedResidualConfig(in_channels, 5, 120, 40, True, "HS", stride, 1, 1.0)
    return mobilenetv3.InvertedResidual(config, partial(nn.BatchNorm2d, eps=0.001, momentum=0.01))


#: (definition, reference module, inner id -> reference submodule, input shapes)
CASES = {
    "basic": (lambda: bb.basic_block(64), lambda: resnet.BasicBlock(64, 64), RESNET, [(64, 8, 8)]),
    "basic_projection": (lambda: bb.basic_block(128, 2, projection=True),
                         lambda: resnet.BasicBlock(64, 128, 2, _projection(64, 128, 2)), RESNET, [(64, 8, 8)]),
    "bottleneck": (lambda: bb.bottleneck(16), lambda: resnet.Bottleneck(64, 16), RESNET, [(64, 8, 8)]),
    "bottleneck_projection": (lambda: bb.bottleneck(16, 2, projection=True),
                              lambda: resnet.Bottleneck(32, 16, 2, _projection(32, 64, 2)), RESNET, [(32, 9, 9)]),
    "inverted_residual_se": (lambda: bb.inverted_residual_se(120, 40), lambda: _inverted(1, 40), INVERTED,
                             [(40, 7, 7)]),
    "inverted_residual_se_stride2": (lambda: bb.inverted_residual_se(120, 40, stride=2, residual=False),
                                     lambda: _inverted(2, 24), INVERTED, [(24, 7, 7)]),
    "inception": (lambda: bb.inception(), _inception_5x5, INCEPTION, [(192, 6, 6)]),
    "transformer_encoder": (lambda: bb.transformer_encoder(32, 4, 64),
                            lambda: nn.TransformerEncoderLayer(32, 4, 64, 0.1, "gelu", batch_first=True), ENCODER,
                            [(5, 32)]),
    "transformer_encoder_pre_norm": (lambda: bb.transformer_encoder(32, 4, 64, norm_first=True),
                                     lambda: nn.TransformerEncoderLayer(32, 4, 64, 0.1, "gelu", batch_first=True,
                                                                        norm_first=True), ENCODER, [(5, 32)]),
    "unet_down": (lambda: bb.unet_down(32), lambda: UNetDown(16, 32), UNET, [(16, 8, 8)]),
    "unet_up": (lambda: bb.unet_up(16), lambda: UNetUp(32, 16), {**UNET, "up": "up"}, [(32, 4, 4), (16, 8, 8)]),
}


def _graph(definition: BlockDefinition, shapes: list[tuple[int, ...]]) -> Graph:
    graph = Graph()
    for port, shape in zip(definition.inputs, shapes):
        graph.add_node(Node(f"in_{port}", "input", {"shape": list(shape)}))
    graph.add_node(instance_node("b", definition))
    for port in definition.inputs:
        graph.add_edge(Edge(f"in_{port}", "b", port))
    graph.add_node(Node("y", "output"))
    graph.add_edge(Edge("b", "y", "in"))
    return graph


@pytest.mark.parametrize("case", CASES)
def test_builtin_definition_equals_its_reference_module(case: str) -> None:
    make_definition, make_reference, mapping, shapes = CASES[case]
    torch.manual_seed(0)
    definition, reference = make_definition(), make_reference().eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    library = BlockLibrary([definition])
    graph = _graph(definition, shapes)
    analysis = analyze_blocks(graph, library).analysis
    expected = sum(p.numel() for p in reference.parameters())
    assert analysis.valid and analysis.nodes["b"].parameters == expected
    compiled, flat = compile_with_blocks(graph, library)
    model = compiled.module.eval()
    assert sum(p.numel() for p in model.parameters()) == expected
    copied = 0
    for inner, theirs in mapping.items():
        target = f"b__{inner}"
        if target.split(".")[0] in flat.paths:
            model.get_submodule(target).load_state_dict(reference.get_submodule(theirs).state_dict())
            copied += sum(p.numel() for p in model.get_submodule(target).parameters())
    assert copied == expected
    inputs = [torch.randn(2, *shape) for shape in shapes]
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), reference(*inputs), rtol=1e-5, atol=1e-5)
        assert tuple(model(*inputs).shape[1:]) == analysis.nodes["b"].output.dims


def test_builtin_library_definitions_analyse_on_their_own() -> None:
    library = bb.builtin_library()
    assert library.cycle() is None and len(library) == 10
    for definition in library.values():
        assert analyze(definition.graph).valid, definition.name
    assert bb.builtin_library()["BasicBlock"] is not library["BasicBlock"]
