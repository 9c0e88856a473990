"""MnasNet: Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile"
(CVPR 2019), Fig. 7 (MnasNet-A1 without squeeze-excitation, i.e. the B1 variant that
torchvision ships): a separable-convolution stem and six stacks of inverted residuals,
BatchNorm momentum 0.0003, depths scaled by ``alpha`` (torchvision's version 2 scaling,
which also scales the stem).

Initialisation: convolutions are Kaiming-normal with fan-in (He et al., 2015, Eq. 10, which
keeps the forward variance), not torchvision's fan-out. With fan-out a depthwise 3x3 layer
of C channels scales the variance by 2 / C, and a fresh model in eval mode (BatchNorm with
its initial running statistics) gives logits that hardly depend on the input.

Smallest input: 1 x 1 (every convolution is padded; global mean).
"""

from __future__ import annotations

from torch import Tensor, nn

# TensorFlow's BN decay 0.9997 (Sec. 5.1), as PyTorch's momentum (the weight of the new batch).
_BN_MOMENTUM = 1 - 0.9997


class _InvertedResidual(nn.Module):
    """1x1 expand, kxk depthwise, 1x1 linear project; identity shortcut when shapes match.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: 3 or 5.
        stride: 1 or 2.
        expansion_factor: expansion of the inner width.
        bn_momentum: BatchNorm momentum.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, expansion_factor: int,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        if stride not in [1, 2]:
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if kernel_size not in [3, 5]:
            raise ValueError(f"kernel_size should be 3 or 5 instead of {kernel_size}")
        mid_ch = in_ch * expansion_factor
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 1, bias=False),
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, mid_ch, kernel_size, padding=kernel_size // 2, stride=stride, groups=mid_ch,
                      bias=False),
            nn.BatchNorm2d(mid_ch, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=bn_momentum),
        )

    def forward(self, input: Tensor) -> Tensor:
        if self.apply_residual:
            return self.layers(input) + input
        return self.layers(input)


def _stack(in_ch: int, out_ch: int, kernel_size: int, stride: int, exp_factor: int, repeats: int,
           bn_momentum: float) -> nn.Sequential:
    """``repeats`` inverted residuals; only the first changes width or resolution."""
    if repeats < 1:
        raise ValueError(f"repeats should be >= 1, instead got {repeats}")
    first = _InvertedResidual(in_ch, out_ch, kernel_size, stride, exp_factor, bn_momentum=bn_momentum)
    remaining = [_InvertedResidual(out_ch, out_ch, kernel_size, 1, exp_factor, bn_momentum=bn_momentum)
                 for _ in range(1, repeats)]
    return nn.Sequential(first, *remaining)


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """Round to a multiple of ``divisor``, rounding up when rounding down loses over 10 %."""
    if not 0.0 < round_up_bias < 1.0:
        raise ValueError(f"round_up_bias should be greater than 0.0 and smaller than 1.0 instead of {round_up_bias}")
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    """The eight layer widths of Fig. 7 scaled by ``alpha`` and rounded to multiples of 8."""
    depths = [32, 16, 24, 40, 80, 96, 192, 320]
    return [_round_to_multiple_of(depth * alpha, 8) for depth in depths]


class MNASNet(nn.Module):
    """``layers`` (stem, stacks, 1x1 to 1280), global mean, ``classifier`` (Dropout, Linear).

    Weights: convolutions Kaiming-normal (fan-in, ReLU; see the module docstring); BN weight 1, bias 0; Linear
    Kaiming-uniform (fan-out, sigmoid gain).

    Args:
        alpha: depth multiplier.
        num_classes: output classes.
        dropout: dropout before the classifier.

    Shape:
        (N, 3, H, W) -> (N, num_classes).
    """

    _version = 2

    def __init__(self, alpha: float, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        if alpha <= 0.0:
            raise ValueError(f"alpha should be greater than 0.0 instead of {alpha}")
        self.alpha = alpha
        self.num_classes = num_classes
        depths = _get_depths(alpha)
        layers: list[nn.Module] = [
            # Stem (Fig. 7): 3x3/2 convolution, then a separable 3x3 with no shortcut.
            nn.Conv2d(3, depths[0], 3, padding=1, stride=2, bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0], bias=False),
            nn.BatchNorm2d(depths[0], momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(depths[0], depths[1], 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(depths[1], momentum=_BN_MOMENTUM),
            # Six stacks: (kernel, stride, expansion, repeats) from Fig. 7.
            _stack(depths[1], depths[2], 3, 2, 3, 3, _BN_MOMENTUM),
            _stack(depths[2], depths[3], 5, 2, 3, 3, _BN_MOMENTUM),
            _stack(depths[3], depths[4], 5, 2, 6, 3, _BN_MOMENTUM),
            _stack(depths[4], depths[5], 3, 1, 6, 2, _BN_MOMENTUM),
            _stack(depths[5], depths[6], 5, 2, 6, 4, _BN_MOMENTUM),
            _stack(depths[6], depths[7], 3, 1, 6, 1, _BN_MOMENTUM),
            # 1x1 to the 1280-channel feature vector.
            nn.Conv2d(depths[7], 1280, 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(1280, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(1280, num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        x = x.mean([2, 3])
        return self.classifier(x)


def mnasnet0_5(num_classes: int = 1000, dropout: float = 0.2) -> MNASNet:
    """MnasNet with depth multiplier 0.5 (2,218,512 parameters)."""
    return MNASNet(0.5, num_classes=num_classes, dropout=dropout)


def mnasnet1_0(num_classes: int = 1000, dropout: float = 0.2) -> MNASNet:
    """MnasNet with depth multiplier 1.0 (4,383,312 parameters)."""
    return MNASNet(1.0, num_classes=num_classes, dropout=dropout)


def mnasnet(alpha: float, num_classes: int = 1000, dropout: float = 0.2) -> MNASNet:
    """MnasNet with any depth multiplier (the reduced zoo entries use 0.25)."""
    return MNASNet(alpha, num_classes=num_classes, dropout=dropout)
