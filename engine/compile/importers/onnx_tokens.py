"""The class token of a Vision Transformer, as ``torch.onnx.export`` writes it.

``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`` becomes, with a dynamic batch::

    Shape(x)[0:1]; Concat(.., [1], [1])     # (N, 1, 1)
    Expand(class_token (1, 1, D), ..)       # (N, 1, D)
    Concat(.., x, axis=1)                   # (N, T + 1, D)

and with a fixed batch one ``Concat`` of a constant ``(N, 1, D)`` (the expand folded). Both become
one ``class_token`` layer whose ``token`` is the constant, once the Concat shows that one row
comes first on the sequence axis and every sample's row is the same. A token of zeros is followed
as the zeros of :mod:`.onnx_symbolic`. The position embedding added after it maps on its own
(an ``Add`` of a constant of the tokens' shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np

REASONS = {"batch_token": "a constant (1, 1, D) expanded over the batch, which maps only as a class token: "
                          "first on axis 1 of a Concat with tokens (N, T, D)"}


def follow_tokens(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """``""`` when followed or mapped, a reason, ``None`` when not this pattern."""
    op, virtual = node.op_type, ctx.virtual
    inputs = list(node.input)
    kinds = [virtual.get(n, ("",))[0] for n in inputs]
    if op == "Expand" and len(inputs) == 2 and inputs[0] in ctx.consts and kinds[1] == "shape":
        token = np.asarray(ctx.consts[inputs[0]])
        if token.ndim != 3 or token.shape[:2] != (1, 1) or not np.any(token):
            return None  # zeros are followed as zeros (onnx_symbolic)
        virtual[node.output[0]] = ("batch_token", token)
        return ""
    if op == "Concat" and len(inputs) == 2 and inputs[1] in ctx.values:
        if kinds[0] in ("batch_token", "zeros"):
            return _class_token(ctx, node, attrs)
        if inputs[0] in ctx.consts and ctx.fixed_batch is not None:
            return _class_token(ctx, node, attrs)
    if "batch_token" in kinds:
        return REASONS["batch_token"]
    return None


def _class_token(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """``Concat(token over the batch, tokens (N, T, D), axis=1)``: a ClassToken layer, or why not."""
    first, tokens = node.input
    shape, joined = ctx.shapes.get(tokens, []), ctx.shapes.get(node.output[0], [])
    axis = int(attrs.get("axis", 0))
    value = ctx.virtual.get(first)
    if len(shape) != 3 or len(joined) != 3 or not all(isinstance(d, int) for d in [*shape[1:], *joined[1:]]) \
            or axis not in (1, -2) or joined[1:] != [shape[1] + 1, shape[2]]:
        if value is None:
            return None  # a constant and a tensor: not a class token (the Concat's own rule reports it)
        return (f"{REASONS['batch_token']}; this Concat joins it on axis {axis} to {tokens} of shape {shape} "
                f"into {joined}")
    size = shape[2]
    if value is None:  # a fixed batch: the expand was folded into one constant (N, 1, D)
        constant = np.asarray(ctx.consts[first])
        if constant.shape != (ctx.fixed_batch, 1, size):
            return None
        if not np.array_equal(constant, np.broadcast_to(constant[:1], constant.shape)):
            return f"a constant {constant.shape} whose samples differ, put first on axis 1: not one class token"
        token = constant[:1]
    elif value[0] == "zeros":
        token = np.zeros((1, 1, size), dtype=np.float32)
    else:
        token = value[1]
        if token.shape != (1, 1, size):
            return f"{REASONS['batch_token']}; this token has shape {token.shape} for tokens of size {size}"
    if value is not None and ctx.consumers.get(first, 0) != 1:
        return f"{REASONS['batch_token']}; the expanded token {first} is also read elsewhere"
    ctx.values[node.output[0]] = ctx.place(node, "class_token", {"init": "zeros"}, [ctx.values[tokens]],
                                           {"token": np.asarray(token, dtype=np.float32)})
    return ""
