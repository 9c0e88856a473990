"""Adaptive pooling that an exporter wrote out as a gather of windows.

When the input size is not a multiple of the output size (AlexNet's and VGG's
``AdaptiveAvgPool2d((7, 7))`` on a small image), ``torch.onnx.export`` decomposes adaptive
average pooling into::

    Transpose(perm=[2, 3, 0, 1])          # (H, W, N, C)
    GatherND(indices[OH, KH, OW, KW, 2])  # every output's window of rows and columns
    Transpose(perm=[4, 5, 0, 1, 2, 3])    # (N, C, OH, KH, OW, KW)
    ReduceMean(axes=[-3, -1])             # over each window

These steps are followed symbolically (:attr:`Context.virtual`, kinds ``"hw_first"`` and
``"windows"``); when the gathered indices are exactly adaptive pooling's windows for the
input's size, the four nodes become one ``AdaptiveAvgPool2d``. ``AdaptiveAvgPool1d`` is the
same on the sequence unsqueezed to one row (:mod:`.onnx_reshapes`), squeezed back after.
Windows of different sizes (5 -> 3) are exported with masks and sums, which is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.compile.importers.onnx_reshapes import UNSQUEEZED, pooled_sequence
from engine.compile.importers.onnx_rewrite import reason_of_inputs

_SPATIAL_FIRST = [2, 3, 0, 1]
_BATCH_FIRST = [4, 5, 0, 1, 2, 3]
#: Why a value of each kind followed here cannot be used otherwise.
REASONS = {"hw_first": "moves the batch axis (part of an adaptive pooling whose windows differ in size, e.g. 5 -> 3, "
                       "which only imports with windows of equal size)",
           "windows": "part of an adaptive pooling whose windows differ in size (e.g. 5 -> 3), which only imports "
                      "with windows of equal size"}


def adaptive_window_indices(size: int, output: int) -> np.ndarray | None:
    """Rows of each output's window, ``(output, window)``, or ``None`` when window sizes differ."""
    starts = [math.floor(i * size / output) for i in range(output)]
    ends = [math.ceil((i + 1) * size / output) for i in range(output)]
    lengths = {end - start for start, end in zip(starts, ends)}
    if len(lengths) != 1:
        return None
    (length,) = lengths
    return np.array(starts)[:, None] + np.arange(length)[None, :]


def follow_windows(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """One step of the pattern: ``""`` when followed or mapped, a reason, ``None`` when not this pattern."""
    op, virtual = node.op_type, ctx.virtual
    source = node.input[0] if node.input else ""
    kind = virtual.get(source, ("",))[0]
    perm = [int(p) for p in attrs.get("perm", [])]
    out = node.output[0] if node.output else ""
    if op == "Transpose" and source in ctx.values and perm == _SPATIAL_FIRST and ctx.rank(source) == 4:
        height, width = ctx.shapes[source][2:]
        if not (isinstance(height, int) and isinstance(width, int)):
            return None
        virtual[out] = ("hw_first", ctx.values[source], height, width)
    elif op == "Transpose" and kind == UNSQUEEZED and perm == _SPATIAL_FIRST:
        sequence = virtual[source][1]  # (N, C, L) seen as (N, C, 1, L): the pooling is 1-d
        length = ctx.shapes.get(sequence, [None] * 3)[2]
        if not isinstance(length, int):
            return None
        virtual[out] = ("hw_first", UnsqueezedSequence(sequence), 1, length)
    elif op == "GatherND" and kind == "hw_first" and node.input[1] in ctx.consts \
            and int(attrs.get("batch_dims", 0)) == 0:
        indices = np.asarray(ctx.consts[node.input[1]])
        if indices.ndim != 5 or indices.shape[-1] != 2:
            return REASONS["hw_first"]
        virtual[out] = ("windows", *virtual[source][1:], indices)
    elif op == "Transpose" and kind == "windows" and perm == _BATCH_FIRST and len(virtual[source]) == 5:
        virtual[out] = (*virtual[source], "batch_first")
    elif op == "ReduceMean" and kind == "windows" and len(virtual[source]) == 6:
        return _pool(ctx, node, attrs, virtual[source])
    else:
        return reason_of_inputs(virtual, node, REASONS)
    return ""


def _pool(ctx: Any, node: Any, attrs: dict[str, Any], value: tuple[Any, ...]) -> str:
    _, source, height, width, indices, _ = value
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1] in ctx.consts:
        axes = ctx.consts[node.input[1]].reshape(-1).tolist()
    if sorted(int(a) % 6 for a in axes or []) != [3, 5] or int(attrs.get("keepdims", 1)) != 0:
        return REASONS["windows"]
    out_h, _, out_w, _, _ = indices.shape
    rows, cols = adaptive_window_indices(height, out_h), adaptive_window_indices(width, out_w)
    if rows is None or cols is None or rows.shape[1] != indices.shape[1] or cols.shape[1] != indices.shape[3] \
            or not np.array_equal(indices[..., 0], np.broadcast_to(rows[:, :, None, None], indices.shape[:4])) \
            or not np.array_equal(indices[..., 1], np.broadcast_to(cols[None, None], indices.shape[:4])):
        return "gathers windows that are not adaptive pooling's"
    if isinstance(source, UnsqueezedSequence):
        ctx.virtual[node.output[0]] = pooled_sequence(source.name, "avg", int(out_w))
        return ""
    ctx.values[node.output[0]] = ctx.place(node, "adaptive_avgpool2d",
                                           {"output_size": (int(out_h), int(out_w)), "flatten": False}, [source])
    return ""


@dataclass(frozen=True)
class UnsqueezedSequence:
    """The source of windows gathered from a sequence unsqueezed to one row: its ONNX value's name."""

    name: str
