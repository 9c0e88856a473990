"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

The temp file sits beside its target as ``.<name>.<pid>.<random>.tmp``. A process killed
mid-write leaves it behind; the next write of the same target removes such leftovers whose
writer is no longer running (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

#: Leftover temp files without a readable writer PID are removed once older than this (seconds).
UNKNOWN_WRITER_AGE = 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename.

    The new file gets the usual permissions (0666 less the umask). With ``durable`` (the
    default) the data and the folder are synced, so the rename itself survives a power cut;
    without it the file is still never half-written when the process dies.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(folder)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file is missing, unreadable or holds something else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remove_stale_temps(target: Path) -> int:
    """Delete temp files of earlier writes of ``target`` whose writing process is gone.

    Returns:
        How many were removed.
    """
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    removed = 0
    try:
        candidates = [entry for entry in os.scandir(folder)
                      if entry.name.startswith(prefix) and entry.name.endswith(".tmp")]
    except OSError:
        return 0
    for entry in candidates:
        pid_text = entry.name[len(prefix):].split(".", 1)[0]
        if pid_text.isdigit():
            stale = int(pid_text) != os.getpid() and not _process_alive(int(pid_text))
        else:  # written before temp names carried the PID
            try:
                stale = time.time() - entry.stat().st_mtime > UNKNOWN_WRITER_AGE
            except OSError:
                continue
        if stale:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _process_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.pid_exists(pid)
    except (OSError, ValueError):
        return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
