"""Strided views (``aten.as_strided``) that an exporter wrote out as a gather of a flattened tensor.

``torch.onnx.export(dynamo=True)`` writes ``x.as_strided(size, stride, offset)`` -- which it
emits for operations on a tensor with unusual strides, such as ConvNeXt's pooling of a
channels-last-strided map after ``permute -> Linear -> permute`` -- as::

    Reshape(x, [-1])                    # every value of x, batch included, in order
    Gather(.., indices, axis=0)         # indices[n, j...] = offset + n * stride_0 + sum(j_k * stride_k)

The indices are a constant for a fixed batch; for a dynamic batch they are computed from the
input's batch size (``Shape``, ``Range``, ``Mul``, ``Unsqueeze``, ``Add``...). Those nodes are
followed symbolically (kinds ``"flat"`` and ``"strided_index"`` in :attr:`Context.virtual`);
at the Gather the indices are evaluated at concrete batch sizes with the graph's known sizes.
When they describe a view holding every value of each sample exactly once -- ``x`` reshaped
and permuted, or ``x`` itself -- it maps to a canvas Reshape and / or Permute (or nothing),
checked index by index against the gathered indices; anything else is refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLAT = "flat"
INDEX = "strided_index"
#: Why a value of each kind followed here cannot be used otherwise.
REASONS = {FLAT: "a tensor flattened with its batch (Reshape to 1-D), which maps only as the source of a strided "
                 "view (as_strided: a Gather of its values)",
           INDEX: "indices computed from the input's sizes, which map only as the indices of a strided view "
                  "(as_strided: a Gather of a flattened tensor)"}
NOT_A_PERMUTATION = "a strided view (as_strided) that is not a permutation of its input"
#: Operators that compute indices from sizes, constants and other indices.
_INDEX_ARITHMETIC = frozenset({"Range", "Mul", "Add", "Sub", "Unsqueeze", "Squeeze", "Reshape", "Expand", "Cast",
                               "Concat", "Slice", "Identity"})
#: Most nodes evaluated for one set of indices (a bound against absurd graphs).
_MAX_INDEX_NODES = 256
#: Batch sizes a dynamic batch's indices are evaluated at.
_BATCH_SIZES = (2, 3, 1)


def follow_strided(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """One step of a strided view: ``""`` when followed or mapped, a reason, ``None`` when not this pattern."""
    op, virtual = node.op_type, ctx.virtual
    kinds = [virtual.get(name, ("",))[0] for name in node.input]
    out = node.output[0] if node.output else ""
    if op == "Reshape" and node.input[0] in ctx.values and _flattens(ctx, node):
        virtual[out] = (FLAT, node.input[0])
    elif op == "Gather" and kinds[0] == FLAT and int(attrs.get("axis", 0)) == 0:
        return _view(ctx, node, virtual[node.input[0]][1])
    elif op in _INDEX_ARITHMETIC and FLAT not in kinds and (INDEX in kinds or op == "Range" and "shape" in kinds) \
            and all(kind in ("shape", INDEX) or not name or name in ctx.consts
                    for kind, name in zip(kinds, node.input)):
        virtual[out] = (INDEX,)
    else:
        for kind in kinds:
            if kind in REASONS:
                return REASONS[kind]
        return None
    return ""


def _flattens(ctx: Any, node: Any) -> bool:
    """A Reshape to one dimension whose every reader is a Gather along that dimension."""
    target = ctx.consts.get(node.input[1])
    if target is None or np.asarray(target).size != 1:
        return False
    readers = [n for n in ctx.graph.node if node.output[0] in n.input]
    return bool(readers) and all(
        n.op_type == "Gather" and n.input[0] == node.output[0] and node.output[0] not in n.input[1:]
        and all(a.name != "axis" or a.i == 0 for a in n.attribute) for n in readers) \
        and node.output[0] not in {o.name for o in ctx.graph.output}


def _view(ctx: Any, node: Any, source: str) -> str:
    """Map ``Gather(Reshape(source, [-1]), indices)`` onto Reshape / Permute of ``source``, or say why not."""
    shape = ctx.shapes.get(source, [])
    sample = [int(d) for d in shape[1:]] if all(isinstance(d, int) and d > 0 for d in shape[1:]) else []
    if len(shape) < 2 or not sample or not _is_batch(ctx, shape[0]):
        return f"{NOT_A_PERMUTATION}: the sizes of its input {shape} are not the batch and known sizes"
    sizes = (ctx.fixed_batch,) if ctx.fixed_batch is not None else _BATCH_SIZES
    found = [_indices(ctx, node.input[1], size) for size in sizes]
    problem = next((f for f in found if isinstance(f, str)), None)
    if problem is not None:
        return f"{NOT_A_PERMUTATION}: {problem}"
    indices = [np.asarray(f) for f in found]
    if any(i.ndim < 2 or i.shape[0] != size or i.shape[1:] != indices[0].shape[1:]
           for i, size in zip(indices, sizes)):
        return f"{NOT_A_PERMUTATION}: its indices {list(indices[0].shape)} do not follow the batch"
    widest = max(indices, key=lambda i: i.shape[0])
    view = permuted_view(sample, widest)
    if view is None or not all(np.array_equal(apply_view(view, sample, size), i)
                               for i, size in zip(indices, sizes)):
        return f"{NOT_A_PERMUTATION} {list(shape)}: it reads {described(widest)}"
    target, dims = view
    value = ctx.values[source]
    if target != sample:
        if len(target) > 4:
            return f"{NOT_A_PERMUTATION} {list(shape)} in at most 4 dimensions per sample: it needs {target}"
        value = ctx.place(node, "reshape", {"shape": target}, [value])
    if dims != list(range(len(dims))):
        value = ctx.place(node, "permute", {"dims": dims}, [value])
    ctx.values[node.output[0]] = value
    return ""


def _is_batch(ctx: Any, size: Any) -> bool:
    """Whether a leading size is the batch: the fixed batch, or the graph inputs' own batch symbol."""
    if ctx.fixed_batch is not None:
        return size == ctx.fixed_batch
    inputs = [i for i in ctx.graph.input if i.name not in ctx.consts and i.type.tensor_type.shape.dim]
    return bool(inputs) and isinstance(size, str) and all(i.type.tensor_type.shape.dim[0].dim_param == size
                                                          for i in inputs)


