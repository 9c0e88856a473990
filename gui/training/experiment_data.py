"""What the Experiments panel shows of a study, as plain values (no Qt, no database).

A :class:`StudyView` holds one :class:`TrialRow` per trial (with its metric per epoch), the
searched parameters as :class:`Axis` objects, the best trial, the Pareto front, Optuna's
parameter importances, and where the project's own configuration lies;
:mod:`gui.training.study_reading` fills it from a study off the GUI thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: States of a trial as the table names them (Optuna's ``fail`` reads ``failed``).
STATE_WORDS = {"complete": "complete", "pruned": "pruned", "fail": "failed", "failed": "failed",
               "running": "running", "waiting": "waiting", "interrupted": "stopped"}


@dataclass(frozen=True)
class Axis:
    """One searched parameter as the plots draw it.

    Args:
        target: The search target (``training.lr``, ``nodes.fc2.out_features``).
        kind: ``float``, ``int`` or ``choice``.
        low: Lower bound of a range.
        high: Upper bound of a range.
        log: Whether the range is sampled on a log scale (drawn on one too).
        choices: The values of a choice (Optuna's form: a kernel size is ``"3x3"``).
    """

    target: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        """A short name: the target without its ``training.`` / ``nodes.`` prefix."""
        return self.target.split(".", 1)[-1] if "." in self.target else self.target

    def position(self, value: Any) -> float | None:
        """``value`` on the axis, from 0 (low or first choice) to 1; ``None`` when it is not on it."""
        if self.kind == "choice":
            if value not in self.choices:
                return None
            return 0.5 if len(self.choices) == 1 else self.choices.index(value) / (len(self.choices) - 1)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        low, high, value = float(self.low), float(self.high), float(value)
        if self.log and low > 0 and value > 0:
            low, high, value = math.log(low), math.log(high), math.log(value)
        return 0.5 if high == low else min(1.0, max(0.0, (value - low) / (high - low)))

    def ends(self) -> tuple[str, str]:
        """The texts of the axis's ends (bottom, top)."""
        if self.kind == "choice":
            return (format_value(self.choices[0]), format_value(self.choices[-1])) if self.choices else ("", "")
        return format_value(self.low), format_value(self.high)


@dataclass
class TrialRow:
    """One trial of the study, as plain values."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None = None
    run: str = ""
    message: str = ""
    seconds: float | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)
    baseline: bool = False  # the trial runs the project as it is (a new study's first trial)


@dataclass
class StudyView:
    """Everything the Experiments panel draws of one study (see :func:`read_study`)."""

    name: str
    objectives: list[str]
    directions: list[str]
    axes: list[Axis]
    trials: list[TrialRow]
    best: int | None = None
    pareto: set[int] = field(default_factory=set)
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    template_trial: int | None = None
    template_costs: dict[str, float] = field(default_factory=dict)
    template_note: str = ""

    def trial(self, number: int) -> TrialRow | None:
        """The trial numbered ``number``."""
        return next((t for t in self.trials if t.number == number), None)

    def complete(self) -> list[TrialRow]:
        """The complete trials (those with values), in trial order."""
        return [t for t in self.trials if t.state == "complete" and t.values]


def format_value(value: Any) -> str:
    """A parameter or objective value in a few characters (``0.00443``, ``64``, ``relu``)."""
    if isinstance(value, bool):
        return "kept" if value else "left out"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != value or math.isinf(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def format_objective(value: Any) -> str:
    """An objective's value with a fixed number of decimals between 0.001 and 10 (``1.0000`` beside
    ``0.9944``, not ``1``), else as :func:`format_value` writes it."""
    if isinstance(value, float) and (value == 0.0 or 1e-3 <= abs(value) < 10):
        return f"{value:.4f}"
    return format_value(value)


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` beats ``b`` in ``direction`` (``maximize`` / ``minimize``)."""
    return a > b if direction == "maximize" else a < b


def pareto_front(trials: list[TrialRow], directions: list[str]) -> set[int]:
    """Numbers of the complete trials no other complete trial dominates."""
    done = [t for t in trials if t.values and len(t.values) == len(directions)]

    def dominates(a: list[float], b: list[float]) -> bool:
        no_worse = all(x == y or better(x, y, d) for x, y, d in zip(a, b, directions))
        return no_worse and any(better(x, y, d) for x, y, d in zip(a, b, directions))

    return {t.number for t in done if not any(dominates(o.values, t.values) for o in done if o is not t)}  # type: ignore[arg-type]


def best_trial(trials: list[TrialRow], directions: list[str], front: set[int]) -> int | None:
    """The best complete trial by the first objective (with several objectives: on the Pareto front)."""
    done = [t for t in trials if t.values and (len(directions) == 1 or t.number in front)]
    best: TrialRow | None = None
    for t in done:
        if best is None or better(t.values[0], best.values[0], directions[0]):  # type: ignore[index]
            best = t
    return best.number if best is not None else None
