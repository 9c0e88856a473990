"""Parts of residual blocks and vision transformers: StochasticDepth, and learned tensors
(LayerScale, Position Embedding, Class Token).

The learned tensors are module classes of :mod:`engine.layers.modules` whose parameter names the
importers fill: ``gamma`` (LayerScale), ``embedding`` (PositionEmbedding), ``token`` (ClassToken).
"""

from __future__ import annotations

import math
from typing import Any

from engine.layers.base import (Example, Inference, LayerType, ModuleCall, Params, TensorSpec, register,
                                require_float, require_sequence)
from engine.layers.params import choice_param, float_param
from engine.layers.recognize import (Called, Expanded, FromCall, FromModule, FromOnnx, Imported, call_options,
                                     constant_operand, is_traced, traced_rank)


# ------------------------------------------------------------- recognizers
def _traced_shape(node: Any) -> tuple[int, ...] | None:
    """The shape torch.fx's shape propagation recorded for a traced tensor (batch first), if any."""
    meta = getattr(node, "meta", {}).get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _traced_and_tensor(args: list[Any], kwargs: dict[str, Any]) -> tuple[Any, Any] | None:
    """``(x, t)`` for ``x * t`` / ``t + x`` of a traced tensor and a learned one (either order)."""
    import torch

    if len(args) != 2 or kwargs:
        return None
    first, second = args
    if is_traced(first) and isinstance(second, torch.Tensor):
        return first, second
    if is_traced(second) and isinstance(first, torch.Tensor):
        return second, first
    return None


