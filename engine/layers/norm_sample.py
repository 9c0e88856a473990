"""Normalizations within each sample, independent of the batch: GroupNorm, InstanceNorm1d,
InstanceNorm2d, and LayerNorm2d (LayerNorm over the channels of each position of an image)."""

from __future__ import annotations

import math
from typing import Any

from engine.layers.base import (Example, Inference, LayerType, ModuleCall, Params, ShapeError, TensorSpec, register,
                                require_float, require_rank)
from engine.layers.params import bool_param, float_param, int_param
from engine.layers.recognize import Called, FromCall, FromModule, FromOnnx, Imported, call_options, is_traced, \
    module_state, traced_rank


# ------------------------------------------------------------- recognizers
def _groupnorm_from_module(m: Any) -> Imported:
    return {"num_groups": m.num_groups, "eps": m.eps, "affine": m.affine}, module_state(m)


def _groupnorm_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``F.group_norm(x, groups, self.weight, self.bias, eps)`` with learned tensors or none."""
    import torch

    o = call_options(args, kwargs, ("num_groups", "weight", "bias", "eps"), {"weight": None, "bias": None,
                                                                            "eps": 1e-5})
    if o is None or not is_traced(args[0]) or not isinstance(o.get("num_groups"), int) \
            or (o["weight"] is None) != (o["bias"] is None) \
            or any(t is not None and not isinstance(t, torch.Tensor) for t in (o["weight"], o["bias"])):
        return None
    tensors = {"weight": o["weight"], "bias": o["bias"]} if o["weight"] is not None else {}
    return {"num_groups": o["num_groups"], "eps": float(o["eps"]), "affine": bool(tensors)}, [args[0]], tensors


def _affine_tensors(ctx: Any, scale: str, bias: str, channels: int) -> dict[str, Any] | None:
    """Constant ONNX scale and bias as per-channel weight and bias; empty when they change nothing."""
    import numpy as np

    if scale not in ctx.consts or bias not in ctx.consts:
        return None
    weight, shift = (np.asarray(ctx.consts[n], dtype=np.float32).reshape(-1) for n in (scale, bias))
    if weight.size != shift.size or channels % weight.size:
        return None
    weight, shift = np.repeat(weight, channels // weight.size), np.repeat(shift, channels // shift.size)
    return {} if np.all(weight == 1) and np.all(shift == 0) else {"weight": weight, "bias": shift}


def _groupnorm_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``GroupNormalization``: scale and bias per group (opsets 18 to 20) or per channel (21)."""
    x = node.input[0]
    shape = ctx.shapes.get(x, [])
    channels = shape[1] if len(shape) > 1 else None
    tensors = _affine_tensors(ctx, node.input[1], node.input[2], channels) if isinstance(channels, int) else None
    if tensors is None:
        return "a scale or bias that is not constant"
    params = {"num_groups": int(a.get("num_groups", 1)), "eps": float(a.get("epsilon", 1e-5)), "affine": bool(tensors)}
    ctx.add(node, "groupnorm", params, [x], tensors, node.input[1])
    return None


def _instancenorm_from_module(m: Any) -> Imported:
    return {"eps": m.eps, "momentum": m.momentum if m.momentum is not None else 0.1, "affine": m.affine,
            "track_running_stats": m.track_running_stats}, module_state(m)


