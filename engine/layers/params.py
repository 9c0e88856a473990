"""Parameter declarations for layer types.

A :class:`Param` describes one editable value of a layer: its kind, default, bounds or
choices, and a one-line doc. The same declaration drives the inspector's editors, the
file loader (which refuses values of the wrong kind), shape diagnostics (which report
values out of bounds) and code generation (which only ever sees validated values).

Two kinds of problem are kept apart on purpose:

* :meth:`Param.coerce` refuses a value of the wrong *kind* (a string where an integer
  belongs). Such a value can only come from a corrupt file or a programming error.
* :meth:`Param.check` reports a value of the right kind that is out of bounds (a kernel
  size of 0). Such a value is a normal editing state: it is saved, reopened and reported
  as a diagnostic on the node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

ParamKind = Literal["int", "float", "bool", "choice", "int_tuple", "int_list", "name", "name_list"]

#: What a ``name`` parameter (and each element of a ``name_list``) must look like: a Python
#: identifier of at most 64 characters, as node ids are (a block's definition and port names).
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

#: Integers of larger magnitude are never used in shape arithmetic: a bound check names them first.
#: They are kept exactly as the file holds them (and saved back unchanged).
INT_LIMIT = 2**62
#: Digits of an integer shown in full in a message; longer ones are abbreviated.
SHOWN_DIGITS = 24


class ParamKindError(ValueError):
    """A parameter value is of the wrong kind for its declaration."""


@dataclass(frozen=True)
class Param:
    """Declaration of one layer parameter.

    Args:
        name: Identifier used in files, the inspector and generated code.
        kind: Value kind; see :data:`ParamKind`.
        default: Default value (must pass :meth:`check`).
        doc: One-line description shown as tooltip and in the layer reference.
        min: Inclusive lower bound for numbers and for each element of tuples and lists.
        max: Inclusive upper bound, as ``min``.
        choices: Allowed values of a ``choice`` parameter.
        length: Exact length of an ``int_tuple``.
        min_length: Shortest allowed ``int_list``.
        max_length: Longest allowed ``int_list``.
        allow_minus_one: ``int_list`` elements may be -1 (an inferred size, as in reshape).
    """

    name: str
    kind: ParamKind
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = field(default=())
    length: int | None = None
    min_length: int = 1
    max_length: int = 8
    allow_minus_one: bool = False

    # ------------------------------------------------------------------ kind
    def coerce(self, value: Any) -> Any:
        """Return ``value`` normalized to this parameter's kind.

        Lists become tuples, integral floats stay floats for ``float`` parameters.

        Raises:
            ParamKindError: ``value`` is not of this parameter's kind.
        """
        kind = self.kind
        if kind == "int":
            if not _is_int(value):
                raise ParamKindError(f"expected an integer, got {_describe(value)}")
            return value
        if kind == "float":
            if _is_int(value):
                # beyond a float's range the exact integer is kept: a bound check names it as written
                return float(value) if abs(value) <= INT_LIMIT else value
            if not isinstance(value, float) or not math.isfinite(value):
                raise ParamKindError(f"expected a finite number, got {_describe(value)}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamKindError(f"expected true or false, got {_describe(value)}")
            return value
        if kind == "choice":
            if not isinstance(value, str):
                raise ParamKindError(f"expected one of {list(self.choices)}, got {_describe(value)}")
            return value
        if kind == "name":
            if not isinstance(value, str):
                raise ParamKindError(f"expected a name, got {_describe(value)}")
            return value
        if kind == "name_list":
            if not isinstance(value, (list, tuple)) or len(value) > 64 or not all(isinstance(v, str) for v in value):
                raise ParamKindError(f"expected a list of names, got {_describe(value)}")
            return tuple(value)
        # int_tuple / int_list
        if _is_int(value) and kind == "int_tuple":
            value = [value] * (self.length or 1)
        if not isinstance(value, (list, tuple)) or len(value) > 64:
            raise ParamKindError(f"expected a list of integers, got {_describe(value)}")
        if not all(_is_int(v) for v in value):
            raise ParamKindError(f"expected a list of integers, got {_describe(value)}")
        return tuple(value)

    # ---------------------------------------------------------------- bounds
    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not allowed, or ``None`` when it is valid."""
        try:
            value = self.coerce(value)
        except ParamKindError as exc:
            return str(exc)
        if self.kind in ("int", "float"):
            return self._check_bounds(value)
        if self.kind == "choice" and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}; got {value!r}"
        if self.kind in ("name", "name_list"):
            return self._check_names((value,) if self.kind == "name" else value)
        if self.kind == "int_tuple":
            if self.length is not None and len(value) != self.length:
                return f"needs exactly {self.length} values, got {len(value)}"
            return self._check_elements(value)
        if self.kind == "int_list":
            if not self.min_length <= len(value) <= self.max_length:
                return f"needs {self.min_length} to {self.max_length} values, got {len(value)}"
            if self.allow_minus_one and list(value).count(-1) > 1:
                return "at most one value may be -1"
            return self._check_elements(value)
        return None

    def _check_names(self, names: tuple[str, ...]) -> str | None:
        if not self.min_length <= len(names) <= self.max_length:
            return f"needs {self.min_length} to {self.max_length} names, got {len(names)}"
        bad = next((n for n in names if not NAME_PATTERN.match(n)), None)
        if bad is not None:
            return f"{bad[:40]!r} is not a name (letters, digits and _, not starting with a digit, at most 64)"
        if len(set(names)) != len(names):
            return f"names must differ, got {', '.join(names)}"
        return None

    def _check_bounds(self, value: float) -> str | None:
        lo, hi = self.min, self.max
        if _is_int(value) and abs(value) > INT_LIMIT and (lo is None or hi is None):
            return f"is too large, got {_fmt(value)}"
        if lo is not None and hi is not None and not lo <= value <= hi:
            return f"must be between {_fmt(lo)} and {_fmt(hi)}, got {_fmt(value)}"
        if lo is not None and value < lo:
            return f"must be at least {_fmt(lo)}, got {_fmt(value)}"
        if hi is not None and value > hi:
            return f"must be at most {_fmt(hi)}, got {_fmt(value)}"
        return None

    def _check_elements(self, values: tuple[int, ...]) -> str | None:
        for v in values:
            if self.allow_minus_one and v == -1:
                continue
            problem = self._check_bounds(v)
            if problem:
                return "each value " + problem
        return None

    def to_json(self, value: Any) -> Any:
        """Return ``value`` as plain JSON data (tuples become lists)."""
        return list(value) if isinstance(value, tuple) else value


