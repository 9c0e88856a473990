"""Convolution layers: Conv1d, Conv2d, ConvTranspose2d."""

from __future__ import annotations

import math
from typing import Any, Mapping

from engine.layers.base import (Example, ModuleCall, Inference, LayerType, Params, ShapeError, TensorSpec, register)
from engine.layers.params import Param, bool_param, int_param, int_tuple_param
from engine.layers.recognize import FromModule, FromOnnx, Imported, module_state, one_or_list, symmetric_pads
from engine.layers.spatial import Size, as_size, fmt_size, require_spatial, transposed_out, window_out


# ------------------------------------------------------------- recognizers
def _conv_from_module(m: Any) -> Imported | None:
    """``nn.Conv1d`` / ``Conv2d`` / ``ConvTranspose2d`` with zero padding given as numbers."""
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        return None
    one = len(m.kernel_size) == 1
    size = (lambda v: v[0]) if one else list
    params: dict[str, Any] = {"out_channels": m.out_channels, "kernel_size": size(m.kernel_size),
                              "stride": size(m.stride), "padding": size(m.padding), "dilation": size(m.dilation),
                              "groups": m.groups, "bias": m.bias is not None}
    if type(m).__name__ == "ConvTranspose2d":
        params["output_padding"] = list(m.output_padding)
    return params, module_state(m)