def _instancenorm_call(ndim: int) -> Any:
    """``F.instance_norm(x, weight=self.weight, bias=self.bias, eps=1e-5)`` of (N, C, L) (``ndim`` 1) or
    (N, C, H, W) (2): statistics of each sample, learned tensors or none, no running statistics."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        import torch

        o = call_options(args, kwargs, ("running_mean", "running_var", "weight", "bias", "use_input_stats",
                                        "momentum", "eps"),
                         {"running_mean": None, "running_var": None, "weight": None, "bias": None,
                          "use_input_stats": True, "momentum": 0.1, "eps": 1e-5})
        if o is None or not is_traced(args[0]) or traced_rank(args[0]) != ndim + 2 \
                or o["running_mean"] is not None or o["running_var"] is not None or o["use_input_stats"] is not True \
                or (o["weight"] is None) != (o["bias"] is None) or not isinstance(o["eps"], (int, float)) \
                or any(t is not None and not isinstance(t, torch.Tensor) for t in (o["weight"], o["bias"])):
            return None
        tensors = {"weight": o["weight"], "bias": o["bias"]} if o["weight"] is not None else {}
        return {"eps": float(o["eps"]), "affine": bool(tensors), "track_running_stats": False}, [args[0]], tensors
    return read


def _instancenorm_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``InstanceNormalization`` of sequences (N, C, L) or images (N, C, H, W)."""
    x = node.input[0]
    shape = ctx.shapes.get(x, [])
    if len(shape) not in (3, 4) or not isinstance(shape[1], int):
        return "not a sequence (N, C, L) or image (N, C, H, W)"
    tensors = _affine_tensors(ctx, node.input[1], node.input[2], shape[1])
    if tensors is None:
        return "a scale or bias that is not constant"
    params = {"eps": float(a.get("epsilon", 1e-5)), "affine": bool(tensors)}
    ctx.add(node, f"instancenorm{len(shape) - 2}d", params, [x], tensors, node.input[1])
    return None


def _layernorm2d_from_module(m: Any) -> Imported | None:
    """A module named ``LayerNorm2d`` (the app's, timm's, torchvision's ConvNeXt, SAM's): LayerNorm over
    the channels of each position, with a per-channel weight and bias (or neither)."""
    weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    if (weight is None) != (bias is None) or weight is not None and weight.dim() != 1:
        return None
    return {"eps": float(m.eps), "elementwise_affine": weight is not None}, module_state(m)


_EPS = float_param("eps", 1e-5, "Small number added to the variance to avoid dividing by zero.", min=1e-12, max=1.0)


def _divisors_near(count: int, target: int) -> str:
    """The one or two divisors of ``count`` nearest to ``target``, e.g. ``"6 or 10"``."""
    divisors = [d for d in range(1, count + 1) if count % d == 0] if count <= 100_000 else [1, count]
    return " or ".join(map(str, sorted(sorted(divisors, key=lambda d: abs(d - target))[:2])))


