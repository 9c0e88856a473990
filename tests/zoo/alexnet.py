"""AlexNet: Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks" (NeurIPS 2012), Fig. 2, in the single-tower form of
Krizhevsky, "One weird trick for parallelizing convolutional neural networks" (2014)
that torchvision uses (64-192-384-256-256 channels, no local response normalisation).

Smallest input: 63 x 63 (three 3x3/2 max pools after a stride-4 convolution).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _scaled(channels: int, width_mult: float) -> int:
    return max(1, int(channels * width_mult))


class AlexNet(nn.Module):
    """Five convolutions, three max pools, a 6x6 adaptive pool and three fully connected layers.

    Args:
        num_classes: output classes.
        dropout: dropout before each of the first two fully connected layers.
        width_mult: scales every convolution's channels and the 4096-unit hidden layers.

    Shape:
        (N, 3, H, W) with H, W >= 63 -> (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (_scaled(c, width_mult) for c in (64, 192, 384, 256, 256))
        hidden = _scaled(4096, width_mult)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(c5 * 6 * 6, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def alexnet(num_classes: int = 1000, dropout: float = 0.5, width_mult: float = 1.0) -> AlexNet:
    """AlexNet (61,100,840 parameters at the defaults)."""
    return AlexNet(num_classes=num_classes, dropout=dropout, width_mult=width_mult)
