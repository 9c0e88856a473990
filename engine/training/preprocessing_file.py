"""``preprocessing.json``: what a trained model expects of its inputs, kept with the run.

Prediction needs the training data's description (sample shape and dtype, image size and
channels, class names, CSV columns and category codes, the character vocabulary) and the
normalizations fitted on its training part. A run folder records them at the start of training,
and a source export copies the record, so ``predict`` works on another machine, after the
training data was moved, and on an exported folder, without loading or re-splitting the data.

The file is plain JSON, read with validation (never code): a damaged record is refused with
one line naming the file and the field.

:func:`stand_in_data` turns a record into :class:`~engine.data.base.PreparedData` with no rows
but every description, which tasks and the predictor take like the real data.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, Normalization, PreparedData
from engine.errors import UserError
from engine.graph.fileformat import format_json
from engine.fileio import atomic_write_bytes

PREPROCESSING_FILE = "preprocessing.json"
PREPROCESSING_VERSION = 1
#: The dataset ``extras`` prediction uses (the rest, like a forecast's whole series, stays out).
KEPT_EXTRAS = ("columns", "categories", "target", "ordered")
_DTYPES = ("float32", "float64", "int64", "int32", "uint8")
_KINDS = ("classes", "values", "none", "next_tokens")


def preprocessing_record(data: PreparedData) -> dict[str, Any]:
    """The JSON object :func:`write_preprocessing` writes for ``data``."""
    from engine.data.fit import holds_token_ids, vocabulary_size

    dataset = data.dataset
    y = dataset.y
    tokens = holds_token_ids(dataset)
    return {
        "version": PREPROCESSING_VERSION,
        "name": dataset.name,
        "x_shape": list(dataset.sample_dims),
        "x_dtype": str(np.dtype(dataset.x.dtype)),
        "y_shape": None if y is None else [int(d) for d in np.shape(y)[1:]],
        "y_dtype": None if y is None else str(np.asarray(y[:0]).dtype),
        "target_kind": dataset.target_kind,
        "class_names": dataset.class_names,
        "feature_names": dataset.feature_names,
        "vocabulary": dataset.vocabulary,
        "vocabulary_size": vocabulary_size(dataset) if tokens and dataset.vocabulary is None else 0,
        "image_shape": list(dataset.image_shape) if dataset.image_shape is not None else None,
        "extras": {key: _plain(dataset.extras[key]) for key in KEPT_EXTRAS if key in dataset.extras},
        "x_normalization": _normalization(data.x_normalization),
        "y_normalization": _normalization(data.y_normalization),
    }


def write_preprocessing(folder: Path, data: PreparedData) -> Path:
    """Write ``preprocessing.json`` into ``folder`` (atomically); returns its path."""
    path = Path(folder) / PREPROCESSING_FILE
    atomic_write_bytes(path, (format_json(preprocessing_record(data)) + "\n").encode("utf-8"))
    return path


def read_preprocessing(folder: Path) -> PreparedData | None:
    """The stand-in data of ``folder``'s record, or ``None`` when it has none (runs from before the file).

    Raises:
        UserError: A damaged record (one line naming the file and the field).
    """
    path = Path(folder) / PREPROCESSING_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a readable preprocessing record ({type(exc).__name__}: {str(exc)[:120]})") \
            from None
    return stand_in_data(record, str(path))


def stand_in_data(record: Any, where: str) -> PreparedData:
    """Data with no rows that describes itself as ``record`` says (see the module docstring).

    Raises:
        UserError: A field is missing or has a bad value (``where: field: why``).
    """
    reader = _Reader(record, where)
    if reader.get("version", int) != PREPROCESSING_VERSION:
        raise UserError(f"{where}: unknown preprocessing format (expected version {PREPROCESSING_VERSION})")
    x_shape = reader.shape("x_shape")
    x_dtype = reader.choice("x_dtype", _DTYPES)
    kind = reader.choice("target_kind", _KINDS)
    y_shape = reader.shape("y_shape", optional=True)
    y_dtype = reader.choice("y_dtype", _DTYPES, optional=True)
    image_shape = reader.shape("image_shape", optional=True)
    if image_shape is not None and len(image_shape) != 3:
        raise reader.bad("image_shape", "must be [channels, height, width]")
    extras = dict(reader.get("extras", dict))
    size = reader.get("vocabulary_size", int)
    if size:
        extras["vocabulary_size"] = size
    dataset = ArrayDataset(
        name=reader.get("name", str), x=np.zeros((0, *x_shape), dtype=x_dtype),
        y=None if y_shape is None else np.zeros((0, *y_shape), dtype=y_dtype or "float32"),
        target_kind=kind, class_names=reader.strings("class_names"), feature_names=reader.strings("feature_names"),
        vocabulary=reader.strings("vocabulary"), image_shape=tuple(image_shape) if image_shape else None,
        description="described by the run's preprocessing record", extras=extras)
    empty_rows = np.zeros(0, dtype=np.int64)
    return PreparedData(dataset, dataset.x, dataset.y, dataset.x, dataset.y,
                        reader.normalization("x_normalization"), reader.normalization("y_normalization"),
                        empty_rows, empty_rows)


def _normalization(norm: Normalization | None) -> dict[str, Any] | None:
    if norm is None:
        return None
    return {"shape": list(np.shape(norm.mean)), "mean": np.asarray(norm.mean, np.float64).ravel().tolist(),
            "std": np.asarray(norm.std, np.float64).ravel().tolist()}


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (NumPy scalars and arrays become numbers and lists)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


class _Reader:
    """Validated access to the record's fields; every failure names the file and the field."""

    def __init__(self, record: Any, where: str, prefix: str = "") -> None:
        if not isinstance(record, dict):
            raise UserError(f"{where}: {prefix.rstrip('.') or 'not a preprocessing record'}: expected a JSON object")
        self.record, self.where, self.prefix = record, where, prefix

    def bad(self, field: str, why: str) -> UserError:
        return UserError(f"{self.where}: {self.prefix}{field}: {why}")

    def get(self, field: str, kind: type, optional: bool = False) -> Any:
        value = self.record.get(field)
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.bad(field, f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    def choice(self, field: str, choices: tuple[str, ...], optional: bool = False) -> str | None:
        value = self.get(field, str, optional)
        if value is not None and value not in choices:
            raise self.bad(field, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def shape(self, field: str, optional: bool = False) -> tuple[int, ...] | None:
        value = self.get(field, list, optional)
        if value is None:
            return None
        if not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 24 for d in value):
            raise self.bad(field, f"expected positive whole numbers, got {value[:6]}")
        return tuple(value)

    def strings(self, field: str) -> list[str] | None:
        value = self.get(field, list, optional=True)
        if value is not None and not all(isinstance(item, str) for item in value):
            raise self.bad(field, "expected a list of strings")
        return value

    def normalization(self, field: str) -> Normalization | None:
        value = self.get(field, dict, optional=True)
        if value is None:
            return None
        inner = _Reader(value, self.where, f"{field}.")
        shape = inner.shape("shape")
        size = math.prod(shape)
        arrays = []
        for part in ("mean", "std"):
            numbers = inner.get(part, list)
            if len(numbers) != size or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v) for v in numbers):
                raise inner.bad(part, f"expected {size} finite number{'s' if size != 1 else ''}")
            arrays.append(np.asarray(numbers, dtype=np.float32).reshape(shape))
        if not (arrays[1] > 0).all():
            raise inner.bad("std", "every value must be positive")
        return Normalization(mean=arrays[0], std=arrays[1])
