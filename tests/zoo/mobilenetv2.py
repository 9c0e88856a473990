"""MobileNet v2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
(CVPR 2018), Table 2 (stages) and Table 1 (the bottleneck: 1x1 expand, 3x3 depthwise,
linear 1x1 project; ReLU6), with the identity shortcut when stride is 1 and shapes match.

Initialisation: convolutions are Kaiming-normal with fan-in (He et al., 2015, Eq. 10, which
keeps the forward variance), not torchvision's fan-out. With fan-out a depthwise 3x3 layer
of C channels scales the variance by 2 / C, and a fresh model in eval mode (BatchNorm with
its initial running statistics) gives logits that hardly depend on the input.

Smallest input: 1 x 1 (every convolution is padded; global pooling).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.zoo.ops import Conv2dNormActivation, make_divisible

NormFactory = Callable[[int], nn.Module]

# Table 2: expansion t, output channels c, repeats n, first stride s.
DEFAULT_SETTING: list[list[int]] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


class InvertedResidual(nn.Module):
    """Bottleneck residual block (Table 1): expand (unless t = 1), depthwise, linear project.

    Args:
        inp: input channels.
        oup: output channels.
        stride: depthwise stride (1 or 2).
        expand_ratio: expansion factor t.
        norm_layer: norm factory.

    Shape:
        (N, inp, H, W) -> (N, oup, H / stride, W / stride).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int,
                 norm_layer: NormFactory | None = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.stride = stride
        hidden_dim = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer,
                                               activation_layer=nn.ReLU6))
        layers.extend([
            Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim,
                                 norm_layer=norm_layer, activation_layer=nn.ReLU6),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ])
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """``features`` (stem, 17 bottlenecks, 1x1 to 1280), global pool, ``classifier``.

    Weights: convolutions Kaiming-normal (fan-in, see the module docstring); BN weight 1, bias 0; Linear N(0, 0.01).

    Args:
        num_classes: output classes.
        width_mult: channel multiplier (Sec. 6.1); the last layer never narrows below 1280.
        inverted_residual_setting: rows of (t, c, n, s); Table 2 when None.
        round_nearest: channels are rounded to a multiple of this.
        norm_layer: norm factory.
        dropout: dropout before the classifier.

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: list[list[int]] | None = None, round_nearest: int = 8,
                 norm_layer: NormFactory | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if inverted_residual_setting is None:
            inverted_residual_setting = DEFAULT_SETTING
        if len(inverted_residual_setting) == 0 or len(inverted_residual_setting[0]) != 4:
            raise ValueError(f"inverted_residual_setting should be non-empty and 4-element lists, "
                             f"got {inverted_residual_setting}")
        input_channel = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [
            Conv2dNormActivation(3, input_channel, stride=2, norm_layer=norm_layer, activation_layer=nn.ReLU6)
        ]
        for t, c, n, s in inverted_residual_setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                features.append(InvertedResidual(input_channel, output_channel, stride, expand_ratio=t,
                                                 norm_layer=norm_layer))
                input_channel = output_channel
        features.append(Conv2dNormActivation(input_channel, self.last_channel, kernel_size=1,
                                             norm_layer=norm_layer, activation_layer=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

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
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0,
                 inverted_residual_setting: list[list[int]] | None = None, dropout: float = 0.2) -> MobileNetV2:
    """MobileNet v2 1.0 (3,504,872 parameters)."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult,
                       inverted_residual_setting=inverted_residual_setting, dropout=dropout)
