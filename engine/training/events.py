"""The typed event stream a training run produces.

The same events feed the CLI progress bar, the GUI dashboard, and ``metrics.jsonl`` in the
run directory. They are plain dataclasses of JSON-safe values, so they cross process
boundaries (multiprocessing queues) and files unchanged. ``event_from_json`` reverses
``Event.to_json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base class: every event knows its ``kind`` and the time it was made."""

    kind: ClassVar[str] = "event"
    time: float

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data with a ``"type"`` field naming the event (a shallow copy: payloads
        are already plain data, and deep-copying a snapshot would cost milliseconds)."""
        return {"type": self.kind, **self.__dict__}


@dataclass(frozen=True)
class RunStarted(Event):
    """The run has a model, data and device, and is about to take its first step."""

    kind: ClassVar[str] = "run_started"
    run_dir: str
    device: str
    device_name: str
    task: str
    epochs: int
    steps_per_epoch: int
    parameters: int
    train_samples: int
    val_samples: int
    start_epoch: int
    config: dict[str, Any] = field(default_factory=dict)
    #: Where the weights came from when not freshly initialized (one line), else "".
    initial_weights: str = ""


@dataclass(frozen=True)
class BatchMetrics(Event):
    """Training metrics of recent batches (rate-limited to a few per second)."""

    kind: ClassVar[str] = "batch"
    epoch: int
    step: int
    global_step: int
    metrics: dict[str, float]
    lr: float
    samples_per_s: float


@dataclass(frozen=True)
class EpochEnd(Event):
    """An epoch finished: averaged training metrics and validation metrics."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    global_step: int
    train: dict[str, float]
    val: dict[str, float]
    lr: float
    seconds: float
    samples_per_s: float


@dataclass(frozen=True)
class GradientHealth(Event):
    """A sample of gradient health (every ``training.gradient_every`` steps).

    ``layers``: per layer with weights, in layer order, ``{"node", "grad_norm", "update_ratio"}``
    (the step's update size over the weights' size); ``dead``: per ReLU, the share of its units
    that were 0 for every sample of the batch; ``warnings``: plain-language problems, each
    ``{"kind": "vanishing" | "exploding" | "dead", "message"}``.
    """

    kind: ClassVar[str] = "gradients"
    epoch: int
    global_step: int
    layers: list[dict[str, Any]]
    dead: dict[str, float]
    warnings: list[dict[str, str]]


@dataclass(frozen=True)
class PredictionSnapshot(Event):
    """What the model predicts now, as a payload a view draws without the model.

    ``view`` names the payload's layout: ``classification``, ``decision_boundary``,
    ``regression``, ``forecast``, ``reconstruction``, ``gan_images``, ``gan_points``,
    ``text``.
    """

    kind: ClassVar[str] = "snapshot"
    epoch: int
    global_step: int
    view: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class CheckpointWritten(Event):
    """A resumable checkpoint was written."""

    kind: ClassVar[str] = "checkpoint"
    epoch: int
    global_step: int
    path: str


@dataclass(frozen=True)
class StateChanged(Event):
    """The run was paused, resumed or asked to stop (takes effect within one batch)."""

    kind: ClassVar[str] = "state"
    state: str
    global_step: int


@dataclass(frozen=True)
class LearningRateChanged(Event):
    """The learning rate was set by hand (plots mark the step)."""

    kind: ClassVar[str] = "lr_changed"
    global_step: int
    epoch: int
    old: float
    new: float


@dataclass(frozen=True)
class Finished(Event):
    """The run ended normally: all epochs, early stopping, or stopped by the user."""

    kind: ClassVar[str] = "finished"
    reason: str
    epochs_completed: int
    global_step: int
    metrics: dict[str, float]
    run_dir: str


@dataclass(frozen=True)
class Failed(Event):
    """The run ended with a problem; ``message`` says what happened and what to do.

    ``reason`` is one of ``nan``, ``out_of_memory``, ``crashed``, ``data``, ``graph``, ``error``.
    """

    kind: ClassVar[str] = "failed"
    reason: str
    message: str
    details: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (RunStarted, BatchMetrics, EpochEnd, GradientHealth, PredictionSnapshot, CheckpointWritten,
                              StateChanged, LearningRateChanged, Finished, Failed)
}
TERMINAL = (Finished, Failed)
#: Failure reasons the user can fix (exit 1); any other failure is internal (exit 2).
USER_FAILURES = ("nan", "out_of_memory", "data", "graph", "config")


def exit_code(end: Event) -> int:
    """The process exit code of a run that ended with ``end``: 0 finished (or stopped), 1 a
    failure the user can fix, 2 an internal one."""
    if isinstance(end, Finished):
        return 0
    return 1 if isinstance(end, Failed) and end.reason in USER_FAILURES else 2


def event_from_json(data: dict[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_json` output.

    Raises:
        ValueError: Unknown event type or fields.
    """
    try:
        cls = EVENT_TYPES[data["type"]]
    except KeyError:
        raise ValueError(f"unknown event type {data.get('type')!r}") from None
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
