"""Image folders too large for memory: a lazy array of decoded images and its on-disk cache.

``dataset.storage`` of the image folder source picks where the images live: ``memory`` decodes
every image up front (float32, as always), ``stream`` keeps only the file list and decodes
batches while training, ``auto`` (the default) streams when the images decoded as uint8 would
exceed :func:`stream_budget` (the smaller of 1 GiB and a quarter of the available memory) and
otherwise behaves exactly as ``memory``.

A streamed dataset's ``x`` is a :class:`LazyImages`: ``len``, ``shape``, ``dtype`` (uint8) and
indexing by an int, a slice or an index array, decoding with the same
:func:`engine.data.images.decode_image` as the in-memory loader (so ``lazy[i] / 255`` equals the
in-memory ``x[i]``). Decoded, resized images go to a uint8 ``np.memmap`` cache under the app's
data folder (``cache/images/<key>``, the key from the folder, the size and the colour mode);
its manifest holds each file's size and modification time, a changed file invalidates its
entry, a changed file list the whole cache. Unreadable images are found when the folder is
scanned (Pillow open + verify; entries the cache already holds are known good) and left out,
counted and named in ``extras["skipped"]``. Normalization of a streamed dataset is fitted on a
fixed-seed sample of at most :data:`NORMALIZATION_SAMPLES` training images
(:func:`fit_sampled_normalization`, which fits streamed ``.npz`` arrays too,
:mod:`engine.data.lazy_array`). No torch here: the trainer's DataLoader lives in
:mod:`engine.training.streamed`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import images
from engine.data.base import ArrayDataset, DataError, Normalization

log = logging.getLogger(__name__)
#: The most memory auto storage lets decoded (uint8) images take.
MAX_BUDGET = 1 << 30
#: Training images a streamed dataset's normalization is fitted on (a fixed-seed sample).
NORMALIZATION_SAMPLES = 2048
#: Cache entry states (``valid`` file): not decoded yet, decoded, unreadable.
_UNKNOWN, _DECODED, _BAD = 0, 1, 2
_CACHE_VERSION = 1


def stream_budget() -> int:
    """Bytes of decoded uint8 images above which ``storage: auto`` streams."""
    import psutil

    return int(min(MAX_BUDGET, psutil.virtual_memory().available // 4))


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def choose_storage(storage: str, decoded_bytes: int, held_as: str = "decoded as uint8") -> tuple[str, str]:
    """``("memory" | "stream", reason)`` for data that takes ``decoded_bytes`` in memory (``held_as`` says
    how: images decoded as uint8, arrays as float32)."""
    if storage == "memory":
        return "memory", f"in memory ({_size(decoded_bytes)} {held_as}; storage: memory)"
    if storage == "stream":
        return "stream", f"streamed from disk (storage: stream; {_size(decoded_bytes)} {held_as})"
    budget = stream_budget()
    if decoded_bytes > budget:
        return "stream", (f"streamed from disk ({_size(decoded_bytes)} {held_as} exceeds the "
                          f"{_size(budget)} memory budget; storage: auto)")
    return "memory", (f"in memory ({_size(decoded_bytes)} {held_as}, within the {_size(budget)} "
                      f"memory budget; storage: auto)")


def cache_root() -> Path:
    """Where image caches live: ``<app data folder>/cache/images``."""
    from engine.app_data import app_data_dir

    return app_data_dir() / "cache" / "images"


def verify_image(path: Path) -> bool:
    """A cheap readability check: Pillow opens the file and verifies it without decoding."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means the file cannot be used
        return False


class ImageCache:
    """Decoded, resized images of one folder in a uint8 memmap, with a state byte per file.

    Args:
        folder: The cache's own folder (created).
        files: Every listed image (absolute paths, in the dataset's order).
        relative: How the manifest names them.
        sample_shape: ``(C, H, W)``.
    """

    def __init__(self, folder: Path, files: list[Path], relative: list[str], sample_shape: tuple[int, ...]) -> None:
        self.folder = folder
        self.shape = (len(files), *sample_shape)
        folder.mkdir(parents=True, exist_ok=True)
        stamps = []
        for path in files:
            st = path.stat()
            stamps.append([st.st_size, st.st_mtime_ns])
        manifest = {"version": _CACHE_VERSION, "shape": list(self.shape), "files": relative, "stamps": stamps}
        old = self._read_manifest()
        fresh = (old is None or old.get("version") != _CACHE_VERSION or old.get("shape") != list(self.shape)
                 or old.get("files") != relative or not self.data_path.is_file() or not self.state_path.is_file())
        self.rebuilt = fresh
        self.invalidated = 0
        if fresh:
            np.memmap(self.data_path, dtype=np.uint8, mode="w+", shape=self.shape).flush()
            np.memmap(self.state_path, dtype=np.uint8, mode="w+", shape=(len(files),)).flush()
        else:
            state = np.memmap(self.state_path, dtype=np.uint8, mode="r+", shape=(len(files),))
            changed = [i for i, (a, b) in enumerate(zip(old["stamps"], stamps)) if list(a) != b]
            if changed:
                state[changed] = _UNKNOWN
                state.flush()
            self.invalidated = len(changed)
            del state
        tmp = folder / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(tmp, folder / "manifest.json")

    @property
    def data_path(self) -> Path:
        return self.folder / "images.u8"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.u8"

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def state(self) -> np.ndarray:
        """A copy of every file's state byte."""
        return np.array(np.memmap(self.state_path, dtype=np.uint8, mode="r", shape=(self.shape[0],)))

    def mark(self, rows: np.ndarray, value: int) -> None:
        state = np.memmap(self.state_path, dtype=np.uint8, mode="r+", shape=(self.shape[0],))
        state[rows] = value
        state.flush()


