"""What the multi-operator patterns share: reading constants, and the canvas nodes a pattern completes.

Some patterns begin with operators that map on their own (a ``Reshape``, a ``Transpose``, a
``LayerNormalization``): those map as usual, and when the pattern's last operator arrives and
every step checks out, the canvas nodes of the earlier steps are replaced by the one layer
(:func:`unplace`), only where nothing else reads their values (:func:`read_once`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Tolerance of a constant of a formula (they are stored as float32: 0.044715 reads 0.044714998).
TOLERANCE = 1e-6


def axes_of(ctx: Any, node: Any, attrs: dict[str, Any]) -> list[int] | None:
    """The ``axes`` of a Squeeze / Unsqueeze / Reduce*: its attribute (old opsets) or constant input."""
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1] in ctx.consts:
        axes = np.asarray(ctx.consts[node.input[1]]).reshape(-1).tolist()
    return [int(a) for a in axes] if axes is not None else None


def reason_of_inputs(virtual: dict[str, Any], node: Any, reasons: dict[str, str]) -> str | None:
    """Why ``node`` cannot map when an input is a pattern's value it cannot take (``reasons`` by the
    value's kind); None when no input is."""
    for name in node.input:
        kind = virtual.get(name, ("",))[0]
        if kind in reasons:
            return reasons[kind]
    return None


def scalar(ctx: Any, name: str) -> float | None:
    """The value of a one-element constant, else ``None``."""
    array = ctx.consts.get(name)
    return float(np.asarray(array).reshape(-1)[0]) if array is not None and np.asarray(array).size == 1 else None


def near(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= TOLERANCE * max(1.0, abs(expected))


def described(value: float | None) -> str:
    """A constant for a message: ``0.05``, or ``a computed value``."""
    return "a computed value" if value is None else f"{value:.6g}"


def split_constant(ctx: Any, node: Any) -> tuple[str, str] | None:
    """``(other input, constant input)`` of a binary node with exactly one constant input."""
    if len(node.input) != 2:
        return None
    left, right = node.input
    if (left in ctx.consts) == (right in ctx.consts):
        return None
    return (right, left) if left in ctx.consts else (left, right)


def canvas_node(ctx: Any, name: str, type_id: str) -> Any:
    """The canvas node of type ``type_id`` whose (only) output is the ONNX value ``name``, else ``None``."""
    value = ctx.values.get(name)
    node = ctx.builder.graph.nodes.get(value) if isinstance(value, str) else None
    return node if node is not None and node.type_id == type_id else None


def names_of(ctx: Any, value: Any) -> list[str]:
    """The ONNX values that a canvas value (node id, or ``(node id, port)``) stands for."""
    return [name for name, mapped in ctx.values.items() if mapped == value]


def read_once(ctx: Any, node_id: str) -> bool:
    """Whether the canvas node's value is read exactly once in the ONNX graph (a graph output counts)."""
    return sum(ctx.consumers.get(name, 0) for name in names_of(ctx, node_id)) == 1 \
        and len(ctx.builder.graph.outgoing(node_id)) <= 1


def source_of(ctx: Any, node_id: str) -> Any:
    """The canvas value feeding a one-input node: a node id, or ``(node id, port)``."""
    from engine.graph.model import OUT

    edge = ctx.builder.graph.incoming(node_id).get("in")
    if edge is None:
        return None
    return edge.source if edge.source_port == OUT else (edge.source, edge.source_port)


def shape_of(ctx: Any, value: Any) -> list[Any]:
    """The ONNX shape of a canvas value (from any ONNX value it stands for), or ``[]``."""
    for name in names_of(ctx, value):
        if ctx.shapes.get(name):
            return list(ctx.shapes[name])
    return []


def unplace(ctx: Any, node_id: str) -> dict[str, Any]:
    """Remove a canvas node that a pattern replaces, with its edges; returns its weights (by tensor name)."""
    graph, builder = ctx.builder.graph, ctx.builder
    for edge in graph.edges_of(node_id):
        graph.remove_edge(edge)
    graph.remove_node(node_id)
    for name in names_of(ctx, node_id):
        del ctx.values[name]
    prefix = f"{node_id}."
    return {key[len(prefix):]: builder.weights.pop(key) for key in [k for k in builder.weights if k.startswith(prefix)]}


def per_channel(values: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
    """A constant broadcast against ``(N, C, ...)`` as one value per channel ``(C,)``, else ``None``.

    Accepts ``(C, 1, ..., 1)`` (trailing ones up to the input's rank) with or without leading ones.
    """
    shape = list(values.shape)
    while len(shape) > rank - 1 and shape[0] == 1:
        shape.pop(0)
    if len(shape) != rank - 1 or shape[0] != channels or any(d != 1 for d in shape[1:]):
        return None
    return np.asarray(values, dtype=np.float32).reshape(-1)


def record_shape(ctx: Any, node: Any, attrs: dict[str, Any]) -> bool:
    """``Shape`` of a canvas tensor: a ``"shape"`` value that remembers which tensor, and which part.

    ``("shape", tensor, start, end)``: patterns check a reshape back to a tensor's own shape with
    it; everything else reads it as any shape (:mod:`.onnx_symbolic`).
    """
    source = node.input[0]
    if node.op_type != "Shape" or source not in ctx.values:
        return False
    ctx.virtual[node.output[0]] = ("shape", source, int(attrs.get("start", 0)), attrs.get("end"))
    return True


def whole_shape_of(ctx: Any, name: str) -> str | None:
    """The tensor whose whole shape the value ``name`` is (``Shape(x)``), else ``None``."""
    value = ctx.virtual.get(name, ())
    if len(value) == 4 and value[0] == "shape" and value[2] == 0 and value[3] is None:
        return value[1]
    return None
