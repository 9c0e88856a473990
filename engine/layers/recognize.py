"""How a layer is recognized in a foreign model: a torch module, a traced call, an ONNX operator.

Each layer declaration lists what it imports from in :attr:`LayerType.imports
<engine.layers.base.LayerType.imports>`; the importers build their lookup tables from the
registry (:func:`recognizers`), so adding a layer, with how it is recognized, stays one class
in one file. A recognizer reads one foreign operation and returns the layer's parameters (and
its tensors), or ``None`` when the operation is not exactly what the layer computes; then the
next recognizer for the same operation is asked, and when none fits the importer lists the
operation as unmapped.

Recognizers are plain functions over the foreign objects (torch modules, torch.fx nodes, ONNX
nodes with the importer's context); this module never imports torch at import time. Before a
call recognizer sees its arguments, the importer replaces what the model computes from shapes
and parameters rather than data: sizes become ints (the batch size :data:`BATCH`), a module's
parameters and buffers (``self.pos_embedding``) become the tensors themselves, a parameter
expanded over the batch becomes :class:`Expanded`; traced tensors stay ``torch.fx.Node`` s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

#: ``(params, tensors)``: parameter values, and the module's tensors keyed as in its state dict.
Imported = tuple[dict[str, Any], dict[str, Any]]
#: ``(params, sources)``: parameter values, and the traced values feeding the input ports in order;
#: or ``(params, sources, tensors)`` when the call reads learned tensors (keyed as the layer's
#: module names them), e.g. ``x + self.pos_embedding``.
Called = tuple[dict[str, Any], list[Any]] | tuple[dict[str, Any], list[Any], dict[str, Any]]
#: What a module call feeds its layer (:attr:`FromModule.call`): the traced values feeding the input
#: ports in order, or ``(sources, params)`` with parameters the call's options set.
ModuleSources = list[Any] | tuple[list[Any], dict[str, Any]]


class _Batch:
    """The batch size in a traced model's size arithmetic: never folded to the sample's size."""

    def __repr__(self) -> str:
        return "batch"


#: What ``x.size(0)`` / ``x.shape[0]`` is in a call's arguments once the importer folded the
#: traced size arithmetic (other sizes arrive as plain ints, learned tensors as tensors).
BATCH = _Batch()


@dataclass(frozen=True)
class Expanded:
    """A learned tensor expanded over the batch, ``self.class_token.expand(n, -1, -1)``: how traced
    models prepend a class token before a ``torch.cat``.

    Args:
        tensor: The learned tensor (a ``torch.nn.Parameter``), e.g. of shape (1, 1, D).
    """

    tensor: Any


@dataclass(frozen=True)
class FromModule:
    """The layer imports these ``torch.nn`` modules (kept whole while tracing).

    Args:
        classes: ``"nn.Conv2d"`` for a ``torch.nn`` class (exactly that class, not a
            subclass), or a class name: the app's own modules (:mod:`engine.layers.modules`, as
            exported ``model.py`` files define them) and any module class of that name (a
            ``StochasticDepth`` of the user's), which the tracer then keeps whole.
        read: Module -> ``(params, tensors)``, or ``None`` when its options are not expressible.
        call: How the module is called: ``(args, kwargs)`` -> the traced tensors feeding the
            layer's input ports in order; or ``(sources, params)`` when the call's options set
            parameters of the layer, which override what ``read`` gave (``tgt_mask=`` the causal
            mask: ``{"causal": True}``); or ``None`` when the call does not fit this layer, or a
            sentence saying why not (listed in the import error when no recognizer fits).
            Without it: exactly one tensor and nothing else.
        tuple_output: The module returns a tuple of which this element is the layer's output
            (``out, _ = self.lstm(x)``: element 0); ``None``: it returns the tensor itself.

        priority: Recognizers of the same class are asked highest first, then in registry order.

    Several recognizers may read the same class (``nn.MultiheadAttention``: attention with
    query, key, value and a key-padding mask; after it, self-attention through the causal
    mask); the first whose ``read`` and ``call`` both fit is used.
    """

    classes: tuple[str, ...]
    read: Callable[[Any], Imported | None]
    call: Callable[[list[Any], dict[str, Any]], ModuleSources | str | None] | None = None
    tuple_output: int | None = None
    priority: int = 0


@dataclass(frozen=True)
class FromCall:
    """The layer imports these function or tensor-method calls of a traced model.

    Args:
        functions: Dotted names: ``"F.relu"`` (torch.nn.functional), ``"torch.flatten"``,
            ``"operator.add"``; ``"*.stochastic_depth"`` matches any function of that name
            (one the model's code wrapped with ``torch.fx.wrap``, so tracing keeps it whole).
        methods: Tensor method names: ``"view"``, ``"relu"``.
        read: ``(args, kwargs)`` of the call -> ``(params, sources)``, or ``None``. A source
            need not be an argument: a recognizer of a pattern (``view``, ``transpose``, ``view``:
            a channel shuffle) reads back through its argument's traced node to the tensor the
            pattern started from; the calls in between become part of this layer (they must
            have no other users).
        tuple_output: The call returns a tuple of which this element is the layer's output
            (``x.max(1)``: ``(values, indices)``, element 0, read as ``[0]`` or ``.values``);
            ``None``: it returns the tensor itself.
        priority: Recognizers of the same call are asked highest first, then in registry
            order: a pattern of several calls goes before the recognizers of its last call alone.
    """

    read: Callable[[list[Any], dict[str, Any]], Called | None]
    functions: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    tuple_output: int | None = None
    priority: int = 0


@dataclass(frozen=True)
class FromOnnx:
    """The layer imports these ONNX operators.

    Args:
        ops: Operator types (``"Conv"``, ``"Relu"``).
        read: ``(context, node, attributes)`` -> ``None`` when it added the layer through the
            importer's context (``context.add``), else the reason it cannot (listed in the error).
    """

    ops: tuple[str, ...]
    read: Callable[[Any, Any, dict[str, Any]], str | None]


Recognizer = FromModule | FromCall | FromOnnx


def recognizers(kind: type) -> Iterator[tuple[str, Any]]:
    """``(type_id, recognizer)`` of every registered layer's recognizers of ``kind``, in registry order."""
    from engine.layers.base import all_layers

    for layer in all_layers():
        for recognizer in layer.imports:
            if isinstance(recognizer, kind):
                yield layer.type_id, recognizer


# ----------------------------------------------------------------- helpers
def pair(value: Any) -> list[int]:
    """``3`` -> ``[3, 3]``; ``(3, 2)`` -> ``[3, 2]``."""
    return [value, value] if isinstance(value, int) else list(value)


def constant_operand(ctx: Any, node: Any) -> tuple[str, Any] | None:
    """``(computed input, constant)`` of an ONNX ``Mul`` / ``Add`` of a computed tensor and a constant."""
    left, right = node.input
    if (left in ctx.consts) == (right in ctx.consts):
        return None
    return (right, ctx.consts[left]) if left in ctx.consts else (left, ctx.consts[right])


def module_state(module: Any, prefix: str = "") -> dict[str, Any]:
    """A module's state dict, its keys prefixed (``rnn.`` for a wrapped recurrent layer)."""
    return {prefix + key: value for key, value in module.state_dict().items()}


def symmetric_pads(pads: list[int], ndim: int) -> list[int] | None:
    """ONNX ``pads`` (begins then ends) as one value per axis, or ``None`` when asymmetric."""
    pads = list(pads) or [0] * (2 * ndim)
    return pads[:ndim] if pads[:ndim] == pads[ndim:] else None


def one_or_list(values: list[int]) -> Any:
    """A 1-D size as its one value, a 2-D one as a list."""
    return values[0] if len(values) == 1 else list(values)


def int_args(values: Any) -> list[int] | None:
    """Integer call arguments (``f(1, 2)`` or ``f((1, 2))``) as a list, or ``None``."""
    values = list(values[0]) if len(values) == 1 and isinstance(values[0], (tuple, list)) else list(values)
    return values if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else None


def is_traced(value: Any) -> bool:
    """Whether ``value`` is a traced tensor (a ``torch.fx.Node``), not a constant."""
    from torch import fx

    return isinstance(value, fx.Node)


def traced_rank(value: Any) -> int | None:
    """The rank (batch included) of a traced tensor, from the importer's run on a sample; ``None`` if unknown."""
    shape = traced_shape(value)
    return len(shape) if shape is not None else None


def traced_shape(value: Any) -> tuple[int, ...] | None:
    """The shape (batch first, the sample's batch size) of a traced tensor, from the importer's run on
    a sample; ``None`` if unknown."""
    meta = value.meta.get("tensor_meta") if is_traced(value) else None
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def traced_dtype(value: Any) -> Any:
    """The ``torch.dtype`` of a traced tensor from the importer's run on a sample; ``None`` if unknown."""
    meta = value.meta.get("tensor_meta") if is_traced(value) else None
    return getattr(meta, "dtype", None)


def is_causal_mask(mask: Any, steps: int | None) -> bool:
    """Whether ``mask`` is exactly the causal attention mask of ``steps`` positions: a float tensor
    with ``-inf`` above the diagonal and 0 elsewhere (``nn.Transformer.generate_square_subsequent_mask``),
    or a boolean one with ``True`` (hidden) above the diagonal and ``False`` elsewhere."""
    import torch

    if not isinstance(mask, torch.Tensor) or steps is None or tuple(mask.shape) != (steps, steps):
        return False
    above = torch.ones(steps, steps, dtype=torch.bool).triu(1)
    if mask.dtype == torch.bool:
        return bool(torch.equal(mask, above))
    if not mask.is_floating_point():
        return False
    return bool(torch.isneginf(mask[above]).all()) and bool((mask[~above] == 0).all())


def is_batch_size(value: Any) -> bool:
    """``-1``, :data:`BATCH`, ``x.size(0)`` or ``x.shape[0]``: the batch dimension of a traced view."""
    import operator

    if value is BATCH or value == -1:
        return True
    if not is_traced(value):
        return False
    if value.op == "call_method" and value.target == "size":
        return len(value.args) > 1 and value.args[1] == 0
    if value.op == "call_function" and value.target is operator.getitem:
        base = value.args[0]
        return value.args[1] == 0 and is_traced(base) and base.op == "call_function" \
            and base.target is getattr and base.args[1] == "shape"
    return False


def call_options(args: list[Any], kwargs: dict[str, Any], names: tuple[str, ...],
                 defaults: dict[str, Any]) -> dict[str, Any] | None:
    """The options of a call ``f(x, a, b, ..., k=v)`` by name, defaults filled in; ``None`` when a
    positional argument is beyond ``names`` or a keyword is unknown."""
    if len(args) - 1 > len(names) or any(key not in names for key in kwargs):
        return None
    values = dict(defaults)
    values.update(zip(names, args[1:]))
    values.update(kwargs)
    return values
