"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015),
Table 1, with batch normalisation after every convolution as torchvision trains it.

As in torchvision, the "5x5" branch of every Inception module uses a 3x3 convolution (a
known quirk of the reference weights, kept so parameter counts and names agree), the max
pools use ``ceil_mode=True``, ``transform_input`` defaults to False, and the two auxiliary
classifiers exist only when ``aux_logits=True`` (default False: 6,624,904 parameters).

Initialisation: convolutions are Kaiming-normal with fan-in (He et al., 2015), linear layers
truncated normal (std 0.01). torchvision's truncated normal (std 0.01) for the convolutions
makes a fresh model's eval-mode output independent of the input (the signal shrinks about
tenfold per layer while BatchNorm still has its initial running statistics).

Smallest input: 15 x 15 (the 7x7/2 stem, then 3x3/2 ceil-mode pools without padding).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _scaled(channels: int, width_mult: float) -> int:
    return max(1, int(channels * width_mult))


class BasicConv2d(nn.Module):
    """Conv2d without bias, BatchNorm2d (eps 0.001), ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        **kwargs: passed to ``nn.Conv2d`` (kernel_size, stride, padding).
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        x = self.bn(x)
        return F.relu(x, inplace=True)


class Inception(nn.Module):
    """Four parallel branches concatenated on channels (Fig. 2b).

    Args:
        in_channels: input channels.
        ch1x1: the 1x1 branch.
        ch3x3red, ch3x3: the 1x1 reduction and 3x3 of the second branch.
        ch5x5red, ch5x5: the 1x1 reduction and (3x3, see the module docstring) of the third.
        pool_proj: the 1x1 projection after the 3x3/1 max pool.

    Shape:
        (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def _forward(self, x: Tensor) -> list[Tensor]:
        branch1 = self.branch1(x)
        branch2 = self.branch2(x)
        branch3 = self.branch3(x)
        branch4 = self.branch4(x)
        return [branch1, branch2, branch3, branch4]

    def forward(self, x: Tensor) -> Tensor:
        outputs = self._forward(x)
        return torch.cat(outputs, 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (Sec. 5): 4x4 average pool, 1x1 conv, two fully connected layers.

    Args:
        in_channels: input channels (512 after 4a, 528 after 4d).
        num_classes: output classes.
        dropout: dropout before the last layer.
        width_mult: scales the 128-channel conv and the 1024-unit hidden layer.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7, width_mult: float = 1.0) -> None:
        super().__init__()
        conv_channels = _scaled(128, width_mult)
        hidden = _scaled(1024, width_mult)
        self.conv = BasicConv2d(in_channels, conv_channels, kernel_size=1)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(x, (4, 4))
        x = self.conv(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        x = self.dropout(x)
        return self.fc2(x)


# Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) for 3a .. 5b.
_INCEPTION_CONFIG: dict[str, tuple[int, int, int, int, int, int]] = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """Stem, nine Inception modules with ceil-mode max pools between groups, pool, dropout, fc.

    Weights: convolutions Kaiming-normal (fan-in, ReLU); linear layers truncated normal
    (std 0.01, cut at +-2); BN weight 1, bias 0.

    Args:
        num_classes: output classes.
        aux_logits: build the two auxiliary classifiers (used in training mode only; the
            forward then returns ``(logits, aux2, aux1)``).
        transform_input: rescale ImageNet-normalised input to the (x - 0.5) / 0.5 range the
            original weights expect.
        dropout: dropout before ``fc``.
        dropout_aux: dropout of the auxiliary classifiers.
        width_mult: scales every channel count.

    Shape:
        (N, 3, H, W) with H, W >= 15 -> (N, num_classes).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = False, transform_input: bool = False,
                 dropout: float = 0.2, dropout_aux: float = 0.7, width_mult: float = 1.0) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def scaled(channels: int) -> int:
            return _scaled(channels, width_mult)

        def inception(in_channels: int, name: str) -> Inception:
            return Inception(in_channels, *(scaled(c) for c in _INCEPTION_CONFIG[name]))

        self.conv1 = BasicConv2d(3, scaled(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(scaled(64), scaled(64), kernel_size=1)
        self.conv3 = BasicConv2d(scaled(64), scaled(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = inception(scaled(192), "inception3a")
        self.inception3b = inception(self.inception3a.out_channels, "inception3b")
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception(self.inception3b.out_channels, "inception4a")
        self.inception4b = inception(self.inception4a.out_channels, "inception4b")
        self.inception4c = inception(self.inception4b.out_channels, "inception4c")
        self.inception4d = inception(self.inception4c.out_channels, "inception4d")
        self.inception4e = inception(self.inception4d.out_channels, "inception4e")
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception(self.inception4e.out_channels, "inception5a")
        self.inception5b = inception(self.inception5a.out_channels, "inception5b")

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, dropout_aux, width_mult)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, dropout_aux, width_mult)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.inception5b.out_channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _transform_input(self, x: Tensor) -> Tensor:
        if self.transform_input:
            x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
            x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
            x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
            x = torch.cat((x_ch0, x_ch1, x_ch2), 1)
        return x

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        x = self.conv1(x)
        x = self.maxpool1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.maxpool2(x)

        x = self.inception3a(x)
        x = self.inception3b(x)
        x = self.maxpool3(x)
        x = self.inception4a(x)
        aux1: Tensor | None = None
        if self.aux1 is not None and self.training:
            aux1 = self.aux1(x)

        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)
        aux2: Tensor | None = None
        if self.aux2 is not None and self.training:
            aux2 = self.aux2(x)

        x = self.inception4e(x)
        x = self.maxpool4(x)
        x = self.inception5a(x)
        x = self.inception5b(x)

        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return x, aux2, aux1

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor | None, Tensor | None]:
        x = self._transform_input(x)
        x, aux2, aux1 = self._forward(x)
        if self.training and self.aux_logits:
            return x, aux2, aux1
        return x


def googlenet(num_classes: int = 1000, aux_logits: bool = False, transform_input: bool = False,
              dropout: float = 0.2, width_mult: float = 1.0) -> GoogLeNet:
    """GoogLeNet without auxiliary heads (6,624,904 parameters; 13,004,888 with them)."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, transform_input=transform_input,
                     dropout=dropout, width_mult=width_mult)