def _conv_from_onnx(ndims: tuple[int, ...], transposed: bool) -> Any:
    """ONNX ``Conv`` (``ConvTranspose``) over ``ndims`` spatial axes with symmetric explicit padding."""
    def read(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
        x, w = node.input[0], node.input[1]
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if w not in ctx.consts or bias is not None and bias not in ctx.consts:
            return "weights that are not constants"
        weight = ctx.consts[w]
        ndim = weight.ndim - 2
        pads = symmetric_pads(a.get("pads", []), ndim)
        if ndim not in ndims:
            return f"convolution over {ndim} axes"
        if pads is None or a.get("auto_pad", "NOTSET") != "NOTSET" or transposed and "output_shape" in a:
            return "asymmetric or automatic padding"
        groups = int(a.get("group", 1))
        out = weight.shape[1] * groups if transposed else weight.shape[0]
        params: dict[str, Any] = {"out_channels": int(out), "kernel_size": one_or_list(list(weight.shape[2:])),
                                  "stride": one_or_list(a.get("strides", [1] * ndim)),
                                  "padding": one_or_list(pads), "dilation": one_or_list(a.get("dilations", [1] * ndim)),
                                  "groups": groups, "bias": bias is not None}
        if transposed:
            params["output_padding"] = one_or_list(a.get("output_padding", [0] * ndim))
        type_id = "conv_transpose2d" if transposed else f"conv{ndim}d"
        tensors = {"weight": weight} | ({"bias": ctx.consts[bias]} if bias else {})
        ctx.add(node, type_id, params, [x], tensors, w)
        return None
    return read


# ------------------------------------------------------------- convolutions
def _size_param(ndim: int, name: str, default: int, doc: str, min: int, max: int) -> Param:
    if ndim == 1:
        return int_param(name, default, doc, min=min, max=max)
    return int_tuple_param(name, (default,) * ndim, doc + " Height, width.", min=min, max=max)


def _conv_params(ndim: int, transposed: bool) -> tuple[Param, ...]:
    kernel, stride = (2, 2) if transposed else (3, 1)
    pad_doc = ("Rows/columns cropped from each border of the output." if transposed
               else "Zeros added on each border; kernel_size // 2 keeps the size for odd kernels.")
    params = [
        int_param("out_channels", 16, "Number of output channels (filters).", min=1, max=1_000_000),
        _size_param(ndim, "kernel_size", kernel, "Size of each filter window.", 1, 4096),
        _size_param(ndim, "stride", stride, "Step between windows; 2 halves the size." if not transposed
                    else "Upsampling factor; 2 doubles the size.", 1, 4096),
        _size_param(ndim, "padding", 0, pad_doc, 0, 4096),
    ]
    if transposed:
        params.append(_size_param(ndim, "output_padding", 0, "Extra rows/columns added on one side of the "
                                  "output to reach an exact size; must be below stride or dilation.", 0, 4096))
    params += [
        _size_param(ndim, "dilation", 1, "Spacing between kernel taps; 2 widens the view without more weights.",
                    1, 4096),
        int_param("groups", 1, "Split channels into independent groups; groups = in channels is depthwise.",
                  min=1, max=1_000_000),
        bool_param("bias", True, "Learn an additive bias per output channel."),
    ]
    return tuple(params)


class _Conv(LayerType):
    """Shared rule for convolutions over ``ndim`` spatial axes."""

    ndim: int = 2
    transposed: bool = False
    #: The layer to suggest for inputs of the other dimensionality.
    sibling: str = ""
    category = "Convolution"
    id_prefix = "conv"
    key_params = ("out_channels", "kernel_size", "stride")

    def _size(self, p: Mapping[str, Any], name: str) -> Size:
        return as_size(p[name], self.ndim)

    def check_combination(self, p: Params) -> list[tuple[str, str]]:
        problems = []
        if p.out_channels % p.groups:
            g, lower = p.groups, p.out_channels // p.groups * p.groups
            multiples = f"{lower} or {lower + g}" if lower else str(g)
            problems.append(("out_channels", f"out_channels {p.out_channels} is not divisible by groups={g}: "
                             f"use a multiple of {g} such as {multiples}, or fewer groups"))
        if self.transposed:
            limit = tuple(max(s, d) for s, d in zip(self._size(p, "stride"), self._size(p, "dilation")))
            if any(o >= m for o, m in zip(self._size(p, "output_padding"), limit)):
                problems.append(("output_padding", f"output_padding {fmt_size(self._size(p, 'output_padding'))} "
                                 f"must be smaller than stride or dilation ({fmt_size(limit)}): reduce it"))
        return problems

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_spatial(x, self.ndim, self.title, self.sibling)
        channels, size = x.dims[0], x.dims[1:]
        if channels % p.groups:
            suggestion = math.gcd(channels, p.out_channels, p.groups)
            raise ShapeError(f"receives {channels} channels in {x}, which groups={p.groups} does not divide: "
                             f"set groups to a divisor of both {channels} and out_channels {p.out_channels}, "
                             f"e.g. {suggestion}", field="groups")
        ndim = self.ndim
        kernel, stride, padding, dilation = (as_size(p["kernel_size"], ndim), as_size(p["stride"], ndim),
                                             as_size(p["padding"], ndim), as_size(p["dilation"], ndim))
        if self.transposed:
            out = transposed_out(size, kernel, stride, padding, self._size(p, "output_padding"), dilation)
            taps = math.prod(size)  # flop_counter counts one window per *input* position
        else:
            out = window_out(size, kernel, stride, padding, dilation)
            taps = math.prod(out)
        weights = channels * (p.out_channels // p.groups) * math.prod(kernel)
        params = weights + (p.out_channels if p.bias else 0)
        return Inference(TensorSpec((p.out_channels, *out)), params, 2 * weights * taps)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        extra = {"output_padding": self._size(p, "output_padding")} if self.transposed else {}
        return ModuleCall.of(f"nn.{self.title}", inputs[0].dims[0], p.out_channels, self._size(p, "kernel_size"),
                             stride=self._size(p, "stride"), padding=self._size(p, "padding"), **extra,
                             dilation=self._size(p, "dilation"), groups=p.groups, bias=p.bias)


@register
class Conv1d(_Conv):
    """1-D convolution over sequences or signals laid out (N, C, L)."""

    type_id = "conv1d"
    imports = (FromModule(("nn.Conv1d",), _conv_from_module), FromOnnx(("Conv",), _conv_from_onnx((1, 2), False)))
    title = "Conv1d"
    doc = "Slides learned filters along a sequence (N, C, L); input channels are inferred."
    ndim = 1
    sibling = "Conv2d"
    params = _conv_params(1, transposed=False)
    examples = (
        Example(((4, 50),)),
        Example(((6, 23),), {"out_channels": 9, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 2,
                             "groups": 3, "bias": False}),
    )


@register
class Conv2d(_Conv):
    """2-D convolution over images laid out (N, C, H, W)."""

    type_id = "conv2d"
    imports = (FromModule(("nn.Conv2d",), _conv_from_module),)  # ONNX Conv: Conv1d's reader builds both
    title = "Conv2d"
    doc = "Slides learned filters over an image (N, C, H, W) to detect local patterns; input channels are inferred."
    ndim = 2
    sibling = "Conv1d"
    params = _conv_params(2, transposed=False)
    examples = (
        Example(((3, 32, 32),)),
        Example(((4, 17, 12),), {"out_channels": 8, "kernel_size": (3, 5), "stride": (2, 1), "padding": (1, 2),
                                 "dilation": (1, 2), "groups": 2, "bias": False}),
        Example(((6, 9, 7),), {"out_channels": 12, "kernel_size": (1, 1), "groups": 6}),
    )


@register
class ConvTranspose2d(_Conv):
    """Transposed 2-D convolution: learned upsampling of images."""

    type_id = "conv_transpose2d"
    imports = (FromModule(("nn.ConvTranspose2d",), _conv_from_module),
               FromOnnx(("ConvTranspose",), _conv_from_onnx((2,), True)))
    title = "ConvTranspose2d"
    doc = "Learned upsampling of an image (N, C, H, W), as in decoders and generators; the defaults double H and W."
    id_prefix = "tconv"
    ndim = 2
    transposed = True
    params = _conv_params(2, transposed=True)
    examples = (
        Example(((8, 7, 5),)),
        Example(((4, 6, 9),), {"out_channels": 6, "kernel_size": (4, 3), "stride": (2, 3), "padding": (1, 0),
                               "output_padding": (1, 2), "groups": 2}),
        Example(((3, 5, 4),), {"out_channels": 5, "kernel_size": (3, 3), "stride": (1, 1), "padding": (2, 1),
                               "dilation": (2, 1), "bias": False}),
    )
