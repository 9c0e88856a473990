"""Trainers per task. :func:`make_task` picks one from the settings and the dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.training.tasks.base import Task, TaskError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.data.base import ArrayDataset, PreparedData
    from engine.graph.project import Project
    from engine.layers.base import Params

def resolve_task(config: "Params", project: "Project", dataset: "ArrayDataset") -> str:
    """The task name for ``auto``: from the dataset, GAN when the graph has a Noise Input."""
    from engine.settings import auto_task

    return auto_task(str(config.task), project.graph, dataset.target_kind, bool(dataset.extras.get("ordered")))


def make_task(name: str, project: "Project", data: "PreparedData", config: "Params", device: "torch.device",
              amp_dtype: "torch.dtype | None") -> Task:
    """Build the task ``name`` (its models on ``device``, its optimizers)."""
    from engine.training.tasks.autoencoder import AutoencoderTask
    from engine.training.tasks.classification import ClassificationTask
    from engine.training.tasks.gan import GanTask
    from engine.training.tasks.language import LanguageModelTask
    from engine.training.tasks.supervised import ForecastingTask, RegressionTask

    classes: dict[str, type[Task]] = {cls.name: cls for cls in (
        ClassificationTask, RegressionTask, ForecastingTask, AutoencoderTask, GanTask, LanguageModelTask)}
    return classes[name](project, data, config, device, amp_dtype)


__all__ = ["Task", "TaskError", "make_task", "resolve_task"]