def described(indices: np.ndarray) -> str:
    """Sizes, strides (a step along each axis; ``-`` where the size is one) and offset of gathered indices."""
    origin = int(indices.flat[0]) if indices.size else 0
    strides = []
    for axis, size in enumerate(indices.shape):
        unit = [0] * indices.ndim
        unit[axis] = 1
        strides.append(str(int(indices[tuple(unit)]) - origin) if size > 1 else "-")
    return f"sizes {list(indices.shape)}, strides [{', '.join(strides)}], offset {origin}"


def permuted_view(sample: list[int], indices: np.ndarray) -> tuple[list[int], list[int]] | None:
    """The reshape target (per sample) and permutation (batch first) that the strides of ``indices`` suggest.

    Axes are ordered by decreasing stride (axes of size one keep their place); the caller checks
    the result against every index with :func:`apply_view`. ``None`` when the indices hold a
    different number of values per sample, start past 0 or do not increase along an axis.
    """
    out = list(indices.shape[1:])
    if math.prod(out) != math.prod(sample) or not out or indices.size == 0 or indices.flat[0] != 0:
        return None
    strides = {}
    for axis, size in enumerate(out, start=1):
        if size > 1:
            unit = [0] * indices.ndim
            unit[axis] = 1
            strides[axis - 1] = int(indices[tuple(unit)]) - int(indices.flat[0])
    if any(stride <= 0 for stride in strides.values()):
        return None
    moving = list(strides)  # the axes of size > 1, in order; they take their places by decreasing stride
    order = list(range(len(out)))
    for place, axis in zip(moving, sorted(moving, key=lambda a: -strides[a])):
        order[place] = axis
    target = [out[axis] for axis in order]
    dims = [0, *(1 + order.index(axis) for axis in range(len(out)))]
    return target, dims


def apply_view(view: tuple[list[int], list[int]], sample: list[int], batch: int) -> np.ndarray:
    """The flat positions that Reshape(target) then Permute(dims) reads from a ``(batch, *sample)`` tensor."""
    target, dims = view
    return np.arange(batch * math.prod(sample)).reshape(batch, *target).transpose(dims)


def _indices(ctx: Any, name: str, batch: int) -> np.ndarray | str:
    """The value of ``name`` for inputs of ``batch`` samples: a constant, or evaluated from sizes."""
    known: dict[str, np.ndarray] = {}
    budget = [_MAX_INDEX_NODES]

    def evaluate(value: str) -> str | None:
        """Fill ``known[value]``; a reason when it cannot be."""
        if value in known:
            return None
        if value in ctx.consts:
            known[value] = np.asarray(ctx.consts[value])
            return None
        producer = ctx.producers.get(value)
        budget[0] -= 1
        if producer is None or budget[0] < 0:
            return "its indices are not computed from sizes and constants only"
        if producer.op_type == "Shape":
            shape = _concrete_shape(ctx, producer.input[0], batch)
            if shape is None:
                return f"its indices use the sizes of {producer.input[0]}, which are not known"
            attrs = {a.name: a.i for a in producer.attribute}
            known[value] = np.asarray(shape[attrs.get("start", 0):attrs.get("end", len(shape))], dtype=np.int64)
            return None
        for source in producer.input:
            problem = evaluate(source) if source else None
            if problem:
                return problem
        from onnx.reference import ReferenceEvaluator

        try:
            results = ReferenceEvaluator(producer, opsets={"": ctx.opset}).run(None, {i: known[i] for i in producer.input if i})
        except Exception:  # noqa: BLE001 - any failure means the indices cannot be read
            return f"its indices cannot be evaluated ({producer.op_type})"
        known.update(zip(producer.output, (np.asarray(r) for r in results)))
        return None

    problem = evaluate(name)
    return problem if problem else known[name]


def _concrete_shape(ctx: Any, name: str, batch: int) -> list[int] | None:
    """``name``'s shape with ``batch`` samples, when every other size is known."""
    shape = ctx.shapes.get(name, [])
    if not shape or not all(isinstance(d, int) for d in shape[1:]) or not _is_batch(ctx, shape[0]):
        return None
    return [shape[0] if isinstance(shape[0], int) else batch, *shape[1:]]


follow_strided.starts = frozenset({"Reshape"})  # type: ignore[attr-defined]
