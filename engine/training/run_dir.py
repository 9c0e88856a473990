"""The run directory: run.json, metrics.jsonl, checkpoint.pt, model.safetensors, project.json.

``project.json`` is the frozen copy of the project the run trained, so a run can be resumed
or exported without the original file. ``snapshot.json`` holds the latest prediction
snapshot (snapshots are not repeated in metrics.jsonl: they can be large).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.fileio import atomic_write_bytes
from engine.graph.fileformat import dumps, load_project
from engine.graph.project import Project
from engine.training.events import Event, PredictionSnapshot

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "model.safetensors"
PROJECT_FILE = "project.json"
SNAPSHOT_FILE = "snapshot.json"


def default_run_dir(project_path: Path | None, root: Path = Path("runs")) -> Path:
    """``runs/<project name>-<YYYYmmdd-HHMMSS>`` (a suffix keeps it unique)."""
    stem = project_path.stem if project_path else "untitled"
    base = root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=True) + "\n").encode("utf-8"))


class RunDirectory:
    """Writes one run's files. Only rank 0 of a distributed run creates one.

    Args:
        path: The folder (created if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot create the run folder: {exc.strerror or exc}") from None
        self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

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
        (self.path / PROJECT_FILE).write_text(dumps(project), encoding="utf-8")

    def record(self, event: Event) -> None:
        """Append an event to metrics.jsonl (snapshots go to snapshot.json instead)."""
        if isinstance(event, PredictionSnapshot):
            write_json_atomic(self.path / SNAPSHOT_FILE, event.to_json())
            return
        self._metrics.write(json.dumps(event.to_json(), allow_nan=True) + "\n")
        self._metrics.flush()

    def write_run(self, info: dict[str, Any]) -> None:
        """(Re)write run.json."""
        write_json_atomic(self.path / RUN_FILE, info)

    def close(self) -> None:
        """Close open files."""
        self._metrics.close()


def read_run(path: Path) -> tuple[dict[str, Any], Project]:
    """Read a run folder's run.json and frozen project.

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
    return info, load_project(Path(path) / PROJECT_FILE)
