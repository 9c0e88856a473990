"""One training run seen from the GUI: the worker process, its events, and the run's state.

The worker (:class:`~engine.training.worker.TrainingProcess`) trains; this object only
polls its event queue on a timer and re-emits what arrived as Qt signals. The GUI thread
never waits on the worker, so a stalled or dead worker cannot freeze the window. While a
run is active the document is read-only (edits are refused with a reason).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal

from engine.graph.fileformat import dumps
from engine.training.events import (
    TERMINAL,
    BatchMetrics,
    CheckpointWritten,
    Event,
    PredictionSnapshot,
    RunStarted,
)
from engine.training.history import RunHistory, list_runs, run_project_id
from engine.training.run_dir import METRICS_FILE, default_run_dir
from engine.training.run_lock import is_being_written
from engine.training.worker import TrainingProcess
from gui.document import Document

#: Milliseconds between polls of the worker's event queue.
POLL_MS = 100
#: After the run's first snapshot is shown, time for its first paint before the worker's first step.
READY_AFTER_SNAPSHOT_MS = 40
#: After the run starts, the longest the worker waits for a first snapshot to be shown.
READY_AFTER_START_MS = 300
#: A finished worker is reaped this long after its last event (joining at once could block the GUI).
REAP_AFTER_MS = 3000
READ_ONLY_REASON = "Training is running: stop it (Shift+F5) to edit the graph."
_RUN_NAME = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def untitled_runs_root() -> Path:
    """Where runs of untitled documents go: the app's data folder (``NEURAL_CANVAS_RUNS_DIR`` overrides it)."""
    override = os.environ.get("NEURAL_CANVAS_RUNS_DIR")
    if override:
        return Path(override)
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "runs"


def runs_root(document: Document) -> Path:
    """Where the runs of ``document`` live: ``runs/`` beside its file, else the app's data folder.

    ``NEURAL_CANVAS_RUNS_DIR`` overrides it (tests, portable installs).
    """
    override = os.environ.get("NEURAL_CANVAS_RUNS_DIR")
    if override:
        return Path(override)
    if document.path is not None:
        return document.path.parent / "runs"
    return untitled_runs_root()


def run_stem(document: Document) -> str:
    """The file-name stem of the document's new runs (the file's stem, else the project's name)."""
    if document.path is not None:
        return document.path.stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", document.project.name or "untitled").strip("_")
    return name or "untitled"


def _search_roots(document: Document) -> list[Path]:
    primary = runs_root(document)
    roots = [primary]
    untitled = untitled_runs_root()
    if not _same_folder(untitled, primary):
        roots.append(untitled)  # runs made before the document was first saved (and not moved)
    return roots


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def belongs_to(run_dir: Path, document: Document, by_name: bool = True) -> bool:
    """Whether ``run_dir`` is a run of ``document``'s project.

    A run belongs when its frozen project carries the document's id, whatever the file is
    called now (Save As, renames, a template saved under a new name). Runs without an id,
    made before projects had one, belong by name (``<file stem>-<date>-<time>``) when
    ``by_name``.
    """
    run_id = run_project_id(run_dir)
    if run_id is not None:
        return run_id == document.project.id
    return by_name and _RUN_NAME.sub("", Path(run_dir).name) == run_stem(document)


def earlier_runs(document: Document) -> list[Path]:
    """Run folders of this project, also from earlier sessions (oldest first).

    Searched: the document's runs folder, and the untitled runs folder for runs made before
    the document was first saved.
    """
    found: list[Path] = []
    for index, root in enumerate(_search_roots(document)):
        found += [path for path in list_runs(root) if belongs_to(path, document, by_name=index == 0)]
    return sorted(found, key=_logged_at)


