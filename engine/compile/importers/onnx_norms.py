"""Normalizations that ``torch.onnx.export`` writes as several operators: GroupNorm and LayerNorm2d.

``nn.GroupNorm(G, C)`` becomes::

    Reshape(x, [0, G, -1])                          # (N, G, C / G * H * W)
    InstanceNormalization(.., ones(G), zeros(G))    # each group of each sample normalized
    Reshape(.., Shape(x))                           # back to x's shape (a constant with a fixed batch)
    Mul(.., weight (C, 1, 1)); Add(.., bias (C, 1, 1))

The first two map as a Reshape and an InstanceNorm1d; the Reshape back to ``x``'s own shape
replaces both with one ``groupnorm`` (where nothing else reads them), and the Mul and Add of
one constant per channel become its weight and bias (ones and zeros, which the exporter writes
for ``affine=False`` too, leave it without: as a ``GroupNormalization`` operator reads).

A LayerNorm over the channels of an image (``LayerNorm2d`` of ConvNeXt) becomes
``Transpose(x, [0, 2, 3, 1])``, ``LayerNormalization(axis=-1)``, ``Transpose(.., [0, 3, 1, 2])``:
the second Transpose replaces the Permute and LayerNorm before it with one ``layernorm2d``,
when nothing else reads the channels-last values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.compile.importers.onnx_rewrite import (canvas_node, per_channel, read_once, record_shape, shape_of,
                                                   source_of, unplace, whole_shape_of)

_CHANNELS_LAST = (0, 2, 3, 1)
_CHANNELS_FIRST = [0, 3, 1, 2]


def follow_norms(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """GroupNorm and LayerNorm2d: ``""`` when mapped, else ``None`` (the operator maps on its own)."""
    op = node.op_type
    if op == "Shape":
        return "" if record_shape(ctx, node, attrs) else None
    if op == "Reshape" and len(node.input) == 2:
        return _group_norm(ctx, node)
    if op in ("Mul", "Add") and len(node.input) == 2:
        return _group_norm_affine(ctx, node)
    if op == "Transpose" and [int(p) for p in attrs.get("perm", [])] == _CHANNELS_FIRST:
        return _layer_norm_2d(ctx, node)
    return None


def same_sample_shape(ctx: Any, target: list[int], shape: list[Any]) -> bool:
    """Whether a constant Reshape target gives ``shape`` (batch first: 0, -1 or the fixed batch)."""
    rest, sample = target[1:], shape[1:]
    if not target or not ctx.is_batch(target[0]) or len(rest) != len(sample) \
            or not all(isinstance(d, int) for d in sample) or 0 in rest:
        return False
    if rest.count(-1) == 1 and target[0] != -1:
        known = math.prod(d for d in rest if d != -1)
        rest = [math.prod(sample) // known if d == -1 else d for d in rest]
    return rest == sample


def _group_norm(ctx: Any, node: Any) -> str | None:
    """``Reshape(InstanceNorm(Reshape(x, [0, G, -1])), Shape(x))``: one GroupNorm of ``x``."""
    grouped_norm, target = node.input
    norm = canvas_node(ctx, grouped_norm, "instancenorm1d")
    if norm is None or norm.params.get("affine") or not read_once(ctx, norm.id):
        return None
    grouped = source_of(ctx, norm.id)
    reshape = ctx.builder.graph.nodes.get(grouped) if isinstance(grouped, str) else None
    if reshape is None or reshape.type_id != "reshape" or not read_once(ctx, reshape.id):
        return None
    x = source_of(ctx, reshape.id)
    shape, groups_shape = shape_of(ctx, x), shape_of(ctx, grouped)
    if len(shape) < 2 or len(groups_shape) != 3 or not all(isinstance(d, int) for d in [*shape[1:], *groups_shape[1:]]):
        return None
    channels, groups = shape[1], groups_shape[1]
    if channels % groups or groups * groups_shape[2] != math.prod(shape[1:]):
        return None
    whole = whole_shape_of(ctx, target)
    if whole is not None:
        if ctx.values.get(whole) != x:
            return None
    elif target not in ctx.consts or not same_sample_shape(ctx, [int(v) for v in ctx.consts[target].reshape(-1)],
                                                          shape):
        return None
    eps = float(norm.params["eps"])
    unplace(ctx, norm.id)
    unplace(ctx, reshape.id)
    ctx.values[node.output[0]] = ctx.place(node, "groupnorm", {"num_groups": groups, "eps": eps, "affine": False},
                                           [x])
    return ""


def _group_norm_affine(ctx: Any, node: Any) -> str | None:
    """``GroupNorm(x) * weight`` / ``+ bias`` with one constant per channel: the GroupNorm's own."""
    import torch

    left, right = node.input
    computed, constant = (right, left) if left in ctx.consts else (left, right)
    norm = canvas_node(ctx, computed, "groupnorm")
    if norm is None or constant not in ctx.consts or not read_once(ctx, norm.id):
        return None
    shape = shape_of(ctx, source_of(ctx, norm.id))
    if len(shape) < 2 or not isinstance(shape[1], int):
        return None
    values = per_channel(ctx.consts[constant], len(shape), shape[1])
    if values is None:
        return None
    weights = ctx.builder.weights
    weight_key, bias_key = f"{norm.id}.weight", f"{norm.id}.bias"
    if not norm.params["affine"] and np.all(values == (1.0 if node.op_type == "Mul" else 0.0)):
        pass  # a scale of ones, a shift of zeros: no affine tensors (as GroupNormalization reads them)
    elif node.op_type == "Mul":
        if norm.params["affine"]:
            return None  # a second scale: its own layer (LayerScale)
        weights[weight_key] = torch.from_numpy(values.copy())
        weights[bias_key] = torch.zeros(len(values))
    else:
        if norm.params["affine"] and bool(torch.any(weights[bias_key] != 0)):
            return None
        if not norm.params["affine"]:
            weights[weight_key] = torch.ones(len(values))
        weights[bias_key] = torch.from_numpy(values.copy())
    if not norm.params["affine"] and weight_key in weights:
        ctx.builder.graph.set_param(norm.id, "affine", True)
    del ctx.values[computed]  # read by this node only: the GroupNorm's value is now its output
    ctx.values[node.output[0]] = norm.id
    return ""


def _layer_norm_2d(ctx: Any, node: Any) -> str | None:
    """``Transpose(LayerNorm(Transpose(x, [0, 2, 3, 1])), [0, 3, 1, 2])``: one LayerNorm2d of ``x``."""
    norm = canvas_node(ctx, node.input[0], "layernorm")
    if norm is None or norm.params.get("normalized_dims") != 1 or not read_once(ctx, norm.id):
        return None
    last = source_of(ctx, norm.id)
    permute = ctx.builder.graph.nodes.get(last) if isinstance(last, str) else None
    if permute is None or permute.type_id != "permute" or tuple(permute.params.get("dims", ())) != _CHANNELS_LAST \
            or not read_once(ctx, permute.id):
        return None
    x = source_of(ctx, permute.id)
    params = {"eps": float(norm.params["eps"]), "elementwise_affine": bool(norm.params.get("elementwise_affine"))}
    tensors = unplace(ctx, norm.id)
    unplace(ctx, permute.id)
    ctx.values[node.output[0]] = ctx.place(node, "layernorm2d", params, [x],
                                           {k: np.asarray(v.numpy()) for k, v in tensors.items()})
    return ""


follow_norms.starts = frozenset({"Reshape", "Mul", "Add"})  # type: ignore[attr-defined]
