"""ConvNeXt: Liu et al., "A ConvNet for the 2020s" (CVPR 2022), Fig. 4 block (7x7 depthwise,
LayerNorm over channels, 1x1 expand by 4 with GELU, 1x1 project, layer scale 1e-6,
stochastic depth) with the "patchify" 4x4/4 stem and LayerNorm + 2x2/2 downsampling between
stages. ConvNeXt-T: widths (96, 192, 384, 768), depths (3, 3, 9, 3), drop path 0.1.

Inside a block the 1x1 convolutions are Linear layers on channels-last tensors (permute,
LayerNorm, Linear, GELU, Linear, permute back); outside, :class:`LayerNorm2d` normalises the
channels of an NCHW image by permuting to NHWC and back.

Smallest input: 32 x 32 (the stem and three downsamplings divide by 32, unpadded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.ops import Conv2dNormActivation, Permute, StochasticDepth

ModuleFactory = Callable[..., nn.Module]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an (N, C, H, W) tensor."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x


class CNBlock(nn.Module):
    """Fig. 4 (ConvNeXt block): ``x + drop_path(gamma * block(x))``.

    Args:
        dim: channels.
        layer_scale: initial value of the per-channel scale ``gamma``.
        stochastic_depth_prob: probability of dropping the branch in training.
        norm_layer: factory of the channels-last norm (LayerNorm, eps 1e-6 when None).

    Shape:
        (N, dim, H, W) -> (N, dim, H, W).
    """

    def __init__(self, dim: int, layer_scale: float, stochastic_depth_prob: float,
                 norm_layer: ModuleFactory | None = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]),
            norm_layer(dim),
            nn.Linear(in_features=dim, out_features=4 * dim, bias=True),
            nn.GELU(),
            nn.Linear(in_features=4 * dim, out_features=dim, bias=True),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, input: Tensor) -> Tensor:
        result = self.layer_scale * self.block(input)
        result = self.stochastic_depth(result)
        result += input
        return result


class CNBlockConfig:
    """One stage: its width, the next stage's width (None for the last), and its depth."""

    def __init__(self, input_channels: int, out_channels: int | None, num_layers: int) -> None:
        self.input_channels = input_channels
        self.out_channels = out_channels
        self.num_layers = num_layers


class ConvNeXt(nn.Module):
    """``features`` (stem, stages with downsampling between them), ``avgpool``, ``classifier``
    (LayerNorm2d, Flatten, Linear).

    Weights: convolutions and linear layers truncated normal (std 0.02), biases 0.

    Args:
        block_setting: the stages.
        stochastic_depth_prob: drop probability of the last block (linear from 0).
        layer_scale: initial layer scale.
        num_classes: output classes.

    Shape:
        (N, 3, H, W) with H, W >= 32 -> (N, num_classes).
    """

    def __init__(self, block_setting: list[CNBlockConfig], stochastic_depth_prob: float = 0.0,
                 layer_scale: float = 1e-6, num_classes: int = 1000) -> None:
        super().__init__()
        if not block_setting:
            raise ValueError("The block_setting should not be empty")
        block = CNBlock
        norm_layer = partial(LayerNorm2d, eps=1e-6)
        layers: list[nn.Module] = []
        firstconv_output_channels = block_setting[0].input_channels
        layers.append(Conv2dNormActivation(3, firstconv_output_channels, kernel_size=4, stride=4, padding=0,
                                           norm_layer=norm_layer, activation_layer=None, bias=True))
        total_stage_blocks = sum(cnf.num_layers for cnf in block_setting)
        stage_block_id = 0
        for cnf in block_setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                sd_prob = stochastic_depth_prob * stage_block_id / (total_stage_blocks - 1.0)
                stage.append(block(cnf.input_channels, layer_scale, sd_prob))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
            if cnf.out_channels is not None:
                layers.append(nn.Sequential(
                    norm_layer(cnf.input_channels),
                    nn.Conv2d(cnf.input_channels, cnf.out_channels, kernel_size=2, stride=2),
                ))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        lastblock = block_setting[-1]
        lastconv_output_channels = (lastblock.out_channels if lastblock.out_channels is not None
                                    else lastblock.input_channels)
        self.classifier = nn.Sequential(norm_layer(lastconv_output_channels), nn.Flatten(1),
                                        nn.Linear(lastconv_output_channels, num_classes))

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _forward_impl(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        return self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def convnext_tiny(num_classes: int = 1000, dims: Sequence[int] = (96, 192, 384, 768),
                  depths: Sequence[int] = (3, 3, 9, 3), stochastic_depth_prob: float = 0.1,
                  layer_scale: float = 1e-6) -> ConvNeXt:
    """ConvNeXt-T (28,589,128 parameters)."""
    if len(dims) != len(depths):
        raise ValueError("dims and depths must have the same length")
    nexts: list[int | None] = [*dims[1:], None]
    setting = [CNBlockConfig(d, n, k) for d, n, k in zip(dims, nexts, depths)]
    return ConvNeXt(setting, stochastic_depth_prob=stochastic_depth_prob, layer_scale=layer_scale,
                    num_classes=num_classes)
