"""Layers that set an output size: adaptive pooling (AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d) and Upsample."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engine.layers.base import (EmitContext, Example, Inference, LayerType, ModuleCall, Params, ShapeError,
                                TensorSpec, register, require_float, require_rank)
from engine.layers.params import Param, bool_param, choice_param, int_param, int_tuple_param
from engine.layers.recognize import Called, FromCall, FromModule, FromOnnx, Imported
from engine.layers.spatial import as_size, require_spatial

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


# ------------------------------------------------------------- recognizers
def _adaptive_from_module(m: Any) -> Imported | None:
    """``nn.AdaptiveAvgPool1d/2d``, ``nn.AdaptiveMaxPool1d/2d`` (without indices) to a fixed size."""
    if getattr(m, "return_indices", False):
        return None
    size = m.output_size
    if type(m).__name__.endswith("1d"):
        size = size[0] if isinstance(size, (tuple, list)) else size
        return ({"output_size": size, "flatten": False}, {}) if isinstance(size, int) else None
    size = [size, size] if isinstance(size, int) or size is None else list(size)
    return ({"output_size": size, "flatten": False}, {}) if None not in size else None


def _adaptive_call(ndim: int) -> Any:
    """``F.adaptive_avg_pool2d(x, 1)``, ``F.adaptive_max_pool1d(x, output_size=4)``."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        if len(args) > 3 or any(k not in ("output_size", "return_indices") for k in kwargs) \
                or kwargs.get("return_indices", args[2] if len(args) > 2 else False):
            return None
        size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
        size = [size] * ndim if isinstance(size, int) else list(size or [])
        if len(size) != ndim or not all(isinstance(s, int) for s in size):
            return None
        return {"output_size": size[0] if ndim == 1 else size, "flatten": False}, [args[0]]
    return read


def _global_pool_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``GlobalAveragePool`` / ``GlobalMaxPool`` over 1 or 2 axes, and ``ReduceMean`` / ``ReduceMax``
    over the height and width of an image (what the exporter writes for global pooling)."""
    rank = ctx.rank(node.input[0])
    kind = "max" if node.op_type in ("GlobalMaxPool", "ReduceMax") else "avg"
    if node.op_type.startswith("Reduce"):
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = ctx.consts[node.input[1]].tolist() if node.input[1] in ctx.consts else []
        if rank != 4 or sorted(d % 4 for d in axes or []) != [2, 3]:
            return "a reduction over other axes than height and width"
        flatten = not a.get("keepdims", 1)
    else:
        flatten = False
        if rank not in (3, 4):
            return "pooling over more than 2 axes"
    size: Any = [1, 1] if rank == 4 else 1
    ctx.add(node, f"adaptive_{kind}pool{rank - 2}d", {"output_size": size, "flatten": flatten}, [node.input[0]])
    return None


def _upsample_from_module(m: Any) -> Imported | None:
    if m.size is not None or m.mode not in ("nearest", "bilinear"):
        return None
    factor = m.scale_factor
    factor = factor[0] if isinstance(factor, tuple) and len(set(factor)) == 1 else factor
    if isinstance(factor, (int, float)) and float(factor).is_integer() and not m.align_corners:
        return {"scale_factor": int(factor), "mode": m.mode}, {}
    return None


def _interpolate_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    options = {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
               "recompute_scale_factor": None, "antialias": False}
    options.update(dict(zip(options, args[1:])))
    options.update(kwargs)
    factor = options["scale_factor"]
    if options["size"] is not None or options["mode"] not in ("nearest", "bilinear") or options["align_corners"] \
            or options["antialias"] or not isinstance(factor, (int, float)) or not float(factor).is_integer():
        return None
    return {"scale_factor": int(factor), "mode": options["mode"]}, [args[0]]


def _resize_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    scales = node.input[2] if len(node.input) > 2 else ""
    values = ctx.consts[scales].tolist() if scales in ctx.consts else []
    mode = a.get("mode", "nearest")
    transform = a.get("coordinate_transformation_mode", "half_pixel")
    if len(values) < 3 or values[:2] != [1.0, 1.0] or len(set(values[2:])) != 1 or not float(values[2]).is_integer():
        return "scales that are not one integer factor"
    if mode == "nearest" and transform == "asymmetric" and a.get("nearest_mode", "round_prefer_floor") == "floor":
        kind = "nearest"
    elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel") and len(values) == 4:
        kind = "bilinear"
    else:
        return f"mode {mode} with {transform} coordinates"
    ctx.add(node, "upsample", {"scale_factor": int(values[2]), "mode": kind}, [node.input[0]])
    return None



# ----------------------------------------------------------- adaptive pools
class _AdaptivePool(LayerType):
    """Shared rule: pool ``(N, C, L)`` or ``(N, C, H, W)`` to a fixed size, optionally flattened."""

    ndim: int = 2
    #: ``"avg"`` or ``"max"``.
    kind: str = "avg"
    category = "Pooling"
    id_prefix = "pool"
    key_params = ("output_size", "flatten")

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_spatial(x, self.ndim, self.title)
        out = (x.dims[0], *as_size(p.output_size, self.ndim))
        return Inference(TensorSpec((math.prod(out),) if p.flatten else out))

    def _size(self, p: Params) -> Any:
        size = as_size(p.output_size, self.ndim)
        return size[0] if self.ndim == 1 else size

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        pool = ModuleCall.of(f"nn.{self.title}", self._size(p))
        return ModuleCall.of("nn.Sequential", pool, ModuleCall.of("nn.Flatten")) if p.flatten else pool

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.adaptive_avg_pool2d`` and the like (then ``torch.flatten(.., 1)`` when flattening)."""
        import torch
        import torch.nn.functional as F

        function = getattr(F, f"adaptive_{self.kind}_pool{self.ndim}d")
        if not p.flatten:
            return ctx.call_function(function, (args[0], self._size(p)))
        pooled = ctx.graph.create_node("call_function", function, (args[0], self._size(p)),
                                       name=f"{ctx.name}_pooled")
        return ctx.call_function(torch.flatten, (pooled, 1))


