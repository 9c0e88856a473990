"""SqueezeNet: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size" (2016), Table 1 (version 1.0) and the v1.1 of the authors' repository
(3x3/2 first convolution, earlier pooling). Max pools use ``ceil_mode=True``, as the Caffe
original did.

Smallest input: 21 x 21 for 1.0 and 17 x 17 for 1.1 (unpadded stem and 3x3/2 pools).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import init


class Fire(nn.Module):
    """Fire module (Fig. 1): 1x1 squeeze, then 1x1 and 3x3 expand, concatenated on channels.

    Args:
        inplanes: input channels.
        squeeze_planes: channels of the squeeze layer.
        expand1x1_planes: channels of the 1x1 expand branch.
        expand3x3_planes: channels of the 3x3 expand branch.

    Shape:
        (N, inplanes, H, W) -> (N, expand1x1_planes + expand3x3_planes, H, W).
    """

    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.out_channels = expand1x1_planes + expand3x3_planes

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


# (squeeze, expand1x1, expand3x3) of each Fire module, "M" a 3x3/2 ceil-mode max pool.
_FIRES_1_0: list[tuple[int, int, int] | str] = [
    (16, 64, 64), (16, 64, 64), (32, 128, 128), "M",
    (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), "M",
    (64, 256, 256),
]
_FIRES_1_1: list[tuple[int, int, int] | str] = [
    (16, 64, 64), (16, 64, 64), "M",
    (32, 128, 128), (32, 128, 128), "M",
    (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256),
]


class SqueezeNet(nn.Module):
    """Convolution, max pool, eight Fire modules with two more pools; a 1x1 conv classifier.

    Weights: the final convolution N(0, 0.01), the others Kaiming-uniform; biases 0.

    Args:
        version: "1_0" or "1_1".
        num_classes: output classes.
        dropout: dropout before the final convolution.
        width_mult: scales every channel count.

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, version: str = "1_0", num_classes: int = 1000, dropout: float = 0.5,
                 width_mult: float = 1.0) -> None:
        super().__init__()
        self.num_classes = num_classes

        def scaled(channels: int) -> int:
            return max(1, int(channels * width_mult))

        if version == "1_0":
            stem_channels, fires = scaled(96), _FIRES_1_0
            layers: list[nn.Module] = [nn.Conv2d(3, stem_channels, kernel_size=7, stride=2)]
        elif version == "1_1":
            stem_channels, fires = scaled(64), _FIRES_1_1
            layers = [nn.Conv2d(3, stem_channels, kernel_size=3, stride=2)]
        else:
            raise ValueError(f"Unsupported SqueezeNet version {version}: 1_0 or 1_1 expected")
        layers += [nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)]
        channels = stem_channels
        for item in fires:
            if isinstance(item, str):
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
                continue
            fire = Fire(channels, *(scaled(c) for c in item))
            layers.append(fire)
            channels = fire.out_channels
        self.features = nn.Sequential(*layers)

        final_conv = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)


def squeezenet1_0(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> SqueezeNet:
    """SqueezeNet 1.0 (1,248,424 parameters)."""
    return SqueezeNet("1_0", num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def squeezenet1_1(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> SqueezeNet:
    """SqueezeNet 1.1 (1,235,496 parameters)."""
    return SqueezeNet("1_1", num_classes=num_classes, dropout=dropout, width_mult=width_mult)
