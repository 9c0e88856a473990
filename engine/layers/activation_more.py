"""More activation functions: ReLU6, Hardswish, Hardsigmoid, Mish, Softplus, and PReLU (learned slopes).

All keep the shape and count zero FLOPs (element-wise work); only PReLU has weights. Parameter
names match the keyword arguments of the torch module named by the title.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.layers.activation import _SHAPES, _Activation, recognized
from engine.layers.base import (EmitContext, Example, Inference, LayerType, ModuleCall, Params, TensorSpec,
                                register, require_float)
from engine.layers.params import bool_param, float_param
from engine.layers.recognize import Called, FromCall, FromModule, FromOnnx, Imported, call_options, is_traced

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


# ------------------------------------------------------------- recognizers
def _clip_from_module(m: Any) -> Imported | None:
    """``nn.Hardtanh(0, 6)`` is ReLU6."""
    return ({}, {}) if (m.min_val, m.max_val) == (0.0, 6.0) else None


def _clip_call(names: tuple[str, str]) -> Any:
    """``F.hardtanh(x, 0., 6.)`` / ``torch.clamp(x, 0, 6)`` / ``x.clamp(min=0, max=6)``: ReLU6."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        o = call_options(args, kwargs, (*names, "inplace"), {names[0]: None, names[1]: None, "inplace": False})
        if o is None or not is_traced(args[0]) or any(isinstance(o[n], bool) for n in names):
            return None
        return ({}, [args[0]]) if (o[names[0]], o[names[1]]) == (0, 6) else None
    return read


def _clip_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Clip`` with the constant bounds 0 and 6 (inputs since opset 11, attributes before)."""
    bounds = []
    for index, attribute in ((1, "min"), (2, "max")):
        name = node.input[index] if len(node.input) > index else ""
        if name:
            bounds.append(float(ctx.consts[name].reshape(-1)[0]) if name in ctx.consts and ctx.consts[name].size == 1
                          else None)
        else:
            bounds.append(a.get(attribute))
    if bounds != [0.0, 6.0]:
        return f"clipping to {bounds} (only 0 to 6, ReLU6, maps)"
    ctx.add(node, "relu6", {}, [node.input[0]])
    return None


def _hardsigmoid_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``HardSigmoid`` with alpha 1/6 and beta 0.5: PyTorch's hardsigmoid, relu6(x + 3) / 6."""
    if abs(float(a.get("alpha", 0.2)) - 1 / 6) > 1e-6 or abs(float(a.get("beta", 0.5)) - 0.5) > 1e-6:
        return "alpha and beta other than 1/6 and 0.5"
    ctx.add(node, "hardsigmoid", {}, [node.input[0]])
    return None


def _prelu_from_module(m: Any) -> Imported:
    return {"per_channel": m.num_parameters > 1, "init": float(m.init)}, {"weight": m.weight}


def _prelu_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``F.prelu(x, self.slopes)`` with a learned 1-D tensor of slopes (one, or one per channel)."""
    import torch

    weight = kwargs.get("weight", args[1] if len(args) > 1 else None)
    if len(args) > 2 or set(kwargs) - {"weight"} or not is_traced(args[0]) or not isinstance(weight, torch.Tensor) \
            or weight.dim() != 1:
        return None
    return {"per_channel": weight.numel() > 1}, [args[0]], {"weight": weight}


def _prelu_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``PRelu`` with constant slopes: one for every value, or one per channel (axis 1)."""
    x, slope = node.input[0], node.input[1]
    rank = ctx.rank(x)
    if slope not in ctx.consts or rank < 2 or ctx.consts[slope].ndim > rank:
        return "slopes that are not constants"
    values = ctx.consts[slope]
    aligned = [1] * (rank - values.ndim) + list(values.shape)  # ONNX broadcasts from the right
    if values.size > 1 and (aligned[1] != values.size or aligned[1] != ctx.shapes[x][1]):
        return "slopes that are neither one value nor one per channel"
    ctx.add(node, "prelu", {"per_channel": values.size > 1}, [x], {"weight": values.reshape(-1)}, slope)
    return None


