"""Merge layers: combine several branches (skip connections, multi-path blocks)."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.layers.base import (EmitContext, Example, Inference, LayerType, Params, ShapeError, TensorSpec,
                                register, require_float)
from engine.layers.params import int_param
from engine.layers.recognize import Called, FromCall, FromOnnx, is_traced

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

#: The most inputs one merge node takes (a DenseNet block concatenates up to 33 tensors).
MAX_INPUTS = 64


# ------------------------------------------------------------- recognizers
def _binary_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``a + b`` / ``torch.add(a, b)`` of two traced tensors."""
    if len(args) == 2 and not kwargs and all(is_traced(a) for a in args):
        return {"num_inputs": 2}, list(args)
    return None


def _binary_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Add`` / ``Mul`` of two computed tensors; ``x @ W + b`` makes b the bias of x @ W's Linear."""
    import numpy as np
    import torch

    left, right = node.input
    const = left if left in ctx.consts else right if right in ctx.consts else None
    if const is None:
        ctx.add(node, "add" if node.op_type == "Add" else "multiply", {"num_inputs": 2}, [left, right])
        return None
    other = right if const == left else left
    target = ctx.values.get(other, "")
    if node.op_type == "Add" and target in ctx.from_matmul and ctx.consumers.get(other) == 1:
        linear = ctx.builder.graph.nodes[target]
        if ctx.consts[const].size == linear.params["out_features"] and not linear.params["bias"]:
            linear.params["bias"] = True
            ctx.builder.weights[f"{target}.bias"] = torch.from_numpy(
                np.array(ctx.consts[const], dtype=np.float32).reshape(-1))
            ctx.values[node.output[0]] = target
            return None
    return "arithmetic with a constant"


def _cat_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    tensors = list(args[0])
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not 2 <= len(tensors) <= MAX_INPUTS or not all(is_traced(t) for t in tensors):
        return None
    return {"num_inputs": len(tensors), "dim": dim}, tensors


def _concat_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    if any(n in ctx.consts for n in node.input) or not 2 <= len(node.input) <= MAX_INPUTS:
        return f"constants or more than {MAX_INPUTS} inputs"
    ctx.add(node, "concat", {"num_inputs": len(node.input), "dim": int(a.get("axis", 1))}, list(node.input))
    return None


def _count_param(doc: str):  # noqa: ANN202 - small factory
    return int_param("num_inputs", 2, doc, min=2, max=MAX_INPUTS)


class _MergeBase(LayerType):
    category = "Merge"
    key_params = ("num_inputs",)

    def input_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        count = p.get("num_inputs", 2)
        count = count if isinstance(count, int) and 2 <= count <= MAX_INPUTS else 2
        return tuple(f"in{i + 1}" for i in range(count))


class _ElementwiseMerge(_MergeBase):
    """Element-wise merge of inputs whose shapes broadcast (PyTorch's rule: sizes equal or 1),
    chained as binary ops in the fx graph."""

    verb: str = ""
    op: Callable[[Any, Any], Any] = operator.add

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        dims = inputs[0].dims
        for index, spec in enumerate(inputs):
            require_float(spec, self.title)
            dims = self._broadcast(dims, spec, index, inputs[0])
        return Inference(inputs[0].with_dims(dims))

    def _broadcast(self, dims: tuple[int, ...], spec: TensorSpec, index: int, first: TensorSpec) -> tuple[int, ...]:
        """``dims`` (the inputs before ``spec`` broadcast together) broadcast with ``spec``, as torch does."""
        before = f"in1 is {first}" if index == 1 else f"the inputs before it broadcast to {first.with_dims(dims)}"
        port = f"in{index + 1}"
        if len(spec.dims) != len(dims):
            short, long = sorted((spec.dims, dims), key=len)
            hint = ""
            if long[:len(short)] == short:
                target = ", ".join(map(str, (*short, *[1] * (len(long) - len(short)))))
                hint = f", e.g. a Reshape to ({target}) before the smaller one"
            raise ShapeError(f"input {port} is {spec} but {before}: {self.title} {self.verb} tensors with the same "
                             f"number of dimensions; insert a Reshape so the sizes line up{hint}")
        for axis, (a, b) in enumerate(zip(dims, spec.dims)):
            if a != b and 1 not in (a, b):
                raise ShapeError(
                    f"input {port} is {spec} but {before}: sizes {a} and {b} of dim {axis + 1} clash (sizes must be "
                    f"equal, or one of them 1 to stretch over the other); change the layer sizes on one branch, "
                    "or add a 1x1 Conv2d / Linear to project it")
        return tuple(max(a, b) for a, b in zip(dims, spec.dims))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        op = type(self).op
        return functools.reduce(lambda a, b: ctx.call_function(op, (a, b)), args)


