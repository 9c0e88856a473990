"""Pooling and resampling layers: MaxPool1d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Upsample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from engine.layers.base import (EmitContext, ModuleCall, Example, Inference, LayerType, Params, ShapeError, TensorSpec, register,
                                require_float, require_rank)
from engine.layers.spatial import Size, as_size, fmt_size, require_spatial, window_out
from engine.layers.params import Param, bool_param, choice_param, int_param, int_tuple_param
from engine.layers.recognize import (Called, FromCall, FromModule, FromOnnx, Imported, one_or_list, pair,
                                     symmetric_pads)

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


# ------------------------------------------------------------- recognizers
def _pool_from_module(m: Any) -> Imported | None:
    """``nn.MaxPool1d`` / ``MaxPool2d`` / ``AvgPool2d`` without ceil_mode, dilation or indices."""
    if m.ceil_mode or getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
        return None
    if type(m).__name__ == "AvgPool2d" and (not m.count_include_pad or m.divisor_override is not None):
        return None
    wrap = (lambda v: v if isinstance(v, int) else v[0]) if type(m).__name__ == "MaxPool1d" else pair
    stride = m.stride if m.stride is not None else 0
    return {"kernel_size": wrap(m.kernel_size), "stride": wrap(stride), "padding": wrap(m.padding)}, {}


def _pool_call(ndim: int) -> Any:
    """``F.max_pool2d(x, 2)`` and the like: kernel, stride and padding; other options at their defaults."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        names = ("kernel_size", "stride", "padding")
        values = dict(zip(names, args[1:4]))
        values.update({k: v for k, v in kwargs.items() if k in names})
        harmless = {"dilation": (1, (1, 1), [1, 1]), "ceil_mode": (False,), "return_indices": (False,),
                    "count_include_pad": (True,), "divisor_override": (None,)}
        if any(k not in names and (k not in harmless or v not in harmless[k]) for k, v in kwargs.items()):
            return None
        if "kernel_size" not in values or len(args) > 4:
            return None
        size = (lambda v: v) if ndim == 1 else pair
        stride = values.get("stride") or 0
        return {"kernel_size": size(values["kernel_size"]), "stride": size(stride),
                "padding": size(values.get("padding", 0))}, [args[0]]
    return read


def _pool_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``MaxPool`` (1-D, 2-D) and ``AveragePool`` (2-D, padding counted)."""
    kernel = list(a.get("kernel_shape", []))
    ndim = len(kernel)
    pads = symmetric_pads(a.get("pads", []), ndim)
    average = node.op_type == "AveragePool"
    if pads is None or a.get("ceil_mode", 0) or a.get("auto_pad", "NOTSET") != "NOTSET" \
            or any(d != 1 for d in a.get("dilations", [1] * ndim)) or a.get("storage_order", 0):
        return "ceil_mode, dilation, automatic or asymmetric padding"
    if average and (ndim != 2 or any(pads) and not a.get("count_include_pad", 0)):
        return "average pooling that excludes padding, or not 2-D"
    if ndim not in (1, 2):
        return "pooling over more than 2 axes"
    type_id = "avgpool2d" if average else f"maxpool{ndim}d"
    params = {"kernel_size": one_or_list(kernel), "stride": one_or_list(a.get("strides", [1] * ndim)),
              "padding": one_or_list(pads)}
    ctx.add(node, type_id, params, [node.input[0]])
    return None


def _adaptive_from_module(m: Any) -> Imported | None:
    size = pair(m.output_size)
    return ({"output_size": size, "flatten": False}, {}) if None not in size else None


def _adaptive_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
    size = [size, size] if isinstance(size, int) else list(size or [])
    return ({"output_size": size, "flatten": False}, [args[0]]) if len(size) == 2 else None


def _global_pool_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``GlobalAveragePool``, and ``ReduceMean`` over height and width."""
    if node.op_type == "ReduceMean":
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = ctx.consts[node.input[1]].tolist() if node.input[1] in ctx.consts else []
        if ctx.rank(node.input[0]) != 4 or sorted(d % 4 for d in axes or []) != [2, 3]:
            return "a mean over other axes than height and width"
        flatten = not a.get("keepdims", 1)
    else:
        flatten = False
        if ctx.rank(node.input[0]) != 4:
            return "not 2-D"
    ctx.add(node, "adaptive_avgpool2d", {"output_size": [1, 1], "flatten": flatten}, [node.input[0]])
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


def _pool_params(ndim: int) -> tuple[Param, ...]:
    def size(name: str, default: int, doc: str, min: int) -> Param:
        if ndim == 1:
            return int_param(name, default, doc, min=min, max=4096)
        return int_tuple_param(name, (default,) * ndim, doc + " Height, width.", min=min, max=4096)

    return (
        size("kernel_size", 2, "Size of each pooling window; 2 halves the size.", 1),
        size("stride", 0, "Step between windows; 0 means the same as kernel_size (windows do not overlap).", 0),
        size("padding", 0, "Padding on each border; at most half of kernel_size.", 0),
    )


