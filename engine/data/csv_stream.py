"""CSV tables too large for memory: read twice as a stream, encoded once into a cached float32 array.

Held in memory, a CSV costs far more than its size (every cell a Python string). A streamed CSV
is never held whole: a first pass checks every row (as the in-memory reader does: ragged rows,
an unnamed or repeated column, UTF-8) and collects what the encoding needs (which columns are
numeric, each text column's categories, the target column); a second pass encodes
``CHUNK_ROWS`` rows at a time with the same :func:`engine.data.tabular.encode_column` into a
``.npy`` file under the app's cache folder, which training then reads a batch at a time
(:class:`engine.data.lazy_array.LazyArray`). The file's key covers the CSV's path, size and
modification time and the encoding, so a changed file or option is encoded again; an unchanged
one reuses the array and only repeats the first pass (for the targets). The targets stay in
memory (one value per row). The dataset is the one :func:`engine.data.tabular.load_csv` would
give, feature for feature.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import tabular
from engine.data.base import ArrayDataset, DataError
from engine.data.lazy_array import LazyArray, open_npy

#: Rows encoded at a time in the second pass.
CHUNK_ROWS = 65_536
#: Distinct text values a column's first pass keeps before it stops counting (a categorical column
#: may have at most :data:`engine.data.tabular.MAX_CATEGORIES`).
MAX_DISTINCT_KEPT = 10_000


class _Column:
    """What the first pass learns about one feature column."""

    def __init__(self) -> None:
        self.present = 0
        self.numeric = 0
        self.distinct: set[str] = set()
        self.overflow = False

    def add(self, value: str) -> None:
        if value.lower() not in tabular.MISSING_VALUES:
            self.present += 1
            self.numeric += tabular.parse_number(value) is not None
        if not self.overflow:
            self.distinct.add(value)
            self.overflow = len(self.distinct) > MAX_DISTINCT_KEPT

    def categories(self, name: str, path: Path) -> list[str] | None:
        """``None`` for a numeric column (the rule of :func:`engine.data.tabular.load_csv`), else its
        categories in one-hot order."""
        if self.present and 2 * self.numeric >= self.present:
            return None
        if self.overflow:
            raise DataError(f"{path.name}: column '{name}' has more than {MAX_DISTINCT_KEPT:,} distinct text values; "
                            f"a categorical column may have at most {tabular.MAX_CATEGORIES}: remove or encode it")
        return sorted(self.distinct)


def load_csv_streamed(path: Path, opts: dict[str, Any], reason: str, cache_dir: Path) -> ArrayDataset:
    """:func:`engine.data.tabular.load_csv`'s dataset with ``x`` encoded on disk (see the module docstring).

    Args:
        path: The CSV file.
        opts: ``target``, ``task``, ``delimiter`` as for ``load_csv``.
        reason: The line saying why the table streams (``extras["storage"]``).
        cache_dir: Where encoded arrays are kept.

    Raises:
        DataError: As ``load_csv``: unreadable file, ragged rows, missing or non-numeric values, an
            unknown target column, too many categories.
    """
    delimiter = opts["delimiter"]
    header, columns, targets, numbers = _first_pass(path, delimiter, opts["target"])
    target = tabular.target_column(header, opts["target"], path)
    y, kind, class_names = tabular.csv_target(targets, numbers, target, opts["task"], path)
    del targets
    features = [c for c in header if c != target]
    categories = {c: columns[c].categories(c, path) for c in features}
    for column, known in categories.items():
        if known is not None and len(known) > tabular.MAX_CATEGORIES:
            tabular.encode_column([], [], column, path, known)  # raises the in-memory loader's message
    widths = [1 if categories[c] is None else len(categories[c] or ()) for c in features]
    x = _encoded(path, delimiter, header, categories, sum(widths), len(numbers), cache_dir)
    names = [name for c in features for name in ([c] if categories[c] is None else
                                                 [f"{c}={v}" for v in categories[c] or ()])]
    return ArrayDataset(
        name=path.name, x=x, y=y, target_kind=kind, class_names=class_names, feature_names=names,
        description=f"{path.name}: {len(numbers)} rows, {len(names)} features, target '{target}'",
        extras={"path": str(path), "target": target, "columns": features,
                "categories": {c: v for c, v in categories.items() if v is not None}, "storage": reason})


def _first_pass(path: Path, delimiter: str, target: str | None
                ) -> tuple[list[str], dict[str, _Column], list[str], np.ndarray]:
    """The header, per-column statistics, the target column's text and each row's spreadsheet number."""
    header: list[str] | None = None
    columns: dict[str, _Column] = {}
    targets: list[str] = []
    numbers: list[int] = []
    target_index = -1
    for row_header, cells, number in tabular.iter_csv_rows(path, delimiter):
        if header is None:
            header = row_header
            target_index = header.index(tabular.target_column(header, target, path))
            columns = {c: _Column() for i, c in enumerate(header) if i != target_index}
        for i, (column, value) in enumerate(zip(header, cells)):
            if i == target_index:
                targets.append(value)
            else:
                columns[column].add(value)
        numbers.append(number)
    if header is None:
        tabular.read_csv_table(path, delimiter)  # no data rows: the in-memory reader's message
        raise DataError(f"{path.name}: no data rows below the header")  # pragma: no cover - raised above
    return header, columns, targets, np.asarray(numbers, dtype=np.int64)


def _encoded(path: Path, delimiter: str, header: list[str], categories: dict[str, list[str] | None], width: int,
             rows: int, cache_dir: Path) -> LazyArray:
    """The encoded features as a mapped ``.npy`` in ``cache_dir``, written by the second pass unless present."""
    stat = path.stat()
    layout = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, delimiter, header, categories])
    target = cache_dir / f"csv-{hashlib.sha1(layout.encode()).hexdigest()[:20]}.npy"
    if target.is_file():
        try:
            cached = open_npy(target, f"{path.name}: encoded rows")
            if cached.shape == (rows, width):
                return cached
        except DataError:
            pass  # a damaged cache file is written again
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        written = _second_pass(path, delimiter, header, categories, np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.float32, shape=(rows, width)))
        if written != rows:
            raise DataError(f"{path.name}: the file changed while it was read ({rows} rows, then {written}); "
                            f"load it again")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return open_npy(target, f"{path.name}: encoded rows")


def _second_pass(path: Path, delimiter: str, header: list[str], categories: dict[str, list[str] | None],
                 out: np.memmap) -> int:
    """Encode the rows into ``out``, :data:`CHUNK_ROWS` at a time; returns how many rows there were."""
    features = [(i, c) for i, c in enumerate(header) if c in categories]
    chunk: list[list[str]] = []
    numbers: list[int] = []
    start = 0
    for _, cells, number in tabular.iter_csv_rows(path, delimiter):
        chunk.append(cells)
        numbers.append(number)
        if len(chunk) == CHUNK_ROWS:
            start = _write_chunk(out, start, chunk, numbers, features, categories, path)
    if chunk:
        start = _write_chunk(out, start, chunk, numbers, features, categories, path)
    out.flush()
    return start


def _write_chunk(out: np.memmap, start: int, chunk: list[list[str]], numbers: list[int],
                 features: list[tuple[int, str]], categories: dict[str, list[str] | None], path: Path) -> int:
    """Encode ``chunk`` into ``out[start:]`` (empty rows past the end are an error of the caller), clear it."""
    if start + len(chunk) > len(out):
        raise DataError(f"{path.name}: the file changed while it was read (more rows than before); load it again")
    blocks = [tabular.encode_column([cells[i] for cells in chunk], numbers, column, path, categories[column])[0]
              for i, column in features]
    out[start:start + len(chunk)] = np.concatenate(blocks, axis=1)
    end = start + len(chunk)
    chunk.clear()
    numbers.clear()
    return end
