"""Constructor calls as data: what a layer builds, in a form both torch and code export read.

A layer declaration describes its module as a :class:`ModuleCall`, e.g.
``ModuleCall("nn.Conv2d", (1, 16, (3, 3)), (("stride", (1, 1)),))``. The compiler
instantiates it (:meth:`ModuleCall.instantiate`); the Python source exporter prints it
(:meth:`ModuleCall.source`: ``nn.Conv2d(1, 16, (3, 3), stride=(1, 1))``). One description
serves both, so exported source always builds the module the app trains.

Arguments are plain literals only (``int``, ``float``, ``bool``, ``str``, ``None``, tuples
of them) or nested calls; :meth:`ModuleCall.source` refuses anything else, so no value
from a project file can become code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn



@dataclass(frozen=True)
class ModuleCall:
    """One module constructor call.

    Args:
        target: ``"nn.<Class>"`` for a ``torch.nn`` class, or the name of a class of
            :mod:`engine.layers.modules` (:data:`~engine.layers.modules.CUSTOM_MODULES`).
        args: Positional arguments: literals or nested calls.
        kwargs: Keyword arguments as ``(name, value)`` pairs, in the order they are printed.
    """

    target: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(target: str, *args: Any, **kwargs: Any) -> "ModuleCall":
        """``ModuleCall.of("nn.Linear", 20, 64, bias=True)``: the call written as a call."""
        return ModuleCall(target, tuple(args), tuple(kwargs.items()))

    def module_class(self) -> type:
        """The class the call names.

        Raises:
            ValueError: The target is neither ``nn.<Class>`` nor a known custom module.
        """
        from torch import nn

        from engine.layers import modules

        if self.target.startswith("nn.") and isinstance(getattr(nn, self.target[3:], None), type):
            return getattr(nn, self.target[3:])  # type: ignore[no-any-return]
        if self.target in modules.CUSTOM_MODULES:
            return getattr(modules, self.target)  # type: ignore[no-any-return]
        raise ValueError(f"unknown module class {self.target!r}")

    def instantiate(self) -> "nn.Module":
        """Build the module (nested calls first)."""
        args = [_build(a) for a in self.args]
        kwargs = {k: _build(v) for k, v in self.kwargs}
        return self.module_class()(*args, **kwargs)  # type: ignore[no-any-return]

    def source(self, concise: bool = True) -> str:
        """The call as Python source, e.g. ``nn.Conv2d(1, 16, 3, padding=1)``.

        Args:
            concise: Write it as a person would: leave out keyword arguments equal to the
                class's defaults, and write ``(3, 3)`` as ``3`` for window sizes.

        Raises:
            ValueError: An argument is not a plain literal or call (never printed).
        """
        cls = self.module_class()
        defaults = _defaults(cls) if concise else {}
        names = list(defaults)
        parts = []
        for index, value in enumerate(self.args):
            name = names[index] if index < len(names) else ""
            parts.append(literal(_shorter(name, value) if concise else value))
        for name, value in self.kwargs:
            if not name.isidentifier():
                raise ValueError(f"bad keyword {name!r}")
            if concise:
                value = _shorter(name, value)
                if name in defaults and _same(value, defaults[name]):
                    continue
            parts.append(f"{name}={literal(value)}")
        return f"{self.target}({', '.join(parts)})"

    def custom_classes(self) -> list[str]:
        """Names of the custom module classes this call (and its nested calls) use."""
        from engine.layers.modules import CUSTOM_MODULES

        found = [self.target] if self.target in CUSTOM_MODULES else []
        for value in (*self.args, *(v for _, v in self.kwargs)):
            if isinstance(value, ModuleCall):
                found += [c for c in value.custom_classes() if c not in found]
        return found


#: Arguments for which PyTorch reads one int as "the same on every axis".
_WINDOW_ARGS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding"})
_NO_DEFAULT = object()


def _defaults(cls: type) -> dict[str, Any]:
    """Parameter name -> default (``_NO_DEFAULT`` when required) of ``cls.__init__``, in order."""
    import inspect

    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return {}
    return {p.name: (_NO_DEFAULT if p.default is inspect.Parameter.empty else p.default) for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _shorter(name: str, value: Any) -> Any:
    """``(3, 3)`` as ``3`` for window arguments, which PyTorch expands the same way."""
    if name in _WINDOW_ARGS and isinstance(value, tuple) and value and len(set(value)) == 1 \
            and isinstance(value[0], int):
        return value[0]
    return value


def _same(value: Any, default: Any) -> bool:
    if default is _NO_DEFAULT or type(value) is not type(default) and not (
            isinstance(value, (int, float)) and isinstance(default, (int, float))
            and not isinstance(value, bool) and not isinstance(default, bool)):
        return False
    return bool(value == default)


def _build(value: Any) -> Any:
    return value.instantiate() if isinstance(value, ModuleCall) else value


class SourceName(str):
    """A name in generated source, written as itself by :func:`literal` (the exporter's own
    identifiers, e.g. an argument of a block class's ``__init__``; never a project value)."""


def literal(value: Any) -> str:
    """Python source for a plain value: ``None``, bool, int, finite float, str, tuple, list or call
    (or a :class:`SourceName`, written as the identifier it is).

    Raises:
        ValueError: Any other kind of value, or a float that is not finite.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(float(value))
    if isinstance(value, SourceName):
        if not value.isidentifier():
            raise ValueError(f"not an identifier: {str(value)!r}")
        return str(value)
    if isinstance(value, str):
        return repr(str(value))  # repr escapes quotes, backslashes and control characters
    if isinstance(value, ModuleCall):
        return value.source()
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(v) for v in value)}]"
    raise ValueError(f"cannot write a {type(value).__name__} as source")
