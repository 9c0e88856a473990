"""The ``search`` section's study settings: objectives, metric, sampler, pruner, trials, name.

``space`` is read by :mod:`engine.search.space`; everything else here, each field with a
default so ``{"space": {...}}`` alone is a complete search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from engine.errors import UserError

#: What a study can minimize or maximize. ``metric`` is the task's validation metric.
OBJECTIVES = ("metric", "flops", "parameters", "latency")
SAMPLERS = ("auto", "tpe", "random", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "none")
#: Validation metrics a search can optimize (``auto``: the task's own).
METRICS = ("auto", "val_loss", "val_accuracy", "val_mae", "val_r2", "val_perplexity")
#: Metrics where lower is better (the others are maximized).
LOWER_IS_BETTER = ("val_loss", "val_mae", "val_perplexity")
_FIELDS = ("space", "name", "objectives", "metric", "sampler", "pruner", "trials")


@dataclass(frozen=True)
class StudySettings:
    """The study part of a project's ``search`` section, validated.

    Args:
        name: The study's name in its storage (empty: the project's name or file name).
        objectives: What the study optimizes, the metric first.
        metric: The validation metric (``auto`` until :meth:`resolved`).
        sampler: How trials choose values (``auto``: TPE for one objective, NSGA-II for several).
        pruner: How unpromising trials stop early (only with one objective).
        trials: How many trials the study runs in all (over every worker and machine).
    """

    name: str = ""
    objectives: tuple[str, ...] = ("metric",)
    metric: str = "auto"
    sampler: str = "auto"
    pruner: str = "median"
    trials: int = 20

    @property
    def sampler_name(self) -> str:
        """The sampler ``auto`` stands for."""
        if self.sampler != "auto":
            return self.sampler
        return "nsga2" if len(self.objectives) > 1 else "tpe"

    @property
    def directions(self) -> list[str]:
        """Optuna's direction per objective (the metric's from its name, the costs minimized)."""
        metric_lower = self.metric in LOWER_IS_BETTER
        return ["minimize" if o != "metric" or metric_lower else "maximize" for o in self.objectives]

    @property
    def prunes(self) -> bool:
        """Whether trials are pruned: Optuna prunes single-objective studies only."""
        return self.pruner != "none" and len(self.objectives) == 1

    def objective_names(self) -> list[str]:
        """Column names of the objectives (``val_accuracy``, ``flops``...)."""
        return [self.metric if o == "metric" else o for o in self.objectives]


def study_settings(section: Mapping[str, Any]) -> StudySettings:
    """Validate the ``search`` section's study fields.

    Raises:
        UserError: ``search.<field>: <problem>`` for the first bad one.
    """
    for key in section:
        if key not in _FIELDS:
            raise UserError(f"search.{key}: unknown field (known: {', '.join(_FIELDS)})")
    name = section.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise UserError("search.name: must be text of at most 200 characters")
    objectives = section.get("objectives", ["metric"])
    if not isinstance(objectives, list) or not objectives or any(o not in OBJECTIVES for o in objectives):
        raise UserError(f"search.objectives: must be a list of {', '.join(OBJECTIVES)}, got {objectives!r}")
    if objectives[0] != "metric" or len(set(objectives)) != len(objectives):
        raise UserError("search.objectives: the first objective is \"metric\" (the validation metric), then "
                        "any of flops, parameters, latency, each once")
    values = {"metric": METRICS, "sampler": SAMPLERS, "pruner": PRUNERS}
    for key, allowed in values.items():
        if section.get(key, "auto" if key != "pruner" else "median") not in allowed:
            raise UserError(f"search.{key}: must be one of {', '.join(allowed)}, got {section[key]!r}")
    trials = section.get("trials", 20)
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 100_000:
        raise UserError(f"search.trials: must be a whole number from 1 to 100000, got {trials!r}")
    settings = StudySettings(name, tuple(objectives), section.get("metric", "auto"), section.get("sampler", "auto"),
                             section.get("pruner", "median"), trials)
    if settings.sampler == "nsga2" and len(objectives) == 1:
        raise UserError("search.sampler: nsga2 searches several objectives; with the metric alone use tpe")
    return settings
