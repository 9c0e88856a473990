"""User tables: CSV files (read with the csv module) and NumPy ``.npz`` archives.

Problems are reported as :class:`~engine.data.base.DataError` naming the file, the
1-based row as a spreadsheet shows it (the header is row 1) and the column.
"""

from __future__ import annotations

import csv
import math
import zipfile
import zlib
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, DataError, TargetKind

#: Largest CSV file read into memory (larger ones stream, engine.data.csv_stream).
MAX_CSV_BYTES = 512 * 1024 * 1024
#: Memory a CSV takes while parsed in memory, per byte of file (every cell a Python string).
CSV_MEMORY_FACTOR = 10
#: Largest ``.npz`` archive read.
MAX_NPZ_BYTES = 4 * 1024 * 1024 * 1024
#: Most distinct values of a categorical (text) feature column.
MAX_CATEGORIES = 100
#: A numeric target with at most this many distinct whole numbers means classification.
MAX_AUTO_CLASSES = 20
MISSING_VALUES = {"", "na", "n/a", "nan", "null", "none", "?", "-"}


def _check_size(path: Path, limit: int) -> None:
    size = path.stat().st_size
    if size > limit:
        raise DataError(f"{path.name}: {size / 2**20:.0f} MB is larger than the {limit / 2**20:.0f} MB "
                        f"this app reads")


def iter_csv_rows(path: Path, delimiter: str) -> Iterator[tuple[list[str], list[str], int]]:
    """``(header, cells, spreadsheet row number)`` for each data row of a CSV file, read as a stream
    (cells stripped, blank rows skipped, the header checked before the first row).

    Raises:
        DataError: Not UTF-8, unreadable, an unnamed or repeated column, a row whose number of values
            differs from the header's.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header: list[str] | None = None
            for record in reader:
                cells = [c.strip() for c in record]
                if not any(cells):
                    continue
                if header is None:
                    header = _checked_header(cells, path)
                    continue
                if len(cells) != len(header):
                    raise DataError(f"{path.name}: row {reader.line_num} has {len(cells)} values but the "
                                    f"header has {len(header)} columns")
                yield header, cells, reader.line_num
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise DataError(f"{path.name}: not a readable CSV file ({exc})") from None


def _checked_header(header: list[str], path: Path) -> list[str]:
    for i, column in enumerate(header, start=1):
        if not column:
            raise DataError(f"{path.name}: column {i} of the header row has no name")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{path.name}: the header repeats the column name(s) {', '.join(map(repr, duplicates))}")
    return header


def _read_rows(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (cells stripped) and each row's spreadsheet row number."""
    _check_size(path, MAX_CSV_BYTES)
    header: list[str] | None = None
    rows: list[list[str]] = []
    numbers: list[int] = []
    for header, cells, number in iter_csv_rows(path, delimiter):
        rows.append(cells)
        numbers.append(number)
    if header is None:
        header = _header_only(path, delimiter)
        if header is None:
            raise DataError(f"{path.name}: the file is empty; it needs a header row and data rows")
        raise DataError(f"{path.name}: no data rows below the header")
    return header, rows, numbers


def _header_only(path: Path, delimiter: str) -> list[str] | None:
    """The checked header of a file without data rows, or ``None`` for a file without a header."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for record in csv.reader(handle, delimiter=delimiter):
            cells = [c.strip() for c in record]
            if any(cells):
                return _checked_header(cells, path)
    return None


def parse_number(text: str) -> float | None:
    """The finite number ``text`` spells, else ``None``."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_numeric(values: list[str]) -> bool:
    """A column is numeric when at least half of its present values are finite numbers.

    Its other values are then reported as errors rather than silently turning the column
    into categories.
    """
    present = [v for v in values if v.lower() not in MISSING_VALUES]
    return bool(present) and 2 * sum(parse_number(v) is not None for v in present) >= len(present)


def _numeric(values: list[str], rows: list[int], column: str, path: Path) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, text in enumerate(values):
        number = parse_number(text)
        if number is None:
            where = f"{path.name}: row {rows[i]}, column '{column}'"
            if text == "":
                raise DataError(f"{where}: empty value; fill it in or remove the row")
            if text.lower() in MISSING_VALUES:
                raise DataError(f"{where}: missing value '{text}'; fill it in or remove the row")
            raise DataError(f"{where}: '{text}' is not a number; fix it or remove the row")
        out[i] = number
    return out


