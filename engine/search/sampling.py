"""Optuna's side of a search space: suggesting a trial's values, and the sampler and pruner.

The search algorithms are Optuna's; this module only maps the project's declarations onto
them.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from engine.graph.project import Project
from engine.search.settings import StudySettings
from engine.search.space import Dimension, SearchSpace
from engine.settings import training_config


def suggest(trial: optuna.trial.BaseTrial, space: SearchSpace) -> dict[str, Any]:
    """Ask ``trial`` for one value per dimension (a resumed trial gets back the values it had).

    Returns:
        ``{target: value}``; an optional layer's value is True when the layer is kept.
    """
    return {d.target: _suggest_one(trial, d) for d in space.dimensions}


def _suggest_one(trial: optuna.trial.BaseTrial, dim: Dimension) -> Any:
    if dim.kind == "optional":
        return trial.suggest_categorical(dim.target, [True, False])
    if dim.kind == "choice":
        # Optuna's choices are JSON scalars: a list (a kernel size) travels as its index's text.
        if any(isinstance(c, list) for c in dim.choices):
            labels = [_label(c) for c in dim.choices]
            return dim.choices[labels.index(trial.suggest_categorical(dim.target, labels))]
        return trial.suggest_categorical(dim.target, list(dim.choices))
    assert dim.low is not None and dim.high is not None
    if dim.kind == "int":
        return trial.suggest_int(dim.target, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
    return trial.suggest_float(dim.target, dim.low, dim.high, step=dim.step, log=dim.log)


def _label(choice: Any) -> Any:
    return "x".join(str(v) for v in choice) if isinstance(choice, list) else choice


def baseline_params(project: Project, space: SearchSpace) -> dict[str, Any] | None:
    """The project's own values of the searched dimensions, as Optuna params (to run the project
    as it is as the study's first trial, the mark every other trial is compared with); ``None``
    when one of them lies outside its range or off its step (the project's configuration is then
    not in the space)."""
    training = training_config(project.training)
    params: dict[str, Any] = {}
    for dim in space.dimensions:
        parts = dim.target.split(".")
        if parts[0] == "training":
            value: Any = training[parts[1]]
        elif dim.kind == "optional":
            value = True
        elif parts[0] == "nodes" and parts[2] == "type":
            value = project.graph.nodes[parts[1]].type_id
        elif parts[0] == "nodes":
            value = project.graph.nodes[parts[1]].params[parts[2]]
        else:
            value = project.blocks[parts[1]].graph.nodes[parts[2]].params[parts[3]]
        value = list(value) if isinstance(value, tuple) else value
        if not _within(dim, value):
            return None
        params[dim.target] = _label(value) if dim.kind == "choice" else value
    return params


def _within(dim: Dimension, value: Any) -> bool:
    if dim.kind in ("choice", "optional"):
        return dim.kind == "optional" or value in dim.choices
    assert dim.low is not None and dim.high is not None
    if not dim.low <= value <= dim.high:
        return False
    return dim.step is None or abs((value - dim.low) / dim.step - round((value - dim.low) / dim.step)) < 1e-9


def stored_values(params: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The project values of a finished trial's Optuna ``params`` (list choices back from their labels)."""
    result = {}
    for dim in space.dimensions:
        if dim.target not in params:
            continue
        value = params[dim.target]
        if dim.kind == "choice" and any(isinstance(c, list) for c in dim.choices):
            value = next((c for c in dim.choices if _label(c) == value), value)
        result[dim.target] = value
    return result


def make_sampler(settings: StudySettings, space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    """The study's sampler. Grid search enumerates every combination of the space's values.

    Raises:
        UserError: Grid search over a continuous range.
    """
    name = settings.sampler_name
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        grid = {d.target: [_label(v) for v in d.grid_values()] for d in space.dimensions}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if name == "nsga2":  # Optuna's default generation of 50 would leave a 30-trial study random
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(8, settings.trials // 3)))
    with warnings.catch_warnings():  # multivariate TPE (it models how the values interact) is "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def make_pruner(settings: StudySettings, epochs: int) -> optuna.pruners.BasePruner:
    """The study's pruner: median, or Hyperband over the epochs.

    The median pruner judges a trial from a third of its epochs on, once 5 trials have finished:
    earlier, slow starters that end best are cut (on the CNN template, judging from epoch 1 cut
    a trial at 0.82 that would have reached 0.99, and the pruned search ended below the full one).
    """
    if not settings.prunes:
        return optuna.pruners.NopPruner()
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 9), max_resource=max(epochs, 3))
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 3))
