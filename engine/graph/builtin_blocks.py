"""Built-in block definitions: the building blocks of the classic architectures, as data.

Each builder returns a :class:`~engine.graph.blocks.BlockDefinition` made of ordinary layers
(node ids as in the reference PyTorch modules where they have names: ``conv1``, ``bn1``, ...),
so a learner can open one and see what is inside. Input channels are inferred from what an
instance receives; the Input nodes' shapes only serve to analyse a definition on its own.
:func:`builtin_library` holds the palette's set with typical sizes.
"""

from __future__ import annotations

from typing import Any

from engine.graph.blocks import BlockDefinition, BlockLibrary
from engine.graph.model import Edge, Graph, Node


class _Builder:
    """Adds nodes to a definition's graph and wires them."""

    def __init__(self, name: str, doc: str) -> None:
        self.definition = BlockDefinition(name, Graph(), doc)
        self.graph = self.definition.graph

    def add(self, type_id: str, node_id: str, source: str | list[str] | None = None, **params: Any) -> str:
        """Add node ``node_id`` fed by ``source`` (one id, or one per input port in order)."""
        self.graph.add_node(Node(node_id, type_id, params, (len(self.graph) * 160.0, 0.0)))
        sources = [source] if isinstance(source, str) else source or []
        for src, port in zip(sources, self.graph.nodes[node_id].input_ports()):
            self.graph.add_edge(Edge(src, node_id, port))
        return node_id

    def conv_bn(self, prefix: str, source: str, channels: int, kernel: int, stride: int = 1, groups: int = 1,
                activation: str | None = "relu", eps: float = 1e-5, momentum: float = 0.1,
                names: tuple[str, str, str] | None = None) -> str:
        """Conv2d (no bias, "same" padding) -> BatchNorm2d -> activation; returns the last id."""
        conv, bn, act = names or (f"{prefix}conv", f"{prefix}bn", f"{prefix}act")
        self.add("conv2d", conv, source, out_channels=channels, kernel_size=[kernel, kernel],
                 stride=[stride, stride], padding=[kernel // 2, kernel // 2], groups=groups, bias=False)
        last = self.add("batchnorm2d", bn, conv, eps=eps, momentum=momentum)
        return self.add(activation, act, bn) if activation else last


def basic_block(channels: int = 64, stride: int = 1, projection: bool = False, name: str = "BasicBlock",
                in_channels: int | None = None) -> BlockDefinition:
    """ResNet's basic block (He et al. 2016, Fig. 2 left): two 3x3 convolutions and a shortcut,
    the identity or (``projection``) a strided 1x1 convolution with batch norm."""
    b = _Builder(name, "ResNet basic block: 3x3 conv, BN, ReLU, 3x3 conv, BN, plus the shortcut, ReLU.")
    x = b.add("input", "x", shape=[in_channels or channels, 32, 32])
    h = b.conv_bn("", x, channels, 3, stride, names=("conv1", "bn1", "relu1"))
    h = b.conv_bn("", h, channels, 3, names=("conv2", "bn2", ""), activation=None)
    shortcut = _projection(b, x, channels, stride) if projection else x
    b.add("add", "add", [h, shortcut])
    b.add("output", "out", b.add("relu", "relu2", "add"))
    return b.definition


def bottleneck(channels: int = 64, stride: int = 1, projection: bool = False, expansion: int = 4,
               name: str = "Bottleneck", in_channels: int | None = None) -> BlockDefinition:
    """ResNet's bottleneck (Fig. 5 right, v1.5: the stride on the 3x3): 1x1 reduce to
    ``channels``, 3x3, 1x1 expand to ``expansion * channels``, plus the shortcut."""
    b = _Builder(name, "ResNet bottleneck: 1x1 reduce, 3x3, 1x1 expand (each with BN), plus the shortcut, ReLU.")
    out = channels * expansion
    x = b.add("input", "x", shape=[in_channels or out, 32, 32])
    h = b.conv_bn("", x, channels, 1, names=("conv1", "bn1", "relu1"))
    h = b.conv_bn("", h, channels, 3, stride, names=("conv2", "bn2", "relu2"))
    h = b.conv_bn("", h, out, 1, names=("conv3", "bn3", ""), activation=None)
    shortcut = _projection(b, x, out, stride) if projection else x
    b.add("add", "add", [h, shortcut])
    b.add("output", "out", b.add("relu", "relu3", "add"))
    return b.definition


def _projection(b: _Builder, source: str, channels: int, stride: int) -> str:
    return b.conv_bn("", source, channels, 1, stride, activation=None, names=("downsample_conv", "downsample_bn", ""))


def inverted_residual_se(expanded: int = 96, out_channels: int = 40, kernel: int = 5, stride: int = 1,
                         squeeze: int | None = None, residual: bool = True, activation: str = "hardswish",
                         name: str = "InvertedResidualSE", in_channels: int | None = None) -> BlockDefinition:
    """MobileNet v3's inverted residual (Howard et al. 2019) with squeeze-and-excitation, as in
    EfficientNet's MBConv: 1x1 expand, depthwise kxk, SE (pool, 1x1 reduce, ReLU, 1x1 expand,
    hard sigmoid gate), 1x1 project; plus the input when ``residual`` (stride 1, same channels).
    Batch norms use eps 0.001 and momentum 0.01 as torchvision's MobileNet v3."""
    b = _Builder(name, "Inverted residual with squeeze-and-excitation: 1x1 expand, depthwise conv, SE gate, "
                       "1x1 project, plus the input.")
    squeeze = squeeze or _make_divisible(expanded // 4)
    norm = {"eps": 1e-3, "momentum": 0.01}
    x = b.add("input", "x", shape=[in_channels or out_channels, 28, 28])
    h = b.conv_bn("expand_", x, expanded, 1, activation=activation, **norm)
    h = b.conv_bn("depthwise_", h, expanded, kernel, stride, groups=expanded, activation=activation, **norm)
    s = b.add("adaptive_avgpool2d", "se_pool", h, output_size=[1, 1])
    s = b.add("conv2d", "se_fc1", s, out_channels=squeeze, kernel_size=[1, 1])
    s = b.add("relu", "se_relu", s)
    s = b.add("conv2d", "se_fc2", s, out_channels=expanded, kernel_size=[1, 1])
    s = b.add("hardsigmoid", "se_gate", s)
    h = b.add("multiply", "se_scale", [s, h])
    h = b.conv_bn("project_", h, out_channels, 1, activation=None, **norm)
    if residual:
        h = b.add("add", "add", [h, x])
    b.add("output", "out", h)
    return b.definition


def _make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, never 10% below it (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def inception(ch1x1: int = 64, ch3x3red: int = 96, ch3x3: int = 128, ch5x5red: int = 16, ch5x5: int = 32,
              pool_proj: int = 32, kernel5: int = 5, name: str = "Inception",
              in_channels: int = 192) -> BlockDefinition:
    """GoogLeNet's Inception module (Szegedy et al. 2015, Fig. 2b; defaults: 3a): 1x1, 1x1 -> 3x3,
    1x1 -> 5x5 and 3x3 max pool -> 1x1 branches joined on channels; each convolution is followed by
    batch norm (eps 0.001) and ReLU as in torchvision (whose "5x5" is 3x3: ``kernel5=3``)."""
    b = _Builder(name, "Inception module: 1x1, 3x3 and 5x5 convolutions and a pooled 1x1 side by side, "
                       "joined on channels.")
    x = b.add("input", "x", shape=[in_channels, 28, 28])
    bn = {"eps": 1e-3}
    b1 = b.conv_bn("branch1_", x, ch1x1, 1, **bn)
    b2 = b.conv_bn("branch2_3x3_", b.conv_bn("branch2_1x1_", x, ch3x3red, 1, **bn), ch3x3, 3, **bn)
    b3 = b.conv_bn("branch3_5x5_", b.conv_bn("branch3_1x1_", x, ch5x5red, 1, **bn), ch5x5, kernel5, **bn)
    pool = b.add("maxpool2d", "branch4_pool", x, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1], ceil_mode=True)
    b4 = b.conv_bn("branch4_", pool, pool_proj, 1, **bn)
    b.add("output", "out", b.add("concat", "concat", [b1, b2, b3, b4], num_inputs=4, dim=1))
    return b.definition


def transformer_encoder(d_model: int = 256, nhead: int = 4, dim_feedforward: int = 1024, dropout: float = 0.1,
                        activation: str = "gelu", norm_first: bool = False, name: str = "TransformerEncoderBlock",
                        steps: int = 32) -> BlockDefinition:
    """A Transformer encoder block (Vaswani et al. 2017) from its parts: self-attention and an MLP,
    each with dropout, a residual and a LayerNorm (after the sum, or before each part with
    ``norm_first``); what the one-node Transformer Encoder Layer computes."""
    b = _Builder(name, "Transformer encoder block: self-attention, then an MLP, each with a residual "
                       "connection and LayerNorm.")
    x = b.add("input", "x", shape=[steps, d_model])
    h = b.add("layernorm", "norm1", x) if norm_first else x
    h = b.add("self_attention", "self_attn", h, num_heads=nhead, dropout=dropout)
    h = b.add("dropout", "dropout1", h, p=dropout)
    h = b.add("add", "add1", [x, h])
    h = h if norm_first else b.add("layernorm", "norm1", h)
    m = b.add("layernorm", "norm2", h) if norm_first else h
    m = b.add("linear", "linear1", m, out_features=dim_feedforward)
    m = b.add(activation, "activation", m)
    m = b.add("dropout", "dropout", m, p=dropout)
    m = b.add("linear", "linear2", m, out_features=d_model)
    m = b.add("dropout", "dropout2", m, p=dropout)
    h = b.add("add", "add2", [h, m])
    b.add("output", "out", h if norm_first else b.add("layernorm", "norm2", h))
    return b.definition


def unet_down(out_channels: int = 128, name: str = "UNetDown", in_channels: int | None = None) -> BlockDefinition:
    """A U-Net contracting step (Ronneberger et al. 2015): 2x2 max pool, then two 3x3 convolutions
    with batch norm and ReLU ("same" padding, as most implementations)."""
    b = _Builder(name, "U-Net down step: 2x2 max pool, then two 3x3 conv + BN + ReLU.")
    x = b.add("input", "x", shape=[in_channels or out_channels // 2, 64, 64])
    h = b.add("maxpool2d", "pool", x, kernel_size=[2, 2])
    h = b.conv_bn("conv1_", h, out_channels, 3)
    b.add("output", "out", b.conv_bn("conv2_", h, out_channels, 3))
    return b.definition


def unet_up(out_channels: int = 64, name: str = "UNetUp", in_channels: int | None = None) -> BlockDefinition:
    """A U-Net expanding step: a 2x2 transposed convolution doubles the size of ``x`` (to
    ``out_channels``), the encoder's ``skip`` tensor is joined in front of it on channels, then two
    3x3 convolutions with batch norm and ReLU."""
    b = _Builder(name, "U-Net up step: 2x2 transposed conv of x, joined with the skip tensor, then two "
                       "3x3 conv + BN + ReLU.")
    channels = in_channels or 2 * out_channels
    x = b.add("input", "x", shape=[channels, 32, 32])
    skip = b.add("input", "skip", shape=[channels - out_channels, 64, 64])
    up = b.add("conv_transpose2d", "up", x, out_channels=out_channels, kernel_size=[2, 2], stride=[2, 2])
    h = b.add("concat", "concat", [skip, up], num_inputs=2, dim=1)
    h = b.conv_bn("conv1_", h, out_channels, 3)
    b.add("output", "out", b.conv_bn("conv2_", h, out_channels, 3))
    return b.definition


def builtin_library() -> BlockLibrary:
    """The built-in definitions with typical sizes (a fresh copy each call: editing one never
    changes another project's)."""
    return BlockLibrary([
        basic_block(),
        basic_block(128, 2, projection=True, name="BasicBlockDown", in_channels=64),
        bottleneck(),
        bottleneck(64, 1, projection=True, name="BottleneckProjection", in_channels=64),
        bottleneck(128, 2, projection=True, name="BottleneckDown", in_channels=256),
        inverted_residual_se(),
        inception(),
        transformer_encoder(),
        unet_down(),
        unet_up(),
    ])
