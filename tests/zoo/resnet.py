"""ResNet and its wide / grouped variants.

- He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016): Table 1 (ResNet-18
  with Fig. 2's basic block, ResNet-50 with Fig. 5's bottleneck), projection shortcuts
  (option B) where shape changes, the stride on the 3x3 convolution of the bottleneck
  ("ResNet v1.5", as torchvision).
- Xie et al., "Aggregated Residual Transformations for Deep Neural Networks" (CVPR 2017),
  Table 1: ResNeXt-50 32x4d (grouped 3x3 convolution, 32 groups of width 4).
- Zagoruyko and Komodakis, "Wide Residual Networks" (BMVC 2016): Wide ResNet-50-2 (the
  bottleneck's inner width doubled).

Smallest input: 1 x 1 (every convolution is padded; the pool is adaptive); 32 x 32 is the
smallest at which every stage still halves the resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

NormFactory = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity or projection shortcut (He et al., Fig. 2 left).

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of the first convolution.
        downsample: the projection shortcut (1x1 conv + BN), or None for identity.
        groups, base_width, dilation: must be 1, 64, 1 (kept for a common signature).
        norm_layer: norm factory.
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: NormFactory | None = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped, strided), 1x1 expand by 4 (He et al., Fig. 5 right).

    The inner width is ``int(planes * base_width / 64) * groups``: ``planes`` for ResNet,
    ``2 * planes`` for ResNeXt 32x4d and for Wide ResNet-50-2.

    Args:
        inplanes: input channels.
        planes: the stage's nominal width; the output has ``4 * planes`` channels.
        stride: stride of the 3x3 convolution.
        downsample: the projection shortcut, or None for identity.
        groups: groups of the 3x3 convolution (ResNeXt's cardinality).
        base_width: width per group (64 for ResNet).
        dilation: dilation of the 3x3 convolution.
        norm_layer: norm factory.
    """

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1,
                 norm_layer: NormFactory | None = None) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages ``layer1..4``, pool, ``fc``.

    Weights: convolutions Kaiming-normal (fan-out, ReLU); BN weight 1, bias 0; ``fc`` PyTorch's
    default. ``zero_init_residual`` zeroes each block's last BN weight (Goyal et al., 2017).

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage.
        num_classes: output classes.
        zero_init_residual: zero-initialise the last BN of every residual branch.
        groups: ResNeXt cardinality.
        width_per_group: ResNeXt group width (128 for Wide ResNet-50-2).
        replace_stride_with_dilation: per stage 2..4, dilate instead of striding.
        norm_layer: norm factory.
        base_planes: stage widths are ``base_planes * (1, 2, 4, 8)`` (64 in the paper).

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64,
                 replace_stride_with_dilation: list[bool] | None = None,
                 norm_layer: NormFactory | None = None, base_planes: int = 64) -> None:
        super().__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer
        self.inplanes = base_planes
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, "
                             f"got {replace_stride_with_dilation}")
        self.groups = groups
        self.base_width = width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base_planes, layers[0])
        self.layer2 = self._make_layer(block, base_planes * 2, layers[1], stride=2,
                                       dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, base_planes * 4, layers[2], stride=2,
                                       dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, base_planes * 8, layers[3], stride=2,
                                       dilate=replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base_planes * 8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck) and m.bn3.weight is not None:
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock) and m.bn2.weight is not None:
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1,
                    dilate: bool = False) -> nn.Sequential:
        norm_layer = self._norm_layer
        downsample: nn.Module | None = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )
        layers: list[nn.Module] = [
            block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                  previous_dilation, norm_layer)
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def _forward_impl(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_impl(x)


def resnet18(num_classes: int = 1000, layers: list[int] | None = None, base_planes: int = 64) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2] (11,689,512 parameters)."""
    return ResNet(BasicBlock, layers or [2, 2, 2, 2], num_classes=num_classes, base_planes=base_planes)


def resnet34(num_classes: int = 1000, layers: list[int] | None = None, base_planes: int = 64) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3] (21,797,672 parameters)."""
    return ResNet(BasicBlock, layers or [3, 4, 6, 3], num_classes=num_classes, base_planes=base_planes)


def resnet50(num_classes: int = 1000, layers: list[int] | None = None, base_planes: int = 64) -> ResNet:
    """ResNet-50: bottlenecks [3, 4, 6, 3] (25,557,032 parameters)."""
    return ResNet(Bottleneck, layers or [3, 4, 6, 3], num_classes=num_classes, base_planes=base_planes)


def resnext50_32x4d(num_classes: int = 1000, layers: list[int] | None = None, base_planes: int = 64,
                    groups: int = 32, width_per_group: int = 4) -> ResNet:
    """ResNeXt-50 32x4d: bottlenecks [3, 4, 6, 3], 32 groups of 4 (25,028,904 parameters)."""
    return ResNet(Bottleneck, layers or [3, 4, 6, 3], num_classes=num_classes, base_planes=base_planes,
                  groups=groups, width_per_group=width_per_group)


def wide_resnet50_2(num_classes: int = 1000, layers: list[int] | None = None, base_planes: int = 64,
                    width_per_group: int = 128) -> ResNet:
    """Wide ResNet-50-2: bottlenecks [3, 4, 6, 3], inner width doubled (68,883,240 parameters)."""
    return ResNet(Bottleneck, layers or [3, 4, 6, 3], num_classes=num_classes, base_planes=base_planes,
                  width_per_group=width_per_group)
