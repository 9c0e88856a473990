"""A run's curves, accumulated from its event stream (live, or read back from metrics.jsonl).

The dashboard draws these series; the same class reads finished runs from disk so earlier
runs of a project can be overlaid. Plain Python: no Qt, no torch.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.training.events import (
    BatchMetrics,
    EpochEnd,
    Event,
    Failed,
    Finished,
    GradientHealth,
    LearningRateChanged,
    PredictionSnapshot,
    RunStarted,
    StateChanged,
    event_from_json,
)
from engine.training.run_dir import METRICS_FILE, PROJECT_FILE, SNAPSHOT_FILE, read_run_info, settle_abandoned

#: The metric each task's second plot shows (validation value, higher or lower is better).
TASK_METRIC = {"classification": "accuracy", "regression": "r2", "forecasting": "mae", "autoencoder": "mse_vs_noise",
               "gan": "g_loss", "language_model": "perplexity"}

#: Weight of the past per training step in the smoothed batch loss. Batch events already
#: average the steps of their window, so the smoothing is per step, not per event: a fast
#: run (hundreds of steps per event) is barely smoothed, a slow one over ~20 steps.
SMOOTHING_PER_STEP = 0.95


@dataclass
class GradientSeries:
    """The gradient-health samples of a run, as series over the run's epochs (fractional).

    ``layers`` and ``relus`` keep the order the samples name them in (layer order); each series
    has one value per sample (``nan`` where a sample left the layer out). ``warnings`` are the
    latest sample's, ``step`` its global step.
    """

    x: list[float] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    update_ratio: dict[str, list[float]] = field(default_factory=dict)
    relus: list[str] = field(default_factory=list)
    dead: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    step: int = 0
    version: int = 0

    def add(self, event: GradientHealth, x: float) -> None:
        """Fold one sample in at epoch ``x``."""
        count = len(self.x)
        self.x.append(x)
        for layer in event.layers:
            node = str(layer.get("node", ""))
            if node not in self.grad_norm:
                self.layers.append(node)
                self.grad_norm[node], self.update_ratio[node] = [math.nan] * count, [math.nan] * count
            self.grad_norm[node].append(_number(layer.get("grad_norm")))
            self.update_ratio[node].append(_number(layer.get("update_ratio")))
        for relu, share in event.dead.items():
            if relu not in self.dead:
                self.relus.append(relu)
                self.dead[relu] = [math.nan] * count
            self.dead[relu].append(_number(share))
        for store in (self.grad_norm, self.update_ratio, self.dead):
            for series in store.values():  # a layer missing from this sample
                if len(series) < count + 1:
                    series.append(math.nan)
        self.warnings = [dict(w) for w in event.warnings if isinstance(w, dict)]
        self.step = event.global_step
        self.version += 1


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@dataclass
class RunHistory:
    """Everything the plots show of one run.

    The x axis of every series is the epoch, fractional for batches
    (``global_step / steps_per_epoch``), so runs with different batch sizes line up.
    """

    name: str
    run_dir: str = ""
    task: str = ""
    device: str = ""
    epochs_planned: int = 0
    steps_per_epoch: int = 1
    state: str = "starting"
    message: str = ""
    batch_x: list[float] = field(default_factory=list)
    batch_loss: list[float] = field(default_factory=list)
    batch_loss_smooth: list[float] = field(default_factory=list)
    lr_x: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epoch_x: list[float] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    lr_marks: list[tuple[float, float, float]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    snapshot: PredictionSnapshot | None = None
    gradients: GradientSeries = field(default_factory=GradientSeries)
    samples_per_s: float = 0.0
    global_step: int = 0
    epoch: int = 0
    version: int = 0
    _ema: float = 0.0
    _ema_weight: float = 0.0
    _ema_step: int = 0

    # ------------------------------------------------------------------ events
    def add(self, event: Event) -> None:
        """Fold one event into the series (unknown kinds are ignored)."""
        self.version += 1
        if isinstance(event, BatchMetrics):
            x = event.global_step / self.steps_per_epoch
            self.epoch, self.samples_per_s = event.epoch, event.samples_per_s
            loss = event.metrics.get("loss")
            if loss is not None and math.isfinite(loss):
                self.batch_x.append(x)
                self.batch_loss.append(loss)
                self.batch_loss_smooth.append(self._smoothed(loss, event.global_step))
            self.lr_x.append(x)
            self.lr.append(event.lr)
            self.global_step = event.global_step
        elif isinstance(event, EpochEnd):
            self._add_epoch(event)
        elif isinstance(event, GradientHealth):
            self.gradients.add(event, event.global_step / self.steps_per_epoch)
        elif isinstance(event, RunStarted):
            self.run_dir, self.task, self.device = event.run_dir, event.task, event.device
            self.epochs_planned, self.steps_per_epoch = event.epochs, max(1, event.steps_per_epoch)
            self.state = "running"
        elif isinstance(event, PredictionSnapshot):
            self.snapshot = event
        elif isinstance(event, LearningRateChanged):
            self.lr_marks.append((event.global_step / self.steps_per_epoch, event.old, event.new))
        elif isinstance(event, StateChanged):
            if event.state in ("paused", "running", "stopping"):
                self.state = event.state
        elif isinstance(event, Finished):
            self.state, self.final = ("stopped" if event.reason == "stopped" else "finished"), dict(event.metrics)
        elif isinstance(event, Failed):
            self.state, self.message = "failed", event.message

    def _smoothed(self, value: float, global_step: int) -> float:
        """Exponential moving average per step, debiased so the first points are not pulled to 0."""
        past = SMOOTHING_PER_STEP ** max(1, global_step - self._ema_step)
        self._ema_step = global_step
        self._ema = past * self._ema + (1 - past) * value
        self._ema_weight = past * self._ema_weight + (1 - past)
        return self._ema / self._ema_weight

    def _add_epoch(self, event: EpochEnd) -> None:
        self.epoch, self.global_step = event.epoch, event.global_step
        count = len(self.epoch_x)
        self.epoch_x.append(float(event.epoch))
        for store, values in ((self.train, event.train), (self.val, event.val)):
            for key, value in values.items():
                series = store.setdefault(key, [math.nan] * count)
                series.append(float(value))
            for key, series in store.items():  # a metric missing this epoch
                if len(series) < count + 1:
                    series.append(math.nan)
        self.samples_per_s = event.samples_per_s

    def epoch_records(self) -> list[dict]:
        """Per epoch ``{"epoch", "train", "val"}`` with the finite values (as EpochEnd events carry
        them; what :func:`~engine.training.overfitting.overfitting_since` reads)."""
        return [{"epoch": int(epoch),
                 "train": {k: v[i] for k, v in self.train.items() if i < len(v) and math.isfinite(v[i])},
                 "val": {k: v[i] for k, v in self.val.items() if i < len(v) and math.isfinite(v[i])}}
                for i, epoch in enumerate(self.epoch_x)]

    def extend(self, events: Iterable[Event]) -> None:
        """Add several events."""
        for event in events:
            self.add(event)

    # ------------------------------------------------------------------ queries
    @property
    def metric_name(self) -> str:
        """The task's headline metric (``accuracy``, ``r2``, ...)."""
        name = TASK_METRIC.get(self.task, "loss")
        return name if name in self.val or name in self.train else "loss"

    def metric_series(self) -> tuple[tuple[str, list[float]], tuple[str, list[float]]]:
        """The metric plot's two per-epoch series, ``(label, values)`` each.

        Training and validation values of the headline metric; for a GAN, the generator's
        and the discriminator's losses, which is what one watches there.
        """
        if self.task == "gan" and "d_loss" in self.train:
            return ("generator", self.train.get("g_loss", [])), ("discriminator", self.train["d_loss"])
        name = self.metric_name
        return ("train", self.train.get(name, [])), ("validation", self.val.get(name, []))

    @property
    def active(self) -> bool:
        """Whether the run has not ended."""
        return self.state in ("starting", "running", "paused", "stopping")

    def final_metric(self) -> tuple[str, float] | None:
        """The latest validation value of the headline metric."""
        name = self.metric_name
        series = self.val.get(name) or self.train.get(name)
        values = [v for v in series or [] if math.isfinite(v)]
        return (name, values[-1]) if values else None

    def summary(self) -> str:
        """One line for the run list: state and the latest metric."""
        metric = self.final_metric()
        shown = f"{metric[0]} {_format(metric[1], metric[0])}" if metric else "no epoch yet"
        return f"{self.state} · epoch {len(self.epoch_x)}/{self.epochs_planned or '?'} · {shown}"

    # -------------------------------------------------------------------- files
    @classmethod
    def from_run_dir(cls, path: Path) -> RunHistory:
        """Rebuild a finished (or interrupted) run from its folder.

        Unreadable lines are skipped: a run cut off mid-write still shows what it logged.
        """
        path = Path(path)
        settle_abandoned(path)  # a run whose writer died unseen gets its closing line first
        history = cls(name=path.name, run_dir=str(path))
        metrics = path / METRICS_FILE
        if metrics.is_file():
            with open(metrics, encoding="utf-8") as lines:
                for line in lines:
                    try:
                        history.add(event_from_json(json.loads(line)))
                    except (ValueError, TypeError, KeyError):
                        continue
        history.run_dir = str(path)  # where it is now: a folder that moved keeps its old path in the log
        history._read_status(path)
        snapshot = path / SNAPSHOT_FILE
        if snapshot.is_file():
            try:
                event = event_from_json(json.loads(snapshot.read_text(encoding="utf-8")))
                history.snapshot = event if isinstance(event, PredictionSnapshot) else None
            except (OSError, ValueError, TypeError):
                pass
        return history

    def _read_status(self, path: Path) -> None:
        """A run whose log has no closing event ended without one (crash or kill)."""
        if not self.active:
            return
        status = read_run_info(path).get("status")
        self.state = status if status in ("finished", "stopped", "failed") else "interrupted"

    def write_csv(self, path: Path) -> None:
        """Per-epoch metrics (and learning rate) as CSV, one row per epoch."""
        columns = [f"train_{k}" for k in self.train] + [f"val_{k}" for k in self.val]
        series = list(self.train.values()) + list(self.val.values())
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["epoch", *columns])
            for row, epoch in enumerate(self.epoch_x):
                writer.writerow([int(epoch), *(values[row] for values in series)])


def _format(value: float, name: str) -> str:
    return f"{value:.1%}" if name == "accuracy" else f"{value:.4g}"


def list_runs(root: Path) -> list[Path]:
    """Run folders under ``root`` (oldest first), those with a metrics log."""
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / METRICS_FILE).is_file()]
    return sorted(runs, key=lambda p: (p / METRICS_FILE).stat().st_mtime)


_PROJECT_IDS: dict[Path, tuple[int, str | None]] = {}


def run_project_id(run_dir: Path) -> str | None:
    """The ``id`` of the project a run trained (from its frozen ``project.json``).

    ``None`` for runs of projects without an id (made before ids existed, or by the command
    line from such a file) and for unreadable files. Results are cached per file version.
    """
    path = Path(run_dir) / PROJECT_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    cached = _PROJECT_IDS.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("id")
    except (OSError, ValueError, AttributeError):
        value = None
    project_id = value if isinstance(value, str) and value else None
    _PROJECT_IDS[path] = (stamp, project_id)
    return project_id
