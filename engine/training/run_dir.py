"""The run directory: run.json, metrics.jsonl, checkpoint.pt, model.safetensors, project.json.

``project.json`` is the frozen copy of the project the run trained, so a run can be resumed
or exported without the original file. ``snapshot.json`` holds the latest prediction
snapshot (snapshots are not repeated in metrics.jsonl: they can be large).

One process writes a run folder at a time: :class:`RunDirectory` holds the folder's
:class:`~engine.training.run_lock.RunLock` from its creation to :meth:`RunDirectory.close`.
A run whose writer died without a closing word (``"status": "running"`` and nobody holds the
lock) is marked failed by the next process that reads it (:func:`settle_abandoned`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.fileio import atomic_write_bytes, read_json_object
from engine.graph.fileformat import dumps, load_project
from engine.graph.project import Project
from engine.training.events import Event, PredictionSnapshot
from engine.training.run_lock import RunLock

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "model.safetensors"
PROJECT_FILE = "project.json"
SNAPSHOT_FILE = "snapshot.json"
#: ``run.json`` statuses of a run whose writer has not finished (or died without saying so).
UNFINISHED = ("starting", "running")


def default_run_dir(project_path: Path | None, root: Path = Path("runs")) -> Path:
    """``runs/<project name>-<YYYYmmdd-HHMMSS>`` (a suffix keeps it unique)."""
    stem = project_path.stem if project_path else "untitled"
    base = root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def write_json_atomic(path: Path, data: Any, durable: bool = True) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file.

    ``durable=False`` skips the fsyncs: the file is still whole after a crash of the process,
    but a power cut may keep the previous one (fine for progress notes written every epoch).
    """
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=True) + "\n").encode("utf-8"), durable)


def holds_a_run(path: Path) -> bool:
    """Whether ``path`` holds a run that trained: a checkpoint, or a run.json that counts steps.

    A run that failed before its first step (bad data, say) holds nothing worth keeping.
    """
    steps = read_run_info(path).get("global_step")
    return (Path(path) / CHECKPOINT_FILE).is_file() or (isinstance(steps, int) and steps > 0)


class RunDirectory:
    """Writes one run's files, holding the folder's lock until :meth:`close`.

    Only rank 0 of a distributed run creates one.

    Args:
        path: The folder (created if missing).
        resume: The folder holds the run being continued; without it a folder that already
            holds a run is refused (two runs would mix their files).

    Raises:
        RunFolderBusy: Another live process writes the folder (its PID is named).
        UserError: The folder cannot be created, or already holds a run and this is no resume.
    """

    def __init__(self, path: Path, resume: bool = False) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot create the run folder: {exc.strerror or exc}") from None
        self.lock = RunLock(self.path)
        self.lock.acquire()
        try:
            if not resume and holds_a_run(self.path):
                raise UserError(f"{self.path} already holds a run; choose another folder or continue it "
                                f"with: python main.py train --resume {self.path}")
            mode = "a" if resume else "w"  # a fresh run replaces a run that never took a step
            self._metrics = open(self.path / METRICS_FILE, mode, encoding="utf-8")  # noqa: SIM115 - closed in close()
        except BaseException:
            self.lock.release()
            raise

    @property
    def checkpoint_path(self) -> Path:
        """Where the resumable checkpoint lives."""
        return self.path / CHECKPOINT_FILE

    @property
    def weights_path(self) -> Path:
        """Where the final weights go (safetensors)."""
        return self.path / WEIGHTS_FILE

    def write_project(self, project: Project) -> None:
        """Keep the frozen project next to the run."""
        atomic_write_bytes(self.path / PROJECT_FILE, dumps(project).encode("utf-8"))

    def record(self, event: Event) -> None:
        """Append an event to metrics.jsonl (snapshots go to snapshot.json instead)."""
        if isinstance(event, PredictionSnapshot):
            write_json_atomic(self.path / SNAPSHOT_FILE, event.to_json())
            return
        self._metrics.write(json.dumps(event.to_json(), allow_nan=True) + "\n")
        self._metrics.flush()

    def write_run(self, info: dict[str, Any], durable: bool = True) -> None:
        """(Re)write run.json (``durable``: see :func:`write_json_atomic`)."""
        write_json_atomic(self.path / RUN_FILE, info, durable)

    def close(self) -> None:
        """Close open files and give the folder's lock up."""
        try:
            self._metrics.close()
        finally:
            self.lock.release()


def read_run_info(path: Path) -> dict[str, Any]:
    """run.json of ``path`` as a dict (``{}`` when missing or unreadable)."""
    return read_json_object(Path(path) / RUN_FILE)


def mark_failed(path: Path, message: str) -> bool:
    """Record in run.json that the run ended with ``message``, if nobody writes the folder now.

    Used by the parent after its worker died without a closing event, and by
    :func:`settle_abandoned`. Returns whether run.json was written.
    """
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        return False
    lock = RunLock(path)
    try:
        if not lock.try_acquire(note_owner=False):
            return False  # a live writer owns the folder: its own word counts
    except OSError:
        return False
    try:
        info = read_run_info(path)
        if info.get("status") not in UNFINISHED:
            return False
        info.update(status="failed", message=message, updated=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json_atomic(path / RUN_FILE, info)
        _append_failure(path, message)
        return True
    except OSError:
        return False
    finally:
        lock.release()


def _append_failure(path: Path, message: str) -> None:
    from engine.training.events import Failed

    with open(path / METRICS_FILE, "a", encoding="utf-8") as log:
        log.write(json.dumps(Failed(time.time(), "crashed", message).to_json()) + "\n")


def abandoned_message(info: dict[str, Any], how: str = "ended without finishing") -> str:
    """The sentence for a run whose writer died: how, and what can be resumed."""
    epoch = info.get("checkpoint_epoch")
    if isinstance(epoch, int) and epoch > 0:
        return f"the training process {how}; the checkpoint of epoch {epoch} can be resumed"
    return f"the training process {how} before its first checkpoint; the run can only be restarted"


def settle_abandoned(path: Path) -> dict[str, Any]:
    """run.json of ``path``, first marking a run whose writer is gone as failed.

    A run says ``running`` while its writer lives; if that process died together with its
    parent (nobody left to record the end), the first process that reads the folder and
    finds its lock free records the failure with the last checkpoint's epoch.
    """
    info = read_run_info(path)
    if info.get("status") in UNFINISHED and mark_failed(path, abandoned_message(info)):
        info = read_run_info(path)
    return info


def read_run(path: Path) -> tuple[dict[str, Any], Project]:
    """Read a run folder's run.json and frozen project (settling an abandoned run first).

    Raises:
        UserError: Not a run folder, or its files are unreadable.
    """
    run_file = Path(path) / RUN_FILE
    if not run_file.is_file():
        raise UserError(f"{path}: not a run folder (no {RUN_FILE})")
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{run_file}: unreadable ({exc})") from None
    if not isinstance(info, dict):
        raise UserError(f"{run_file}: unreadable (not a JSON object)")
    if info.get("status") in UNFINISHED:
        info = settle_abandoned(Path(path)) or info
    return info, load_project(Path(path) / PROJECT_FILE)


def epoch_metric(path: Path, metric: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` of the validation ``metric`` at each epoch a run's ``metrics.jsonl`` records
    (finite values only; an unreadable file or line is skipped)."""
    points: list[tuple[int, float]] = []
    name = metric.removeprefix("val_")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return points
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == "epoch" and isinstance(event.get("val"), dict):
            value = event["val"].get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                points.append((int(event.get("epoch", len(points) + 1)), float(value)))
    return points
