"""Operator patterns that span several ONNX nodes, followed symbolically.

Values that are no canvas tensor are kept in :attr:`Context.virtual` by kind, and constant
subgraphs are folded:

- **shapes**: ``Shape`` of any value, and arithmetic on shapes and constants (``Slice``,
  ``Concat``, ``Mul``, ``Reshape``...), as exporters compute the batch size and reshape
  targets;
- **zeros** shaped from the batch size (``Expand``, ``ConstantOfShape``): initial states;
- **a batch-first sequence transposed to time-major**, read by recurrent operators
  (:mod:`.onnx_recurrent`: LSTM and GRU, stacked and bidirectional);
- **adaptive pooling** written out as a gather of windows (:mod:`.onnx_windows`);
- **strided views** (``as_strided``) written out as a gather of a flattened tensor, mapped to a
  Reshape and / or Permute (:mod:`.onnx_strided`);
- **GELU** exported as its formula ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (Div, Erf, Add, Mul,
Mul) maps back onto one GELU layer.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from engine.compile.importers.onnx_activations import follow_activations
from engine.compile.importers.onnx_attention import follow_attention
from engine.compile.importers.onnx_norms import follow_norms
from engine.compile.importers.onnx_recurrent import follow_recurrent
from engine.compile.importers.onnx_reshapes import follow_reshapes
from engine.compile.importers.onnx_strided import follow_strided
from engine.compile.importers.onnx_tokens import follow_tokens
from engine.compile.importers.onnx_windows import follow_windows

#: Multi-operator patterns, each asked in turn before the rules here: ``""`` when it followed or
#: mapped the node, a reason when the node is part of its pattern but cannot map, else ``None``.
PATTERNS: tuple[Callable[[Any, Any, dict[str, Any]], str | None], ...] = (
    follow_attention, follow_windows, follow_recurrent, follow_activations, follow_norms, follow_strided,
    follow_reshapes, follow_tokens)
#: Operators that compute with sizes: fed only by shapes and constants, their result is a shape too.
_SHAPE_ARITHMETIC = frozenset({"Concat", "Mul", "Add", "Sub", "Div", "Reshape", "Cast", "Gather", "Slice",
                               "Squeeze", "Unsqueeze"})
#: What a symbolic value is, for the reason an operator that uses it otherwise does not map.
_WHAT = {"shape": "a value computed from a tensor's shape",
         "zeros": "zeros shaped from the batch size",
         "gelu": "a step of a GELU formula x * 0.5 * (1 + erf(x / sqrt(2)))"}
#: Operators that may receive the symbolic values followed here.
VIRTUAL_AWARE = frozenset({"Shape", "Concat", "Expand", "Slice", "Squeeze", "Unsqueeze", "Transpose", "LSTM",
                           "GRU", "Gather", "ConstantOfShape", "Div", "Erf"})


def fold(ctx: Any, node: Any, opset: int) -> bool:
    """Evaluate ``node`` when all its inputs are constants; True when it was folded."""
    inputs = [n for n in node.input if n]
    if not inputs or any(n not in ctx.consts for n in inputs) or node.op_type in ("Constant",):
        return False
    from onnx.reference import ReferenceEvaluator

    try:
        results = ReferenceEvaluator(node, opsets={"": opset}).run(None, {n: ctx.consts[n] for n in inputs})
    except Exception:  # noqa: BLE001 - leave it to the handlers, which report it
        return False
    for name, value in zip(node.output, results):
        ctx.consts[name] = np.asarray(value)
    return True


def follow(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """Track symbolic values; ``""`` when handled here, a reason, or ``None`` to fall through."""
    for pattern in PATTERNS:
        found = pattern(ctx, node, attrs)
        if found is not None:
            return found
    op, inputs = node.op_type, [n for n in node.input]
    virtual = ctx.virtual
    kinds = [virtual[n][0] if n in virtual else None for n in inputs if n]
    out = node.output[0] if node.output else ""
    if op == "Shape" and (inputs[0] in ctx.values or inputs[0] in virtual):
        virtual[out] = ("shape",)
    elif op in ("Expand", "ConstantOfShape") and _zero_fill(ctx, node, attrs):
        virtual[out] = ("zeros",)
    elif op in ("Slice", "Squeeze", "Unsqueeze") and kinds and kinds[0] == "zeros":
        virtual[out] = virtual[inputs[0]]
    elif op in _SHAPE_ARITHMETIC and "shape" in kinds and all(k == "shape" or n in ctx.consts
                                                               for k, n in zip(kinds, [n for n in inputs if n])):
        virtual[out] = ("shape",)
    elif op == "Transpose" and inputs[0] in ctx.values and list(attrs.get("perm", [])) == [1, 0, 2]:
        virtual[out] = ("seq_first", ctx.values[inputs[0]], node.name or out)
    elif op in ("Div", "Erf", "Add", "Mul") and _gelu_step(ctx, node):
        pass
    elif "seq_first" in kinds:
        transpose = next(virtual[n][2] for n in inputs if virtual.get(n, ("",))[0] == "seq_first")
        return (f"reads a batch-first sequence that {transpose} transposed to time-major (T, N, C); only an "
                "LSTM or GRU operator, self-attention or a one-layer RNN unrolled step by step may read one")
    elif any(kinds):
        what = next(_WHAT.get(kind, "an intermediate value of a pattern that spans several operators")
                    for kind in kinds if kind)
        return f"uses {what} in a way no canvas layer does"
    else:
        return None
    return ""


def _constant(ctx: Any, name: str, value: float) -> bool:
    array = ctx.consts.get(name)
    return array is not None and array.size == 1 and abs(float(array.reshape(-1)[0]) - value) < 1e-6


def _gelu_step(ctx: Any, node: Any) -> bool:
    """Follow ``x / sqrt(2)`` -> erf -> ``+ 1`` -> ``* 0.5`` -> ``* x``; True when this node is a step."""
    op, inputs, virtual = node.op_type, list(node.input), ctx.virtual
    out = node.output[0]
    if op == "Div" and len(inputs) == 2 and inputs[0] in ctx.values and _constant(ctx, inputs[1], 2 ** 0.5):
        virtual[out] = ("gelu", inputs[0], 1)
        return True
    stage = {n: virtual[n] for n in inputs if virtual.get(n, ("",))[0] == "gelu"}
    if len(stage) != 1:
        return False
    (name, (_, source, step)), = stage.items()
    others = [n for n in inputs if n != name]
    if op == "Erf" and step == 1 or op == "Add" and step == 2 and _constant(ctx, others[0], 1.0):
        virtual[out] = ("gelu", source, step + 1)
    elif op == "Mul" and step == 3 and _constant(ctx, others[0], 0.5):
        virtual[out] = ("gelu", source, 4)
    elif op == "Mul" and step == 4 and others == [source]:
        ctx.add(node, "gelu", {"approximate": "none"}, [source])
    else:
        return False
    return True


def _zero_fill(ctx: Any, node: Any, attrs: dict[str, Any]) -> bool:
    if node.op_type == "ConstantOfShape":
        value = attrs.get("value")
        return value is None or not np.any(np.asarray(getattr(value, "float_data", [0]) or [0]))
    source = node.input[0]
    return source in ctx.consts and not np.any(ctx.consts[source])
