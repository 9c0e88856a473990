"""Layers that ``torch.onnx.export`` writes around reshapes: ChannelShuffle and 1-d adaptive pooling.

A channel shuffle (``nn.ChannelShuffle``, torchvision ShuffleNet's ``channel_shuffle``) becomes
``Reshape(x, [N, G, C / G, H, W])``, ``Transpose(perm=[0, 2, 1, 3, 4])``, ``Reshape(.., [N, C, H, W])``:
the first two map as a Reshape and a Permute; the Reshape back to ``x``'s shape replaces them
with one ``channel_shuffle`` (where nothing else reads them).

``nn.AdaptiveAvgPool1d`` / ``nn.AdaptiveMaxPool1d`` pool a sequence as an image of one row::

    Unsqueeze(x, [-2])                              # (N, C, 1, L)
    AveragePool / MaxPool(kernel [1, k], strides [1, k])   or   ReduceMean / ReduceMax(axes [-1, -2])
    Squeeze(.., [-2])                               # (N, C, L / k)

followed symbolically (kinds ``"unsqueezed"`` and ``"pooled_1d"``) into one adaptive pooling; average
pooling to a size that does not divide the length is written out as gathered windows
(:mod:`.onnx_windows`) between the Unsqueeze and the Squeeze.
"""

from __future__ import annotations

import math
from typing import Any

from engine.compile.importers.onnx_norms import same_sample_shape
from engine.compile.importers.onnx_rewrite import (axes_of, canvas_node, read_once, reason_of_inputs, shape_of,
                                                   source_of, unplace)

#: The kind of a sequence unsqueezed to one row, which :mod:`.onnx_windows` also follows.
UNSQUEEZED = "unsqueezed"
#: Why a value of each kind followed here cannot be used otherwise.
REASONS = {
    UNSQUEEZED: "a sequence (N, C, L) unsqueezed to (N, C, 1, L), which maps only as 1-d adaptive pooling "
                  "(Unsqueeze, pooling of windows that tile the length, Squeeze)",
    "pooled_1d": "a sequence pooled as an image of one row (N, C, 1, L'), which maps only once squeezed back "
                 "to (N, C, L')",
}
#: Pooling operators of an unsqueezed sequence, and the adaptive pooling each computes.
_POOLING = {"AveragePool": "avg", "ReduceMean": "avg", "MaxPool": "max", "ReduceMax": "max"}


def pooled_sequence(sequence: str, pooling: str, size: int) -> tuple[str, str, str, int]:
    """The value of the sequence ``sequence`` pooled (``"avg"`` / ``"max"``) to ``size`` as an image of one row,
    mapped once squeezed back."""
    return ("pooled_1d", sequence, pooling, size)


def follow_reshapes(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """ChannelShuffle and 1-d adaptive pooling: ``""`` when followed or mapped, a reason, else ``None``."""
    op, virtual = node.op_type, ctx.virtual
    source = node.input[0] if node.input else ""
    kind = virtual.get(source, ("",))[0]
    out = node.output[0] if node.output else ""
    if op == "Unsqueeze" and source in ctx.values and ctx.rank(source) == 3 and axes_of(ctx, node, attrs) in ([2], [-2]):
        virtual[out] = (UNSQUEEZED, source)
    elif op in _POOLING and kind == UNSQUEEZED:
        return _pool(ctx, node, attrs)
    elif op == "Squeeze" and kind == "pooled_1d":
        if axes_of(ctx, node, attrs) not in ([2], [-2]):
            return REASONS["pooled_1d"]
        _, x, pooling, size = virtual[source]
        ctx.values[out] = ctx.place(node, f"adaptive_{pooling}pool1d", {"output_size": size, "flatten": False},
                                    [ctx.values[x]])
    elif op == "Reshape" and len(node.input) == 2 and not kind:
        return _channel_shuffle(ctx, node)
    else:
        return reason_of_inputs(virtual, node, REASONS)
    return ""


def _pool(ctx: Any, node: Any, attrs: dict[str, Any]) -> str:
    """Pooling of an unsqueezed sequence: windows that tile its length, or the whole length."""
    x = ctx.virtual[node.input[0]][1]
    length = ctx.shapes.get(x, [None] * 3)[2]
    pooling = _POOLING[node.op_type]
    out = node.output[0]
    if not isinstance(length, int):
        return REASONS["unsqueezed"]
    if node.op_type.startswith("Reduce"):
        axes = sorted(a % 4 for a in axes_of(ctx, node, attrs) or [])
        if axes not in ([3], [2, 3]):
            return f"{REASONS['unsqueezed']}; this one reduces axes {axes}"
        if int(attrs.get("keepdims", 1)):
            ctx.virtual[out] = pooled_sequence(x, pooling, 1)
        else:
            ctx.values[out] = ctx.place(node, f"adaptive_{pooling}pool1d", {"output_size": 1, "flatten": True},
                                        [ctx.values[x]])
        return ""
    kernel = [int(k) for k in attrs.get("kernel_shape", [])]
    strides = [int(s) for s in attrs.get("strides", [1, 1])]
    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if len(kernel) != 2 or kernel[0] != 1 or strides != kernel or any(pads) or int(attrs.get("ceil_mode", 0)) \
            or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") \
            or any(int(d) != 1 for d in attrs.get("dilations", [1, 1])) or length % kernel[1]:
        return (f"{REASONS['unsqueezed']}; this one pools windows {kernel} with strides {strides} and pads {pads} "
                f"over a length of {length}")
    ctx.virtual[out] = pooled_sequence(x, pooling, length // kernel[1])
    return ""


def _channel_shuffle(ctx: Any, node: Any) -> str | None:
    """``Reshape(Permute(Reshape(x, (G, C / G, ...)), (0, 2, 1, ...)), x's shape)``: one ChannelShuffle."""
    target = node.input[1]
    permute = canvas_node(ctx, node.input[0], "permute")
    if permute is None or target not in ctx.consts or not read_once(ctx, permute.id):
        return None
    dims = tuple(permute.params.get("dims", ()))
    split = source_of(ctx, permute.id)
    reshape = ctx.builder.graph.nodes.get(split) if isinstance(split, str) else None
    if len(dims) < 4 or dims[:3] != (0, 2, 1) or dims[3:] != tuple(range(3, len(dims))) or reshape is None \
            or reshape.type_id != "reshape" or not read_once(ctx, reshape.id):
        return None
    x = source_of(ctx, reshape.id)
    shape, split_shape = shape_of(ctx, x), shape_of(ctx, split)
    if len(shape) != len(dims) - 1 or len(split_shape) != len(dims) \
            or not all(isinstance(d, int) for d in [*shape[1:], *split_shape[1:]]):
        return None
    groups = split_shape[1]
    if split_shape[1] * split_shape[2] != shape[1] or split_shape[3:] != shape[2:] \
            or not same_sample_shape(ctx, [int(v) for v in ctx.consts[target].reshape(-1)], shape) \
            or math.prod(shape[1:]) != math.prod(split_shape[1:]):
        return None
    unplace(ctx, permute.id)
    unplace(ctx, reshape.id)
    ctx.values[node.output[0]] = ctx.place(node, "channel_shuffle", {"groups": groups}, [x])
    return ""


follow_reshapes.starts = frozenset({"Reshape"})  # type: ignore[attr-defined]