class _Pool(LayerType):
    """Shared rule for fixed-window pooling over ``ndim`` spatial axes."""

    ndim: int = 2
    sibling: str = ""
    category = "Pooling"
    id_prefix = "pool"
    key_params = ("kernel_size", "stride")

    def _windows(self, p: Mapping[str, Any]) -> tuple[Size, Size, Size]:
        """Kernel, stride (0 resolved to the kernel) and padding as tuples."""
        kernel, stride, padding = (as_size(p[n], self.ndim) for n in ("kernel_size", "stride", "padding"))
        return kernel, tuple(s or k for s, k in zip(stride, kernel)), padding

    def check_combination(self, p: Params) -> list[tuple[str, str]]:
        kernel, _, padding = self._windows(p)
        half = tuple(k // 2 for k in kernel)
        if any(q > h for q, h in zip(padding, half)):
            return [("padding", f"padding {fmt_size(padding)} must be at most half of kernel_size "
                     f"{fmt_size(kernel)}, that is {fmt_size(half)}: reduce padding or enlarge the kernel")]
        return []

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_spatial(x, self.ndim, self.title, self.sibling)
        out = window_out(x.dims[1:], *self._windows(p))
        return Inference(TensorSpec((x.dims[0], *out)))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        kernel, stride, padding = self._windows(p)
        if self.ndim == 1:
            return ModuleCall.of(f"nn.{self.title}", kernel[0], stride=stride[0], padding=padding[0])
        return ModuleCall.of(f"nn.{self.title}", kernel, stride=stride, padding=padding)

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.max_pool2d(x, kernel, stride, padding)``: a function call, as hand-written code has."""
        import torch.nn.functional as F

        kernel, stride, padding = self._windows(p)
        if self.ndim == 1:
            kernel, stride, padding = kernel[0], stride[0], padding[0]  # type: ignore[assignment]
        function = getattr(F, self.type_id.replace("pool", "_pool"))
        return ctx.call_function(function, (args[0], kernel, stride, padding))


@register
class MaxPool1d(_Pool):
    """Maximum over sliding windows of a sequence."""

    type_id = "maxpool1d"
    imports = (FromModule(("nn.MaxPool1d",), _pool_from_module), FromCall(_pool_call(1), ("F.max_pool1d",)),
               FromOnnx(("MaxPool", "AveragePool"), _pool_from_onnx))
    title = "MaxPool1d"
    doc = "Keeps the largest value of each window along a sequence (N, C, L), shrinking L."
    ndim = 1
    sibling = "MaxPool2d"
    params = _pool_params(1)
    examples = (Example(((4, 20),)), Example(((3, 17),), {"kernel_size": 3, "stride": 2, "padding": 1}))


@register
class MaxPool2d(_Pool):
    """Maximum over sliding windows of an image."""

    type_id = "maxpool2d"
    imports = (FromModule(("nn.MaxPool2d",), _pool_from_module), FromCall(_pool_call(2), ("F.max_pool2d",)))
    title = "MaxPool2d"
    doc = "Keeps the largest value of each window of an image (N, C, H, W); 2x2 halves height and width."
    sibling = "MaxPool1d"
    params = _pool_params(2)
    examples = (Example(((3, 8, 8),)),
                Example(((4, 11, 7),), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}))


@register
class AvgPool2d(_Pool):
    """Average over sliding windows of an image."""

    type_id = "avgpool2d"
    imports = (FromModule(("nn.AvgPool2d",), _pool_from_module), FromCall(_pool_call(2), ("F.avg_pool2d",)))
    title = "AvgPool2d"
    doc = "Averages each window of an image (N, C, H, W); 2x2 halves height and width."
    params = _pool_params(2)
    examples = (Example(((3, 8, 8),)),
                Example(((2, 9, 13),), {"kernel_size": (3, 4), "stride": (3, 0), "padding": (1, 2)}))


@register
class AdaptiveAvgPool2d(LayerType):
    """Average pooling to a fixed output size, whatever the input size."""

    type_id = "adaptive_avgpool2d"
    imports = (FromModule(("nn.AdaptiveAvgPool2d",), _adaptive_from_module),
               FromCall(_adaptive_call, ("F.adaptive_avg_pool2d",)),
               FromOnnx(("GlobalAveragePool", "ReduceMean"), _global_pool_from_onnx))
    title = "AdaptiveAvgPool2d"
    category = "Pooling"
    doc = ("Averages an image (N, C, H, W) down to a fixed size; output 1x1 is global average pooling, "
           "often followed by a Linear classifier.")
    id_prefix = "pool"
    key_params = ("output_size", "flatten")
    params = (
        int_tuple_param("output_size", (1, 1), "Output height, width; 1, 1 averages each channel to one value.",
                        min=1, max=4096),
        bool_param("flatten", False, "Flatten the result to (N, C x height x width), e.g. (N, C) for output 1, 1."),
    )
    examples = (
        Example(((8, 7, 5),)),
        Example(((4, 9, 6),), {"output_size": (3, 2)}),
        Example(((16, 4, 4),), {"flatten": True}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_spatial(x, 2, self.title)
        out = (x.dims[0], *as_size(p.output_size, 2))
        return Inference(TensorSpec((x.dims[0] * out[1] * out[2],) if p.flatten else out))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        pool = ModuleCall.of("nn.AdaptiveAvgPool2d", as_size(p.output_size, 2))
        return ModuleCall.of("nn.Sequential", pool, ModuleCall.of("nn.Flatten")) if p.flatten else pool

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.adaptive_avg_pool2d`` (then ``torch.flatten(.., 1)`` when flattening)."""
        import torch
        import torch.nn.functional as F

        size = as_size(p.output_size, 2)
        if not p.flatten:
            return ctx.call_function(F.adaptive_avg_pool2d, (args[0], size))
        pooled = ctx.graph.create_node("call_function", F.adaptive_avg_pool2d, (args[0], size),
                                       name=f"{ctx.name}_pooled")
        return ctx.call_function(torch.flatten, (pooled, 1))


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
