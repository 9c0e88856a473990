"""Tensor operations without weights: Reduce (mean / sum / max over dimensions), Select (one index
along a dimension) and ChannelShuffle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.layers.base import (EmitContext, Example, Inference, LayerType, ModuleCall, Params, ShapeError,
                                TensorSpec, register, require_float, require_rank)
from engine.layers.params import bool_param, choice_param, int_list_param, int_param
from engine.layers.recognize import Called, FromCall, FromModule, FromOnnx, is_batch_size, is_traced, traced_shape

if TYPE_CHECKING:  # pragma: no cover
    import torch.fx

#: The torch function each Reduce operation emits (new operations go last: saved projects name them).
_REDUCTIONS = {"mean": "mean", "sum": "sum", "max": "amax", "min": "amin"}
#: ONNX reduction operators by Reduce operation.
_ONNX_REDUCTIONS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _axis(dim: int, x: TensorSpec, what: str) -> int:
    """``dim`` (batch 0, negative from the end) as an index into ``x.dims``; never the batch."""
    axis = dim + x.rank if dim < 0 else dim
    if axis == 0:
        raise ShapeError(f"dim {dim} is the batch dimension of {x}, which would mix samples: {what} along "
                         "dim 1 or later, or -1 for the last", field="dims" if what == "reduce" else "dim")
    if not 0 < axis < x.rank:
        raise ShapeError(f"dim {dim} does not exist in {x} (rank {x.rank}): use a dim between 1 and {x.rank - 1}, "
                         "or -1 for the last", field="dims" if what == "reduce" else "dim")
    return axis - 1


# ------------------------------------------------------------- recognizers
def _reduce_call(op: str, one_dim: bool = False) -> Any:
    """``torch.mean(x, (2, 3))``, ``x.sum(1, keepdim=True)``, ``x.amax(dim=-1)`` over given dims (never all);
    ``one_dim``: ``torch.max(x, 1)`` / ``x.min(dim=-1)``, over one dim, whose values (element 0 of
    ``(values, indices)``) the layer computes."""
    def read(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
        if not args or len(args) > 3 or set(kwargs) - {"dim", "axis", "keepdim", "dtype"} \
                or kwargs.get("dtype") is not None or not is_traced(args[0]):
            return None
        dims = kwargs.get("dim", kwargs.get("axis", args[1] if len(args) > 1 else None))
        keepdim = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        if one_dim and not _is_int(dims):
            return None  # torch.max(x) (over everything) or torch.max(x, y) (elementwise)
        dims = [dims] if _is_int(dims) else list(dims) if isinstance(dims, (tuple, list)) else []
        if not dims or not all(_is_int(d) for d in dims) or 0 in dims or not isinstance(keepdim, bool):
            return None
        return {"op": op, "dims": dims, "keepdim": keepdim}, [args[0]]
    return read


def _reduce_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``ReduceMean`` / ``ReduceSum`` / ``ReduceMax`` over given axes (an attribute, or a constant input)."""
    x = node.input[0]
    rank = ctx.rank(x)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = ctx.consts[node.input[1]].reshape(-1).tolist() if node.input[1] in ctx.consts else None
    if not axes or not rank:
        return "a reduction over all axes, the batch included, or over axes computed at run time"
    axes = sorted({int(d) % rank for d in axes})
    op = _ONNX_REDUCTIONS[node.op_type]
    if 0 in axes:
        return "a reduction over the batch axis"
    if rank == 4 and axes == [2, 3] and op in ("mean", "max"):
        return "global pooling (AdaptiveAvgPool2d / AdaptiveMaxPool2d maps it)"
    ctx.add(node, "reduce", {"op": op, "dims": axes, "keepdim": bool(a.get("keepdims", 1))}, [x])
    return None


def _select_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``torch.select(x, 1, 0)`` / ``x.select(1, -1)``."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    index = kwargs.get("index", args[2] if len(args) > 2 else None)
    if len(args) > 3 or set(kwargs) - {"dim", "index"} or not is_traced(args[0]) or not _is_int(dim) \
            or not _is_int(index) or dim == 0:
        return None
    return {"dim": dim, "index": index}, [args[0]]


