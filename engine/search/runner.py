"""Running a study: K trials at a time, each in its own training process, until the study has
its trials, the time is up, or the user stops it.

The search process itself only asks Optuna for values and tells it results (the ask-and-tell
interface); the training happens in worker processes, so a trial that crashes or is killed is
marked failed and the study goes on. Stopping (Ctrl+C) lets each running trial finish its
epoch and write a checkpoint; those trials stay "running" in the study, and the next search
on the same study continues them from their checkpoints. Workers on other machines join
through a shared storage (Optuna's distributed mode): the trial count is the study's.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import psutil

from engine.search.trial import TrialContext, TrialRun, TrialUpdate, run_dir_of
from engine.training.run_lock import is_being_written

#: Seconds to wait for the training process of a search that was killed to stop writing its trial.
ORPHAN_STOP_S = 15.0
_COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL,
            optuna.trial.TrialState.RUNNING)


def usable_cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """Trials at a time when ``--workers`` is not given: one per core, at most 4."""
    return min(usable_cores(), 4)


@dataclass
class SearchLimits:
    """When a search stops starting trials.

    Args:
        trials: Trials the study should hold in all (over every worker and machine).
        workers: Trials this process runs at a time.
        timeout: Seconds after which no new trial starts (``None``: no limit).
    """

    trials: int
    workers: int
    timeout: float | None = None


class SearchRunner:
    """Run trials of ``context.study`` in ``limits.workers`` lanes until the study is done.

    Args:
        context: The search's shared parts (study, project, space, where trials go).
        limits: Trial count, workers and time limit.
    """

    def __init__(self, context: TrialContext, limits: SearchLimits) -> None:
        self.context, self.limits = context, limits
        self._lock = threading.Lock()
        self._running: dict[int, TrialRun] = {}
        self._stale: list[tuple[optuna.trial.FrozenTrial, bool]] = []
        self._stops = 0
        self._deadline = None if limits.timeout is None else time.monotonic() + limits.timeout
        self.updates: list[TrialUpdate] = []

    # ------------------------------------------------------------------ public
    def run(self) -> list[TrialUpdate]:
        """Run the study's remaining trials (continuing stopped ones first); blocks until done.

        Returns:
            The final update of every trial this call ran.
        """
        self._stale = self._stale_trials()
        lanes = [threading.Thread(target=self._lane, name=f"search-lane-{i}", daemon=True)
                 for i in range(max(1, self.limits.workers))]
        for lane in lanes:
            lane.start()
        for lane in lanes:
            while lane.is_alive():
                lane.join(timeout=0.2)  # wake for signals (Ctrl+C) on the main thread
        return [u for u in self.updates if u.state != "running"]

    def stop(self) -> None:
        """First call: start no new trial, let running ones finish their epoch and checkpoint.
        Second: stop them within one batch. Third: kill them."""
        with self._lock:
            self._stops += 1
            stops, running = self._stops, list(self._running.values())
        for trial_run in running:
            if stops == 1:
                trial_run.stop_after_epoch = True
            elif stops == 2:
                trial_run.stop_now()
            else:
                trial_run.kill()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stops > 0

    # ------------------------------------------------------------------- lanes
    def _lane(self) -> None:
        while True:
            with self._lock:
                job = self._next_trial()
                if job is None:
                    return
                trial_run = TrialRun(self.context, *job)
                self._running[trial_run.trial.number] = trial_run
            try:
                update = trial_run.run()
            except Exception as exc:  # noqa: BLE001 - a trial's surprise must not end the study
                update = trial_run._fail(f"internal error: {type(exc).__name__}: {exc}", trial_run._started)
            finally:
                with self._lock:
                    self._running.pop(trial_run.trial.number, None)
            self.updates.append(update)

    def _next_trial(self) -> tuple[optuna.Trial, bool] | None:
        """The next trial to run (a stale one to continue, else a new one); ``None`` when done."""
        if self._stops or (self._deadline is not None and time.monotonic() > self._deadline):
            return None
        study = self.context.study
        if self._stale:
            frozen, resume = self._stale.pop(0)
            return optuna.Trial(study, frozen._trial_id), resume
        if len(study.get_trials(deepcopy=False, states=_COUNTED)) >= self.limits.trials:
            return None
        return study.ask(), False

    # --------------------------------------------------------- stale trials
    def _stale_trials(self) -> list[tuple[optuna.trial.FrozenTrial, bool]]:
        """Running trials of this machine whose search process has gone: continue them.

        One with a checkpoint resumes from it (one that had finished training ends at once and
        is told from its history); one that never trained starts again.
        """
        result = []
        host = socket.gethostname()
        for frozen in self.context.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            attrs = frozen.user_attrs
            pid = attrs.get("pid")
            if attrs.get("host") != host or (isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid()):
                continue
            run_dir = run_dir_of(self.context.out_dir, self.context.study.study_name, frozen.number)
            deadline = time.monotonic() + ORPHAN_STOP_S
            while is_being_written(run_dir) and time.monotonic() < deadline:
                time.sleep(0.2)  # the training process of a killed search stops after its batch
            if is_being_written(run_dir):
                continue
            result.append((frozen, (run_dir / "checkpoint.pt").exists()))
        return result


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial of ``study`` as a plain row: number, state, params, values, run, message, seconds."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name.lower(), "params": dict(t.params),
                     "values": list(t.values) if t.values is not None else None,
                     "run": t.user_attrs.get("run", ""), "host": t.user_attrs.get("host", ""),
                     "message": t.user_attrs.get("message", ""), "flops": t.user_attrs.get("flops"),
                     "parameters": t.user_attrs.get("parameters"), "baseline": bool(t.user_attrs.get("baseline")),
                     "seconds": (t.duration.total_seconds() if t.duration else None)})
    return rows


def out_dir_for(project_path: Path | None, root: Path = Path("runs")) -> Path:
    """A search's default folder: ``runs/<project>-search`` (the study file and the trial runs)."""
    return root / f"{project_path.stem if project_path else 'untitled'}-search"
