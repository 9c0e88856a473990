"""EfficientNet-B0: Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks" (ICML 2019), Table 1: MBConv blocks (Sandler et al. 2018 inverted residuals
with squeeze-excitation to a quarter of the block's input width, SiLU), stochastic depth on
the residual branch rising linearly from 0 to 0.2 over the blocks (training mode only),
dropout 0.2, compound scaling of width and depth.

Initialisation: convolutions are Kaiming-normal with fan-in (He et al., 2015, Eq. 10, which
keeps the forward variance), not torchvision's fan-out. With fan-out a depthwise 3x3 layer
of C channels scales the variance by 2 / C, and a fresh model in eval mode (BatchNorm with
its initial running statistics) gives logits that hardly depend on the input.

Smallest input: 1 x 1 (every convolution is padded; global pooling).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from tests.zoo.ops import Conv2dNormActivation, SqueezeExcitation, StochasticDepth, make_divisible

ModuleFactory = Callable[..., nn.Module]


class MBConvConfig:
    """One stage of Table 1, scaled: expansion, kernel, stride, in / out channels, layers.

    Args:
        expand_ratio: MBConv expansion (1 or 6).
        kernel: depthwise kernel (3 or 5).
        stride: stride of the stage's first block.
        input_channels, out_channels: unscaled widths.
        num_layers: unscaled number of blocks.
        width_mult: channel multiplier (rounded to multiples of 8).
        depth_mult: layer multiplier (rounded up).
    """

    def __init__(self, expand_ratio: float, kernel: int, stride: int, input_channels: int, out_channels: int,
                 num_layers: int, width_mult: float = 1.0, depth_mult: float = 1.0) -> None:
        self.expand_ratio = expand_ratio
        self.kernel = kernel
        self.stride = stride
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.num_layers = self.adjust_depth(num_layers, depth_mult)

    @staticmethod
    def adjust_channels(channels: int, width_mult: float, min_value: int | None = None) -> int:
        return make_divisible(channels * width_mult, 8, min_value)

    @staticmethod
    def adjust_depth(num_layers: int, depth_mult: float) -> int:
        return math.ceil(num_layers * depth_mult)


class MBConv(nn.Module):
    """Expand 1x1 (unless ratio 1), depthwise kxk, SE, project 1x1; stochastic depth + shortcut.

    Args:
        cnf: the block's configuration.
        stochastic_depth_prob: probability of dropping the residual branch in training.
        norm_layer: norm factory.
        se_layer: squeeze-excitation factory.

    Shape:
        (N, in, H, W) -> (N, out, H / stride, W / stride).
    """

    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float, norm_layer: ModuleFactory,
                 se_layer: ModuleFactory = SqueezeExcitation) -> None:
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError("illegal stride value")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        activation_layer = nn.SiLU
        expanded_channels = cnf.adjust_channels(cnf.input_channels, cnf.expand_ratio)
        if expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation_layer))
        layers.append(Conv2dNormActivation(expanded_channels, expanded_channels, kernel_size=cnf.kernel,
                                           stride=cnf.stride, groups=expanded_channels, norm_layer=norm_layer,
                                           activation_layer=activation_layer))
        squeeze_channels = max(1, cnf.input_channels // 4)
        layers.append(se_layer(expanded_channels, squeeze_channels, activation=partial(nn.SiLU, inplace=True)))
        layers.append(Conv2dNormActivation(expanded_channels, cnf.out_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = cnf.out_channels

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += input
        return result


class EfficientNet(nn.Module):
    """``features`` (stem, one Sequential per stage, 1x1 head conv), ``avgpool``, ``classifier``.

    Weights: convolutions Kaiming-normal (fan-in, see the module docstring); BN weight 1, bias 0; Linear
    uniform(+-1/sqrt(out_features)).

    Args:
        inverted_residual_setting: the stages.
        dropout: dropout before the classifier.
        stochastic_depth_prob: drop probability of the last block (linear from 0).
        num_classes: output classes.
        norm_layer: norm factory (BatchNorm2d when None).
        last_channel: head width (4x the last stage's when None).

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, inverted_residual_setting: list[MBConvConfig], dropout: float,
                 stochastic_depth_prob: float = 0.2, num_classes: int = 1000,
                 norm_layer: ModuleFactory | None = None, last_channel: int | None = None) -> None:
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        layers: list[nn.Module] = []
        firstconv_output_channels = inverted_residual_setting[0].input_channels
        layers.append(Conv2dNormActivation(3, firstconv_output_channels, kernel_size=3, stride=2,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))
        total_stage_blocks = sum(cnf.num_layers for cnf in inverted_residual_setting)
        stage_block_id = 0
        for cnf in inverted_residual_setting:
            stage: list[nn.Module] = []
            for _ in range(cnf.num_layers):
                block_cnf = copy.copy(cnf)
                if stage:
                    block_cnf.input_channels = block_cnf.out_channels
                    block_cnf.stride = 1
                sd_prob = stochastic_depth_prob * float(stage_block_id) / total_stage_blocks
                stage.append(MBConv(block_cnf, sd_prob, norm_layer))
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
        lastconv_input_channels = inverted_residual_setting[-1].out_channels
        lastconv_output_channels = last_channel if last_channel is not None else 4 * lastconv_input_channels
        layers.append(Conv2dNormActivation(lastconv_input_channels, lastconv_output_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(lastconv_output_channels, num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def _forward_impl(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def efficientnet_config(width_mult: float = 1.0, depth_mult: float = 1.0) -> list[MBConvConfig]:
    """Table 1's seven stages (B0) scaled by ``width_mult`` and ``depth_mult``."""
    bneck = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    return [
        bneck(1, 3, 1, 32, 16, 1),
        bneck(6, 3, 2, 16, 24, 2),
        bneck(6, 5, 2, 24, 40, 2),
        bneck(6, 3, 2, 40, 80, 3),
        bneck(6, 5, 1, 80, 112, 3),
        bneck(6, 5, 2, 112, 192, 4),
        bneck(6, 3, 1, 192, 320, 1),
    ]


def efficientnet_b0(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0,
                    dropout: float = 0.2, stochastic_depth_prob: float = 0.2) -> EfficientNet:
    """EfficientNet-B0 (5,288,548 parameters)."""
    return EfficientNet(efficientnet_config(width_mult, depth_mult), dropout,
                        stochastic_depth_prob=stochastic_depth_prob, num_classes=num_classes)
