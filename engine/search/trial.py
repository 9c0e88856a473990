"""One trial of a search: the searched values applied, the model checked and measured, then a
normal training run in its own worker process, its epochs reported to Optuna for pruning.

Every trial is a run folder like any other (``trial-0007``), so it can be resumed, evaluated,
exported and overlaid.
"""

from __future__ import annotations

import math
import re
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna

from engine.errors import UserError
from engine.graph.fileformat import dumps
from engine.graph.project import Project
from engine.search.apply import apply_values
from engine.search.sampling import suggest
from engine.search.settings import LOWER_IS_BETTER, StudySettings
from engine.search.space import SearchSpace
from engine.search.trial_cost import latency_ms, model_cost
from engine.training.events import EpochEnd, Failed, Finished
from engine.training.run_dir import epoch_metric


@dataclass
class TrialUpdate:
    """What a trial did, for the progress bar and the Experiments panel.

    ``state``: ``running`` (an epoch ended), ``complete``, ``pruned``, ``failed`` or
    ``interrupted`` (stopped with a checkpoint; the next search resumes it). ``baseline``: the
    trial runs the project's own values (a new study's first trial, when they lie in the space).
    """

    number: int
    state: str
    params: dict[str, Any]
    run: str
    epoch: int = 0
    metric: float | None = None
    values: list[float] | None = None
    message: str = ""
    seconds: float = 0.0
    baseline: bool = False


@dataclass
class TrialContext:
    """What every trial of one search shares."""

    project: Project
    base_dir: Path | None
    out_dir: Path
    study: optuna.Study
    settings: StudySettings
    space: SearchSpace
    overrides: dict[str, Any]
    weights_file: Path | None
    report: Callable[[TrialUpdate], None]
    make_process: Callable[..., Any] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.make_process is None:
            from engine.training.worker import TrainingProcess

            self.make_process = TrainingProcess


def run_dir_of(out_dir: Path, study_name: str, number: int) -> Path:
    """The run folder of trial ``number`` of the study ``study_name``: ``<out>/<study>/trial-0007``
    (one folder per study, so studies sharing a storage file never share a trial folder)."""
    folder = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-.") or "study"
    return out_dir / folder / f"trial-{number:04d}"