def _logged_at(run_dir: Path) -> float:
    try:
        return (run_dir / METRICS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def adopt_runs(document: Document, old_root: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Move the project's runs from ``old_root`` into its runs folder (after a first save or a Save As
    into another folder), so they stay beside the project file.

    Runs without the project's id stay where they are, and so do the runs in ``skip`` (the
    active run) and runs another process is writing. A run that cannot be moved stays too
    (it is still found while it is in the untitled runs folder).

    Returns:
        The runs' new folders.
    """
    new_root = runs_root(document)
    if _same_folder(old_root, new_root):
        return []
    skipped = {Path(p).resolve() for p in skip}
    moved: list[Path] = []
    for path in list_runs(old_root):
        if run_project_id(path) != document.project.id or path.resolve() in skipped or is_being_written(path):
            continue
        target, n = new_root / path.name, 1
        while target.exists():
            n += 1
            target = new_root / f"{path.name}-{n}"
        try:
            new_root.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
        except OSError:
            if path.is_dir():  # a copy across drives failed half-way: the original is intact
                shutil.rmtree(target, ignore_errors=True)
            continue
        moved.append(target)
    return moved


class TrainingSession(QObject):
    """Starts runs for a document and streams their events.

    Signals:
        run_added(RunHistory): A run started (its history fills as events arrive).
        events_received(list): Events of one poll, in order.
        snapshot_received(object): The newest prediction snapshot of a poll.
        checkpoint_written(str): A checkpoint of the active run was written (its run folder).
        state_changed(str): ``idle``, ``starting``, ``running``, ``paused``, ``stopping``.
        run_ended(object): The closing event (Finished or Failed).
        first_step(): The worker was told to take its first step (the views are built).
    """

    run_added = Signal(object)
    events_received = Signal(list)
    snapshot_received = Signal(object)
    checkpoint_written = Signal(str)
    state_changed = Signal(str)
    run_ended = Signal(object)
    first_step = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.process: TrainingProcess | None = None
        self.history: RunHistory | None = None
        self.state = "idle"
        self.started_at = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        # The worker waits for "ready" before its first step, so the dashboard's first views are
        # built and painted while no step competes for the cores (see Control.await_ready).
        self._ready = QTimer(self)
        self._ready.setSingleShot(True)
        self._ready.timeout.connect(self._say_ready)
        self._ready_said = False

    # ---------------------------------------------------------------- control
    @property
    def active(self) -> bool:
        """Whether a run is under way (started and not ended)."""
        return self.process is not None

    def start(self, document: Document, resume_dir: Path | None = None) -> RunHistory:
        """Train ``document``'s project in a worker process (or continue ``resume_dir``).

        The worker receives a frozen copy of the project as file text; later edits do not
        reach it. Returns the new run's history (filled as events arrive).
        """
        if self.active:
            raise RuntimeError("a run is already active")
        self.document = document
        if resume_dir is not None:
            run_dir = Path(resume_dir)
        else:
            run_dir = default_run_dir(Path(run_stem(document) + ".json"), runs_root(document))
        base_dir = document.path.parent if document.path is not None else Path.cwd()
        weights_file = document.start_weights() if resume_dir is None else None
        self.process = TrainingProcess(dumps(document.project), run_dir, base_dir, resume=resume_dir is not None,
                                       weights_file=weights_file, viewer=True)
        self._ready_said = False
        if resume_dir is not None:  # earlier curves of the run continue
            self.history = RunHistory.from_run_dir(run_dir)
            self.history.state = "starting"
        else:
            self.history = RunHistory(name=run_dir.name, run_dir=str(run_dir))
        document.set_read_only(READ_ONLY_REASON)
        self.started_at = time.monotonic()
        self.process.start()
        self._timer.start()
        self._set_state("starting")
        self.run_added.emit(self.history)
        return self.history

    def pause(self) -> None:
        """Pause after the current batch."""
        if self.process is not None and self.state == "running":
            self.process.pause()

    def resume(self) -> None:
        """Continue a paused run."""
        if self.process is not None and self.state == "paused":
            self.process.resume()

    def stop(self) -> None:
        """Stop after the current batch; the worker checkpoints first, so the run can be resumed."""
        if self.process is not None and self.state not in ("stopping", "idle"):
            self.process.stop()
            self._set_state("stopping")

    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate (the plots mark the step)."""
        if self.process is not None:
            self.process.set_learning_rate(lr)

    def kill(self) -> None:
        """End the worker at once (closing the app during a run)."""
        if self.process is not None:
            self.process.kill()
            self.process.join(2.0)
            self.poll()

    # ----------------------------------------------------------------- events
    def poll(self) -> None:
        """Take the events that arrived and re-emit them (called by the timer)."""
        process, history = self.process, self.history
        if process is None or history is None:
            return
        events = process.poll()
        if not events:
            return
        snapshot: PredictionSnapshot | None = None
        ended: Event | None = None
        for event in events:
            history.add(event)
            if isinstance(event, PredictionSnapshot):
                snapshot = event
                self._ready_soon(READY_AFTER_SNAPSHOT_MS)
            elif isinstance(event, RunStarted) or (isinstance(event, BatchMetrics) and self.state == "starting"):
                self._set_state("running")
                self._ready_soon(READY_AFTER_START_MS)
            elif isinstance(event, CheckpointWritten):
                self.checkpoint_written.emit(history.run_dir)
            elif isinstance(event, TERMINAL):
                ended = event
        if history.state in ("paused", "running") and self.state != "stopping":
            self._set_state(history.state)
        self.events_received.emit(events)
        if snapshot is not None:
            self.snapshot_received.emit(snapshot)
        if ended is not None:
            self._end(ended)

    def _ready_soon(self, delay_ms: int) -> None:
        """Say "ready" after ``delay_ms`` (sooner if already scheduled for sooner), once per run."""
        if self._ready_said:
            return
        if not self._ready.isActive() or self._ready.remainingTime() > delay_ms:
            self._ready.start(delay_ms)

    def _say_ready(self) -> None:
        if self.process is not None and not self._ready_said:
            self._ready_said = True
            self.process.ready()
            self.first_step.emit()

    def _end(self, event: Event) -> None:
        self._timer.stop()
        self._ready.stop()
        if self.process is not None:  # it exits on its own after its last event; reap it later, never wait
            finished = self.process
            QTimer.singleShot(REAP_AFTER_MS, lambda: finished.join(0))
        self.process = None
        if self.document is not None:
            self.document.set_read_only(None)
        self._set_state("idle")
        self.run_ended.emit(event)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
