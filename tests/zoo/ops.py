"""Building blocks shared by the zoo's reference models.

Each mirrors the public structure of its ``torchvision.ops`` namesake so that submodule names
(``features.0.0`` for a convolution, ``features.0.1`` for its norm, ``block.2.fc1`` for a
squeeze-excitation layer) are the ones people know:

- :class:`Conv2dNormActivation`: convolution, optional norm, optional activation, as one
  ``nn.Sequential``.
- :class:`SqueezeExcitation`: Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), Fig. 2,
  with 1x1 convolutions in place of the two fully-connected layers.
- :class:`StochasticDepth`: Huang et al., "Deep Networks with Stochastic Depth" (ECCV 2016),
  applied per sample ("row") or per batch ("batch").
- :class:`MLP`: Linear / activation / Dropout repeated, a Linear and a Dropout last.
- :class:`Permute`: ``torch.permute`` as a module.
- :func:`make_divisible`: the channel rounding of the TensorFlow MobileNet code.

``stochastic_depth`` is registered with ``torch.fx.wrap`` (as torchvision does): its noise
shape depends on ``input.ndim``, which a symbolic trace cannot turn into a Python int.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.fx
from torch import Tensor, nn

ModuleFactory = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never down by more than 10 %.

    Args:
        value: the unrounded channel count.
        divisor: the multiple to round to.
        min_value: the smallest result allowed (``divisor`` when None).

    Returns:
        The rounded channel count.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class Conv2dNormActivation(nn.Sequential):
    """Conv2d, then a norm layer, then an activation; indices 0, 1, 2 as in torchvision.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: explicit padding; "same"-style ``(k - 1) // 2 * dilation`` when None.
        groups: convolution groups (``in_channels`` for a depthwise convolution).
        norm_layer: factory called with ``out_channels``; None for no norm.
        activation_layer: factory for the activation; None for none.
        dilation: convolution dilation.
        inplace: passed to the activation as ``inplace=`` unless None.
        bias: convolution bias; by default only when there is no norm layer.

    Shape:
        (N, in_channels, H, W) -> (N, out_channels, H', W').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        norm_layer: ModuleFactory | None = nn.BatchNorm2d,
        activation_layer: ModuleFactory | None = nn.ReLU,
        dilation: int = 1,
        inplace: bool | None = True,
        bias: bool | None = None,
    ) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        if bias is None:
            bias = norm_layer is None
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, groups=groups, bias=bias)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            params = {} if inplace is None else {"inplace": inplace}
            layers.append(activation_layer(**params))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """Channel attention of Hu et al. (2018), Fig. 2: pool, reduce, expand, gate, rescale.

    Args:
        input_channels: channels of the input (and of the gate).
        squeeze_channels: channels of the bottleneck.
        activation: factory of the bottleneck's activation.
        scale_activation: factory of the gate (Sigmoid; Hardsigmoid in MobileNet v3).

    Shape:
        (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(
        self,
        input_channels: int,
        squeeze_channels: int,
        activation: ModuleFactory = nn.ReLU,
        scale_activation: ModuleFactory = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def _scale(self, input: Tensor) -> Tensor:
        scale = self.avgpool(input)
        scale = self.fc1(scale)
        scale = self.activation(scale)
        scale = self.fc2(scale)
        return self.scale_activation(scale)

    def forward(self, input: Tensor) -> Tensor:
        scale = self._scale(input)
        return scale * input


def stochastic_depth(input: Tensor, p: float, mode: str, training: bool = True) -> Tensor:
    """Drop whole residual branches with probability ``p`` (Huang et al., 2016, Sec. 3).

    Args:
        input: the residual branch's output, batch first.
        p: probability of dropping.
        mode: "row" draws one keep/drop per sample, "batch" one for the whole batch.
        training: identity when False.

    Returns:
        ``input`` scaled by ``keep / (1 - p)`` with ``keep`` Bernoulli(1 - p).
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
    if mode not in ("batch", "row"):
        raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    if mode == "row":
        size = [input.shape[0]] + [1] * (input.ndim - 1)
    else:
        size = [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


torch.fx.wrap("stochastic_depth")


class StochasticDepth(nn.Module):
    """:func:`stochastic_depth` as a module that follows ``self.training``.

    Args:
        p: probability of dropping the branch.
        mode: "row" or "batch".
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class MLP(nn.Sequential):
    """Linear layers with an activation and Dropout between them, Dropout after the last.

    For two layers the indices are 0 Linear, 1 activation, 2 Dropout, 3 Linear, 4 Dropout
    (the names torchvision's ViT and Swin checkpoints use: ``mlp.0``, ``mlp.3``).

    Args:
        in_channels: input features.
        hidden_channels: the output features of each Linear, the last one included.
        activation_layer: factory of the activation.
        inplace: passed to activation and Dropout as ``inplace=`` unless None.
        bias: bias of the Linear layers.
        dropout: dropout probability.

    Shape:
        (*, in_channels) -> (*, hidden_channels[-1]).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: list[int],
        activation_layer: ModuleFactory = nn.ReLU,
        inplace: bool | None = None,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        params = {} if inplace is None else {"inplace": inplace}
        layers: list[nn.Module] = []
        in_dim = in_channels
        for hidden_dim in hidden_channels[:-1]:
            layers.append(nn.Linear(in_dim, hidden_dim, bias=bias))
            layers.append(activation_layer(**params))
            layers.append(nn.Dropout(dropout, **params))
            in_dim = hidden_dim
        layers.append(nn.Linear(in_dim, hidden_channels[-1], bias=bias))
        layers.append(nn.Dropout(dropout, **params))
        super().__init__(*layers)


class Permute(nn.Module):
    """``torch.permute(x, dims)`` as a module.

    Args:
        dims: the new order of the dimensions.
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)
