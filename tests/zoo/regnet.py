"""RegNet: Radosavovic et al., "Designing Network Design Spaces" (CVPR 2020): the quantized
linear parametrisation of Sec. 3.3 (widths u_j = w_0 + w_a * j, quantized by powers of w_m,
rounded to multiples of 8, grouped into stages of equal width), the X block (Fig. 4: 1x1,
3x3 group conv, 1x1 residual bottleneck) and the Y variant with squeeze-excitation
(ratio 0.25 of the block's input width). RegNetY-400MF: d = 16, w_0 = 48, w_a = 27.89,
w_m = 2.09, g = 8 (Table 7 / the pycls model zoo).

Smallest input: 1 x 1 (every convolution is padded; global pooling).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from tests.zoo.ops import Conv2dNormActivation, SqueezeExcitation, make_divisible

ModuleFactory = Callable[..., nn.Module]


class SimpleStemIN(Conv2dNormActivation):
    """The ImageNet stem: 3x3/2 convolution, BN, activation."""

    def __init__(self, width_in: int, width_out: int, norm_layer: ModuleFactory,
                 activation_layer: ModuleFactory) -> None:
        super().__init__(width_in, width_out, kernel_size=3, stride=2, norm_layer=norm_layer,
                         activation_layer=activation_layer)


class BottleneckTransform(nn.Sequential):
    """Fig. 4 (b): ``a`` 1x1, ``b`` 3x3 group conv (strided), optional ``se``, ``c`` 1x1 linear.

    Args:
        width_in: input channels.
        width_out: output channels.
        stride: stride of ``b``.
        norm_layer: norm factory.
        activation_layer: activation factory.
        group_width: channels per group of ``b``.
        bottleneck_multiplier: inner width over ``width_out``.
        se_ratio: squeeze width over ``width_in``; no SE when None.
    """

    def __init__(self, width_in: int, width_out: int, stride: int, norm_layer: ModuleFactory,
                 activation_layer: ModuleFactory, group_width: int, bottleneck_multiplier: float,
                 se_ratio: float | None) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        w_b = round(width_out * bottleneck_multiplier)
        g = w_b // group_width
        layers["a"] = Conv2dNormActivation(width_in, w_b, kernel_size=1, stride=1, norm_layer=norm_layer,
                                           activation_layer=activation_layer)
        layers["b"] = Conv2dNormActivation(w_b, w_b, kernel_size=3, stride=stride, groups=g,
                                           norm_layer=norm_layer, activation_layer=activation_layer)
        if se_ratio:
            width_se_out = round(se_ratio * width_in)
            layers["se"] = SqueezeExcitation(input_channels=w_b, squeeze_channels=width_se_out,
                                             activation=activation_layer)
        layers["c"] = Conv2dNormActivation(w_b, width_out, kernel_size=1, stride=1, norm_layer=norm_layer,
                                           activation_layer=None)
        super().__init__(layers)


class ResBottleneckBlock(nn.Module):
    """Residual bottleneck: ``f`` (:class:`BottleneckTransform`) plus identity or ``proj``, then ReLU.

    Shape:
        (N, width_in, H, W) -> (N, width_out, H / stride, W / stride).
    """

    def __init__(self, width_in: int, width_out: int, stride: int, norm_layer: ModuleFactory,
                 activation_layer: ModuleFactory, group_width: int = 1, bottleneck_multiplier: float = 1.0,
                 se_ratio: float | None = None) -> None:
        super().__init__()
        self.proj: nn.Module | None = None
        should_proj = (width_in != width_out) or (stride != 1)
        if should_proj:
            self.proj = Conv2dNormActivation(width_in, width_out, kernel_size=1, stride=stride,
                                             norm_layer=norm_layer, activation_layer=None)
        self.f = BottleneckTransform(width_in, width_out, stride, norm_layer, activation_layer, group_width,
                                     bottleneck_multiplier, se_ratio)
        self.activation = activation_layer(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.proj is not None:
            x = self.proj(x) + self.f(x)
        else:
            x = x + self.f(x)
        return self.activation(x)


class AnyStage(nn.Sequential):
    """``depth`` blocks named ``block{stage}-{i}``; the first one strides and changes width."""

    def __init__(self, width_in: int, width_out: int, stride: int, depth: int, block_constructor: ModuleFactory,
                 norm_layer: ModuleFactory, activation_layer: ModuleFactory, group_width: int,
                 bottleneck_multiplier: float, se_ratio: float | None = None, stage_index: int = 0) -> None:
        super().__init__()
        for i in range(depth):
            block = block_constructor(width_in if i == 0 else width_out, width_out, stride if i == 0 else 1,
                                      norm_layer, activation_layer, group_width, bottleneck_multiplier, se_ratio)
            self.add_module(f"block{stage_index}-{i}", block)


@dataclass
class BlockParams:
    """Per-stage depth, width, group width, bottleneck multiplier and stride, plus the SE ratio."""

    depths: list[int]
    widths: list[int]
    group_widths: list[int]
    bottleneck_multipliers: list[float]
    strides: list[int]
    se_ratio: float | None = None

    @classmethod
    def from_init_params(cls, depth: int, w_0: int, w_a: float, w_m: float, group_width: int,
                         bottleneck_multiplier: float = 1.0, se_ratio: float | None = None) -> BlockParams:
        """Sec. 3.3: continuous widths, quantized to w_0 * w_m^s and rounded to 8, split into stages.

        The arithmetic runs in float32 on the CPU (as the reference implementation does), so
        the rounding of borderline widths is reproduced exactly, whatever the default device.
        """
        quant = 8
        stride = 2
        if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8 != 0:
            raise ValueError("Invalid RegNet settings")
        widths_cont = torch.arange(depth, device="cpu") * w_a + w_0
        block_capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
        block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, block_capacity), quant)) * quant).int().tolist()
        num_stages = len(set(block_widths))
        # A stage ends wherever the width changes.
        split_helper = zip(block_widths + [0], [0] + block_widths, block_widths + [0], [0] + block_widths)
        splits = [w != wp or r != rp for w, wp, r, rp in split_helper]
        stage_widths = [w for w, t in zip(block_widths, splits[:-1]) if t]
        boundaries = [d for d, t in enumerate(splits) if t]
        stage_depths = [b - a for a, b in itertools.pairwise(boundaries)]
        strides = [stride] * num_stages
        bottleneck_multipliers = [bottleneck_multiplier] * num_stages
        group_widths = [group_width] * num_stages
        stage_widths, group_widths = _adjust_widths_groups_compatibility(stage_widths, bottleneck_multipliers,
                                                                         group_widths)
        return cls(depths=stage_depths, widths=stage_widths, group_widths=group_widths,
                   bottleneck_multipliers=bottleneck_multipliers, strides=strides, se_ratio=se_ratio)

    def expanded(self) -> list[tuple[int, int, int, int, float]]:
        """(width, stride, depth, group width, bottleneck multiplier) per stage."""
        return list(zip(self.widths, self.strides, self.depths, self.group_widths, self.bottleneck_multipliers))


def _adjust_widths_groups_compatibility(stage_widths: list[int], bottleneck_ratios: list[float],
                                        group_widths: list[int]) -> tuple[list[int], list[int]]:
    """Make each stage's bottleneck width a multiple of its group width (never above it)."""
    widths = [int(w * b) for w, b in zip(stage_widths, bottleneck_ratios)]
    group_widths_min = [min(g, w_bot) for g, w_bot in zip(group_widths, widths)]
    ws_bot = [make_divisible(w_bot, g) for w_bot, g in zip(widths, group_widths_min)]
    stage_widths = [int(w_bot / b) for w_bot, b in zip(ws_bot, bottleneck_ratios)]
    return stage_widths, group_widths_min


