"""Layers with several outputs: Chunk and Split cut a tensor into parts along one dimension.

Each part leaves its own output port (``out1``, ``out2``, ...), so the branches of a
ShuffleNet unit or the two halves of a gated layer are wired from one node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from engine.layers.base import (EmitContext, Example, Inference, LayerType, Params, ShapeError, TensorSpec,
                                register)
from engine.layers.params import int_list_param, int_param
from engine.layers.recognize import Called, FromCall, FromOnnx, is_traced

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

#: The most parts one node makes.
MAX_PARTS = 16


def _ports(count: Any) -> tuple[str, ...]:
    count = count if isinstance(count, int) and 2 <= count <= MAX_PARTS else 2
    return tuple(f"out{i + 1}" for i in range(count))


def _axis(dim: int, x: TensorSpec) -> int:
    """``dim`` as an index into ``x.dims`` (0 is the first dimension after the batch)."""
    axis = dim + x.rank if dim < 0 else dim
    if axis == 0:
        raise ShapeError(f"dim {dim} is the batch dimension of {x}: cut along dim 1 or later", field="dim")
    if not 0 < axis < x.rank:
        raise ShapeError(f"dim {dim} does not exist in {x} (rank {x.rank})", field="dim")
    return axis - 1


def _dim_param() -> Any:
    return int_param("dim", 1, "Dimension to cut along, counting the batch as 0; negative counts from the end.",
                     min=-8, max=8)


def _chunk_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``x.chunk(2, dim=1)`` / ``torch.chunk(x, 2, 1)``."""
    chunks = kwargs.get("chunks", args[1] if len(args) > 1 else None)
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
    if not is_traced(args[0]) or not isinstance(chunks, int) or not isinstance(dim, int) \
            or set(kwargs) - {"chunks", "dim"}:
        return None
    return {"chunks": chunks, "dim": dim}, [args[0]]


def _split_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``torch.split(x, [16, 48], dim=1)`` / ``x.split([16, 48], 1)`` with explicit sizes."""
    sizes = kwargs.get("split_size_or_sections", kwargs.get("split_size", args[1] if len(args) > 1 else None))
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
    if not is_traced(args[0]) or not isinstance(sizes, (list, tuple)) or not isinstance(dim, int) \
            or not all(isinstance(s, int) for s in sizes):
        return None
    return {"sizes": list(sizes), "dim": dim}, [args[0]]


def _split_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Split``: sizes from the constant second input (a Split layer), or ``num_outputs`` equal
    parts (a Chunk)."""
    axis = int(a.get("axis", 0))
    rank = ctx.rank(node.input[0])
    if rank and axis < 0:
        axis += rank
    if axis == 0:
        return "splitting the batch axis"
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in ctx.consts:
            return "sizes computed at run time"
        sizes = [int(v) for v in ctx.consts[node.input[1]].tolist()]
        if len(set(sizes)) == 1:
            ctx.add(node, "chunk", {"chunks": len(sizes), "dim": axis}, [node.input[0]])
        else:
            ctx.add(node, "split", {"sizes": sizes, "dim": axis}, [node.input[0]])
        return None
    count = int(a.get("num_outputs", len(node.output)))
    ctx.add(node, "chunk", {"chunks": count, "dim": axis}, [node.input[0]])
    return None


@register
class Chunk(LayerType):
    """Cuts a tensor into equal parts along one dimension, one output port per part."""

    type_id = "chunk"
    title = "Chunk"
    category = "Merge"
    doc = ("Cuts the input into equal parts along dim, each leaving its own output (out1, out2, ...); "
           "the opposite of Concatenate.")
    id_prefix = "chunk"
    key_params = ("chunks", "dim")
    params = (int_param("chunks", 2, "Number of equal parts (the size along dim must divide by it).",
                        min=2, max=MAX_PARTS),
              _dim_param())
    examples = (Example(((8, 4, 4),)), Example(((5, 9),), {"chunks": 3, "dim": -1}))
    imports = (FromCall(_chunk_call, ("torch.chunk",), ("chunk",)), FromOnnx(("Split",), _split_from_onnx))

    def output_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        return _ports(p.get("chunks", 2))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        axis = _axis(p.dim, x)
        size = x.dims[axis]
        if size % p.chunks:
            raise ShapeError(f"size {size} along dim {p.dim} of {x} does not divide into {p.chunks} equal parts: "
                             f"choose chunks dividing {size}, or use Split with sizes", field="chunks")
        dims = list(x.dims)
        dims[axis] = size // p.chunks
        part = x.with_dims(tuple(dims))
        return Inference(part, outputs=(part,) * p.chunks)

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        return ctx.call_method("chunk", (args[0], p.chunks, p.dim))


@register
class Split(LayerType):
    """Cuts a tensor into parts of given sizes along one dimension, one output port per part."""

    type_id = "split"
    title = "Split"
    category = "Merge"
    doc = "Cuts the input into parts of the given sizes along dim, each leaving its own output (out1, out2, ...)."
    id_prefix = "split"
    key_params = ("sizes", "dim")
    params = (int_list_param("sizes", (1, 1), "Size of each part along dim, e.g. 16, 48; they must add up to "
                             "the input's size there.", min=1, max=1_000_000, min_length=2, max_length=MAX_PARTS),
              _dim_param())
    examples = (Example(((2, 4),)), Example(((7, 3, 3),), {"sizes": (2, 4, 1), "dim": 1}))
    imports = (FromCall(_split_call, ("torch.split",), ("split",)),)

    def output_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        sizes = p.get("sizes", (1, 1))
        return _ports(len(sizes) if isinstance(sizes, (list, tuple)) else 2)

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        axis = _axis(p.dim, x)
        if sum(p.sizes) != x.dims[axis]:
            raise ShapeError(f"sizes {list(p.sizes)} add up to {sum(p.sizes)} but {x} has {x.dims[axis]} along "
                             f"dim {p.dim}: make them add up to {x.dims[axis]}", field="sizes")
        parts = []
        for size in p.sizes:
            dims = list(x.dims)
            dims[axis] = size
            parts.append(x.with_dims(tuple(dims)))
        return Inference(parts[0], outputs=tuple(parts))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        import torch

        return ctx.call_function(torch.split, (args[0], list(p.sizes), p.dim))