def _getitem_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """``x[:, 0]``, ``x[:, -1, :]``, ``x[..., 3]``: one integer index after full slices (never the batch)."""
    if len(args) != 2 or kwargs or not is_traced(args[0]) or not isinstance(args[1], tuple):
        return None
    key = list(args[1])
    every = slice(None, None, None)
    positions = [i for i, k in enumerate(key) if _is_int(k)]
    if len(positions) != 1:
        return None
    (at,) = positions
    before, after = key[:at], key[at + 1:]
    if before and before[0] is Ellipsis and all(k == every for k in before[1:]) and all(k == every for k in after):
        return {"dim": -1 - len(after), "index": key[at]}, [args[0]]
    if before and all(k == every for k in before) and (all(k == every for k in after)
                                                      or after and after[-1] is Ellipsis
                                                      and all(k == every for k in after[:-1])):
        return {"dim": len(before), "index": key[at]}, [args[0]]
    return None


def _select_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Gather`` of one constant index (a scalar) along an axis after the batch."""
    data, indices = node.input
    rank = ctx.rank(data)
    if data in ctx.consts or indices not in ctx.consts or ctx.consts[indices].ndim != 0 or not rank:
        return "a lookup that is no single constant index of a computed tensor"
    axis = int(a.get("axis", 0)) % rank
    if axis == 0:
        return "indexing the batch axis"
    ctx.add(node, "select", {"dim": axis, "index": int(ctx.consts[indices])}, [data])
    return None


def _traced_call(value: Any, functions: tuple[Any, ...], methods: tuple[str, ...]) -> bool:
    """Whether ``value`` is a traced call of one of these functions or tensor methods, read by nothing else."""
    if not is_traced(value) or len(value.users) != 1:
        return False
    return value.op == "call_function" and value.target in functions \
        or value.op == "call_method" and value.target in methods


def _shuffle_pattern(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    """torchvision's ``channel_shuffle`` written out: ``x.view(n, g, c // g, h, w)``, ``torch.transpose(x, 1, 2)``
    (``.contiguous()``), ``x.view(n, -1, h, w)`` (or ``.flatten(1, 2)``), of (N, C, L) to (N, C, D, H, W)."""
    import torch

    if len(args) < 2 or not is_traced(args[0]):
        return None
    swapped = args[0]
    if _traced_call(swapped, (), ("contiguous",)):
        swapped = swapped.args[0]
    if not _traced_call(swapped, (torch.transpose, torch.permute), ("transpose", "permute")):
        return None
    grouped = swapped.args[0]
    if not _traced_call(grouped, (torch.reshape,), ("view", "reshape")) or not is_traced(grouped.args[0]):
        return None
    x = grouped.args[0]
    shapes = [traced_shape(v) for v in (x, grouped, swapped)]
    if any(shape is None for shape in shapes) or not 3 <= len(shapes[0]) <= 5:  # type: ignore[arg-type]
        return None
    before, split, after = shapes
    rest = before[2:]  # type: ignore[index]
    groups = split[1]  # type: ignore[index]
    if split != (before[0], groups, before[1] // groups, *rest) or groups * split[2] != before[1] \
            or after != (before[0], split[2], groups, *rest) or not _swaps_one_and_two(swapped, len(split)):
        return None
    first = grouped.args[1] if len(grouped.args) > 1 else None
    first = first[0] if isinstance(first, (tuple, list)) else first
    if _is_int(first) and first != -1:
        return None  # a fixed batch size
    if not _merges_back(args, kwargs, before):  # type: ignore[arg-type]
        return None
    return {"groups": groups}, [x]


def _swaps_one_and_two(node: Any, rank: int) -> bool:
    """Whether a traced ``transpose`` / ``permute`` swaps dims 1 and 2 and nothing else."""
    args = list(node.args[1:])
    if node.target in ("transpose",) or getattr(node.target, "__name__", "") == "transpose":
        dims = [node.kwargs.get("dim0", args[0] if args else None), node.kwargs.get("dim1", args[1] if len(args) > 1
                                                                                    else None)]
        return not node.kwargs.keys() - {"dim0", "dim1"} and all(_is_int(d) for d in dims) \
            and sorted(d % rank for d in dims) == [1, 2]
    order = list(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    order = list(node.kwargs.get("dims", order))
    return order == [0, 2, 1, *range(3, rank)]


def _merges_back(args: list[Any], kwargs: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """Whether the call is ``view`` / ``reshape`` to the batch and ``shape`` (one size may be -1), or
    ``flatten(1, 2)`` (which gives ``shape`` after the shuffle's transpose, as the caller checked)."""
    sizes = list(args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:])
    if not kwargs and len(sizes) == len(shape) and is_batch_size(sizes[0]):
        rest = sizes[1:]
        return all(_is_int(d) for d in rest) and rest.count(-1) <= 1 \
            and all(d in (-1, size) for d, size in zip(rest, shape[1:]))
    start = kwargs.get("start_dim", args[1] if len(args) > 1 else None)
    end = kwargs.get("end_dim", args[2] if len(args) > 2 else None)
    return len(args) <= 3 and not set(kwargs) - {"start_dim", "end_dim"} and start == 1 and end == 2


