"""Core layers: Linear, Flatten, Reshape, Permute, Dropout, Identity."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from engine.layers.base import (EmitContext, ModuleCall, Example, Inference, LayerType, Params, ShapeError, TensorSpec,
                                register, require_float, require_rank)
from engine.layers.params import bool_param, float_param, int_list_param, int_param

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


@register
class Linear(LayerType):
    """Fully connected layer on the last dimension."""

    type_id = "linear"
    examples = (Example(((20,),)), Example(((7, 12),), {"out_features": 5, "bias": False}))
    title = "Linear"
    category = "Core"
    doc = "Fully connected layer y = xW^T + b on the last dimension; input features are inferred."
    id_prefix = "fc"
    key_params = ("out_features",)
    params = (
        int_param("out_features", 64, "Number of output features.", min=1, max=1_000_000),
        bool_param("bias", True, "Learn an additive bias."),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, "Linear")
        require_rank(x, (2, 3), "(N, features) or (N, T, features)", "insert a Flatten before it")
        in_features = x.dims[-1]
        rows = math.prod(x.dims[:-1])
        params = in_features * p.out_features + (p.out_features if p.bias else 0)
        return Inference(TensorSpec((*x.dims[:-1], p.out_features)), params,
                         2 * rows * in_features * p.out_features)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.Linear", inputs[0].dims[-1], p.out_features, bias=p.bias)


@register
class Flatten(LayerType):
    """Flattens a range of dimensions into one."""

    type_id = "flatten"
    examples = (Example(((16, 4, 4),)), Example(((3, 5, 6, 7),), {"start_dim": 2, "end_dim": 3}))
    title = "Flatten"
    category = "Core"
    doc = "Flattens dimensions start_dim..end_dim into one, e.g. (N, C, H, W) -> (N, C*H*W)."
    id_prefix = "flatten"
    params = (
        int_param("start_dim", 1, "First dimension to flatten (the batch is 0 and cannot be flattened).",
                  min=1, max=8),
        int_param("end_dim", -1, "Last dimension to flatten; -1 is the last one.", min=-8, max=8),
    )

    def _range(self, p: Params, x: TensorSpec) -> tuple[int, int]:
        rank = x.rank
        end = p.end_dim + rank if p.end_dim < 0 else p.end_dim
        if p.start_dim >= rank:
            raise ShapeError(f"start_dim {p.start_dim} does not exist in {x}", field="start_dim")
        if not p.start_dim <= end < rank:
            raise ShapeError(f"end_dim {p.end_dim} must be a dimension of {x} at or after start_dim "
                             f"{p.start_dim}", field="end_dim")
        return p.start_dim, end

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        start, end = self._range(p, x)
        dims = x.dims
        merged = math.prod(dims[start - 1:end])
        return Inference(x.with_dims((*dims[:start - 1], merged, *dims[end:])))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        import torch

        return ctx.call_function(torch.flatten, (args[0], p.start_dim, p.end_dim))


@register
class Reshape(LayerType):
    """Reshapes each sample to a new shape with the same number of elements."""

    type_id = "reshape"
    examples = (Example(((64,),)), Example(((2, 32),), {"shape": (-1, 4)}))
    title = "Reshape"
    category = "Core"
    doc = "Reshapes each sample to the given shape (batch excluded); one size may be -1 (inferred)."
    id_prefix = "reshape"
    key_params = ("shape",)
    params = (
        int_list_param("shape", (1, 8, 8), "Target per-sample shape, e.g. 16, 7, 7; -1 infers one size.",
                       min=1, max=1_000_000, min_length=1, max_length=4, allow_minus_one=True),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        known = math.prod(d for d in p.shape if d != -1)
        if -1 in p.shape:
            if x.numel % known:
                raise ShapeError(f"cannot reshape {x} ({x.numel} values per sample) to {list(p.shape)}: "
                                 f"{x.numel} is not divisible by {known}", field="shape")
            dims = tuple(x.numel // known if d == -1 else d for d in p.shape)
        else:
            dims = tuple(p.shape)
            if known != x.numel:
                raise ShapeError(f"cannot reshape {x} ({x.numel} values per sample) to {list(p.shape)} "
                                 f"({known} values): the sizes must multiply to {x.numel}", field="shape")
        return Inference(x.with_dims(dims))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        dims = self.infer(p, inputs).output.dims  # type: ignore[union-attr]
        return ctx.call_method("reshape", (args[0], -1, *dims))


@register
class Permute(LayerType):
    """Reorders dimensions, e.g. (N, T, F) -> (N, F, T)."""

    type_id = "permute"
    examples = (Example(((5, 7),)), Example(((2, 3, 4),), {"dims": (0, 3, 1, 2)}))
    title = "Permute"
    category = "Core"
    doc = "Reorders dimensions as torch.permute does; the batch dimension 0 stays first."
    id_prefix = "permute"
    key_params = ("dims",)
    params = (
        int_list_param("dims", (0, 2, 1), "New order of all dimensions, batch first: 0, 2, 1 swaps the last two.",
                       min=0, max=8, min_length=2, max_length=6),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        dims = tuple(p.dims)
        if sorted(dims) != list(range(x.rank)):
            raise ShapeError(f"dims {list(dims)} must order all {x.rank} dimensions of {x}, e.g. "
                             f"{[0, *range(x.rank - 1, 0, -1)]}", field="dims")
        if dims[0] != 0:
            raise ShapeError("the batch dimension 0 must stay first", field="dims")
        full = (0, *x.dims)
        return Inference(x.with_dims(tuple(full[d] for d in dims[1:])))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        return ctx.call_method("permute", (args[0], *p.dims))


@register
class Dropout(LayerType):
    """Randomly zeroes values while training."""

    type_id = "dropout"
    examples = (Example(((10,),)), Example(((3, 4, 5),), {"p": 0.2}))
    title = "Dropout"
    category = "Core"
    doc = "Zeroes each value with probability p while training (scaling the rest); does nothing in evaluation."
    id_prefix = "dropout"
    key_params = ("p",)
    params = (float_param("p", 0.5, "Probability of zeroing a value.", min=0.0, max=0.99),)

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        require_float(inputs[0], "Dropout")
        return Inference(inputs[0])

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.Dropout", p.p)


@register
class Identity(LayerType):
    """Passes its input through unchanged."""

    type_id = "identity"
    examples = (Example(((10,),)), Example(((3, 4, 5),)))
    title = "Identity"
    category = "Core"
    doc = "Passes the input through unchanged; useful as a named junction for branches."
    id_prefix = "identity"

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        return Inference(inputs[0])

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        return args[0]
