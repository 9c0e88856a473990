"""Arrays too large for memory: the ``x`` of an ``.npz`` archive read from disk, a batch of rows at a time.

``numpy.savez`` stores each array uncompressed as a ``.npy`` file inside the zip archive, so
its bytes lie contiguously in the archive: :func:`open_npz_member` memory-maps them in place
(nothing is copied or decoded). A member of ``numpy.savez_compressed`` cannot be mapped; it
is decompressed once, in a stream, into a ``.npy`` file under the app's cache folder
(``cache/arrays/<key>.npy``, the key from the archive's path, size and modification time, so
a changed archive gets a fresh copy) and mapped from there.

A :class:`LazyArray` behaves like the float32 array the in-memory loader would give (``len``,
``shape``, ``dtype``, indexing by an int, a slice or an index array) and, like
:class:`engine.data.streaming.LazyImages`, is a row selection (``rows``, ``take``,
``read_skipping``) the streaming trainer reads in DataLoader workers. It is picklable: each
worker maps the file itself. Reading never executes anything: the ``.npy`` header is parsed
by NumPy's format module and object arrays are refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.base import DataError

#: What reads of any stored dtype give (as the in-memory loader converts ``x``).
READ_DTYPE = np.dtype(np.float32)
#: Rows per chunk when a whole lazy array is checked (finite values).
CHECK_ROWS_BYTES = 64 << 20


class LazyArray:
    """Rows of an array stored on disk, read as float32 on demand.

    Args:
        path: The file holding the array's bytes (an ``.npz`` archive or a cached ``.npy``).
        offset: Where the array's data starts in ``path``.
        stored: The stored dtype.
        full_shape: The stored array's shape (all rows).
        fortran: Whether the data is in Fortran order.
        rows: Which rows this array holds, in order.
        label: How messages name the array (``data.npz: x``).
    """

    dtype = READ_DTYPE
    #: Units of one stored value (images of uint8 files are divided by 255 elsewhere; arrays are not).
    unit = 1.0

    def __init__(self, path: Path, offset: int, stored: np.dtype, full_shape: tuple[int, ...], fortran: bool,
                 rows: np.ndarray, label: str) -> None:
        self.path, self.offset, self.stored = Path(path), int(offset), np.dtype(stored)
        self.full_shape, self.fortran, self.label = tuple(full_shape), bool(fortran), label
        self.rows = np.asarray(rows, dtype=np.int64)
        self._data: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    # ----------------------------------------------------------- array protocol
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.full_shape[1:])

    @property
    def ndim(self) -> int:
        return len(self.full_shape)

    @property
    def nbytes(self) -> int:
        """Bytes the rows would take in memory (float32)."""
        return int(np.prod(self.shape)) * READ_DTYPE.itemsize

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(self.rows[[int(key)]])[0]
        return self.read(self.rows[key])

    def take(self, index: np.ndarray) -> LazyArray:
        """A lazy array of rows ``index`` of this one (nothing read)."""
        return LazyArray(self.path, self.offset, self.stored, self.full_shape, self.fortran,
                         self.rows[np.asarray(index, dtype=np.int64)], self.label)

    # ------------------------------------------------------------------ reading
    def _mapped(self) -> np.memmap:
        if self._data is None:
            self._data = np.memmap(self.path, dtype=self.stored, mode="r", offset=self.offset,
                                   shape=self.full_shape, order="F" if self.fortran else "C")
        return self._data

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the stored array (not of this view) as float32, in the given order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) > 1 and np.all(np.diff(rows) > 0):  # sorted: one fancy index, reads in file order
            return np.asarray(self._mapped()[rows], dtype=READ_DTYPE)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.full_shape[1:]), dtype=READ_DTYPE)
        out[order] = self._mapped()[rows[order]]
        return out

    def read_skipping(self, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """:meth:`read`, in the streaming trainer's protocol (arrays have no unreadable rows)."""
        return self.read(rows), []

    def all_finite(self) -> bool:
        """Whether every value is finite, checked in chunks (never the whole array in memory)."""
        if not np.issubdtype(self.stored, np.floating):
            return True
        step = max(1, CHECK_ROWS_BYTES // max(1, int(np.prod(self.full_shape[1:])) * self.stored.itemsize))
        data = self._mapped()
        return all(np.isfinite(data[start:start + step]).all() for start in range(0, self.full_shape[0], step))


def npz_member_header(path: Path, member: str) -> tuple[tuple[int, ...], bool, np.dtype] | None:
    """``(shape, fortran, dtype)`` of ``member`` (``"x"``) of an archive, from its ``.npy`` header only,
    or ``None`` when the archive has no such member.

    Raises:
        DataError: Not a zip archive, or a damaged header.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if f"{member}.npy" not in archive.namelist():
                return None
            with archive.open(f"{member}.npy") as stream:
                return _read_header(stream, path, member)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path.name}: not a readable .npz archive ({exc})") from None


def open_npz_member(path: Path, member: str, cache_dir: Path) -> LazyArray:
    """Map ``member`` of an ``.npz`` archive (in place, or from a decompressed copy in ``cache_dir``).

    Raises:
        DataError: A damaged archive or header, or an array of Python objects.
    """
    path = Path(path)
    name = f"{member}.npy"
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(name)
            if info.compress_type == zipfile.ZIP_STORED:
                start = _data_start(path, info)
                with path.open("rb") as handle:
                    handle.seek(start)
                    shape, fortran, dtype = _read_header(handle, path, member)
                    return LazyArray(path, handle.tell(), dtype, shape, fortran, np.arange(shape[0]),
                                     f"{path.name}: {member}")
            copy = _decompressed(archive, info, path, cache_dir)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, struct.error) as exc:
        raise DataError(f"{path.name}: array '{member}' cannot be read ({exc})") from None
    with copy.open("rb") as handle:
        shape, fortran, dtype = _read_header(handle, path, member)
        return LazyArray(copy, handle.tell(), dtype, shape, fortran, np.arange(shape[0]), f"{path.name}: {member}")


def open_npy(path: Path, label: str) -> LazyArray:
    """Map a ``.npy`` file (e.g. an encoded table in the cache).

    Raises:
        DataError: A damaged header, or an array of Python objects.
    """
    path = Path(path)
    with path.open("rb") as handle:
        shape, fortran, dtype = _read_header(handle, path, "x")
        offset = handle.tell()
    if len(shape) == 0 or path.stat().st_size < offset + int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{path.name}: the array file is shorter than its header says")
    return LazyArray(path, offset, dtype, shape, fortran, np.arange(shape[0]), label)


def _read_header(stream: Any, path: Path, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except ValueError as exc:
        raise DataError(f"{path.name}: array '{member}' has a damaged header ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{path.name}: array '{member}' holds Python objects, which are refused for safety; "
                        f"save plain numeric arrays")
    return tuple(int(d) for d in shape), bool(fortran), dtype


def _data_start(path: Path, info: zipfile.ZipInfo) -> int:
    """Offset of a stored member's bytes: after its local file header (30 bytes, name, extra field)."""
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad local file header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _decompressed(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, cache_dir: Path) -> Path:
    """A ``.npy`` copy of a compressed member in ``cache_dir``, written once per version of the archive."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{info.filename}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir / f"{key[:20]}.npy"
    if target.is_file() and target.stat().st_size == info.file_size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        with archive.open(info) as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink, 16 << 20)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
