"""Merge layers: combine several branches (skip connections, multi-path blocks)."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any, Callable, Mapping

from engine.layers.base import (EmitContext, Example, Inference, LayerType, Params, ShapeError, TensorSpec,
                                register, require_float)
from engine.layers.params import int_param

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx


def _count_param(doc: str):  # noqa: ANN202 - small factory
    return int_param("num_inputs", 2, doc, min=2, max=8)


class _MergeBase(LayerType):
    category = "Merge"
    key_params = ("num_inputs",)

    def input_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        count = p.get("num_inputs", 2)
        count = count if isinstance(count, int) and 2 <= count <= 8 else 2
        return tuple(f"in{i + 1}" for i in range(count))


class _ElementwiseMerge(_MergeBase):
    """Element-wise merge of same-shape inputs, chained as binary ops in the fx graph."""

    verb: str = ""
    op: Callable[[Any, Any], Any] = operator.add

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        first = inputs[0]
        for index, spec in enumerate(inputs):
            require_float(spec, self.title)
            if spec.dims != first.dims:
                raise ShapeError(
                    f"input in{index + 1} is {spec} but in1 is {first}: {self.title} {self.verb} "
                    "tensors of the same shape; change the layer sizes on one branch, or add a "
                    "1x1 Conv2d / Linear to project it")
        return Inference(first)

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        op = type(self).op
        return functools.reduce(lambda a, b: ctx.call_function(op, (a, b)), args)


@register
class Add(_ElementwiseMerge):
    """Element-wise sum: the merge of residual (skip) connections."""

    type_id = "add"
    examples = (Example(((8,), (8,))), Example(((4, 5, 5),) * 3, {"num_inputs": 3}))
    title = "Add"
    doc = "Element-wise sum of inputs of the same shape; the merge of a residual (skip) connection."
    id_prefix = "add"
    verb = "adds"
    op = operator.add
    params = (_count_param("Number of inputs to add."),)


@register
class Multiply(_ElementwiseMerge):
    """Element-wise product, e.g. for gating."""

    type_id = "multiply"
    examples = (Example(((8,), (8,))), Example(((2, 3),) * 4, {"num_inputs": 4}))
    title = "Multiply"
    doc = "Element-wise product of inputs of the same shape, e.g. a gate times a signal."
    id_prefix = "mul"
    verb = "multiplies"
    op = operator.mul
    params = (_count_param("Number of inputs to multiply."),)


@register
class Concatenate(_MergeBase):
    """Concatenation along one dimension."""

    type_id = "concat"
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