# ------------------------------------------------------------------ layers
@register
class ReLU6(_Activation):
    """ReLU capped at 6."""

    type_id = "relu6"
    imports = (*recognized("relu6", "nn.ReLU6", ("F.relu6",)),
               FromModule(("nn.Hardtanh",), _clip_from_module),
               FromCall(_clip_call(("min_val", "max_val")), ("F.hardtanh",)),
               FromCall(_clip_call(("min", "max")), ("torch.clamp", "torch.clip"), ("clamp", "clip")),
               FromOnnx(("Clip",), _clip_from_onnx))
    title = "ReLU6"
    doc = "ReLU capped at 6: min(max(0, x), 6); keeps values in a small range, as in MobileNet."
    id_prefix = "relu6"
    examples = _SHAPES


@register
class Hardswish(_Activation):
    """A cheap, piecewise version of SiLU / Swish."""

    type_id = "hardswish"
    imports = recognized("hardswish", "nn.Hardswish", ("F.hardswish",), (), "HardSwish")
    title = "Hardswish"
    doc = "A cheap approximation of SiLU made of straight pieces: x * relu6(x + 3) / 6, as in MobileNetV3."
    id_prefix = "hswish"
    examples = _SHAPES


@register
class Hardsigmoid(_Activation):
    """A cheap, piecewise version of the sigmoid."""

    type_id = "hardsigmoid"
    imports = (*recognized("hardsigmoid", "nn.Hardsigmoid", ("F.hardsigmoid",)),
               FromOnnx(("HardSigmoid",), _hardsigmoid_from_onnx))
    title = "Hardsigmoid"
    doc = ("A cheap approximation of Sigmoid made of straight pieces: relu6(x + 3) / 6, e.g. the gate of a "
           "squeeze-and-excitation block in MobileNetV3.")
    id_prefix = "hsigmoid"
    examples = _SHAPES


@register
class Mish(_Activation):
    """x * tanh(softplus(x))."""

    type_id = "mish"
    imports = recognized("mish", "nn.Mish", ("F.mish",), (), "Mish")
    title = "Mish"
    doc = "Smooth ReLU-like curve x * tanh(softplus(x)), similar to SiLU; used in YOLOv4."
    id_prefix = "mish"
    examples = _SHAPES


@register
class Softplus(_Activation):
    """A smooth version of ReLU."""

    type_id = "softplus"
    imports = recognized("softplus", "nn.Softplus", ("F.softplus",), (), "Softplus")  # ONNX Softplus: beta 1
    title = "Softplus"
    doc = "A smooth ReLU, log(1 + exp(beta * x)) / beta: always positive, e.g. for a predicted variance."
    id_prefix = "softplus"
    key_params = ("beta",)
    params = (
        float_param("beta", 1.0, "Sharpness: larger values bend closer to ReLU.", min=0.01, max=100.0),
        float_param("threshold", 20.0, "Above beta * x = threshold the output is x itself (for numerical stability).",
                    min=1.0, max=100.0),
    )
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"beta": 2.0, "threshold": 10.0}))


@register
class PReLU(LayerType):
    """LeakyReLU whose negative slope is learned."""

    type_id = "prelu"
    imports = (FromModule(("nn.PReLU",), _prelu_from_module), FromCall(_prelu_call, ("F.prelu",)),
               FromOnnx(("PRelu",), _prelu_from_onnx))
    title = "PReLU"
    category = "Activation"
    doc = "Like LeakyReLU, but the slope for negative values is learned: one for the layer, or one per channel."
    id_prefix = "prelu"
    key_params = ("per_channel",)
    params = (
        bool_param("per_channel", False, "Learn one slope per channel (dimension 1: the channels of an image or "
                                         "of (N, C, L), the features of (N, features)) instead of one in all."),
        float_param("init", 0.25, "Initial value of the slopes.", min=-1.0, max=1.0),
    )
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"per_channel": True, "init": 0.1}),
                Example(((6, 4),), {"per_channel": True}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        return Inference(x, x.dims[0] if p.per_channel else 1)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.PReLU", inputs[0].dims[0] if p.per_channel else 1, init=p.init)

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """The module (it holds the slopes)."""
        return LayerType.emit(self, ctx, p, args, inputs)
