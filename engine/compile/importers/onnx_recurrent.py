"""LSTM and GRU operators, stacked and bidirectional, back onto one canvas layer.

``torch.onnx.export`` writes an ``nn.LSTM(num_layers=L, bidirectional=True,
batch_first=True)`` as one ONNX ``LSTM`` operator per layer, with plumbing around them::

    Transpose(x, perm=[1, 0, 2])                  # batch-first -> time-major (T, N, C)
    LSTM(X, W, R, B, initial_h=zeros, ...) -> Y (T, D, N, H), Y_h (D, N, H), Y_c
    Transpose(Y, perm=[0, 2, 1, 3]); Reshape      # (T, N, D * H): the next layer's X
    ...                                           # (or Squeeze(Y, axis 1) when D is 1)
    Transpose(Y_top, perm=[1, 0, 2])              # the sequence, batch-first again
    Concat(Y_h of each layer, axis 0)             # h_n (L * D, N, H); Gather(h_n, -1) ...

These values are followed symbolically (:attr:`Context.virtual`): a :class:`RecurrentStack`
grows by one layer per operator that reads the previous layer's output, and becomes one
canvas ``lstm`` / ``gru`` node where a canvas value is needed: the batch-first output
sequence (``output: sequence``), or the top layer's final hidden state (``output: last``;
for a bidirectional stack both directions concatenated, as ``torch.cat([h[-2], h[-1]], 1)``).
Anything else (one direction alone, a lower layer's state, the cell state, a non-zero
initial state, another gate layout) is reported with what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.compile.importers.onnx_rewrite import axes_of

#: Gate blocks of ONNX's weights in PyTorch's order: LSTM iofc -> ifco, GRU zrh -> rzh.
_GATE_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2]}
TYPES = {"LSTM": "lstm", "GRU": "gru"}
_SEQUENCE_FIRST = [1, 0, 2]
_DIRECTIONS_INNER = [0, 2, 1, 3]
#: Virtual kinds defined here, and why each cannot be used otherwise.
REASONS = {
    "rnn_y": "the raw output of a recurrent operator (T, D, N, H) used other than as the next layer's input "
             "or the output sequence",
    "rnn_seq": "a recurrent layer's time-major output sequence used other than by the next layer or "
               "transposed back to batch-first",
    "rnn_h": "a recurrent layer's final states used other than to read the top layer's last hidden state",
    "rnn_c": "an LSTM's cell state, which the canvas layer does not output",
    "h_row": "one direction of a bidirectional layer's final state (the canvas layer's 'last' output is both "
             "directions concatenated, torch.cat([h[-2], h[-1]], 1))",
}


@dataclass(eq=False)
class RecurrentStack:
    """Recurrent layers stacked so far: the first one reads ``source``, each next one the previous.

    Attributes:
        op: ``"LSTM"`` or ``"GRU"``.
        source: The canvas value (node id or ``(node id, port)``) of the batch-first input.
        hidden: Hidden size of every layer.
        bidirectional: Whether every layer runs both directions.
        tensors: PyTorch's state dict of the layers so far (``rnn.weight_ih_l0_reverse``, ...).
        layers: How many layers.
        first: The ONNX node of the first layer (its name and scope name the canvas node).
        previous: The stack one layer shorter (``None`` for the first layer).
        placed: Canvas node ids already made from this stack, by output (``sequence``, ``last``).
    """

    op: str
    source: Any
    hidden: int
    bidirectional: bool
    tensors: dict[str, np.ndarray]
    layers: int
    first: Any
    previous: RecurrentStack | None = None
    placed: dict[str, str] = field(default_factory=dict)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def prefix(self, layers: int) -> RecurrentStack:
        """The stack of its first ``layers`` layers."""
        stack = self
        while stack.layers > layers and stack.previous is not None:
            stack = stack.previous
        return stack

    def place(self, ctx: Any, output: str) -> str:
        """The canvas node computing this stack with ``output`` ("sequence" or "last"), added once."""
        if output not in self.placed:
            params = {"hidden_size": self.hidden, "num_layers": self.layers, "bidirectional": self.bidirectional,
                      "dropout": 0.0, "output": output}
            self.placed[output] = ctx.place(self.first, TYPES[self.op], params, [self.source], self.tensors)
        return self.placed[output]


def follow_recurrent(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """One step around recurrent operators: ``""`` when followed or mapped, a reason, or ``None``."""
    op, virtual = node.op_type, ctx.virtual
    inputs = list(node.input)
    value = virtual.get(inputs[0]) if inputs else None
    kind = value[0] if value else ""
    out = node.output[0] if node.output else ""
    perm = [int(p) for p in attrs.get("perm", [])]
    if op in TYPES:
        return _recurrent(ctx, node, attrs)
    if op == "Shape":
        return None  # the sizes of any value are a shape (onnx_symbolic)
    if op == "Transpose" and kind == "rnn_y" and perm == _DIRECTIONS_INNER:
        virtual[out] = ("rnn_y_inner", value[1])
    elif op == "Reshape" and kind == "rnn_y_inner" and _merges_directions(ctx, out, value[1]):
        virtual[out] = ("rnn_seq", value[1])
    elif op == "Squeeze" and kind == "rnn_y" and value[1].directions == 1 and axes_of(ctx, node, attrs) == [1]:
        virtual[out] = ("rnn_seq", value[1])
    elif op == "Transpose" and kind == "rnn_seq" and perm == _SEQUENCE_FIRST:
        ctx.values[out] = value[1].place(ctx, "sequence")
    elif op == "Concat" and kind == "rnn_h" and int(attrs.get("axis", 0)) == 0:
        return _concat_states(ctx, node)
    elif op in ("Gather", "Squeeze") and kind == "rnn_h":
        return _state_row(ctx, node, attrs, value)
    elif op == "Concat" and kind == "h_row" and int(attrs.get("axis", 0)) in (1, -1):
        return _both_directions(ctx, node)
    else:
        for name in inputs:
            found = virtual.get(name, ("",))[0]
            if found in REASONS or found == "rnn_y_inner":
                return REASONS.get(found, REASONS["rnn_y"])
        return None
    return ""


def _merges_directions(ctx: Any, out: str, stack: RecurrentStack) -> bool:
    """Whether a Reshape of (T, N, D, H) gives (T, N, D * H) (rank 3; known sizes agree)."""
    dims = ctx.shapes.get(out, [])
    return len(dims) == 3 and (not isinstance(dims[2], int) or dims[2] == stack.directions * stack.hidden)


def _recurrent(ctx: Any, node: Any, attrs: dict[str, Any]) -> str:
    op = node.op_type
    names = list(node.input) + [""] * (8 - len(node.input))
    x, w, r, b, lengths, h0 = names[:6]
    c0 = names[6] if op == "LSTM" else ""
    feed = ctx.virtual.get(x, ("",))
    if feed[0] not in ("seq_first", "rnn_seq"):
        return ("its input is not a batch-first sequence transposed to time-major (a model built with "
                "batch_first=False, or another layout)")
    if any(n not in ctx.consts for n in (w, r) if n) or b and b not in ctx.consts or lengths:
        return "weights that are not constants, or sequence lengths"
    if any(n and not _zeros(ctx, n) for n in (h0, c0)):
        return "a non-zero initial state"
    direction = attrs.get("direction", "forward")
    if direction not in ("forward", "bidirectional") or attrs.get("layout", 0) or "clip" in attrs \
            or "activations" in attrs or attrs.get("input_forget", 0) or op == "GRU" and \
            attrs.get("linear_before_reset", 0) != 1 or len(node.input) > 7:
        return "a reverse-only direction, clipping, custom activations or another gate layout"
    hidden, bidirectional = int(attrs["hidden_size"]), direction == "bidirectional"
    below: RecurrentStack | None = feed[1] if feed[0] == "rnn_seq" else None
    if below is not None and (below.op != op or below.hidden != hidden or below.bidirectional != bidirectional):
        return (f"it reads the output of a {below.op} with hidden size {below.hidden}: stacked layers of one "
                "canvas layer share their type, hidden size and direction")
    layer = below.layers if below else 0
    tensors = dict(below.tensors) if below else {}
    tensors.update(_layer_tensors(op, layer, hidden, bidirectional, *(ctx.consts[n] for n in (w, r)),
                                  ctx.consts[b] if b else None))
    stack = RecurrentStack(op, below.source if below else feed[1], hidden, bidirectional, tensors, layer + 1,
                           below.first if below else node, below)
    outputs = list(node.output) + ["", "", ""]
    directions = 2 if bidirectional else 1
    if outputs[0]:
        ctx.virtual[outputs[0]] = ("rnn_y", stack)
    if outputs[1]:
        ctx.virtual[outputs[1]] = ("rnn_h", stack, tuple((layer, d) for d in range(directions)))
    if op == "LSTM" and outputs[2]:
        ctx.virtual[outputs[2]] = ("rnn_c", stack)
    return ""


def _zeros(ctx: Any, name: str) -> bool:
    """Whether ``name`` is all zeros: shaped from the batch size, or a constant (a fixed batch)."""
    return ctx.virtual.get(name, ("",))[0] == "zeros" or name in ctx.consts and not np.any(ctx.consts[name])


def _layer_tensors(op: str, layer: int, hidden: int, bidirectional: bool, w: np.ndarray, r: np.ndarray,
                   b: np.ndarray | None) -> dict[str, np.ndarray]:
    """PyTorch's tensors of one layer (both directions) from ONNX's W, R and B."""
    order = _GATE_ORDER[op]
    half = len(order) * hidden
    result = {}
    for direction, suffix in enumerate(("", "_reverse")[:2 if bidirectional else 1]):
        bias = b[direction] if b is not None else np.zeros(2 * half, dtype=np.float32)
        for key, array in (("weight_ih", w[direction]), ("weight_hh", r[direction]), ("bias_ih", bias[:half]),
                           ("bias_hh", bias[half:])):
            result[f"rnn.{key}_l{layer}{suffix}"] = _reorder(array, order, hidden)
    return result


def _reorder(array: np.ndarray, order: list[int], hidden: int) -> np.ndarray:
    blocks = [array[i * hidden:(i + 1) * hidden] for i in range(len(order))]
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in order]), dtype=np.float32)


def _concat_states(ctx: Any, node: Any) -> str:
    """h_n: the final states of consecutive layers of one stack, concatenated along axis 0."""
    parts = [ctx.virtual.get(n, ("",)) for n in node.input]
    if any(p[0] != "rnn_h" for p in parts):
        return REASONS["rnn_h"]
    top = max((p[1] for p in parts), key=lambda s: s.layers)
    if any(top.prefix(p[1].layers) is not p[1] for p in parts):
        return REASONS["rnn_h"]
    ctx.virtual[node.output[0]] = ("rnn_h", top, tuple(row for p in parts for row in p[2]))
    return ""


def _state_row(ctx: Any, node: Any, attrs: dict[str, Any], value: tuple[Any, ...]) -> str:
    """``h_n[i]`` (Gather on axis 0, or Squeeze of a one-row state): the last hidden state of the top layer."""
    _, stack, rows = value
    if node.op_type == "Squeeze":
        index = 0 if len(rows) == 1 and axes_of(ctx, node, attrs) in ([0], None) else None
    else:
        picked = ctx.consts.get(node.input[1])
        index = int(np.asarray(picked).reshape(-1)[0]) if picked is not None and np.asarray(picked).ndim == 0 \
            and int(attrs.get("axis", 0)) == 0 else None
    if index is None or not -len(rows) <= index < len(rows):
        return REASONS["rnn_h"]
    layer, direction = rows[index]
    owner = stack.prefix(layer + 1)
    if owner.layers != layer + 1:
        return REASONS["rnn_h"]
    if owner.bidirectional:
        ctx.virtual[node.output[0]] = ("h_row", owner, direction)
    else:
        ctx.values[node.output[0]] = owner.place(ctx, "last")
    return ""


def _both_directions(ctx: Any, node: Any) -> str:
    """``torch.cat([h[-2], h[-1]], 1)``: both directions of one layer's final state, forward first."""
    parts = [ctx.virtual.get(n, ("",)) for n in node.input]
    if len(parts) != 2 or any(p[0] != "h_row" for p in parts) or parts[0][1] is not parts[1][1] \
            or [p[2] for p in parts] != [0, 1]:
        return REASONS["h_row"]
    ctx.values[node.output[0]] = parts[0][1].place(ctx, "last")
    return ""
