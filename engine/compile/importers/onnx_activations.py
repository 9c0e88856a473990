"""Activations that ``torch.onnx.export`` writes as several operators: Softplus and tanh-approximate GELU.

``nn.Softplus(beta, threshold)`` returns ``x`` where ``beta * x > threshold``::

    Mul(x, beta)                  # only when beta != 1
    Softplus(x * beta); Div(.., beta)
    Greater(x * beta, threshold)
    Where(greater, x, softplus)

The Softplus (and Div) map to a canvas ``softplus`` as usual; the Where gives it its threshold.

``nn.GELU(approximate="tanh")`` at opset 18 (before the Gelu operator)::

    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))
    Pow(x, 3), Mul(0.044715), Add(x), Mul(sqrt(2 / pi)), Tanh, Add(1), Mul(0.5), Mul(x)

Each step's constant is checked, and each intermediate value must be read by the next step only.
"""

from __future__ import annotations

import math
from typing import Any

from engine.compile.importers.onnx_rewrite import canvas_node, described, near, scalar, source_of, split_constant

#: Why a value of each kind followed here cannot be used otherwise.
REASONS = {
    "scaled": "a tensor multiplied by a constant, which maps only as the beta of a Softplus "
              "(Mul, Softplus, Div, Greater, Where)",
    "softplus_scaled": "the Softplus of a tensor multiplied by a constant (beta), which maps only when divided by "
                       "the same constant",
    "above": "a comparison with a constant, which maps only as the threshold of a Softplus (Greater, Where)",
    "gelu_tanh": "part of the tanh approximation of GELU, 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))",
}
#: The tanh-GELU formula after ``Pow(x, 3)``: (operator, constant or "x" for the input itself), one per step.
_GELU_TANH_STEPS = (("Mul", 0.044715), ("Add", "x"), ("Mul", math.sqrt(2 / math.pi)), ("Tanh", None),
                    ("Add", 1.0), ("Mul", 0.5), ("Mul", "x"))


def follow_activations(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """One step of Softplus or tanh-GELU: ``""`` when followed or mapped, a reason, else ``None``."""
    op, virtual = node.op_type, ctx.virtual
    kinds = {virtual[n][0]: n for n in node.input if n in virtual and virtual[n][0] in REASONS}
    out = node.output[0] if node.output else ""
    if op == "Pow" and not kinds and node.input[0] in ctx.values and len(node.input) == 2:
        if not near(scalar(ctx, node.input[1]), 3.0):
            return None
        virtual[out] = ("gelu_tanh", node.input[0], 0)
    elif "gelu_tanh" in kinds:
        return _gelu_tanh_step(ctx, node, kinds["gelu_tanh"])
    elif op == "Mul" and not kinds:
        split = split_constant(ctx, node)
        if split is None or split[0] not in ctx.values or ctx.consts[split[1]].ndim != 0 \
                or ctx.consumers.get(out, 0) != 2:
            return None  # beta: one value with no shape (no layer maps it), read by the Softplus and the Greater
        virtual[out] = ("scaled", split[0], float(ctx.consts[split[1]]))
    elif op == "Softplus" and set(kinds) == {"scaled"}:
        _, x, beta = virtual[node.input[0]]
        virtual[out] = ("softplus_scaled", x, beta)
    elif op == "Div" and virtual.get(node.input[0], ("",))[0] == "softplus_scaled" and len(kinds) == 1:
        _, x, beta = virtual[node.input[0]]
        divisor = scalar(ctx, node.input[1])
        if not near(divisor, beta):
            return f"divides softplus({beta:.6g} * x) by {described(divisor)}, not by beta {beta:.6g}"
        if not 0.01 <= beta <= 100.0:
            return f"a Softplus beta of {beta:.6g} (the layer takes 0.01 to 100)"
        ctx.values[out] = ctx.place(node, "softplus", {"beta": beta, "threshold": 20.0}, [ctx.values[x]])
    elif op == "Greater" and set(kinds) <= {"scaled"} and node.input[1] in ctx.consts:
        first = node.input[0]
        if virtual.get(first, ("",))[0] == "scaled":
            _, x, beta = virtual[first]
        elif first in ctx.values:
            x, beta = first, 1.0
        else:
            return None
        virtual[out] = ("above", x, beta, scalar(ctx, node.input[1]))
    elif op == "Where" and virtual.get(node.input[0], ("",))[0] == "above" and len(kinds) == 1:
        return _threshold(ctx, node)
    elif kinds:
        return REASONS[next(iter(kinds))]
    else:
        return None
    return ""


def _threshold(ctx: Any, node: Any) -> str:
    """``Where(beta * x > threshold, x, softplus)``: the threshold of the Softplus layer computing it."""
    _, x, beta, threshold = ctx.virtual[node.input[0]]
    chosen, otherwise = node.input[1], node.input[2]
    softplus = canvas_node(ctx, otherwise, "softplus")
    if ctx.values.get(chosen) != ctx.values.get(x) or softplus is None \
            or source_of(ctx, softplus.id) != ctx.values.get(x) or not near(softplus.params["beta"], beta):
        return (f"selects between {chosen} and {otherwise} where {beta:.6g} * {x} > {described(threshold)}: not "
                f"x itself above the threshold and softplus(x) below it, as nn.Softplus(beta={beta:.6g})")
    if threshold is None or not 1.0 <= threshold <= 100.0:
        return f"a Softplus threshold of {described(threshold)} (the layer takes 1 to 100)"
    if ctx.consumers.get(otherwise, 0) == 1:  # the Where is the only reader: the layer takes the threshold
        ctx.builder.graph.set_param(softplus.id, "threshold", float(threshold))
        del ctx.values[otherwise]
        ctx.values[node.output[0]] = softplus.id
    else:
        ctx.values[node.output[0]] = ctx.place(node, "softplus", {"beta": float(beta), "threshold": float(threshold)},
                                               [ctx.values[x]])
    return ""


def _gelu_tanh_step(ctx: Any, node: Any, name: str) -> str:
    """The next step of the tanh-GELU formula after ``name`` (a ``("gelu_tanh", x, step)`` value)."""
    _, x, step = ctx.virtual[name]
    op, expected = _GELU_TANH_STEPS[step]
    others = [n for n in node.input if n != name]
    if ctx.consumers.get(name, 0) != 1:
        return f"{REASONS['gelu_tanh']}: an intermediate value ({name}) is also read elsewhere"
    if node.op_type != op or len(others) != (0 if op == "Tanh" else 1):
        return f"{REASONS['gelu_tanh']}: step {step + 2} is {node.op_type}, where the formula has {op}"
    if expected == "x":
        if ctx.values.get(others[0]) != ctx.values.get(x):
            return f"{REASONS['gelu_tanh']}: step {step + 2} uses {others[0]}, where the formula has x ({x})"
    elif expected is not None and not near(scalar(ctx, others[0]), expected):
        return (f"{REASONS['gelu_tanh']}: step {step + 2} ({op}) has the constant "
                f"{described(scalar(ctx, others[0]))}, where the formula has {expected:.6g}")
    if step + 1 < len(_GELU_TANH_STEPS):
        ctx.virtual[node.output[0]] = ("gelu_tanh", x, step + 1)
    else:
        ctx.values[node.output[0]] = ctx.place(node, "gelu", {"approximate": "tanh"}, [ctx.values[x]])
    return ""


follow_activations.starts = frozenset({"Pow", "Mul", "Greater"})  # type: ignore[attr-defined]