def _output_size(ndim: int, what: str) -> Param:
    if ndim == 1:
        return int_param("output_size", 1, f"Output length; 1 {what} each channel to one value.", min=1, max=4096)
    return int_tuple_param("output_size", (1, 1), f"Output height, width; 1, 1 {what} each channel to one value.",
                           min=1, max=4096)


def _flatten(ndim: int) -> Param:
    shape = "length" if ndim == 1 else "height x width"
    return bool_param("flatten", False, f"Flatten the result to (N, C x {shape}), e.g. (N, C) for output "
                                        f"{'1' if ndim == 1 else '1, 1'}.")


@register
class AdaptiveAvgPool1d(_AdaptivePool):
    """Average pooling of a sequence to a fixed length."""

    type_id = "adaptive_avgpool1d"
    imports = (FromModule(("nn.AdaptiveAvgPool1d",), _adaptive_from_module),
               FromCall(_adaptive_call(1), ("F.adaptive_avg_pool1d",)))  # ONNX: AdaptiveAvgPool2d's reader
    title = "AdaptiveAvgPool1d"
    doc = ("Averages a sequence (N, C, L) down to a fixed length; output 1 is global average pooling "
           "over time, often followed by a Linear classifier.")
    ndim = 1
    params = (_output_size(1, "averages"), _flatten(1))
    examples = (Example(((8, 7),)), Example(((4, 9),), {"output_size": 4}),
                Example(((16, 5),), {"flatten": True}))


@register
class AdaptiveAvgPool2d(_AdaptivePool):
    """Average pooling to a fixed output size, whatever the input size."""

    type_id = "adaptive_avgpool2d"
    imports = (FromModule(("nn.AdaptiveAvgPool2d",), _adaptive_from_module),
               FromCall(_adaptive_call(2), ("F.adaptive_avg_pool2d",)),
               FromOnnx(("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax"), _global_pool_from_onnx))
    title = "AdaptiveAvgPool2d"
    doc = ("Averages an image (N, C, H, W) down to a fixed size; output 1x1 is global average pooling, "
           "often followed by a Linear classifier.")
    params = (_output_size(2, "averages"), _flatten(2))
    examples = (
        Example(((8, 7, 5),)),
        Example(((4, 9, 6),), {"output_size": (3, 2)}),
        Example(((16, 4, 4),), {"flatten": True}),
    )


