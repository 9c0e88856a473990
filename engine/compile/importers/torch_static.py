"""What a traced model computes from shapes and parameters rather than data, folded before mapping.

torch.fx records ``n, c, h, w = x.shape``, ``c // groups``, ``torch._assert(h == 224, ...)``,
``self.pos_embedding`` and ``self.class_token.expand(n, -1, -1)`` as graph nodes. Run once on a
sample batch (torch.fx's ShapeProp), each such node has a value that does not depend on the
data: a size (an int), the batch size (:data:`~engine.layers.recognize.BATCH`, kept symbolic:
the canvas graph has no fixed batch), a parameter or buffer (the tensor), a parameter expanded
over the batch (:class:`~engine.layers.recognize.Expanded`), an assert that holds (nothing).
:class:`StaticValues` finds them, so the mapping sees ``x.view(BATCH, 2, 58, 28, 28)`` where
the model wrote ``x.view(batchsize, groups, channels_per_group, height, width)``.

Tensors computed from sizes and constants alone fold too: an attention mask built in ``forward``
(``nn.Transformer.generate_square_subsequent_mask(tgt.size(1), device=tgt.device)`` traces as
``torch.full`` and ``torch.triu``; ``self.mask[:T, :T]`` of a buffer) reaches the attention's call
recognizer as the tensor it is, which can then tell whether it is exactly the causal mask.

Arithmetic on the batch size itself (``n * 2``) is not folded; nor is anything computed from a
parameter (``self.table[self.index]``): folding it would turn a learned tensor into a constant;
nor random numbers or in-place changes.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import torch
from torch import fx

from engine.layers.recognize import BATCH, Expanded

_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv, operator.mod,
               operator.pow, operator.neg, operator.eq, operator.ne, operator.lt, operator.le, operator.gt,
               operator.ge, operator.and_, operator.or_, operator.not_}


class _NotStatic(Exception):
    pass


class StaticValues:
    """The data-independent value of each node of a traced module that has one.

    Args:
        gm: The traced module.
        sample: One batch of inputs (the batch size must not be 1, so that it cannot be confused
            with a size of 1).
    """

    def __init__(self, gm: fx.GraphModule, sample: Sequence[torch.Tensor]) -> None:
        self.gm = gm
        self.values: dict[fx.Node, Any] = {}
        _propagate_shapes(gm, sample)
        for node in gm.graph.nodes:
            try:
                self.values[node] = self._value(node)
            except _NotStatic:
                continue

    def __contains__(self, node: object) -> bool:
        return node in self.values

    def substitute(self, value: Any) -> Any:
        """``value`` (a call argument) with every static node replaced by its value."""
        if isinstance(value, fx.Node):
            return self.values.get(value, value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.substitute(v) for v in value)
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, slice):
            return slice(self.substitute(value.start), self.substitute(value.stop), self.substitute(value.step))
        return value

    def shape(self, node: fx.Node) -> tuple[int, ...] | None:
        """The sample shape of a traced tensor (its first size is the sample's batch)."""
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    # ------------------------------------------------------------------ rules
    def _known(self, value: Any) -> Any:
        if isinstance(value, fx.Node):
            if value not in self.values:
                raise _NotStatic
            return self.values[value]
        if isinstance(value, (list, tuple)):
            return type(value)(self._known(v) for v in value)
        if isinstance(value, slice):
            return slice(self._known(value.start), self._known(value.stop), self._known(value.step))
        return value

    def _sizes(self, node: Any) -> tuple[Any, ...]:
        """The sizes of a traced tensor, the batch first as BATCH."""
        if not isinstance(node, fx.Node) or node in self.values:
            raise _NotStatic
        shape = self.shape(node)
        if shape is None:
            raise _NotStatic
        return (BATCH, *shape[1:])

    def _value(self, node: fx.Node) -> Any:
        if node.op == "get_attr":
            return _attribute(self.gm, str(node.target))
        if node.op == "call_method" and node.target == "size":
            sizes = self._sizes(node.args[0])
            dim = self._known(node.args[1]) if len(node.args) > 1 else node.kwargs.get("dim")
            return sizes if dim is None else sizes[dim]
        if node.op == "call_method" and node.target == "dim":
            return len(self._sizes(node.args[0]))
        if node.op == "call_function" and node.target is getattr and node.args[1] in ("shape", "ndim"):
            sizes = self._sizes(node.args[0])
            return sizes if node.args[1] == "shape" else len(sizes)
        if node.op == "call_function" and node.target is getattr and node.args[1] in ("device", "dtype") \
                and isinstance(node.args[0], fx.Node) and node.args[0] not in self.values:
            meta = node.args[0].meta.get("tensor_meta")
            if meta is None or not hasattr(meta, "dtype"):
                raise _NotStatic
            return meta.dtype if node.args[1] == "dtype" else torch.device("cpu")  # the sample's
        if node.op == "call_function" and node.target is operator.getitem:
            base, index = self._known(node.args[0]), self._known(node.args[1])
            if isinstance(base, tuple) and not isinstance(base, torch.Tensor):
                return base[index]
            return self._constant(node)
        if node.op == "call_function" and node.target in _ARITHMETIC:
            args = self._known(list(node.args))
            if any(a is BATCH for a in args):
                raise _NotStatic
            if any(isinstance(a, torch.Tensor) for a in args):
                return self._constant(node)
            return node.target(*args)
        if node.op == "call_function" and node.target is torch._assert:
            condition = self._known(node.args[0])
            if condition is BATCH or isinstance(condition, torch.Tensor):
                raise _NotStatic
            return None  # it held on the sample: a check of sizes the canvas graph fixes anyway
        if node.op == "call_method" and node.target == "expand":
            base = self._known(node.args[0])
            sizes = self._known(list(node.args[1:]))
            if isinstance(base, torch.Tensor) and sizes and sizes[0] is BATCH and all(s == -1 for s in sizes[1:]):
                return Expanded(base)
        if node.op in ("call_function", "call_method"):
            return self._constant(node)
        raise _NotStatic

    def _constant(self, node: fx.Node) -> torch.Tensor:
        """The tensor a call computes from sizes, constants and buffers alone (an attention mask).

        Raises:
            _NotStatic: An argument is traced, the batch size, or a parameter; the call is random,
                in place, or its result is no tensor.
        """
        name = getattr(node.target, "__name__", str(node.target))
        in_place = node.target in (operator.setitem, operator.delitem) \
            or name.endswith("_") and not name.startswith("__") and node.target not in _ARITHMETIC
        if in_place or any(word in name for word in _RANDOM):
            raise _NotStatic
        args, kwargs = self._known(list(node.args)), self._known_dict(dict(node.kwargs))
        if not any(isinstance(v, torch.Tensor) for v in _flat([args, kwargs])) and name not in _MAKERS:
            raise _NotStatic  # not about tensors at all (a function of the user's, say)
        if any(v is BATCH or isinstance(v, (Expanded, torch.nn.Parameter)) for v in _flat([args, kwargs])):
            raise _NotStatic
        try:
            with torch.no_grad():
                if node.op == "call_method":
                    value = getattr(args[0], str(node.target))(*args[1:], **kwargs)
                else:
                    value = node.target(*args, **kwargs)  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - then it is no constant we can fold
            raise _NotStatic from None
        if not isinstance(value, torch.Tensor) or isinstance(value, torch.nn.Parameter):
            raise _NotStatic
        return value

    def _known_dict(self, value: dict[str, Any]) -> dict[str, Any]:
        return {k: self._known(v) for k, v in value.items()}


#: Functions that make a tensor from sizes alone (``torch.full((T, T), -inf)``), which fold.
_MAKERS = {"full", "ones", "zeros", "eye", "arange"}
#: Calls never folded: their value changes from run to run.
_RANDOM = ("rand", "normal", "bernoulli", "multinomial", "poisson", "dropout", "empty", "uniform")


def _propagate_shapes(gm: fx.GraphModule, sample: Sequence[torch.Tensor]) -> None:
    """Record each node's tensor shape (``node.meta["tensor_meta"]``) by running ``sample`` through.

    A real forward, not fake tensors: FakeTensorMode pulls in torch._dynamo, about 0.9 s of
    imports in a fresh process, more than ResNet-50's forward at 224 x 224 costs (the CLI's
    import-torch of ResNet-50 takes 2.2 s this way, 3.0 s with fake tensors).
    """
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad():
        ShapeProp(gm).propagate(*sample)


def _flat(value: Any) -> list[Any]:
    """The leaves of nested lists, tuples and dicts."""
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _flat(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flat(v)]
    return [value]


def _attribute(gm: fx.GraphModule, target: str) -> Any:
    value: Any = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value