def _shuffle_call(args: list[Any], kwargs: dict[str, Any]) -> Called | None:
    groups = kwargs.get("groups", args[1] if len(args) > 1 else None)
    if len(args) > 2 or set(kwargs) - {"groups"} or not is_traced(args[0]) or not _is_int(groups):
        return None
    return {"groups": groups}, [args[0]]


# ------------------------------------------------------------------ layers
@register
class Reduce(LayerType):
    """Mean, sum or maximum over chosen dimensions."""

    type_id = "reduce"
    imports = (*(FromCall(_reduce_call(op), (f"torch.{fn}",), (fn,)) for op, fn in _REDUCTIONS.items()),
               *(FromCall(_reduce_call(op, one_dim=True), (f"torch.{op}",), (op,), tuple_output=0)
                 for op in ("max", "min")),
               FromOnnx(tuple(_ONNX_REDUCTIONS), _reduce_from_onnx))
    title = "Reduce"
    category = "Core"
    doc = ("Takes the mean, sum, maximum or minimum over chosen dimensions, e.g. the mean over the tokens of a "
           "sequence: (N, T, D) -> (N, D).")
    id_prefix = "reduce"
    key_params = ("op", "dims", "keepdim")
    params = (
        choice_param("op", "mean", tuple(_REDUCTIONS), "What to compute over dims: the mean, the sum, the maximum "
                                                       "or the minimum."),
        int_list_param("dims", (-1,), "Dimensions to reduce, counting the batch as 0 (never reduced); negative "
                                      "counts from the end. For images (N, C, H, W), 2, 3 are height and width.",
                       min=-8, max=8, min_length=1, max_length=7),
        bool_param("keepdim", False, "Keep each reduced dimension with size 1, e.g. (N, C, 1, 1), instead of "
                                     "removing it."),
    )
    examples = (
        Example(((6, 5),)),
        Example(((3, 4, 5),), {"op": "sum", "dims": (2, 3), "keepdim": True}),
        Example(((3, 4, 5),), {"op": "max", "dims": (-1, 1)}),
        Example(((3, 4, 5),), {"op": "min", "dims": (2,), "keepdim": True}),
        Example(((7, 4),), {"dims": (1,)}),
    )

    def _axes(self, p: Params, x: TensorSpec) -> list[int]:
        axes = [_axis(d, x, "reduce") for d in p.dims]
        twice = sorted({a + 1 for a in axes if axes.count(a) > 1})
        if twice:
            raise ShapeError(f"dims {list(p.dims)} name dim {twice[0]} of {x} twice: list each dimension once",
                             field="dims")
        return axes

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        axes = self._axes(p, x)
        if p.keepdim:
            return Inference(x.with_dims(tuple(1 if i in axes else d for i, d in enumerate(x.dims))))
        dims = tuple(d for i, d in enumerate(x.dims) if i not in axes)
        if not dims:
            raise ShapeError(f"reducing dims {list(p.dims)} of {x} leaves only the batch dimension: set keepdim, "
                             "or reduce fewer dimensions", field="dims")
        return Inference(x.with_dims(dims))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``torch.mean(x, (2, 3))``, ``torch.amax(x, -1, keepdim=True)``, ``torch.amin(x, 1)``."""
        import torch

        dims = tuple(p.dims) if len(p.dims) > 1 else p.dims[0]
        return ctx.call_function(getattr(torch, _REDUCTIONS[p.op]), (args[0], dims),
                                 {"keepdim": True} if p.keepdim else {})


@register
class Select(LayerType):
    """One index along a dimension, which is removed."""

    type_id = "select"
    imports = (FromCall(_select_call, ("torch.select",), ("select",)), FromCall(_getitem_call, ("operator.getitem",)),
               FromOnnx(("Gather",), _select_from_onnx))
    title = "Select"
    category = "Core"
    doc = ("Takes one position along a dimension and drops that dimension: index 0 of the tokens picks a class "
           "token, (N, T, D) -> (N, D); index -1 the last time step.")
    id_prefix = "select"
    key_params = ("dim", "index")
    params = (
        int_param("dim", 1, "Dimension to take from, counting the batch as 0 (never the batch); negative counts "
                            "from the end.", min=-8, max=8),
        int_param("index", 0, "Position to take along dim; negative counts from the end (-1 is the last).",
                  min=-1_000_000, max=1_000_000),
    )
    examples = (Example(((5, 8),)), Example(((6, 3, 4),), {"dim": -1, "index": -1}),
                Example((TensorSpec((4, 6), "long", vocab=9),), {"dim": 2, "index": 5}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        axis = _axis(p.dim, x, "select")
        size = x.dims[axis]
        if not -size <= p.index < size:
            raise ShapeError(f"index {p.index} is outside dim {axis + 1} of {x}, which has {size} position"
                             f"{'s' if size > 1 else ''}: use 0 to {size - 1}, or -{size} to -1 from the end",
                             field="index")
        dims = x.dims[:axis] + x.dims[axis + 1:]
        if not dims:
            raise ShapeError(f"selecting index {p.index} of dim {axis + 1} from {x} would leave (N,), one number per "
                             "sample and no dimension after the batch, which no canvas tensor has (inputs, Reshape "
                             "and every layer keep at least one: (N, ...)): select from a tensor with more "
                             f"dimensions, or keep the position as (N, 1) with a Split of dim {axis + 1}",
                             field="dim")
        return Inference(x.with_dims(dims))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``x.select(1, 0)``: the same as ``x[:, 0]``."""
        return ctx.call_method("select", (args[0], p.dim, p.index))