# ------------------------------------------------------------------ factories
def int_param(name: str, default: int, doc: str, min: int | None = None, max: int | None = None) -> Param:
    """Declare an integer parameter."""
    return Param(name, "int", default, doc, min=min, max=max)


def float_param(name: str, default: float, doc: str, min: float | None = None, max: float | None = None) -> Param:
    """Declare a floating-point parameter."""
    return Param(name, "float", float(default), doc, min=min, max=max)


def bool_param(name: str, default: bool, doc: str) -> Param:
    """Declare a boolean parameter."""
    return Param(name, "bool", default, doc)


def choice_param(name: str, default: str, choices: tuple[str, ...], doc: str) -> Param:
    """Declare a parameter with a fixed set of string choices."""
    return Param(name, "choice", default, doc, choices=choices)


def int_tuple_param(name: str, default: tuple[int, ...], doc: str, min: int | None = None,
                    max: int | None = None) -> Param:
    """Declare a fixed-length integer tuple (for example a 2-D kernel size)."""
    return Param(name, "int_tuple", tuple(default), doc, min=min, max=max, length=len(default))


def int_list_param(name: str, default: tuple[int, ...], doc: str, min: int | None = None,
                   max: int | None = None, min_length: int = 1, max_length: int = 8,
                   allow_minus_one: bool = False) -> Param:
    """Declare a variable-length integer list (for example a tensor shape)."""
    return Param(name, "int_list", tuple(default), doc, min=min, max=max, min_length=min_length,
                 max_length=max_length, allow_minus_one=allow_minus_one)


def name_param(name: str, default: str, doc: str) -> Param:
    """Declare a name (a Python identifier), e.g. the block definition an instance uses."""
    return Param(name, "name", default, doc)


def name_list_param(name: str, default: tuple[str, ...], doc: str, min_length: int = 1,
                    max_length: int = 64) -> Param:
    """Declare a list of distinct names (Python identifiers), e.g. a block instance's ports."""
    return Param(name, "name_list", tuple(default), doc, min_length=min_length, max_length=max_length)


# ------------------------------------------------------------------- helpers
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fmt(value: float) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return _int_text(value) if _is_int(value) else str(value)


def _int_text(value: int) -> str:
    """The integer as written, abbreviated past :data:`SHOWN_DIGITS` digits."""
    text = str(value)
    digits = len(text.lstrip("-"))
    return text if digits <= SHOWN_DIGITS else f"{text[:SHOWN_DIGITS // 2]}...({digits} digits)"


def _describe(value: Any) -> str:
    if _is_int(value):
        return f"int {_int_text(value)}"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