class LazyImages:
    """Images of a folder decoded on demand, as uint8 ``(n, C, H, W)``.

    Picklable (DataLoader workers get a copy; each process opens the cache files itself).

    Args:
        files: Absolute paths of every listed image (including ones found unreadable).
        size: ``(H, W)``.
        channels: 1 or 3.
        rows: Which of ``files`` this array holds, in order.
        cache: The cache folder, or ``None`` to decode every time.
        labels: How messages name each file.
    """

    dtype = np.dtype(np.uint8)
    #: Units of one stored value: decoded images are uint8, training sees them divided by 255.
    unit = 255.0

    def __init__(self, files: list[str], size: tuple[int, int], channels: int, rows: np.ndarray,
                 cache: Path | None, labels: list[str]) -> None:
        self.files, self.size, self.channels = files, (int(size[0]), int(size[1])), int(channels)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.cache, self.labels = cache, labels
        self._data: np.memmap | None = None
        self._state: np.memmap | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None, "_state": None}

    # ----------------------------------------------------------- array protocol
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), self.channels, *self.size)

    @property
    def ndim(self) -> int:
        return 4

    @property
    def nbytes(self) -> int:
        """Bytes the images would take decoded (uint8)."""
        return int(np.prod(self.shape))

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.read(self.rows[[int(key)]])[0]
        return self.read(self.rows[key])

    def take(self, index: np.ndarray) -> LazyImages:
        """A lazy array of rows ``index`` of this one (nothing decoded)."""
        return LazyImages(self.files, self.size, self.channels, self.rows[np.asarray(index, dtype=np.int64)],
                          self.cache, self.labels)

    # ---------------------------------------------------------------- decoding
    def _open(self) -> None:
        if self.cache is not None and self._data is None:
            n = len(self.files)
            self._data = np.memmap(self.cache / "images.u8", dtype=np.uint8, mode="r+",
                                   shape=(n, self.channels, *self.size))
            self._state = np.memmap(self.cache / "state.u8", dtype=np.uint8, mode="r+", shape=(n,))

    def read(self, files: np.ndarray) -> np.ndarray:
        """Decode rows of :attr:`files` (not of this view); an image that became unreadable after the
        scan comes out black, with a warning logged once (views never crash on it)."""
        files = np.asarray(files, dtype=np.int64).reshape(-1)
        out, bad = self.read_skipping(files)
        if not bad:
            return out
        _warn_unreadable(bad)
        full = np.zeros((len(files), self.channels, *self.size), dtype=np.uint8)
        names = set(bad)
        full[[self.labels[row] not in names for row in files]] = out
        return full

    def read_skipping(self, files: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Decode rows of :attr:`files`, leaving out unreadable ones.

        Returns:
            The uint8 images of the readable rows (in order) and the names of the others.
        """
        files = np.asarray(files, dtype=np.int64).reshape(-1)
        self._open()
        out = np.empty((len(files), self.channels, *self.size), dtype=np.uint8)
        keep = np.ones(len(files), dtype=bool)
        bad: list[str] = []
        for i, row in enumerate(files):
            if self._state is not None and self._state[row] == _DECODED:
                out[i] = self._data[row]
                continue
            try:
                out[i] = images.decode_image(Path(self.files[row]), self.size, self.channels, self.labels[row])
            except DataError:
                keep[i] = False
                bad.append(self.labels[row])
                if self._state is not None:
                    self._state[row] = _BAD
                continue
            if self._state is not None:
                self._data[row] = out[i]
                self._state[row] = _DECODED
        return (out if keep.all() else out[keep]), bad


_warned: set[str] = set()


def _warn_unreadable(names: list[str]) -> None:
    new = [name for name in names if name not in _warned]
    if new:
        _warned.update(new)
        log.warning("unreadable image(s) shown black: %s", ", ".join(new))


def is_lazy(x: Any) -> bool:
    """Whether ``x`` is read per batch, never whole: a :class:`LazyImages` or a
    :class:`~engine.data.lazy_array.LazyArray`."""
    from engine.data.lazy_array import LazyArray

    return isinstance(x, (LazyImages, LazyArray))


def fit_sampled_normalization(x: Any, samples: int = NORMALIZATION_SAMPLES) -> Normalization:
    """Mean and standard deviation of a fixed-seed sample of lazy rows ``x``, in training's units
    (images in [0, 1]): per channel for images, per feature for tables and sequences, as
    :func:`engine.data.prepare.fit_normalization` fits in-memory data.

    The same rows always give the same statistics (seed 0), so evaluation rebuilds them exactly.
    """
    n = len(x)
    pick = np.sort(np.random.default_rng(0).permutation(n)[:samples]) if n > samples else np.arange(n)
    axes = {4: (0, 2, 3), 3: (0, 1)}.get(x.ndim, (0,))
    count, total, squares = 0, 0.0, 0.0
    for start in range(0, len(pick), 256):
        batch = x.read_skipping(x.rows[pick[start:start + 256]])[0].astype(np.float64) / x.unit
        count += int(np.prod([batch.shape[a] for a in axes]))
        total = total + batch.sum(axis=axes, keepdims=True)[0]
        squares = squares + (batch ** 2).sum(axis=axes, keepdims=True)[0]
    mean = np.asarray(total, dtype=np.float64) / max(count, 1)
    std = np.sqrt(np.maximum(np.asarray(squares, dtype=np.float64) / max(count, 1) - mean ** 2, 0.0))
    std = np.where(std < 1e-8, 1.0, std)
    return Normalization(mean=mean.astype(np.float32), std=std.astype(np.float32))


def _cache_folder(root: Path, size: tuple[int, int], channels: int) -> Path:
    key = json.dumps([str(root.resolve()), list(size), channels, _CACHE_VERSION])
    return cache_root() / hashlib.sha1(key.encode()).hexdigest()[:20]


def stream_image_folder(root: Path, classes: list[str], files: list[tuple[Path, int, int]], opts: dict[str, Any],
                        reason: str) -> ArrayDataset:
    """The image folder source with ``x`` a :class:`LazyImages` (see :func:`images.load_image_folder`).

    Unreadable images are left out; ``extras["skipped"]`` names them (relative paths).
    """
    height, width = opts["size"]
    channels = 1 if opts["color"] == "grayscale" else 3
    paths = [p for p, _, _ in files]
    relative = [p.relative_to(root).as_posix() for p in paths]
    cache: ImageCache | None = None
    if opts.get("cache", "on") == "on":
        try:
            cache = ImageCache(_cache_folder(root, (height, width), channels), paths, relative,
                               (channels, height, width))
        except OSError:
            cache = None  # a read-only or full disk: decode every time
    state = cache.state() if cache is not None else np.zeros(len(paths), dtype=np.uint8)
    for i, path in enumerate(paths):
        if state[i] == _UNKNOWN and not verify_image(path):
            state[i] = _BAD
    bad = np.flatnonzero(state == _BAD)
    if cache is not None and len(bad):
        cache.mark(bad, _BAD)
    good = np.flatnonzero(state != _BAD).astype(np.int64)
    skipped = [relative[i] for i in bad]
    labels = np.asarray([label for _, label, _ in files], dtype=np.int64)[good]
    if len(good) == 0:
        raise DataError(f"{root.name}: none of its {len(paths)} images is readable")
    x = LazyImages([str(p) for p in paths], (height, width), channels, good,
                   cache.folder if cache is not None else None, relative)
    description = (f"{root.name}: {len(good)} images of {len(classes)} classes, {opts['color']} {height}x{width}, "
                   f"{reason}")
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        description += f"; {len(skipped)} unreadable image(s) skipped: {shown}"
    extras: dict[str, Any] = {"path": str(root), "files": [relative[i] for i in good], "storage": reason,
                              "skipped": skipped, "cache": str(cache.folder) if cache is not None else None}
    if images._split_parts(root) is not None:
        split = np.asarray([files[i][2] for i in good], dtype=np.int8)
        extras["split"] = split
        counts = np.bincount(split, minlength=3)
        description += f", arrived split ({counts[0]} train, {counts[1]} val, {counts[2]} test)"
    return ArrayDataset(name=root.name, x=x, y=labels, target_kind="classes",  # type: ignore[arg-type]
                        class_names=classes, image_shape=(channels, height, width), description=description,
                        extras=extras)