def _check_present(values: list[str], rows: list[int], column: str, path: Path) -> None:
    for i, text in enumerate(values):
        if text == "":
            raise DataError(f"{path.name}: row {rows[i]}, column '{column}': empty value; "
                            f"fill it in or remove the row")


def csv_target(values: list[str], rows: list[int], column: str, task: str | None,
            path: Path) -> tuple[np.ndarray, TargetKind, list[str] | None]:
    """Targets, target kind and class names from the target column's text (``rows``: each value's
    spreadsheet row number, for messages)."""
    numeric = _is_numeric(values)
    if task == "regression" or (task is None and numeric):
        if not numeric:
            first = next(v for v in values if parse_number(v) is None)
            raise DataError(f"dataset.task: regression needs a numeric target, but column '{column}' of "
                            f"{path.name} holds text such as '{first}'")
        numbers = _numeric(values, rows, column, path)
        whole = np.all(numbers == np.round(numbers))
        if task == "regression" or not whole or len(np.unique(numbers)) > MAX_AUTO_CLASSES:
            return numbers.astype(np.float32).reshape(-1, 1), "values", None
        task = "classification"
    _check_present(values, rows, column, path)
    if numeric:
        numbers = _numeric(values, rows, column, path)
        labels, ids = np.unique(numbers, return_inverse=True)
        names = [f"{v:g}" for v in labels]
    else:
        labels, ids = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        names = [str(v) for v in labels]
    if len(names) < 2:
        raise DataError(f"{path.name}: target column '{column}' has a single value '{names[0]}'; "
                        f"classification needs at least 2 classes")
    return ids.astype(np.int64).reshape(-1), "classes", names