def _scale_shape(rank: int, dims: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of LayerScale's ``gamma`` for an input of ``rank`` (batch included) and per-sample ``dims``."""
    return (dims[0], *[1] * (rank - 2)) if rank >= 4 else (dims[-1],)


def _layer_scale_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``x * self.gamma`` / ``self.layer_scale * x`` with a learned per-channel (or per-feature) tensor."""
    found = _traced_and_tensor(args, kwargs)
    shape = _traced_shape(found[0]) if found else None
    if found is None or shape is None or len(shape) < 2:
        return None
    gamma = found[1]
    while gamma.dim() > 1 and gamma.shape[0] == 1:
        gamma = gamma.squeeze(0)
    if tuple(gamma.shape) != _scale_shape(len(shape), shape[1:]):
        return None
    return {}, [found[0]], {"gamma": gamma}


def _layer_scale_from_module(m: Any) -> Imported | None:
    """A module named ``LayerScale`` (the app's, timm's) holding ``gamma``."""
    gamma = getattr(m, "gamma", None)
    return ({}, {"gamma": gamma}) if gamma is not None and gamma.dim() >= 1 else None


def _layer_scale2d_from_module(m: Any) -> Imported | None:
    """timm's ``LayerScale2d``: ``gamma`` of shape (C,) viewed as (1, C, 1, 1) to scale an image's channels."""
    gamma = getattr(m, "gamma", None)
    return ({}, {"gamma": gamma.detach().reshape(-1, 1, 1)}) if gamma is not None and gamma.dim() == 1 else None


def _image_call(args: list[Any], kwargs: dict[str, Any]) -> list[Any] | None:
    """``self.ls(x)`` of one image (N, C, H, W)."""
    return [args[0]] if len(args) == 1 and not kwargs and traced_rank(args[0]) == 4 else None


def _layer_scale_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Mul`` of a computed tensor by a constant of one value per channel (images) or feature."""
    found = constant_operand(ctx, node)
    shape = ctx.shapes.get(found[0], []) if found else []
    if found is None or len(shape) < 2 or not all(isinstance(d, int) for d in shape[1:]):
        return "a product that is not a computed tensor times a constant"
    values = found[1]
    while values.ndim > 1 and values.shape[0] == 1:  # (1, C, 1, 1) -> (C, 1, 1); (1, 1, D) -> (D,)
        values = values.reshape(values.shape[1:])
    if tuple(values.shape) != _scale_shape(len(shape), tuple(shape[1:])) or found[1].ndim > len(shape):
        return "a product with a constant that is not one value per channel"
    ctx.add(node, "layer_scale", {}, [found[0]], {"gamma": values})
    return None


def _position_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``x + self.pos_embedding`` with a learned tensor of the input's per-sample shape."""
    found = _traced_and_tensor(args, kwargs)
    shape = _traced_shape(found[0]) if found else None
    if found is None or shape is None:
        return None
    embedding = found[1]
    if embedding.dim() == len(shape) - 1:
        embedding = embedding.unsqueeze(0)
    if tuple(embedding.shape) != (1, *shape[1:]):
        return None
    return {}, [found[0]], {"embedding": embedding}


def _position_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Add`` of a computed tensor and a constant of its per-sample shape (not a Linear's bias)."""
    found = constant_operand(ctx, node)
    shape = ctx.shapes.get(found[0], []) if found else []
    if found is None or found[0] in ctx.values and ctx.values[found[0]] in ctx.from_matmul \
            or tuple(found[1].shape) != (1, *shape[1:]) or len(shape) < 2:
        return "a sum that is not a computed tensor plus a constant of its own shape"
    ctx.add(node, "position_embedding", {"init": "normal"}, [found[0]], {"embedding": found[1]})
    return None


def _class_token_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)``: a learned token first."""
    tensors = args[0] if args and isinstance(args[0], (list, tuple)) else None
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if tensors is None or len(tensors) != 2 or not isinstance(tensors[0], Expanded) or not is_traced(tensors[1]) \
            or dim not in (1, -2) or set(kwargs) - {"dim"}:
        return None
    token = tensors[0].tensor
    if token.dim() != 3 or tuple(token.shape[:2]) != (1, 1):
        return None
    return {"init": "zeros"}, [tensors[1]], {"token": token}


def _stochastic_depth_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """torchvision's ``stochastic_depth(x, p, mode, training)`` (wrapped, so tracing keeps it whole)."""
    o = call_options(args, kwargs, ("p", "mode", "training"), {"mode": "row", "training": True})
    if o is None or not is_traced(args[0]) or not isinstance(o.get("p"), (int, float)) \
            or o["mode"] not in ("row", "batch"):
        return None
    return {"p": float(o["p"]), "mode": o["mode"]}, [args[0]]


def _drop_path_from_module(m: Any) -> Imported | None:
    """timm's ``DropPath``: drops whole samples, rescaled (``scale_by_keep``)."""
    return ({"p": float(m.drop_prob), "mode": "row"}, {}) if getattr(m, "scale_by_keep", True) else None


# ------------------------------------------------------------------ layers
@register
class StochasticDepth(LayerType):
    """Randomly drops a residual branch for whole samples while training."""

    type_id = "stochastic_depth"
    imports = (FromModule(("StochasticDepth",), lambda m: ({"p": float(m.p), "mode": m.mode}, {})),
               FromModule(("DropPath",), _drop_path_from_module),
               FromCall(_stochastic_depth_call, ("*.stochastic_depth",)))
    title = "Stochastic Depth"
    category = "Core"
    doc = ("On a residual branch before the Add: while training, skips the branch for a random share p of the "
           "samples (scaling the rest by 1 / (1 - p)); does nothing in evaluation. Also called DropPath.")
    id_prefix = "droppath"
    key_params = ("p", "mode")
    params = (
        float_param("p", 0.1, "Probability of dropping the branch; deeper blocks usually get larger p.",
                    min=0.0, max=1.0),
        choice_param("mode", "row", ("row", "batch"), "row: drop for single samples; batch: for the whole batch."),
    )
    examples = (Example(((8, 5, 5),)), Example(((6, 4),), {"p": 0.3, "mode": "batch"}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        require_float(inputs[0], self.title)
        return Inference(inputs[0])

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("StochasticDepth", p.p, mode=p.mode)


@register
class LayerScale(LayerType):
    """A learned scale per channel."""

    type_id = "layer_scale"
    imports = (FromModule(("LayerScale",), _layer_scale_from_module),
               FromModule(("LayerScale2d",), _layer_scale2d_from_module, call=_image_call),
               FromCall(_layer_scale_call, ("operator.mul", "torch.mul"), ("mul",)),
               FromOnnx(("Mul",), _layer_scale_from_onnx))
    title = "LayerScale"
    category = "Core"
    doc = ("Multiplies each channel by a learned scale that starts small, so a new residual branch starts "
           "close to doing nothing; images scale per channel, features and tokens per feature.")
    id_prefix = "scale"
    key_params = ("init_value",)
    params = (float_param("init_value", 1e-5, "Initial value of every scale, e.g. 1e-5 (CaiT) or 1e-6 (ConvNeXt); "
                                              "1 starts as the identity.", min=1e-8, max=10.0),)
    examples = (Example(((8, 5, 5),)), Example(((6, 4),), {"init_value": 0.1}), Example(((12,),)))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        return Inference(x, math.prod(_scale_shape(x.rank, x.dims)))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        x = inputs[0]
        return ModuleCall.of("LayerScale", _scale_shape(x.rank, x.dims), init_value=p.init_value)


@register
class PositionEmbedding(LayerType):
    """Adds a learned tensor of the input's own shape."""

    type_id = "position_embedding"
    imports = (FromModule(("PositionEmbedding",), lambda m: ({"init": "normal"}, {"embedding": m.embedding})),
               FromCall(_position_call, ("operator.add", "torch.add"), ("add",)),
               FromOnnx(("Add",), _position_from_onnx))
    title = "Position Embedding"
    category = "Attention"
    doc = ("Adds a learned tensor of the input's own shape, e.g. one vector per token of a fixed-length "
           "sequence as in the Vision Transformer (ViT), so attention can tell positions apart.")
    id_prefix = "posemb"
    key_params = ("init",)
    params = (choice_param("init", "normal", ("normal", "zeros"),
                           "Initial values: normal (standard deviation 0.02) or zeros."),)
    examples = (Example(((5, 8),)), Example(((3, 4, 4),), {"init": "zeros"}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        return Inference(x, x.numel)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("PositionEmbedding", inputs[0].dims, init=p.init)


@register
class ClassToken(LayerType):
    """Prepends a learned token to a sequence."""

    type_id = "class_token"
    imports = (FromModule(("ClassToken",), lambda m: ({"init": "zeros"}, {"token": m.token})),
               FromCall(_class_token_call, ("torch.cat", "torch.concat")))
    title = "Class Token"
    category = "Attention"
    doc = ("Puts one learned token in front of a sequence, (N, T, D) -> (N, T + 1, D); after the encoder a "
           "Select of index 0 reads it out for the classifier, as in ViT.")
    id_prefix = "cls"
    key_params = ("init",)
    params = (choice_param("init", "zeros", ("zeros", "normal"),
                           "Initial value of the token: zeros, or normal (standard deviation 0.02)."),)
    examples = (Example(((5, 8),)), Example(((1, 6),), {"init": "normal"}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_sequence(x, self.title, "embedding")
        steps, size = x.dims
        return Inference(x.with_dims((steps + 1, size)), size)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("ClassToken", inputs[0].dims[-1], init=p.init)
