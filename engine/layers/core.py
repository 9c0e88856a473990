"""Core layers: Linear, Flatten, Reshape, Permute, Dropout, Identity."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engine.layers.base import (EmitContext, ModuleCall, Example, Inference, LayerType, Params, ShapeError, TensorSpec,
                                register, require_float)
from engine.layers.params import bool_param, float_param, int_list_param, int_param
from engine.layers.recognize import (Called, FromCall, FromModule, FromOnnx, Imported, int_args, is_batch_size,
                                     module_state, traced_rank)

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


# ------------------------------------------------------------- recognizers
def _linear_from_module(m: Any) -> Imported:
    return {"out_features": m.out_features, "bias": m.bias is not None}, module_state(m)


def _linear_from_gemm(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Gemm``: x @ W^T + b with constant weights."""
    x, w = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if w not in ctx.consts or bias is not None and bias not in ctx.consts or x in ctx.consts:
        return "weights that are not constants"
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        return "transA, alpha or beta"
    weight = ctx.consts[w] if a.get("transB", 0) else ctx.consts[w].T
    out = weight.shape[0]
    if bias is not None and ctx.consts[bias].size != out:
        return "a broadcast bias"
    tensors = {"weight": weight} | ({"bias": ctx.consts[bias].reshape(out)} if bias else {})
    ctx.add(node, "linear", {"out_features": int(out), "bias": bias is not None}, [x], tensors, w)
    return None


def _linear_from_matmul(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``MatMul`` x @ W with a constant 2-D W (an Add of a constant after it becomes the bias)."""
    x, w = node.input
    if w not in ctx.consts or ctx.consts[w].ndim != 2 or x in ctx.consts:
        return "only x @ W with a constant 2-D W maps (to a Linear)"
    node_id = ctx.add(node, "linear", {"out_features": int(ctx.consts[w].shape[1]), "bias": False}, [x],
                      {"weight": ctx.consts[w].T}, w)
    ctx.from_matmul.add(node_id)
    return None


def _flatten_from_module(m: Any) -> Imported | None:
    return ({"start_dim": m.start_dim, "end_dim": m.end_dim}, {}) if m.start_dim >= 1 else None


def _flatten_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``torch.flatten(x, 1)`` / ``x.flatten(1)`` (not the batch)."""
    start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
    end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
    return ({"start_dim": start, "end_dim": end}, [args[0]]) if start >= 1 else None


def _view_dims(args: list[Any], kwargs: dict[str, Any]) -> list[Any] | None:
    """The target sizes of ``x.view(n, ...)`` / ``torch.reshape(x, (n, ...))`` when the first is the batch."""
    dims = list(args[1][0] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:])
    if kwargs or not dims or not is_batch_size(dims[0]) or int_args(dims[1:]) is None:
        return None
    return dims[1:]


