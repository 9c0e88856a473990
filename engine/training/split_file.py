"""The run folder's record of its split: ``split.npz``, so evaluation rebuilds the same parts.

``split.npz`` holds int64 arrays ``train_index``, ``val_index`` and ``test_index`` (rows of the
loaded dataset), ``rows`` (the dataset's length), ``given`` (whether the dataset arrived
split) and ``fingerprint`` (a digest of the data's shapes, targets and a sample of its rows),
which tells a later reader whether the data still is what the run trained on. It is read with
``allow_pickle=False``: plain arrays, never code. ``run.json``'s ``split`` object repeats the
part sizes for readers that need no indices.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, PreparedData
from engine.errors import UserError
from engine.fileio import atomic_write_bytes

SPLIT_FILE = "split.npz"
SPLIT_VERSION = 1
#: Rows hashed into the fingerprint (evenly spaced), so large datasets hash quickly.
FINGERPRINT_ROWS = 256


@dataclass(frozen=True)
class RecordedSplit:
    """A run's split as ``split.npz`` holds it.

    Args:
        train: Training rows.
        val: Validation rows.
        test: Test rows (empty when the run held none out).
        rows: Length of the dataset the run trained on.
        given: Whether the dataset arrived split.
        fingerprint: Digest of that dataset (:func:`dataset_fingerprint`).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    rows: int
    given: bool
    fingerprint: str


def dataset_fingerprint(dataset: ArrayDataset) -> str:
    """A short digest of a dataset: shapes, dtypes, all targets and evenly spaced input rows.

    Args:
        dataset: The loaded dataset.

    Returns:
        32 hex digits; equal for a dataset loaded again from unchanged files.
    """
    digest = hashlib.blake2b(digest_size=16)
    n = len(dataset)
    rows = np.unique(np.linspace(0, max(n - 1, 0), min(n, FINGERPRINT_ROWS)).astype(np.int64)) if n else \
        np.zeros(0, np.int64)
    digest.update(f"{dataset.x.shape}|{dataset.x.dtype.str}|{dataset.target_kind}".encode())
    digest.update(np.ascontiguousarray(dataset.x[rows]).tobytes())
    if dataset.y is not None:
        y = np.asarray(dataset.y)
        digest.update(f"{y.shape}|{y.dtype.str}".encode())
        digest.update(np.ascontiguousarray(y if y.ndim == 1 else y[rows]).tobytes())
    return digest.hexdigest()


def split_summary(data: PreparedData) -> dict[str, Any]:
    """``run.json``'s ``split`` object: the part sizes, whether the data arrived split, the file."""
    return {"train": len(data.train_index), "val": len(data.val_index),
            "test": len(data.test_index), "given": "split" in data.dataset.extras, "file": SPLIT_FILE}


def write_split(folder: Path, data: PreparedData) -> None:
    """Write ``split.npz`` into a run folder (atomically).

    Args:
        folder: The run folder.
        data: The prepared data the run trains on (with its test part).
    """
    buffer = io.BytesIO()
    np.savez(buffer, version=np.int64(SPLIT_VERSION), train_index=data.train_index.astype(np.int64),
             val_index=data.val_index.astype(np.int64), test_index=data.test_index.astype(np.int64),
             rows=np.int64(len(data.dataset)), given=np.bool_("split" in data.dataset.extras),
             fingerprint=np.str_(dataset_fingerprint(data.dataset)))
    atomic_write_bytes(Path(folder) / SPLIT_FILE, buffer.getvalue())


def read_split(folder: Path) -> RecordedSplit | None:
    """Read a run folder's ``split.npz``.

    Args:
        folder: The run folder.

    Returns:
        The recorded split, or ``None`` when the folder has none (runs from before the file existed).

    Raises:
        UserError: The file is damaged or of an unknown version (one line naming it).
    """
    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["version"]) != SPLIT_VERSION:
                raise UserError(f"{path}: unknown split format (expected version {SPLIT_VERSION})")
            parts = [np.asarray(archive[key]) for key in ("train_index", "val_index", "test_index")]
            rows, given, fingerprint = int(archive["rows"]), bool(archive["given"]), str(archive["fingerprint"])
    except UserError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable split record ({type(exc).__name__}: {str(exc)[:160]})") from None
    for part in parts:
        if part.ndim != 1 or not np.issubdtype(part.dtype, np.integer) or (part.size and
                                                                           (part.min() < 0 or part.max() >= rows)):
            raise UserError(f"{path}: not a readable split record (row indices outside 0..{rows - 1})")
    return RecordedSplit(*(p.astype(np.int64) for p in parts), rows=rows, given=given, fingerprint=fingerprint)


def check_same_data(recorded: RecordedSplit, dataset: ArrayDataset, folder: Path) -> None:
    """Refuse to rebuild a split on data that changed since the run trained.

    Raises:
        UserError: The dataset's length or fingerprint differs from the record's.
    """
    if len(dataset) != recorded.rows or dataset_fingerprint(dataset) != recorded.fingerprint:
        now = f"{len(dataset)} samples now, {recorded.rows} then" if len(dataset) != recorded.rows else \
            "same size, other contents"
        raise UserError(f"{folder}: the data '{dataset.name}' changed since this run trained ({now}), so its split "
                        f"cannot be rebuilt; evaluate with the data the run used, or train again")