class TrialRun:
    """Run one Optuna trial to its end (or to an interruption) and tell the study.

    Args:
        context: The search's shared parts.
        trial: The trial (a fresh one from ``ask``, or a stale running one to continue).
        resume: Continue the trial's run folder from its checkpoint.
    """

    def __init__(self, context: TrialContext, trial: optuna.Trial, resume: bool = False) -> None:
        self.context, self.trial, self.resume = context, trial, resume
        self.run_dir = run_dir_of(context.out_dir, context.study.study_name, trial.number)
        self.process: Any = None
        self.stop_after_epoch = False
        self.params: dict[str, Any] = {}
        self._metric_values: list[float] = []
        self._pruned = False
        self._started = time.monotonic()

    def run(self) -> TrialUpdate:
        """Train the trial and tell the study how it ended; returns the final update."""
        started = self._started = time.monotonic()
        ctx, trial = self.context, self.trial
        try:
            self.params = suggest(trial, ctx.space)
            earlier = None if self.resume else same_values(ctx.study, trial.number, trial.params)
            if earlier is not None:
                return self._repeat(earlier, started)
            for key, value in (("run", str(self.run_dir.resolve())), ("host", socket.gethostname()),
                               ("pid", os.getpid())):
                trial.set_user_attr(key, value)
            project = apply_values(ctx.project, self.params)
            cost = model_cost(project)
            trial.set_user_attr("flops", cost.flops)
            trial.set_user_attr("parameters", cost.parameters)
            latency = latency_ms(project) if "latency" in ctx.settings.objectives else None
            if latency is not None:
                trial.set_user_attr("latency_ms", latency)
        except UserError as exc:
            return self._fail(str(exc), started)
        if self.resume:
            self._metric_values = _history(self.run_dir, ctx.settings.metric)
        end = self._train(project)
        seconds = time.monotonic() - started
        if isinstance(end, TrialUpdate):
            return end
        if isinstance(end, Failed):
            return self._fail(end.message, started)
        if self._pruned:
            ctx.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return self._update("pruned", seconds, f"pruned after epoch {len(self._metric_values)}")
        if end.reason == "stopped" and self.stop_after_epoch:
            return self._update("interrupted", seconds, "stopped; the next search continues it from its checkpoint")
        if not self._metric_values:
            return self._fail("the trial ended before its first epoch", started)
        values = [self._best()]
        for objective in ctx.settings.objectives[1:]:
            values.append(float(latency if objective == "latency" else getattr(cost, objective)))
        trial.set_user_attr("seconds", seconds)
        ctx.study.tell(trial, values)
        return self._update("complete", seconds, values=values)

    # ---------------------------------------------------------------- training
    def _train(self, project: Project) -> Finished | Failed | TrialUpdate:
        ctx = self.context
        self.process = ctx.make_process(dumps(project), self.run_dir, ctx.base_dir, dict(ctx.overrides),
                                        self.resume and (self.run_dir / "checkpoint.pt").exists(), ctx.weights_file)
        self.process.start()
        try:
            while self.process.running:
                for event in self.process.poll(timeout=0.2):
                    if isinstance(event, EpochEnd):
                        problem = self._epoch(event)
                        if problem:
                            self.process.stop()
                            self.process.join(timeout=30)
                            return self._fail(problem, self._started)
        finally:
            self.process.join(timeout=30)
        end = self.process.finished
        assert isinstance(end, (Finished, Failed))
        return end

    def _epoch(self, event: EpochEnd) -> str | None:
        """Note an epoch's metric, report it for pruning; returns a problem that ends the trial."""
        metric = self.context.settings.metric
        name = metric.removeprefix("val_")
        if name not in event.val:
            return f"the task reports no {metric} (it reports {', '.join('val_' + k for k in event.val)}); " \
                   f"choose another search.metric"
        value = float(event.val[name])
        if not math.isfinite(value):
            return f"{metric} is {value} at epoch {event.epoch}"
        self._metric_values.append(value)
        self.context.report(TrialUpdate(self.trial.number, "running", self.params, str(self.run_dir),
                                        epoch=event.epoch, metric=value))
        if self.context.settings.prunes and not self._pruned:
            self.trial.report(value, event.epoch)
            if self.trial.should_prune():
                self._pruned = True
                self.process.stop()
        if self.stop_after_epoch:
            self.process.stop()
        return None

    def _repeat(self, earlier: optuna.trial.FrozenTrial, started: float) -> TrialUpdate:
        """The sampler asked for values a completed trial already trained: tell its result again
        rather than train the same configuration twice (the trial points at that trial's run)."""
        message = f"the same values as trial {earlier.number}: its result counts again (not trained twice)"
        for key in ("run", "flops", "parameters", "latency_ms"):
            if key in earlier.user_attrs:
                self.trial.set_user_attr(key, earlier.user_attrs[key])
        self.trial.set_user_attr("repeat_of", earlier.number)
        self.trial.set_user_attr("message", message)
        values = list(earlier.values)
        self.context.study.tell(self.trial, values)
        update = TrialUpdate(self.trial.number, "complete", self.params, str(earlier.user_attrs.get("run", "")),
                             values=values, message=message, seconds=time.monotonic() - started)
        self.context.report(update)
        return update

    def stop_now(self) -> None:
        """Stop the trial's training within one batch (it writes a checkpoint; the trial stays to be resumed)."""
        self.stop_after_epoch = True
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """End the trial's training process at once."""
        if self.process is not None:
            self.process.kill()

    # ------------------------------------------------------------------ ending
    def _best(self) -> float:
        lower = self.context.settings.metric in LOWER_IS_BETTER
        return min(self._metric_values) if lower else max(self._metric_values)

    def _fail(self, message: str, started: float) -> TrialUpdate:
        self.trial.set_user_attr("message", message)
        self.context.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)
        return self._update("failed", time.monotonic() - started, message)

    def _update(self, state: str, seconds: float, message: str = "", values: list[float] | None = None) -> TrialUpdate:
        update = TrialUpdate(self.trial.number, state, self.params, str(self.run_dir), epoch=len(self._metric_values),
                             values=values, message=message, seconds=seconds,
                             baseline=bool(self.trial.user_attrs.get("baseline")))
        self.context.report(update)
        return update


def same_values(study: optuna.Study, number: int, params: dict[str, Any]) -> optuna.trial.FrozenTrial | None:
    """A completed trial of ``study`` (other than ``number``) whose Optuna parameters are exactly ``params``, or
    ``None``."""
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if frozen.number != number and frozen.params == params and frozen.values is not None:
            return frozen
    return None


def _history(run_dir: Path, metric: str) -> list[float]:
    """The metric's value at each epoch a stopped trial already trained (from its ``metrics.jsonl``)."""
    return [value for _, value in epoch_metric(run_dir / "metrics.jsonl", metric)]
