"""Setting a search up from a project: its settings checked, its metric chosen for the task,
its study opened, and the trial context built (what the CLI and the app share).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from engine.errors import UserError
from engine.graph.gan import is_gan
from engine.graph.project import Project
from engine.search.runner import SearchLimits, usable_cores
from engine.search.sampling import baseline_params
from engine.search.settings import StudySettings, study_settings
from engine.search.space import SearchSpace, parse_space
from engine.search.study import OpenStudy, default_storage, open_study
from engine.search.trial import TrialContext, TrialUpdate
from engine.settings import training_config


@dataclass
class SearchRequest:
    """What the user asked for (``search`` command line, or the app's Search panel).

    Args:
        project: The project with its ``search`` section.
        project_path: Its file (names the default study and folder); ``None`` when unsaved.
        out_dir: Folder of the trial runs (and of the SQLite study file by default).
        storage: Optuna storage URL (``None``: SQLite in ``out_dir``).
        join: Only join an existing study (a worker on another machine).
        trials: Trials the study should hold (``None``: the project's ``search.trials``).
        workers: Trials at a time in this process.
        timeout: Seconds after which no new trial starts.
        device: Where trials train (``None``: the project's setting).
    """

    project: Project
    project_path: Path | None
    out_dir: Path
    storage: str | None = None
    join: bool = False
    trials: int | None = None
    workers: int = 1
    timeout: float | None = None
    device: str | None = None


def checked_settings(project: Project, base_dir: Path | None) -> tuple[StudySettings, SearchSpace]:
    """The project's search settings and space, validated, with ``metric: auto`` resolved to the
    task's own validation metric.

    Raises:
        UserError: A bad ``search`` field, an empty space, or a task a search cannot score.
    """
    settings, space = study_settings(project.search), parse_space(project)
    if settings.metric != "auto":
        return settings, space
    task = training_config(project.training).task
    if task == "gan" or (task == "auto" and is_gan(project.graph)):
        raise UserError("search: a GAN has no validation metric that measures its samples' quality; a search "
                        "cannot rank its trials")
    if task == "auto":
        task = _task_from_data(project, base_dir)
    return dataclasses.replace(settings, metric="val_accuracy" if task == "classification" else "val_loss"), space


def _task_from_data(project: Project, base_dir: Path | None) -> str:
    from engine.data.registry import load_dataset
    from engine.settings import auto_task

    dataset = load_dataset(project.dataset, base_dir)
    return auto_task("auto", project.graph, dataset.target_kind, bool(dataset.extras.get("ordered")))


def study_name(project: Project, project_path: Path | None, settings: StudySettings) -> str:
    """The study's name: ``search.name``, else the project's name, else its file name."""
    return settings.name or project.name or (project_path.stem if project_path else "untitled")


def start_search(request: SearchRequest, report: Callable[[TrialUpdate], None],
                 weights_file: Path | None = None) -> tuple[TrialContext, SearchLimits, OpenStudy]:
    """Check the request, open (or create) its study and build what the runner needs.

    Raises:
        UserError: Bad settings, space, arguments or storage (one line each).
    """
    if request.workers < 1:
        raise UserError("search: --workers must be at least 1")
    if request.trials is not None and request.trials < 1:
        raise UserError("search: --trials must be at least 1")
    if request.timeout is not None and request.timeout <= 0:
        raise UserError("search: --timeout must be above 0 seconds")
    base_dir = request.project_path.parent if request.project_path else None
    settings, space = checked_settings(request.project, base_dir)
    config = training_config(request.project.training, {"device": request.device} if request.device else None)
    if not request.storage:
        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"{request.out_dir}: cannot create the search folder: {exc.strerror or exc}") from None
    storage = request.storage or default_storage(request.out_dir)
    seed = None if request.storage else int(config.seed)  # workers on several machines must not repeat
    opened = open_study(storage, study_name(request.project, request.project_path, settings), settings, space,
                        int(config.epochs), seed, request.join)
    baseline = baseline_params(request.project, space)
    if opened.created and baseline is not None and settings.sampler_name != "grid":
        opened.study.enqueue_trial(baseline, user_attrs={"baseline": True})  # trial 0: the project as it is
    trials = request.trials if request.trials is not None else settings.trials
    if settings.sampler_name == "grid":
        trials = min(trials, _grid_size(space))
    overrides: dict[str, Any] = {"device": request.device} if request.device else {}
    if not config.cpu_threads and request.workers > 1:  # K trials share the cores instead of each taking all
        overrides["cpu_threads"] = max(1, usable_cores() // request.workers)  # (one trial adapts to the load)
    context = TrialContext(request.project, base_dir, request.out_dir, opened.study, settings, space, overrides,
                           weights_file, report)
    return context, SearchLimits(trials, request.workers, request.timeout), opened


def _grid_size(space: SearchSpace) -> int:
    size = 1
    for dim in space.dimensions:
        size *= len(dim.grid_values())
    return size
