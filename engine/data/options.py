"""Declared options of dataset sources and their validation.

Each dataset source declares its options as :class:`Option` values. The same declarations
document the source (data panel, CLI) and validate a project's ``"dataset"`` section:
every problem is a :class:`~engine.data.base.DataError` that names the field as
``dataset.<field>: <problem>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.data.base import DataError

#: Fields every source accepts: ``name`` and ``augment`` (training augmentation, validated by
#: :mod:`engine.training.augment`, not by the source).
SHARED_FIELDS = ("name", "augment")

#: How an option's value is checked.
OptionKind = Literal["int", "float", "choice", "text", "file", "folder", "size", "int_list"]


@dataclass(frozen=True)
class Option:
    """One option of a dataset source.

    Args:
        name: Field name in the project's ``"dataset"`` section.
        kind: ``int``, ``float``, ``choice``, ``text``, ``file`` (an existing file),
            ``folder`` (an existing folder), ``size`` (``[height, width]``) or ``int_list``
            (distinct whole numbers: a JSON list, or text such as ``"5, 6, 7"``).
        default: Value when the field is absent; ``None`` means "not set" (or, with
            ``required``, that the field must be given).
        help: One line for the data panel and the CLI.
        minimum: Smallest allowed value (``int``, ``float``, each number of ``size`` or ``int_list``).
        maximum: Largest allowed value.
        choices: Allowed values of a ``choice``.
        required: Whether the field must be given.
    """

    name: str
    kind: OptionKind
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False

    def describe(self) -> str:
        """The option as one line, e.g. ``samples (int, default 1000): number of points``."""
        if self.required:
            detail = f"{self.kind}, required"
        elif self.default is None:
            detail = f"{self.kind}, optional"
        else:
            detail = f"{self.kind}, default {self.default!r}"
        if self.choices:
            detail += "; one of " + ", ".join(repr(c) for c in self.choices)
        return f"{self.name} ({detail}): {self.help}"


def _fail(field: str, problem: str) -> DataError:
    return DataError(f"dataset.{field}: {problem}")


def _check_bounds(option: Option, value: float, field: str) -> None:
    if option.minimum is not None and value < option.minimum:
        raise _fail(field, f"must be at least {option.minimum:g}, got {value!r}")
    if option.maximum is not None and value > option.maximum:
        raise _fail(field, f"must be at most {option.maximum:g}, got {value!r}")


def _whole_number(option: Option, value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, f"must be a whole number, got {value!r}")
    _check_bounds(option, value, field)
    return int(value)


def _distinct_whole_numbers(option: Option, value: Any, field: str) -> tuple[int, ...]:
    """An ``int_list``: a list of whole numbers, or the same as text (``"5, 6, 7"``, ``"[5 6 7]"``)."""
    if isinstance(value, str):
        words = value.strip().strip("[]()").replace(",", " ").split()
        if not all(w.lstrip("-").isdigit() for w in words):
            raise _fail(field, f"must be whole numbers separated by commas, got {value!r}")
        value = [int(w) for w in words]
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(field, f"must be a non-empty list of whole numbers, got {value!r}")
    numbers = tuple(_whole_number(option, v, field) for v in value)
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise _fail(field, f"lists {', '.join(map(str, repeated))} more than once")
    return numbers


def _resolve(value: Any, field: str, base_dir: Path | None) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, f"must be a path as text, got {value!r}")
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return path


def check_value(option: Option, value: Any, base_dir: Path | None) -> Any:
    """Validate one field's value against its declaration.

    Args:
        option: The declaration.
        value: The value from the project file.
        base_dir: Folder that relative paths are resolved against (the project file's);
            the working directory when ``None``.

    Returns:
        The value to use: ``int``, ``float``, ``str``, :class:`~pathlib.Path`,
        ``tuple[int, int]`` (``size``) or a tuple of ints (``int_list``).

    Raises:
        DataError: The value has the wrong kind, is out of bounds, or names a missing path.
    """
    field = option.name
    if option.kind == "int":
        return _whole_number(option, value, field)
    if option.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(field, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise _fail(field, f"must be a finite number, got {value!r}")
        _check_bounds(option, float(value), field)
        return float(value)
    if option.kind == "choice":
        if value not in option.choices:
            raise _fail(field, f"must be one of {', '.join(repr(c) for c in option.choices)}, got {value!r}")
        return value
    if option.kind == "text":
        if not isinstance(value, str) or not value:
            raise _fail(field, f"must be non-empty text, got {value!r}")
        return value
    if option.kind == "size":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise _fail(field, f"must be two whole numbers [height, width], got {value!r}")
        return tuple(_whole_number(option, v, field) for v in value)
    if option.kind == "int_list":
        return _distinct_whole_numbers(option, value, field)
    path = _resolve(value, field, base_dir)
    if option.kind == "file" and not path.is_file():
        raise _fail(field, f"no such file: {path}")
    if option.kind == "folder" and not path.is_dir():
        raise _fail(field, f"no such folder: {path}")
    return path


def read_options(dataset: str, spec: dict[str, Any], options: Sequence[Option],
                 base_dir: Path | None) -> dict[str, Any]:
    """Validate a ``"dataset"`` section (without its ``name``) against declared options.

    Args:
        dataset: The dataset's name, for messages.
        spec: The section; ``name`` and ``augment`` are ignored.
        options: The declarations of the dataset's source.
        base_dir: Folder that relative paths are resolved against.

    Returns:
        Every declared option's value (the default where the field is absent).

    Raises:
        DataError: An unknown field, a missing required field or a bad value.
    """
    known = {o.name: o for o in options}
    for field in spec:
        if field not in SHARED_FIELDS and field not in known:
            fields = ", ".join(["name", *known]) if known else "name"
            raise _fail(str(field), f"unknown field for '{dataset}'; its fields are: {fields}")
    values: dict[str, Any] = {}
    for option in options:
        if option.name in spec and spec[option.name] is not None:
            values[option.name] = check_value(option, spec[option.name], base_dir)
        elif option.required:
            raise _fail(option.name, f"missing; '{dataset}' needs it ({option.help})")
        else:
            values[option.name] = option.default
    return values