def load_csv(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """A CSV table with a header row.

    Numeric columns become float features; text columns are one-hot encoded
    (``"color=red"``). The target column defaults to the last one.

    Args:
        name: ``"csv"``.
        opts: ``path``, ``target``, ``task`` (``None``: classification when the target
            is text or has at most 20 distinct whole numbers), ``delimiter``, ``storage``
            (``stream``, or ``auto`` for a file whose parsing would exceed the memory budget:
            :mod:`engine.data.csv_stream`, the same dataset with ``x`` encoded on disk).

    Returns:
        x float32 ``(n, features)``; y int64 class ids or float32 ``(n, 1)`` values.

    Raises:
        DataError: Unreadable file, missing or non-numeric values, unknown target column.
    """
    from engine.data import streaming

    path: Path = opts["path"]
    where, reason = streaming.choose_storage(str(opts.get("storage") or "auto"),
                                             path.stat().st_size * CSV_MEMORY_FACTOR, "estimated to parse in memory")
    if where == "stream":
        from engine.data.csv_stream import load_csv_streamed

        return load_csv_streamed(path, opts, reason, streaming.cache_root().parent / "arrays")
    header, rows, numbers = _read_rows(path, opts["delimiter"])
    target = target_column(header, opts["target"], path)
    columns = {c: [row[i] for row in rows] for i, c in enumerate(header)}
    y, kind, class_names = csv_target(columns[target], numbers, target, opts["task"], path)
    features: list[np.ndarray] = []
    feature_names: list[str] = []
    categories: dict[str, list[str]] = {}
    for column in header:
        if column == target:
            continue
        values = columns[column]
        known = None if _is_numeric(values) else sorted(set(values))
        if known is not None:
            categories[column] = known
        block, names = encode_column(values, numbers, column, path, known)
        features.append(block)
        feature_names.extend(names)
    x = np.concatenate(features, axis=1).astype(np.float32)
    return ArrayDataset(
        name=path.name, x=x, y=y, target_kind=kind, class_names=class_names,
        feature_names=feature_names,
        description=f"{path.name}: {len(rows)} rows, {x.shape[1]} features, target '{target}'",
        extras={"path": str(path), "target": target, "columns": [c for c in header if c != target],
                "categories": categories, "storage": reason})


def target_column(header: list[str], target: str | None, path: Path) -> str:
    """The target column's name: ``target``, or the last column when it is ``None``.

    Raises:
        DataError: No such column, or no feature column besides it.
    """
    name = target if target is not None else header[-1]
    if name not in header:
        raise DataError(f"dataset.target: no column '{name}' in {path.name}; its columns are: {', '.join(header)}")
    if len(header) < 2:
        raise DataError(f"{path.name}: needs at least one feature column besides the target '{name}'")
    return name


def read_csv_table(path: Path, delimiter: str = ",") -> tuple[list[str], list[list[str]], list[int]]:
    """A CSV file's header, data rows (cells stripped) and each row's spreadsheet row number.

    Raises:
        DataError: Unreadable, not UTF-8, ragged rows, an unnamed or repeated column, no data rows.
    """
    return _read_rows(path, delimiter)


def encode_column(values: list[str], rows: list[int], column: str, path: Path,
                  categories: list[str] | None) -> tuple[np.ndarray, list[str]]:
    """One feature column as training encodes it: a number per row, or one-hot text categories.

    Args:
        values: The column's cells.
        rows: Each cell's spreadsheet row number (for messages).
        column: The column's name.
        path: The file (for messages).
        categories: ``None`` for a numeric column, else the categories in one-hot order (a value
            outside them is an error naming the row).

    Shape:
        Returns ``(n, 1)`` for a numeric column, ``(n, len(categories))`` for a categorical one.

    Returns:
        The float64 block and its feature names (``column`` or ``column=category`` each).

    Raises:
        DataError: A missing or non-numeric value, too many categories, an unknown category.
    """
    if categories is None:
        return _numeric(values, rows, column, path)[:, None], [column]
    _check_present(values, rows, column, path)
    if len(categories) > MAX_CATEGORIES:
        raise DataError(f"{path.name}: column '{column}' has {len(categories)} distinct text values; a "
                        f"categorical column may have at most {MAX_CATEGORIES}: remove or encode it")
    lookup = {c: i for i, c in enumerate(categories)}
    for i, value in enumerate(values):
        if value not in lookup:
            shown = ", ".join(repr(c) for c in categories[:10]) + (", ..." if len(categories) > 10 else "")
            raise DataError(f"{path.name}: row {rows[i]}, column '{column}': '{value}' is not one of the "
                            f"categories the model was trained on ({shown})")
    codes = np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
    return np.eye(len(categories))[codes], [f"{column}={c}" for c in categories]


def _read_members(archive: Any, path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    unreadable = (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error)
    if "x" not in archive.files:
        raise DataError(f"{path.name}: no array named 'x'; it holds: {', '.join(archive.files) or 'nothing'}")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in archive.files:
            continue
        try:
            arrays[key] = archive[key]
        except ValueError as exc:
            if "object" in str(exc).lower() or "pickle" in str(exc).lower():
                raise DataError(f"{path.name}: array '{key}' holds Python objects, which are refused "
                                f"for safety; save plain numeric arrays") from None
            raise DataError(f"{path.name}: array '{key}' cannot be read ({exc})") from None
        except unreadable as exc:
            raise DataError(f"{path.name}: array '{key}' cannot be read ({exc})") from None
    return arrays


def _read_npz(path: Path, keys: tuple[str, ...] = ("x", "y", "class_names"), limit: int | None = MAX_NPZ_BYTES
              ) -> dict[str, np.ndarray]:
    """The arrays ``keys`` the archive holds (``x`` must be there), read without pickle."""
    if limit is not None:
        _check_size(path, limit)
    # The file is opened here (not by np.load) so that it is closed whatever fails.
    with path.open("rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path.name}: not a readable .npz archive ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path.name}: not an .npz archive (save it with numpy.savez)")
        with archive:
            return _read_members(archive, path, keys)


def read_npz_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The arrays ``x``, ``y`` and ``class_names`` (``None`` where absent) of an ``.npz`` archive,
    read without pickle.

    Raises:
        DataError: Too large, unreadable, no ``x``, or an array of Python objects.
    """
    arrays = _read_npz(path)
    return arrays["x"], arrays.get("y"), arrays.get("class_names")


def load_npz(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """A NumPy ``.npz`` archive with arrays ``x`` and, optionally, ``y``.

    Integer ``y`` of shape ``(n,)`` are classes (relabelled 0..k-1, names from an optional
    ``class_names`` array or the original values); integer ``y`` shaped like integer ``x``
    are next tokens; float ``y`` are values ``(n, k)``; no ``y`` means no targets.

    ``storage`` picks where ``x`` lives: ``memory`` reads it whole (float32), ``stream`` maps it
    from disk and training reads batches (:mod:`engine.data.lazy_array`), ``auto`` streams when
    ``x`` as float32 would exceed the memory budget (:func:`engine.data.streaming.stream_budget`).
    Token sequences (2-D integer ``x``) always load into memory.

    Args:
        name: ``"npz"``.
        opts: ``path``, ``storage``.

    Returns:
        The dataset.

    Raises:
        DataError: Unreadable archive, object arrays, mismatched lengths, non-finite values.
    """
    path: Path = opts["path"]
    x, storage = _streamed_x(path, str(opts.get("storage") or "auto"))
    if x is None:
        arrays = _read_npz(path)
        x = arrays["x"]
    else:
        arrays = _read_npz(path, ("y", "class_names"), limit=None)
    y, names = arrays.get("y"), arrays.get("class_names")
    lazy = not isinstance(x, np.ndarray)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise DataError(f"{path.name}: array 'x' has dtype {x.dtype}; it must hold real numbers")
    if x.ndim == 0 or len(x) < 1:
        raise DataError(f"{path.name}: array 'x' holds no samples")
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    integer_x = np.issubdtype(x.dtype, np.integer) and not lazy
    if not integer_x and not (x.all_finite() if lazy else np.all(np.isfinite(x))):
        raise DataError(f"{path.name}: array 'x' contains NaN or infinite values")
    image_shape = tuple(int(d) for d in x.shape[1:]) if x.ndim == 4 and x.shape[1] in (1, 3) else None
    common = {"name": path.name, "image_shape": image_shape, "extras": {"path": str(path), "storage": storage}}
    if y is None:
        return ArrayDataset(x=_real(x), y=None, target_kind="none",
                            description=f"{path.name}: {len(x)} samples without targets", **common)
    y_count = len(y) if y.ndim else 0
    if y_count != len(x):
        raise DataError(f"{path.name}: 'x' has {len(x)} samples but 'y' has {y_count}")
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        if integer_x and y.shape == x.shape and x.ndim == 2:
            if x.min() < 0 or y.min() < 0:
                raise DataError(f"{path.name}: token ids must not be negative")
            return ArrayDataset(x=x.astype(np.int64), y=y.astype(np.int64), target_kind="next_tokens",
                                description=f"{path.name}: {len(x)} token sequences", **common)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"{path.name}: integer 'y' must hold one class id per sample, shape ({len(x)},); "
                            f"got {y.shape}")
        labels, ids = np.unique(y, return_inverse=True)
        class_names = [str(v) for v in labels]
        if names is not None and names.ndim == 1 and len(names) == len(labels) and names.dtype.kind in "US":
            class_names = [str(v) for v in names]
        if len(labels) < 2:
            raise DataError(f"{path.name}: 'y' has a single class; classification needs at least 2")
        return ArrayDataset(x=_real(x), y=ids.astype(np.int64).reshape(-1),
                            target_kind="classes", class_names=class_names,
                            description=f"{path.name}: {len(x)} samples of {len(labels)} classes", **common)
    if not np.issubdtype(y.dtype, np.floating):
        raise DataError(f"{path.name}: array 'y' has dtype {y.dtype}; it must hold numbers")
    if y.ndim > 2:
        raise DataError(f"{path.name}: float 'y' must have shape (n,) or (n, k); got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path.name}: array 'y' contains NaN or infinite values")
    return ArrayDataset(x=_real(x), y=y.reshape(len(y), -1).astype(np.float32),
                        target_kind="values", description=f"{path.name}: {len(x)} samples with values",
                        **common)


def _real(x: Any) -> Any:
    """``x`` as real values: float32 in memory (lazy arrays read as float32 already)."""
    return x.astype(np.float32) if isinstance(x, np.ndarray) else x


def _streamed_x(path: Path, storage: str) -> tuple[Any, str]:
    """The archive's ``x`` mapped from disk when ``storage`` (and its size) says to stream it, else
    ``None``; and the line saying where ``x`` lives."""
    from engine.data import lazy_array, streaming

    try:
        header = lazy_array.npz_member_header(path, "x")
    except DataError:
        header = None
    if header is None:  # no x, or not a zip archive: the in-memory reader says what the file is
        return None, ""
    shape, _, dtype = header
    tokens = np.issubdtype(dtype, np.integer) and len(shape) == 2
    size = int(np.prod(shape)) * 4
    if tokens or len(shape) < 2 or not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        return None, streaming.choose_storage("memory", size, "as float32")[1]
    where, reason = streaming.choose_storage(storage, size, "as float32")
    if where == "memory":
        return None, reason
    return lazy_array.open_npz_member(path, "x", streaming.cache_root().parent / "arrays"), reason