@register
class Add(_ElementwiseMerge):
    """Element-wise sum: the merge of residual (skip) connections."""

    type_id = "add"
    imports = (FromCall(_binary_call, ("operator.add", "torch.add"), ("add",)),
               FromOnnx(("Add", "Mul"), _binary_from_onnx))
    examples = (Example(((8,), (8,))), Example(((4, 5, 5),) * 3, {"num_inputs": 3}),
                Example(((4, 5, 5), (4, 1, 1))), Example(((2, 1, 5), (2, 4, 1), (1, 4, 5)), {"num_inputs": 3}))
    title = "Add"
    doc = ("Element-wise sum of inputs of the same shape; the merge of a residual (skip) connection. A size of 1 "
           "stretches to match the other input, e.g. (N, C, 1, 1) + (N, C, H, W).")
    id_prefix = "add"
    verb = "adds"
    op = operator.add
    params = (_count_param("Number of inputs to add."),)


@register
class Multiply(_ElementwiseMerge):
    """Element-wise product, e.g. for gating."""

    type_id = "multiply"
    imports = (FromCall(_binary_call, ("operator.mul", "torch.mul"), ("mul",)),)  # ONNX Mul: Add's reader
    examples = (Example(((8,), (8,))), Example(((2, 3),) * 4, {"num_inputs": 4}),
                Example(((6, 4, 4), (6, 1, 1))))
    title = "Multiply"
    doc = ("Element-wise product of inputs of the same shape, e.g. a gate times a signal. A size of 1 stretches "
           "to match: (N, C, H, W) times a channel gate (N, C, 1, 1), as in squeeze-and-excitation.")
    id_prefix = "mul"
    verb = "multiplies"
    op = operator.mul
    params = (_count_param("Number of inputs to multiply."),)


@register
class Concatenate(_MergeBase):
    """Concatenation along one dimension."""

    type_id = "concat"
    imports = (FromCall(_cat_call, ("torch.cat", "torch.concat")), FromOnnx(("Concat",), _concat_from_onnx))
    examples = (Example(((3, 4, 4), (5, 4, 4))), Example(((6, 2), (6, 3), (6, 1)), {"num_inputs": 3, "dim": -1}))
    title = "Concatenate"
    doc = "Joins inputs along one dimension (1 = channels or features); the others must match."
    id_prefix = "cat"
    key_params = ("num_inputs", "dim")
    params = (
        _count_param("Number of inputs to join."),
        int_param("dim", 1, "Dimension to join along, counting the batch as 0; negative counts from the end.",
                  min=-8, max=8),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        first = inputs[0]
        rank = first.rank
        dim = p.dim + rank if p.dim < 0 else p.dim
        if dim == 0:
            raise ShapeError("cannot join along the batch dimension 0: use dim 1 for channels or features",
                             field="dim")
        if not 0 < dim < rank:
            raise ShapeError(f"dim {p.dim} does not exist in {first} (rank {rank}): use a dim "
                             f"between 1 and {rank - 1}", field="dim")
        total = 0
        for index, spec in enumerate(inputs):
            if spec.dtype != first.dtype:
                raise ShapeError(f"input in{index + 1} holds {spec.dtype} values but in1 holds "
                                 f"{first.dtype} values: join tensors of one kind")
            same_rank = spec.rank == rank
            others = [d for i, d in enumerate(spec.dims) if i != dim - 1]
            first_others = [d for i, d in enumerate(first.dims) if i != dim - 1]
            if not same_rank or others != first_others:
                raise ShapeError(f"input in{index + 1} is {spec} but in1 is {first}: all sizes except "
                                 f"dim {dim} must match")
            total += spec.dims[dim - 1]
        dims = list(first.dims)
        dims[dim - 1] = total
        vocab = max((s.vocab for s in inputs if s.vocab is not None), default=None)
        return Inference(TensorSpec(tuple(dims), first.dtype, vocab))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        import torch

        return ctx.call_function(torch.cat, (list(args),), {"dim": p.dim})