@register
class AdaptiveMaxPool1d(_AdaptivePool):
    """Max pooling of a sequence to a fixed length."""

    type_id = "adaptive_maxpool1d"
    imports = (FromModule(("nn.AdaptiveMaxPool1d",), _adaptive_from_module),
               FromCall(_adaptive_call(1), ("F.adaptive_max_pool1d",)))  # ONNX: AdaptiveAvgPool2d's reader
    title = "AdaptiveMaxPool1d"
    doc = ("Keeps the largest values of a sequence (N, C, L) in a fixed number of windows; output 1 is global "
           "max pooling over time (does a feature occur anywhere?).")
    ndim = 1
    kind = "max"
    params = (_output_size(1, "reduces"), _flatten(1))
    examples = (Example(((8, 7),)), Example(((4, 9),), {"output_size": 4}),
                Example(((16, 5),), {"flatten": True}))


@register
class AdaptiveMaxPool2d(_AdaptivePool):
    """Max pooling of an image to a fixed output size."""

    type_id = "adaptive_maxpool2d"
    imports = (FromModule(("nn.AdaptiveMaxPool2d",), _adaptive_from_module),
               FromCall(_adaptive_call(2), ("F.adaptive_max_pool2d",)))  # ONNX: AdaptiveAvgPool2d's reader
    title = "AdaptiveMaxPool2d"
    doc = ("Keeps the largest values of an image (N, C, H, W) in a fixed grid of windows; output 1x1 is "
           "global max pooling.")
    kind = "max"
    params = (_output_size(2, "reduces"), _flatten(2))
    examples = (Example(((8, 7, 5),)), Example(((4, 9, 6),), {"output_size": (3, 2)}),
                Example(((16, 4, 4),), {"flatten": True}))


# ----------------------------------------------------------------- upsample
@register
class Upsample(LayerType):
    """Enlarges an image (or a sequence) by an integer factor."""

    type_id = "upsample"
    imports = (FromModule(("nn.Upsample",), _upsample_from_module), FromCall(_interpolate_call, ("F.interpolate",)),
               FromOnnx(("Resize",), _resize_from_onnx))
    title = "Upsample"
    category = "Pooling"
    doc = "Enlarges an image (N, C, H, W), or a sequence (N, C, L) with nearest, by an integer factor; no weights."
    id_prefix = "up"
    key_params = ("scale_factor", "mode")
    params = (
        int_param("scale_factor", 2, "Factor that multiplies each spatial size; 2 doubles it.", min=1, max=64),
        choice_param("mode", "nearest", ("nearest", "bilinear"),
                     "nearest repeats values; bilinear interpolates smoothly (images only)."),
    )
    examples = (
        Example(((3, 4, 5),)),
        Example(((2, 3, 7),), {"scale_factor": 3, "mode": "bilinear"}),
        Example(((4, 6),), {"scale_factor": 4}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        if p.mode == "bilinear" and x.rank == 3:
            raise ShapeError(f"bilinear mode expects (N, C, H, W) but receives {x}: use mode nearest for "
                             "sequences, or insert a Reshape to (C, H, W) before it", field="mode")
        layout = "(N, C, H, W)" if p.mode == "bilinear" else "(N, C, L) or (N, C, H, W)"
        require_rank(x, (3, 4), layout, "insert a Reshape to (C, H, W) before it")
        return Inference(TensorSpec((x.dims[0], *(d * p.scale_factor for d in x.dims[1:]))))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        if p.mode == "bilinear":
            return ModuleCall.of("nn.Upsample", scale_factor=p.scale_factor, mode="bilinear", align_corners=False)
        return ModuleCall.of("nn.Upsample", scale_factor=p.scale_factor, mode="nearest")

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.interpolate(x, scale_factor=.., mode=..)``."""
        import torch.nn.functional as F

        options = {"scale_factor": float(p.scale_factor), "mode": p.mode}
        if p.mode == "bilinear":
            options["align_corners"] = False
        return ctx.call_function(F.interpolate, (args[0],), options)
