"""A fresh copy of a project's model, data and optimizer, set up as training sets them up, for
the quick diagnostics that train a throwaway copy (the learning-rate range test, overfitting
one batch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserError
from engine.graph.project import Project

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.base import Params
    from engine.training.batches import BatchSource
    from engine.training.tasks import Task


@dataclass
class ScratchTask:
    """The task (model, optimizer, loss), its training batches and the settings."""

    task: Task
    batches: BatchSource
    config: Params


def scratch_task(project: Project, base_dir: Path | None, device_name: str | None, what: str) -> ScratchTask:
    """Load the data and build a freshly initialised task, seeded by ``training.seed``.

    Args:
        project: The project.
        base_dir: Folder its dataset paths are relative to.
        device_name: ``auto``, ``cpu``, ``cuda`` or ``mps`` (``None``: the project's setting).
        what: The diagnostic's command name, for messages.

    Raises:
        UserError: Bad settings or data, or a GAN (two networks, two optimizers).
    """
    import torch

    from engine.data import load_dataset, prepare_data
    from engine.graph.flat_project import flat_project
    from engine.settings import training_config
    from engine.training.batches import BatchSource
    from engine.training.devices import select_device
    from engine.training.tasks import make_task, resolve_task

    project = flat_project(project)
    config = training_config(project.training, {"device": device_name} if device_name else None)
    torch.manual_seed(config.seed)
    dataset = load_dataset(project.dataset, base_dir)
    data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize,
                        config.test_fraction).without_test()
    task_name = resolve_task(config, project, dataset)
    if task_name == "gan":
        raise UserError(f"{what}: a GAN trains two networks with two optimizers; this diagnostic trains one")
    task = make_task(task_name, project, data, config, select_device(config.device), None)
    return ScratchTask(task, BatchSource(data, task.device, config.batch_size, config.seed), config)