@register
class ChannelShuffle(LayerType):
    """Interleaves the channels of its groups."""

    type_id = "channel_shuffle"
    imports = (FromModule(("nn.ChannelShuffle",), lambda m: ({"groups": m.groups}, {})),
               FromCall(_shuffle_call, ("F.channel_shuffle",)),
               FromCall(_shuffle_pattern, ("torch.reshape", "torch.flatten"), ("view", "reshape", "flatten"),
                        priority=1))
    title = "ChannelShuffle"
    category = "Core"
    doc = ("Interleaves the channels of its groups (the first channel of each group, then the second, ...), so "
           "that the next grouped layer mixes information across groups, as in ShuffleNet.")
    id_prefix = "shuffle"
    key_params = ("groups",)
    params = (int_param("groups", 2, "Number of channel groups; must divide the channel count.", min=1,
                        max=1_000_000),)
    examples = (Example(((8, 3, 3),)), Example(((6, 5),), {"groups": 3}))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_rank(x, (3, 4, 5), "(N, C, L) or (N, C, H, W)", "insert a Reshape to (C, H, W) before it")
        if x.dims[0] % p.groups:
            raise ShapeError(f"receives {x.dims[0]} channels in {x}, which groups={p.groups} does not divide: use "
                             f"a divisor of {x.dims[0]}", field="groups")
        return Inference(x)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.ChannelShuffle", p.groups)

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """``F.channel_shuffle(x, groups)``."""
        import torch.nn.functional as F

        return ctx.call_function(F.channel_shuffle, (args[0], p.groups))
