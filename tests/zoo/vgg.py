"""VGG: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (ICLR 2015), Table 1 configurations A (VGG-11), B (13), D (16) and E (19),
with the optional batch normalisation after every convolution (Ioffe and Szegedy, 2015).

Smallest input: 32 x 32 (five 2x2/2 max pools), then a 7x7 adaptive average pool.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Table 1: numbers are 3x3 convolutions' output channels, "M" a 2x2/2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(config: list[int | str], batch_norm: bool = False, width_mult: float = 1.0) -> nn.Sequential:
    """The convolutional part of one configuration: conv (+ BN) + ReLU per number, pool per "M".

    Args:
        config: one of :data:`CONFIGS`.
        batch_norm: insert ``nn.BatchNorm2d`` after every convolution.
        width_mult: scales every convolution's channels.

    Returns:
        ``features`` with torchvision's flat indices (``features.0``, ``features.1``, ...).
    """
    layers: list[nn.Module] = []
    in_channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out_channels = max(1, int(int(item) * width_mult))
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out_channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Convolutional ``features``, a 7x7 adaptive pool and three fully connected layers.

    Weights: convolutions Kaiming-normal (fan-out, ReLU), linear layers N(0, 0.01), biases 0.

    Args:
        features: the output of :func:`make_layers`.
        num_classes: output classes.
        dropout: dropout after each hidden fully connected layer.
        hidden: units of the two hidden fully connected layers (4096 in the paper).

    Shape:
        (N, 3, H, W) with H, W >= 32 -> (N, num_classes).
    """

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5,
                 hidden: int = 4096) -> None:
        super().__init__()
        self.features = features
        last_channels = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(last_channels * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def vgg(config: str, batch_norm: bool = False, num_classes: int = 1000, dropout: float = 0.5,
        width_mult: float = 1.0) -> VGG:
    """A VGG of Table 1's configuration ``config`` ("A", "B", "D" or "E").

    Args:
        config: the configuration letter.
        batch_norm: the ``_bn`` variant.
        num_classes: output classes.
        dropout: classifier dropout.
        width_mult: scales the convolutions' channels and the 4096-unit hidden layers.
    """
    features = make_layers(CONFIGS[config], batch_norm=batch_norm, width_mult=width_mult)
    return VGG(features, num_classes=num_classes, dropout=dropout, hidden=max(1, int(4096 * width_mult)))


def vgg11(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-11, configuration A (132,863,336 parameters)."""
    return vgg("A", False, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg11_bn(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-11 with batch normalisation (132,868,840 parameters)."""
    return vgg("A", True, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg13(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-13, configuration B (133,047,848 parameters)."""
    return vgg("B", False, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg13_bn(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-13 with batch normalisation (133,053,736 parameters)."""
    return vgg("B", True, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg16(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-16, configuration D (138,357,544 parameters)."""
    return vgg("D", False, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg16_bn(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-16 with batch normalisation (138,365,992 parameters)."""
    return vgg("D", True, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg19(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-19, configuration E (143,667,240 parameters)."""
    return vgg("E", False, num_classes=num_classes, dropout=dropout, width_mult=width_mult)


def vgg19_bn(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> VGG:
    """VGG-19 with batch normalisation (143,678,248 parameters)."""
    return vgg("E", True, num_classes=num_classes, dropout=dropout, width_mult=width_mult)
