"""Fixed-window pooling: MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d.

Adaptive pooling (to a fixed output size) and Upsample live in :mod:`engine.layers.resize`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from engine.layers.base import (EmitContext, Example, Inference, LayerType, ModuleCall, Params, TensorSpec,
                                register)
from engine.layers.params import Param, bool_param, int_param, int_tuple_param
from engine.layers.recognize import (Called, FromCall, FromModule, FromOnnx, Imported, call_options, one_or_list,
                                     pair, symmetric_pads)
from engine.layers.spatial import Size, as_size, fmt_size, pool_out, require_spatial

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


# ------------------------------------------------------------- recognizers
def _pool_from_module(m: Any) -> Imported | None:
    """``nn.MaxPool1d`` / ``MaxPool2d`` / ``AvgPool1d`` / ``AvgPool2d`` without dilation, indices or a divisor."""
    if getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False) \
            or getattr(m, "divisor_override", None) is not None:
        return None
    size = _one if type(m).__name__.endswith("1d") else pair
    stride = m.stride if m.stride is not None else 0
    params: dict[str, Any] = {"kernel_size": size(m.kernel_size), "stride": size(stride),
                              "padding": size(m.padding), "ceil_mode": bool(m.ceil_mode)}
    if type(m).__name__.startswith("Avg"):
        params["count_include_pad"] = bool(m.count_include_pad)
    return params, {}


def _one(value: Any) -> Any:
    """A 1-D window size given as ``3`` or ``(3,)`` as ``3``."""
    return value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value


#: Positional options of F.max_pool1d/2d and F.avg_pool1d/2d after the input, and their defaults.
_MAX_OPTIONS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_OPTIONS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False,
             "count_include_pad": True, "divisor_override": None}


def _pool_call(ndim: int, average: bool) -> Any:
    """``F.max_pool2d(x, 2)``, ``F.avg_pool1d(x, 3, 2, 1, ceil_mode=True)`` and the like."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        o = call_options(args, kwargs, _AVG_OPTIONS if average else _MAX_OPTIONS, _DEFAULTS)
        if o is None or "kernel_size" not in o or o["dilation"] not in (1, (1,), (1, 1), [1], [1, 1]) \
                or o["return_indices"] or o["divisor_override"] is not None:
            return None
        size = _one if ndim == 1 else pair
        params: dict[str, Any] = {"kernel_size": size(o["kernel_size"]), "stride": size(o["stride"] or 0),
                                  "padding": size(o["padding"]), "ceil_mode": o["ceil_mode"]}
        if average:
            params["count_include_pad"] = o["count_include_pad"]
        return params, [args[0]]
    return read


