"""Activation functions: ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax.

All keep the shape, have no weights and count zero FLOPs (element-wise work). Parameter
names match the keyword arguments of the torch module named by the title.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.layers.base import (EmitContext, Example, Inference, LayerType, ModuleCall, Params, ShapeError,
                                TensorSpec, get_layer, register, require_float)
from engine.layers.params import choice_param, float_param, int_param
from engine.layers.recognize import Called, FromCall, FromModule, FromOnnx, Imported

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

_SHAPES = (Example(((10,),)), Example(((3, 5, 7),)))
#: Keyword arguments of activation functions that change nothing the layer computes.
_HARMLESS_KWARGS = {"inplace": None, "_stacklevel": None, "dtype": (None,)}


def recognized(type_id: str, module: str, functions: tuple[str, ...] = (), methods: tuple[str, ...] = (),
               onnx: str = "", onnx_attrs: dict[str, str] | None = None) -> tuple[object, ...]:
    """The recognizers of an activation: its module, its functions and methods, its ONNX operator.

    Its parameters are read by name: from the module's attributes, from the call's arguments
    (in declaration order after the input, or as keywords), and from the ONNX attributes
    named in ``onnx_attrs`` (``{"alpha": "negative_slope"}``).
    """
    def from_module(m: object) -> Imported:
        layer = get_layer(type_id)
        params = {decl.name: getattr(m, decl.name) for decl in layer.params}
        if "dim" in params and params["dim"] is None:
            params["dim"] = -1
        return params, {}

    def from_call(args: list[object], kwargs: dict[str, object]) -> Called | None:
        params = get_layer(type_id).defaults()
        names = list(params)
        if len(args) - 1 > len(names):
            return None
        params.update(zip(names, args[1:]))
        for key, value in kwargs.items():
            if key in params:
                params[key] = value
            elif key not in _HARMLESS_KWARGS or _HARMLESS_KWARGS[key] is not None and \
                    value not in _HARMLESS_KWARGS[key]:  # type: ignore[operator]
                return None
        return params, [args[0]]

    def from_onnx(ctx: object, node: object, attrs: dict[str, object]) -> str | None:
        params = get_layer(type_id).defaults()
        for attr, name in (onnx_attrs or {}).items():
            if attr in attrs:
                params[name] = attrs[attr]
        ctx.add(node, type_id, params, [node.input[0]])  # type: ignore[attr-defined]
        return None

    found: list[object] = [FromModule((module,), from_module)]
    if functions or methods:
        found.append(FromCall(from_call, functions, methods))
    if onnx:
        found.append(FromOnnx((onnx,), from_onnx))
    return tuple(found)


class _Activation(LayerType):
    """Shared rule: real-valued input of any shape, output of the same shape."""

    category = "Activation"

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        return Inference(x)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of(f"nn.{self.title}", **{decl.name: p[decl.name] for decl in self.params})

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """A function call (``F.relu(x)``), as hand-written code has: no submodule, no call overhead."""
        import torch
        import torch.nn.functional as F

        function = getattr(torch, self.type_id) if self.type_id in ("sigmoid", "tanh") else getattr(F, self.type_id)
        return ctx.call_function(function, (args[0],), {decl.name: p[decl.name] for decl in self.params})


@register
class ReLU(_Activation):
    """max(0, x)."""

    type_id = "relu"
    imports = recognized("relu", "nn.ReLU", ("F.relu", "torch.relu"), ("relu",), "Relu")
    title = "ReLU"
    doc = "Keeps positive values and sets negative ones to zero: max(0, x). The default choice."
    id_prefix = "relu"
    examples = _SHAPES


@register
class LeakyReLU(_Activation):
    """ReLU with a small slope for negative values."""

    type_id = "leaky_relu"
    imports = recognized("leaky_relu", "nn.LeakyReLU", ("F.leaky_relu",), (), "LeakyRelu", {"alpha": "negative_slope"})
    title = "LeakyReLU"
    doc = "Like ReLU but lets a small fraction of negative values through, so units never go silent."
    id_prefix = "lrelu"
    key_params = ("negative_slope",)
    params = (float_param("negative_slope", 0.01, "Slope for negative inputs, e.g. 0.01 or 0.2.", min=0.0, max=1.0),)
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"negative_slope": 0.2}))


@register
class ELU(_Activation):
    """Exponential linear unit."""

    type_id = "elu"
    imports = recognized("elu", "nn.ELU", ("F.elu",), (), "Elu", {"alpha": "alpha"})
    title = "ELU"
    doc = "Like ReLU for positive values, a smooth curve down to -alpha for negative ones."
    id_prefix = "elu"
    key_params = ("alpha",)
    params = (float_param("alpha", 1.0, "Very negative inputs approach -alpha.", min=0.0, max=10.0),)
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"alpha": 0.5}))


@register
class GELU(_Activation):
    """Gaussian error linear unit."""

    type_id = "gelu"
    imports = recognized("gelu", "nn.GELU", ("F.gelu",), (), "Gelu", {"approximate": "approximate"})
    title = "GELU"
    doc = "Smooth ReLU-like curve x * Phi(x), the usual choice in transformers."
    id_prefix = "gelu"
    key_params = ("approximate",)
    params = (choice_param("approximate", "none", ("none", "tanh"),
                           "none is exact; tanh is a faster approximation (as in GPT-2)."),)
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"approximate": "tanh"}))


@register
class SiLU(_Activation):
    """x * sigmoid(x), also called Swish."""

    type_id = "silu"
    imports = recognized("silu", "nn.SiLU", ("F.silu",))
    title = "SiLU"
    doc = "Smooth ReLU-like curve x * sigmoid(x), also called Swish."
    id_prefix = "silu"
    examples = _SHAPES


@register
class Sigmoid(_Activation):
    """Squashes values into (0, 1)."""

    type_id = "sigmoid"
    imports = recognized("sigmoid", "nn.Sigmoid", ("torch.sigmoid", "F.sigmoid"), ("sigmoid",), "Sigmoid")
    title = "Sigmoid"
    doc = "Squashes each value into (0, 1), e.g. a probability for yes/no outputs."
    id_prefix = "sigmoid"
    examples = _SHAPES


@register
class Tanh(_Activation):
    """Squashes values into (-1, 1)."""

    type_id = "tanh"
    imports = recognized("tanh", "nn.Tanh", ("torch.tanh", "F.tanh"), ("tanh",), "Tanh")
    title = "Tanh"
    doc = "Squashes each value into (-1, 1), e.g. for generator outputs scaled to [-1, 1]."
    id_prefix = "tanh"
    examples = _SHAPES


class _SoftmaxBase(_Activation):
    """Shared rule for normalizations along one dimension."""

    key_params = ("dim",)
    params = (int_param("dim", -1, "Dimension whose values sum to one, counting the batch as 0; -1 is the last.",
                        min=-8, max=8),)
    examples = (Example(((10,),)), Example(((3, 5, 7),), {"dim": 1}), Example(((4, 6),), {"dim": -2}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        dim = p.dim + x.rank if p.dim < 0 else p.dim
        if dim == 0:
            raise ShapeError(f"dim {p.dim} is the batch dimension of {x}, which would mix samples: use dim -1 "
                             "(the last), or 1 for channels", field="dim")
        if not 0 < dim < x.rank:
            choices = "1 or -1" if x.rank == 2 else f"a dim between 1 and {x.rank - 1}, or -1 for the last"
            raise ShapeError(f"dim {p.dim} does not exist in {x} (rank {x.rank}): use {choices}", field="dim")
        return Inference(x)


@register
class Softmax(_SoftmaxBase):
    """Turns scores into probabilities along one dimension."""

    type_id = "softmax"
    imports = recognized("softmax", "nn.Softmax", ("F.softmax", "torch.softmax"), ("softmax",), "Softmax",
                         {"axis": "dim"})
    title = "Softmax"
    doc = ("Turns scores into probabilities that sum to one along dim; leave it out before CrossEntropyLoss, "
           "which applies it itself.")
    id_prefix = "softmax"


@register
class LogSoftmax(_SoftmaxBase):
    """Logarithm of softmax, numerically stable."""

    type_id = "log_softmax"
    imports = recognized("log_softmax", "nn.LogSoftmax", ("F.log_softmax", "torch.log_softmax"), ("log_softmax",),
                         "LogSoftmax", {"axis": "dim"})
    title = "LogSoftmax"
    doc = "Log-probabilities along dim (the log of Softmax, computed stably); pair it with NLLLoss."
    id_prefix = "logsoftmax"