# ------------------------------------------------------------------ layers
@register
class GroupNorm(LayerType):
    """Normalization over groups of channels of each sample."""

    type_id = "groupnorm"
    imports = (FromModule(("nn.GroupNorm",), _groupnorm_from_module), FromCall(_groupnorm_call, ("F.group_norm",)),
               FromOnnx(("GroupNormalization",), _groupnorm_from_onnx))
    title = "GroupNorm"
    category = "Normalization"
    doc = ("Splits the channels of each sample into groups and normalizes each group, then scales and shifts; "
           "works the same with any batch size, even 1.")
    id_prefix = "gn"
    key_params = ("num_groups",)
    params = (
        int_param("num_groups", 8, "Number of channel groups; must divide the channel count. 1 normalizes all "
                                   "channels together, one group per channel is InstanceNorm.", min=1, max=1_000_000),
        _EPS,
        bool_param("affine", True, "Learn a scale and shift per channel."),
    )
    examples = (Example(((16, 5, 5),)), Example(((6, 7),), {"num_groups": 3, "eps": 1e-3, "affine": False}),
                Example(((4, 3, 2),), {"num_groups": 4}), Example(((10,),), {"num_groups": 2}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        channels = x.dims[0]
        if channels % p.num_groups:
            raise ShapeError(f"receives {channels} channels in {x}, which num_groups={p.num_groups} does not "
                             f"divide: each group takes an equal share of the channels; set num_groups to "
                             f"{_divisors_near(channels, p.num_groups)}", field="num_groups")
        if channels // p.num_groups * math.prod(x.dims[1:]) == 1:
            raise ShapeError(f"each of the {p.num_groups} groups of {x} holds a single value, which normalizes "
                             "to 0: use fewer groups", field="num_groups")
        return Inference(x, 2 * channels if p.affine else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.GroupNorm", p.num_groups, inputs[0].dims[0], eps=p.eps, affine=p.affine)


class _InstanceNorm(LayerType):
    """Shared rule: each channel of each sample normalized over its positions."""

    ndim: int = 2
    category = "Normalization"
    id_prefix = "in"
    key_params = ("affine", "track_running_stats")
    params = (
        _EPS,
        float_param("momentum", 0.1, "Weight of the newest batch in the running mean and variance "
                                     "(with track_running_stats).", min=0.0, max=1.0),
        bool_param("affine", False, "Learn a scale and shift per channel."),
        bool_param("track_running_stats", False, "Keep running averages of the statistics while training and use "
                                                 "them in evaluation; off normalizes with each sample's own."),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        layout = "(N, C, L)" if self.ndim == 1 else "(N, C, H, W)"
        other = "InstanceNorm2d for images" if self.ndim == 1 else "InstanceNorm1d for sequences (N, C, L)"
        require_rank(x, (self.ndim + 2,), layout, f"use {other}, or insert a Reshape before it")
        if math.prod(x.dims[1:]) == 1:
            raise ShapeError(f"receives {x}, one value per channel, which normalizes to 0: it needs more than one "
                             "position per channel")
        return Inference(x, 2 * x.dims[0] if p.affine else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of(f"nn.{self.title}", inputs[0].dims[0], eps=p.eps, momentum=p.momentum, affine=p.affine,
                             track_running_stats=p.track_running_stats)


@register
class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of sequences laid out (N, C, L)."""

    type_id = "instancenorm1d"
    imports = (FromModule(("nn.InstanceNorm1d",), _instancenorm_from_module),
               FromCall(_instancenorm_call(1), ("F.instance_norm",)),
               FromOnnx(("InstanceNormalization",), _instancenorm_from_onnx))
    title = "InstanceNorm1d"
    doc = "Normalizes each channel of each sequence (N, C, L) over its length, independent of the batch."
    ndim = 1
    examples = (Example(((4, 9),)), Example(((3, 5),), {"affine": True, "track_running_stats": True, "eps": 1e-3}))


@register
class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of images laid out (N, C, H, W)."""

    type_id = "instancenorm2d"
    imports = (FromModule(("nn.InstanceNorm2d",), _instancenorm_from_module),  # ONNX: InstanceNorm1d's reader
               FromCall(_instancenorm_call(2), ("F.instance_norm",)))
    title = "InstanceNorm2d"
    doc = ("Normalizes each channel of each image (N, C, H, W) over its pixels, independent of the batch; "
           "common in style transfer and image generators.")
    examples = (Example(((3, 6, 5),)), Example(((4, 3, 3),), {"affine": True}),
                Example(((2, 4, 1),), {"affine": True, "track_running_stats": True, "momentum": 0.2}))


@register
class LayerNorm2d(LayerType):
    """LayerNorm over the channels at each position of an image."""

    type_id = "layernorm2d"
    imports = (FromModule(("LayerNorm2d",), _layernorm2d_from_module),)
    title = "LayerNorm2d"
    category = "Normalization"
    doc = ("Normalizes the C values at each pixel of an image (N, C, H, W), then scales and shifts per channel: "
           "LayerNorm for channels-first images, independent of the batch.")
    id_prefix = "ln"
    params = (_EPS, bool_param("elementwise_affine", True, "Learn a scale and shift per channel."))
    examples = (Example(((8, 5, 5),)), Example(((3, 4, 6),), {"eps": 1e-6, "elementwise_affine": False}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        require_rank(x, (4,), "(N, C, H, W)", "use LayerNorm for features and sequences")
        return Inference(x, 2 * x.dims[0] if p.elementwise_affine else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("LayerNorm2d", inputs[0].dims[0], eps=p.eps, elementwise_affine=p.elementwise_affine)
