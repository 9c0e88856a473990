"""Operator patterns that span several ONNX nodes: recurrent layers and the exact GELU.

(Adaptive pooling written out as a gather of windows: :mod:`.onnx_windows`.)

**LSTM and GRU** read to their final hidden state, and the plumbing around them.

Exporters surround a recurrent operator with bookkeeping: the batch-first input is
transposed to sequence-first, the initial state is zeros shaped from the batch size
(``Shape``, ``Concat``, ``Expand``, ``Slice``), weights are re-sliced into ONNX's gate order,
and the result is picked with ``Gather(Y_h, -1)``. These handlers follow such values
symbolically (:attr:`Context.virtual`) and fold constant subgraphs, so a one-layer,
one-direction LSTM or GRU whose final hidden state is used maps onto one canvas layer with
``output: last``. Other uses (the output sequence, bidirectional or stacked layers) are
reported as unmapped.

**GELU** exported as its formula ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (Div, Erf, Add, Mul,
Mul) maps back onto one GELU layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.compile.importers.onnx_windows import follow_windows

#: Gate blocks of ONNX's weights in PyTorch's order: LSTM iofc -> ifco, GRU zrh -> rzh.
_GATE_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2]}
_TYPES = {"LSTM": "lstm", "GRU": "gru"}
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
    windows = follow_windows(ctx, node, attrs)
    if windows is not None:
        return windows
    op, inputs = node.op_type, [n for n in node.input]
    virtual = ctx.virtual
    kinds = [virtual[n][0] if n in virtual else None for n in inputs if n]
    out = node.output[0] if node.output else ""
    if op == "Shape" and (inputs[0] in ctx.values or inputs[0] in virtual):
        virtual[out] = ("shape",)
    elif op == "Concat" and "shape" in kinds and all(k == "shape" or n in ctx.consts
                                                      for k, n in zip(kinds, [n for n in inputs if n])):
        virtual[out] = ("shape",)
    elif op in ("Expand", "ConstantOfShape") and _zero_fill(ctx, node, attrs):
        virtual[out] = ("zeros",)
    elif op in ("Slice", "Squeeze", "Unsqueeze") and kinds and kinds[0] in ("zeros", "shape"):
        virtual[out] = virtual[inputs[0]]
    elif op == "Transpose" and inputs[0] in ctx.values and list(attrs.get("perm", [])) == [1, 0, 2]:
        virtual[out] = ("seq_first", ctx.values[inputs[0]])
    elif op in _TYPES:
        return _recurrent(ctx, node, attrs)
    elif op == "Gather" and kinds and kinds[0] == "rnn_h":
        return _last_state(ctx, node, attrs)
    elif op in ("Div", "Erf", "Add", "Mul") and _gelu_step(ctx, node):
        pass
    elif "seq_first" in kinds:
        return "uses a time-major (sequence-first) tensor, e.g. an unrolled RNN, which no canvas layer takes"
    elif any(kinds):
        return ("uses an intermediate value (a recurrent layer's output sequence or state, or part of a GELU "
                "formula) in a way no canvas layer does")
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


def _recurrent(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    op = node.op_type
    names = list(node.input) + [""] * (8 - len(node.input))
    x, w, r, b, lengths, h0 = names[:6]
    c0 = names[6] if op == "LSTM" else ""
    if ctx.virtual.get(x, ("",))[0] != "seq_first":
        return "its input is not a batch-first sequence transposed to sequence-first"
    if any(n not in ctx.consts for n in (w, r) if n) or b and b not in ctx.consts or lengths:
        return "weights that are not constants, or sequence lengths"
    if any(n and ctx.virtual.get(n, ("",))[0] != "zeros" for n in (h0, c0)):
        return "a non-zero initial state"
    if attrs.get("direction", "forward") != "forward" or attrs.get("layout", 0) or "clip" in attrs \
            or "activations" in attrs or attrs.get("input_forget", 0) or op == "GRU" and \
            attrs.get("linear_before_reset", 0) != 1 or len(node.input) > 7:
        return "bidirectional, clipped, custom activations or another gate layout"
    hidden = int(attrs["hidden_size"])
    order = _GATE_ORDER[op]
    weight_ih, weight_hh = (_reorder(ctx.consts[n][0], order, hidden) for n in (w, r))
    bias = ctx.consts[b][0] if b else np.zeros(2 * len(order) * hidden, dtype=np.float32)
    half = len(order) * hidden
    tensors = {"rnn.weight_ih_l0": weight_ih, "rnn.weight_hh_l0": weight_hh,
               "rnn.bias_ih_l0": _reorder(bias[:half], order, hidden), "rnn.bias_hh_l0": _reorder(bias[half:], order,
                                                                                                  hidden)}
    params = {"hidden_size": hidden, "num_layers": 1, "bidirectional": False, "dropout": 0.0, "output": "last"}
    source = ctx.virtual[x][1]
    node_id = ctx.place(node, _TYPES[op], params, [source], tensors)
    if len(node.output) > 1 and node.output[1]:
        ctx.virtual[node.output[1]] = ("rnn_h", node_id)
    if node.output and node.output[0]:
        ctx.virtual[node.output[0]] = ("rnn_y", node_id)
    return ""


def _last_state(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    index = node.input[1]
    picked = ctx.consts.get(index)
    if picked is None or int(attrs.get("axis", 0)) != 0 or np.asarray(picked).size != 1 \
            or int(np.asarray(picked).reshape(-1)[0]) not in (0, -1) or np.asarray(picked).ndim != 0:
        return "a part of the hidden state other than the last one"
    ctx.values[node.output[0]] = ctx.virtual[node.input[0]][1]
    return ""


def _reorder(array: np.ndarray, order: list[int], hidden: int) -> np.ndarray:
    blocks = [array[i * hidden:(i + 1) * hidden] for i in range(len(order))]
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in order]), dtype=np.float32)