class RegNet(nn.Module):
    """``stem``, ``trunk_output`` (stages ``block1..``), ``avgpool``, ``fc``.

    Weights: convolutions N(0, sqrt(2 / (k * k * out_channels))); BN weight 1, bias 0;
    Linear N(0, 0.01), bias 0.

    Args:
        block_params: the stages.
        num_classes: output classes.
        stem_width: stem channels.
        norm_layer: norm factory (BatchNorm2d, eps 1e-5, momentum 0.1 when None).
        activation: activation factory (ReLU when None).

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, block_params: BlockParams, num_classes: int = 1000, stem_width: int = 32,
                 norm_layer: ModuleFactory | None = None, activation: ModuleFactory | None = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1)
        if activation is None:
            activation = nn.ReLU
        self.stem = SimpleStemIN(3, stem_width, norm_layer, activation)
        current_width = stem_width
        blocks: list[tuple[str, nn.Module]] = []
        for i, (width_out, stride, depth, group_width, bottleneck_multiplier) in enumerate(block_params.expanded()):
            blocks.append((f"block{i + 1}", AnyStage(current_width, width_out, stride, depth, ResBottleneckBlock,
                                                     norm_layer, activation, group_width, bottleneck_multiplier,
                                                     block_params.se_ratio, stage_index=i + 1)))
            current_width = width_out
        self.trunk_output = nn.Sequential(OrderedDict(blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_features=current_width, out_features=num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.trunk_output(x)
        x = self.avgpool(x)
        x = x.flatten(start_dim=1)
        return self.fc(x)


def regnet_y_400mf(num_classes: int = 1000, depth: int = 16, w_0: int = 48, w_a: float = 27.89,
                   w_m: float = 2.09, group_width: int = 8, se_ratio: float = 0.25,
                   stem_width: int = 32) -> RegNet:
    """RegNetY-400MF (4,344,144 parameters)."""
    params = BlockParams.from_init_params(depth=depth, w_0=w_0, w_a=w_a, w_m=w_m, group_width=group_width,
                                          se_ratio=se_ratio)
    return RegNet(params, num_classes=num_classes, stem_width=stem_width)