def _pool_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``MaxPool`` and ``AveragePool`` over 1 or 2 axes with symmetric explicit padding."""
    kernel = list(a.get("kernel_shape", []))
    ndim = len(kernel)
    pads = symmetric_pads(a.get("pads", []), ndim)
    if pads is None or a.get("auto_pad", "NOTSET") != "NOTSET" \
            or any(d != 1 for d in a.get("dilations", [1] * ndim)) or a.get("storage_order", 0):
        return "dilation, automatic or asymmetric padding"
    if ndim not in (1, 2):
        return "pooling over more than 2 axes"
    average = node.op_type == "AveragePool"
    params: dict[str, Any] = {"kernel_size": one_or_list(kernel), "stride": one_or_list(a.get("strides", [1] * ndim)),
                              "padding": one_or_list(pads), "ceil_mode": bool(a.get("ceil_mode", 0))}
    if average:  # without padding, counting it or not is the same; say so as PyTorch's default does
        params["count_include_pad"] = bool(a.get("count_include_pad", 0)) or not any(pads)
    ctx.add(node, f"{'avg' if average else 'max'}pool{ndim}d", params, [node.input[0]])
    return None


# ------------------------------------------------------------------ layers
def _pool_params(ndim: int, average: bool) -> tuple[Param, ...]:
    def size(name: str, default: int, doc: str, min: int) -> Param:
        if ndim == 1:
            return int_param(name, default, doc, min=min, max=4096)
        return int_tuple_param(name, (default,) * ndim, doc + " Height, width.", min=min, max=4096)

    params = (
        size("kernel_size", 2, "Size of each pooling window; 2 halves the size.", 1),
        size("stride", 0, "Step between windows; 0 means the same as kernel_size (windows do not overlap).", 0),
        size("padding", 0, "Padding on each border; at most half of kernel_size.", 0),
        bool_param("ceil_mode", False, "Round the output size up: a last, partial window covers the leftover "
                                       "border instead of dropping it (as in GoogLeNet and SqueezeNet)."),
    )
    if average:
        params += (bool_param("count_include_pad", True, "Count the zero padding in a border window's average; "
                                                         "off averages the real values only."),)
    return params


class _Pool(LayerType):
    """Shared rule for fixed-window pooling over ``ndim`` spatial axes."""

    ndim: int = 2
    average: bool = False
    sibling: str = ""
    category = "Pooling"
    id_prefix = "pool"
    key_params = ("kernel_size", "stride", "ceil_mode")

    def _windows(self, p: Mapping[str, Any]) -> tuple[Size, Size, Size]:
        """Kernel, stride (0 resolved to the kernel) and padding as tuples."""
        kernel, stride, padding = (as_size(p[n], self.ndim) for n in ("kernel_size", "stride", "padding"))
        return kernel, tuple(s or k for s, k in zip(stride, kernel)), padding

    def _options(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """``ceil_mode`` / ``count_include_pad`` where they differ from PyTorch's defaults."""
        options = {"ceil_mode": True} if p.get("ceil_mode", False) else {}
        if self.average and not p.get("count_include_pad", True):
            options["count_include_pad"] = False
        return options

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
        out = pool_out(x.dims[1:], *self._windows(p), ceil_mode=p.get("ceil_mode", False))
        return Inference(TensorSpec((x.dims[0], *out)))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        kernel, stride, padding = self._windows(p)
        if self.ndim == 1:
            return ModuleCall.of(f"nn.{self.title}", kernel[0], stride=stride[0], padding=padding[0],
                                 **self._options(p))
        return ModuleCall.of(f"nn.{self.title}", kernel, stride=stride, padding=padding, **self._options(p))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.max_pool2d(x, kernel, stride, padding)``: a function call, as hand-written code has."""
        import torch.nn.functional as F

        kernel, stride, padding = self._windows(p)
        if self.ndim == 1:
            kernel, stride, padding = kernel[0], stride[0], padding[0]  # type: ignore[assignment]
        function = getattr(F, self.type_id.replace("pool", "_pool"))
        return ctx.call_function(function, (args[0], kernel, stride, padding), self._options(p))


@register
class MaxPool1d(_Pool):
    """Maximum over sliding windows of a sequence."""

    type_id = "maxpool1d"
    imports = (FromModule(("nn.MaxPool1d",), _pool_from_module), FromCall(_pool_call(1, False), ("F.max_pool1d",)),
               FromOnnx(("MaxPool", "AveragePool"), _pool_from_onnx))
    title = "MaxPool1d"
    doc = "Keeps the largest value of each window along a sequence (N, C, L), shrinking L."
    ndim = 1
    sibling = "MaxPool2d"
    params = _pool_params(1, False)
    examples = (Example(((4, 20),)), Example(((3, 17),), {"kernel_size": 3, "stride": 2, "padding": 1}),
                Example(((2, 10),), {"kernel_size": 3, "stride": 2, "ceil_mode": True}))


@register
class MaxPool2d(_Pool):
    """Maximum over sliding windows of an image."""

    type_id = "maxpool2d"
    imports = (FromModule(("nn.MaxPool2d",), _pool_from_module), FromCall(_pool_call(2, False), ("F.max_pool2d",)))
    title = "MaxPool2d"
    doc = "Keeps the largest value of each window of an image (N, C, H, W); 2x2 halves height and width."
    sibling = "MaxPool1d"
    params = _pool_params(2, False)
    examples = (Example(((3, 8, 8),)),
                Example(((4, 11, 7),), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
                Example(((2, 14, 13),), {"kernel_size": (3, 3), "stride": (2, 2), "ceil_mode": True}))


@register
class AvgPool1d(_Pool):
    """Average over sliding windows of a sequence."""

    type_id = "avgpool1d"
    imports = (FromModule(("nn.AvgPool1d",), _pool_from_module), FromCall(_pool_call(1, True), ("F.avg_pool1d",)))
    title = "AvgPool1d"
    doc = "Averages each window along a sequence (N, C, L), shrinking L; a smoother alternative to MaxPool1d."
    ndim = 1
    average = True
    sibling = "AvgPool2d"
    params = _pool_params(1, True)
    examples = (Example(((4, 20),)),
                Example(((3, 17),), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
                Example(((2, 10),), {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True}))


@register
class AvgPool2d(_Pool):
    """Average over sliding windows of an image."""

    type_id = "avgpool2d"
    imports = (FromModule(("nn.AvgPool2d",), _pool_from_module), FromCall(_pool_call(2, True), ("F.avg_pool2d",)))
    title = "AvgPool2d"
    doc = "Averages each window of an image (N, C, H, W); 2x2 halves height and width."
    average = True
    sibling = "AvgPool1d"
    params = _pool_params(2, True)
    examples = (Example(((3, 8, 8),)),
                Example(((2, 9, 13),), {"kernel_size": (3, 4), "stride": (3, 0), "padding": (1, 2)}),
                Example(((2, 9, 13),), {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1),
                                        "ceil_mode": True, "count_include_pad": False}))
