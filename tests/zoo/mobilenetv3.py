"""MobileNet v3: Howard et al., "Searching for MobileNetV3" (ICCV 2019), Table 1 (Large) and
Table 2 (Small): inverted residuals with optional squeeze-excitation (gate Hardsigmoid,
squeeze to a quarter of the expanded width rounded to 8), ReLU or Hardswish, BatchNorm with
eps 0.001 / momentum 0.01, and a 1x1 head without BN after global pooling.

Initialisation: convolutions are Kaiming-normal with fan-in (He et al., 2015, Eq. 10, which
keeps the forward variance), not torchvision's fan-out. With fan-out a depthwise 3x3 layer
of C channels scales the variance by 2 / C, and a fresh model in eval mode (BatchNorm with
its initial running statistics) gives logits that hardly depend on the input.

Smallest input: 1 x 1 (every convolution is padded; global pooling).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from tests.zoo.ops import Conv2dNormActivation, SqueezeExcitation, make_divisible

ModuleFactory = Callable[..., nn.Module]

# Squeeze-excitation gated by Hardsigmoid (Sec. 5.2).
HARD_SE: ModuleFactory = partial(SqueezeExcitation, scale_activation=nn.Hardsigmoid)


class InvertedResidualConfig:
    """One row of Tables 1/2 with channels already scaled by ``width_mult``.

    Args:
        input_channels: input channels.
        kernel: depthwise kernel size.
        expanded_channels: "exp size".
        out_channels: "#out".
        use_se: "SE".
        activation: "RE" (ReLU) or "HS" (Hardswish), "NL".
        stride: "s".
        dilation: depthwise dilation (1 unless ``dilated``).
        width_mult: the channel multiplier.
    """

    def __init__(self, input_channels: int, kernel: int, expanded_channels: int, out_channels: int,
                 use_se: bool, activation: str, stride: int, dilation: int, width_mult: float) -> None:
        self.input_channels = self.adjust_channels(input_channels, width_mult)
        self.kernel = kernel
        self.expanded_channels = self.adjust_channels(expanded_channels, width_mult)
        self.out_channels = self.adjust_channels(out_channels, width_mult)
        self.use_se = use_se
        self.use_hs = activation == "HS"
        self.stride = stride
        self.dilation = dilation

    @staticmethod
    def adjust_channels(channels: int, width_mult: float) -> int:
        return make_divisible(channels * width_mult, 8)


class InvertedResidual(nn.Module):
    """Expand 1x1 (unless exp == in), depthwise kxk, optional SE, project 1x1 (no activation).

    Args:
        cnf: the block's configuration.
        norm_layer: norm factory.
        se_layer: squeeze-excitation factory, called with (expanded, squeeze) channels.

    Shape:
        (N, in, H, W) -> (N, out, H / stride, W / stride).
    """

    def __init__(self, cnf: InvertedResidualConfig, norm_layer: ModuleFactory,
                 se_layer: ModuleFactory = HARD_SE) -> None:
        super().__init__()
        if not 1 <= cnf.stride <= 2:
            raise ValueError("illegal stride value")
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        activation_layer: ModuleFactory = nn.Hardswish if cnf.use_hs else nn.ReLU
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, cnf.expanded_channels, kernel_size=1,
                                               norm_layer=norm_layer, activation_layer=activation_layer))
        stride = 1 if cnf.dilation > 1 else cnf.stride
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.expanded_channels, kernel_size=cnf.kernel,
                                           stride=stride, dilation=cnf.dilation, groups=cnf.expanded_channels,
                                           norm_layer=norm_layer, activation_layer=activation_layer))
        if cnf.use_se:
            squeeze_channels = make_divisible(cnf.expanded_channels // 4, 8)
            layers.append(se_layer(cnf.expanded_channels, squeeze_channels))
        layers.append(Conv2dNormActivation(cnf.expanded_channels, cnf.out_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels
        self._is_cn = cnf.stride > 1

    def forward(self, input: Tensor) -> Tensor:
        result = self.block(input)
        if self.use_res_connect:
            result += input
        return result


class MobileNetV3(nn.Module):
    """``features`` (stem, blocks, 1x1 conv to 6x), ``avgpool``, ``classifier`` (Linear,
    Hardswish, Dropout, Linear).

    Weights: convolutions Kaiming-normal (fan-in, see the module docstring); BN weight 1, bias 0; Linear N(0, 0.01).

    Args:
        inverted_residual_setting: the block configurations.
        last_channel: width of the classifier's hidden layer.
        num_classes: output classes.
        norm_layer: norm factory (BatchNorm2d, eps 0.001, momentum 0.01 when None).
        dropout: classifier dropout.

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, inverted_residual_setting: list[InvertedResidualConfig], last_channel: int,
                 num_classes: int = 1000, norm_layer: ModuleFactory | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        if not inverted_residual_setting:
            raise ValueError("The inverted_residual_setting should not be empty")
        if norm_layer is None:
            norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers: list[nn.Module] = []
        firstconv_output_channels = inverted_residual_setting[0].input_channels
        layers.append(Conv2dNormActivation(3, firstconv_output_channels, kernel_size=3, stride=2,
                                           norm_layer=norm_layer, activation_layer=nn.Hardswish))
        for cnf in inverted_residual_setting:
            layers.append(InvertedResidual(cnf, norm_layer))
        lastconv_input_channels = inverted_residual_setting[-1].out_channels
        lastconv_output_channels = 6 * lastconv_input_channels
        layers.append(Conv2dNormActivation(lastconv_input_channels, lastconv_output_channels, kernel_size=1,
                                           norm_layer=norm_layer, activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(lastconv_output_channels, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def _forward_impl(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def mobilenet_v3_config(arch: str, width_mult: float = 1.0, reduced_tail: bool = False,
                        dilated: bool = False) -> tuple[list[InvertedResidualConfig], int]:
    """Table 1 ("mobilenet_v3_large") or Table 2 ("mobilenet_v3_small") and the head width.

    Args:
        arch: the architecture name.
        width_mult: channel multiplier.
        reduced_tail: halve the last stage's channels (Sec. 6.1.2, for detection backbones).
        dilated: dilate the last stage instead of striding.

    Returns:
        The block configurations and ``last_channel``.
    """
    reduce_divider = 2 if reduced_tail else 1
    dilation = 2 if dilated else 1
    bneck = partial(InvertedResidualConfig, width_mult=width_mult)
    rd = reduce_divider
    if arch == "mobilenet_v3_large":
        setting = [
            bneck(16, 3, 16, 16, False, "RE", 1, 1),
            bneck(16, 3, 64, 24, False, "RE", 2, 1),
            bneck(24, 3, 72, 24, False, "RE", 1, 1),
            bneck(24, 5, 72, 40, True, "RE", 2, 1),
            bneck(40, 5, 120, 40, True, "RE", 1, 1),
            bneck(40, 5, 120, 40, True, "RE", 1, 1),
            bneck(40, 3, 240, 80, False, "HS", 2, 1),
            bneck(80, 3, 200, 80, False, "HS", 1, 1),
            bneck(80, 3, 184, 80, False, "HS", 1, 1),
            bneck(80, 3, 184, 80, False, "HS", 1, 1),
            bneck(80, 3, 480, 112, True, "HS", 1, 1),
            bneck(112, 3, 672, 112, True, "HS", 1, 1),
            bneck(112, 5, 672, 160 // rd, True, "HS", 2, dilation),
            bneck(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dilation),
            bneck(160 // rd, 5, 960 // rd, 160 // rd, True, "HS", 1, dilation),
        ]
        last_channel = InvertedResidualConfig.adjust_channels(1280 // rd, width_mult)
    elif arch == "mobilenet_v3_small":
        setting = [
            bneck(16, 3, 16, 16, True, "RE", 2, 1),
            bneck(16, 3, 72, 24, False, "RE", 2, 1),
            bneck(24, 3, 88, 24, False, "RE", 1, 1),
            bneck(24, 5, 96, 40, True, "HS", 2, 1),
            bneck(40, 5, 240, 40, True, "HS", 1, 1),
            bneck(40, 5, 240, 40, True, "HS", 1, 1),
            bneck(40, 5, 120, 48, True, "HS", 1, 1),
            bneck(48, 5, 144, 48, True, "HS", 1, 1),
            bneck(48, 5, 288, 96 // rd, True, "HS", 2, dilation),
            bneck(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dilation),
            bneck(96 // rd, 5, 576 // rd, 96 // rd, True, "HS", 1, dilation),
        ]
        last_channel = InvertedResidualConfig.adjust_channels(1024 // rd, width_mult)
    else:
        raise ValueError(f"Unsupported model type {arch}")
    return setting, last_channel


def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    """MobileNet v3 Large 1.0 (5,483,032 parameters)."""
    setting, last_channel = mobilenet_v3_config("mobilenet_v3_large", width_mult)
    return MobileNetV3(setting, last_channel, num_classes=num_classes, dropout=dropout)


def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> MobileNetV3:
    """MobileNet v3 Small 1.0 (2,542,856 parameters)."""
    setting, last_channel = mobilenet_v3_config("mobilenet_v3_small", width_mult)
    return MobileNetV3(setting, last_channel, num_classes=num_classes, dropout=dropout)
