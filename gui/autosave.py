"""Autosave to a recovery file every minute, and recovery after a crash.

While a document has unsaved changes, its state is written (atomically) to a recovery file
in the app's data folder, tagged with this process's id. A clean save or close removes the
file. At start-up, recovery files whose process is no longer running are left over from a
crash; the app offers to reopen them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from engine.fileio import atomic_write_bytes
from engine.graph.fileformat import ProjectFileError, from_json, to_json
from engine.graph.project import Project
from gui.document import Document

AUTOSAVE_INTERVAL_MS = 60_000


def recovery_dir() -> Path:
    """Where recovery files live (``NEURAL_CANVAS_RECOVERY_DIR`` overrides, e.g. in tests)."""
    override = os.environ.get("NEURAL_CANVAS_RECOVERY_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".neural-canvas") / "recovery"


@dataclass
class RecoveryFile:
    """A recovery file left by a process that ended without saving."""

    path: Path
    original: Path | None
    saved: float

    def load(self) -> Project:
        """The recovered project.

        Raises:
            ProjectFileError: The recovery file is damaged.
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return from_json(data["project"])
        except Exception as exc:  # noqa: BLE001 - unreadable, not JSON, or not a valid project
            raise ProjectFileError(f"{self.path}: damaged recovery file ({exc})") from None

    def discard(self) -> None:
        """Delete the recovery file."""
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pending_recoveries(folder: Path | None = None) -> list[RecoveryFile]:
    """Recovery files whose writer is gone (newest first); unreadable ones are skipped."""
    folder = folder or recovery_dir()
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            continue
        original = Path(data["original"]) if data.get("original") else None
        found.append(RecoveryFile(path, original, float(data.get("saved", 0))))
    return sorted(found, key=lambda r: r.saved, reverse=True)


class Autosaver(QObject):
    """Keeps one document's recovery file current.

    Args:
        document: The document to protect.
        folder: Recovery folder (default :func:`recovery_dir`).
        interval_ms: Time between autosaves.
    """

    def __init__(self, document: Document, folder: Path | None = None, interval_ms: int = AUTOSAVE_INTERVAL_MS,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.folder = folder or recovery_dir()
        self.path = self.folder / f"{uuid.uuid4().hex}.json"
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        self.timer.start()
        document.clean_changed.connect(self._on_clean_changed)

    def save_now(self) -> bool:
        """Write the recovery file if there are unsaved changes; returns whether it wrote."""
        if not self.document.dirty:
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"pid": os.getpid(), "saved": time.time(),
                "original": str(self.document.path) if self.document.path else None,
                "project": to_json(self.document.project)}
        atomic_write_bytes(self.path, json.dumps(data).encode("utf-8"))
        return True

    def adopt(self, recovery: RecoveryFile) -> None:
        """Keep protecting a restored document in the recovery file it came from.

        The file is rewritten at once under this process's id, so it is not offered again
        while this process lives, and survives if this process crashes too: it goes only
        when the document is saved or closed cleanly.
        """
        self.path = recovery.path
        if not self.save_now():
            self.discard()

    def _on_clean_changed(self, clean: bool) -> None:
        if clean:
            self.discard()

    def discard(self) -> None:
        """Remove the recovery file (after a save, or when the document closes cleanly)."""
        self.path.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop autosaving and remove the recovery file."""
        self.timer.stop()
        self.discard()