def _flatten_view(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``x.view(x.size(0), -1)``: a Flatten."""
    rest = _view_dims(args, kwargs)
    return ({"start_dim": 1, "end_dim": -1}, [args[0]]) if rest == [-1] else None


def _reshape_view(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    rest = _view_dims(args, kwargs)
    return ({"shape": rest}, [args[0]]) if rest is not None and rest != [-1] else None


def _flatten_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    if node.op_type == "Flatten":
        if int(a.get("axis", 1)) != 1:
            return "flattening at another axis than 1"
        ctx.add(node, "flatten", {"start_dim": 1, "end_dim": -1}, [node.input[0]])
        return None
    target = _onnx_target(ctx, node)  # a Reshape to (batch, everything): a Flatten
    if isinstance(target, str):
        return target
    source = ctx.shapes.get(node.input[0], [])
    per_sample = source[1:]
    if len(source) > 2 and all(isinstance(d, int) for d in per_sample) and target[1:] == [math.prod(per_sample)]:
        ctx.add(node, "flatten", {"start_dim": 1, "end_dim": -1}, [node.input[0]])
        return None
    return "not a flatten"


def _onnx_target(ctx: Any, node: Any) -> list[int] | str:
    """A Reshape's constant target shape, or why it cannot map."""
    shape = node.input[1]
    if shape not in ctx.consts:
        return "a shape computed at run time"
    target = [int(v) for v in ctx.consts[shape].tolist()]
    rest = target[1:]
    if not target or not ctx.is_batch(target[0]) or target[0] == -1 and -1 in rest or 0 in rest:
        return f"target shape {target} does not keep the batch first"
    return target


def _reshape_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    target = _onnx_target(ctx, node)
    if isinstance(target, str):
        return target
    ctx.add(node, "reshape", {"shape": target[1:]}, [node.input[0]])
    return None


def _permute_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    dims = int_args(args[1:])
    return ({"dims": dims}, [args[0]]) if dims and dims[0] == 0 and not kwargs else None


def _transpose_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``torch.transpose(x, 1, 2)`` / ``x.transpose(1, 2)``: a Permute swapping two dims (not the batch)."""
    rank = traced_rank(args[0])
    first = kwargs.get("dim0", args[1] if len(args) > 1 else None)
    second = kwargs.get("dim1", args[2] if len(args) > 2 else None)
    if rank is None or not isinstance(first, int) or not isinstance(second, int) or set(kwargs) - {"dim0", "dim1"}:
        return None
    first, second = first % rank, second % rank
    if 0 in (first, second):
        return None
    dims = list(range(rank))
    dims[first], dims[second] = dims[second], dims[first]
    return {"dims": dims}, [args[0]]


def _permute_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    perm = list(a.get("perm", []))
    if not perm or perm[0] != 0:
        return "moving the batch axis"
    ctx.add(node, "permute", {"dims": perm}, [node.input[0]])
    return None


def _dropout_call(args: list[Any], kwargs: dict[str, Any]) -> Called:
    return {"p": kwargs.get("p", args[1] if len(args) > 1 else 0.5)}, [args[0]]




@register
class Linear(LayerType):
    """Fully connected layer on the last dimension."""

    type_id = "linear"
    imports = (FromModule(("nn.Linear",), _linear_from_module), FromOnnx(("Gemm",), _linear_from_gemm),
               FromOnnx(("MatMul",), _linear_from_matmul))
    examples = (Example(((20,),)), Example(((7, 12),), {"out_features": 5, "bias": False}))
    title = "Linear"
    category = "Core"
    doc = ("Fully connected layer y = xW^T + b on the last dimension (of any number of dimensions); input "
           "features are inferred.")
    id_prefix = "fc"
    key_params = ("out_features",)
    params = (
        int_param("out_features", 64, "Number of output features.", min=1, max=1_000_000),
        bool_param("bias", True, "Learn an additive bias."),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, "Linear")  # any rank: it acts on the last dimension, e.g. (N, H, W, C) channels-last
        in_features = x.dims[-1]
        rows = math.prod(x.dims[:-1])
        params = in_features * p.out_features + (p.out_features if p.bias else 0)
        warnings = ()
        if x.rank == 4 and x.dims[-1] == x.dims[-2] != x.dims[-3]:
            # (N, C, H, W) with H == W: an image reaching a classifier; (N, H, W, C) with all three equal
            # (a channels-last Swin block of 16 x 16 x 16) cannot be told apart and is not warned about
            warnings = (f"acts on the last dimension only, the width {x.dims[-1]} of the image {x}: to classify "
                        "an image, insert a Flatten (or a global pooling) before it",)
        return Inference(TensorSpec((*x.dims[:-1], p.out_features)), params,
                         2 * rows * in_features * p.out_features, warnings=warnings)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.Linear", inputs[0].dims[-1], p.out_features, bias=p.bias)


@register
class Flatten(LayerType):
    """Flattens a range of dimensions into one."""

    type_id = "flatten"
    imports = (FromModule(("nn.Flatten",), _flatten_from_module),
               FromCall(_flatten_call, ("torch.flatten",), ("flatten",)),
               FromCall(_flatten_view, ("torch.reshape",), ("view", "reshape")),
               FromOnnx(("Flatten", "Reshape"), _flatten_from_onnx))
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
    imports = (FromCall(_reshape_view, ("torch.reshape",), ("view", "reshape")),
               FromOnnx(("Reshape",), _reshape_from_onnx))
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
    imports = (FromCall(_permute_call, ("torch.permute",), ("permute",)),
               FromCall(_transpose_call, ("torch.transpose",), ("transpose",)),
               FromOnnx(("Transpose",), _permute_from_onnx))
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
    imports = (FromModule(("nn.Dropout",), lambda m: ({"p": m.p}, {})), FromCall(_dropout_call, ("F.dropout",)))
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
    imports = (FromModule(("nn.Identity",), lambda m: ({}, {})),)
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
