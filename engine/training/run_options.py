"""What a training run is given and what setting it up produces: :class:`TrainOptions` (the CLI,
the app's worker process, search trials and distributed ranks fill it), :class:`DistributedInfo`
(this process's rank) and :class:`RunState` (everything the epochs of :class:`~engine.training.trainer.Trainer`
use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.graph.project import Project
from engine.layers.base import Params
from engine.training.augment import Augmenter
from engine.training.batches import BatchSource
from engine.training.gradient_health import GradientProbe
from engine.training.optim import LearningRateSchedule
from engine.training.tasks import Task

#: Longest wait for the app's dashboard to draw the run's first view before the first step.
VIEWER_READY_S = 2.0


@dataclass
class DistributedInfo:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int


@dataclass
class TrainOptions:
    """What to train and where to write it.

    Args:
        project: The frozen project.
        run_dir: The run folder (``None``: write nothing, e.g. benchmarks).
        base_dir: Folder that relative dataset paths resolve against.
        overrides: Settings from the command line (``epochs``, ``device``, ``seed``...).
        resume: Continue from ``run_dir``'s checkpoint.
        distributed: Rank information under torchrun.
        weights_file: The project's own weights (``name.safetensors`` beside ``name.json``), which a
            new run starts from when the ``use_project_weights`` setting is on.
        wait_for_viewer: After the run's start and first prediction snapshot, wait (at most
            :data:`VIEWER_READY_S`) for the app's "ready" before the first step.
    """

    project: Project
    run_dir: Path | None = None
    base_dir: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    distributed: DistributedInfo | None = None
    weights_file: Path | None = None
    wait_for_viewer: bool = False


@dataclass
class RunState:
    """What setting a run up produces: everything its epochs use.

    Args:
        config: The validated settings (project section plus overrides).
        device: Where the run trains.
        task_name: The resolved task (``classification``, ``gan``...).
        task: Models, optimizers, loss and metrics.
        batches: Batches of both splits.
        schedule: The learning-rate schedule.
        validation: The validation tensors (inputs, targets).
        snapshot_data: The samples prediction snapshots show.
        val_count: Validation samples.
        start_epoch: The epoch the loop starts in (after a resume).
        start_batch: The batch of ``start_epoch`` it starts at (a run stopped mid-epoch).
        epoch_sums: Metric sums of the part of ``start_epoch`` already trained.
        history: Per-epoch metrics so far.
        best: The best watched validation value so far.
        initial_weights: Where the starting weights came from (one line), else "".
        augmenter: Augments training batches (``None``: augmentation off).
        probe: Samples gradient health (``None``: off, or not rank 0).
    """

    config: Params
    device: torch.device
    task_name: str
    task: Task
    batches: BatchSource
    schedule: LearningRateSchedule
    validation: tuple[torch.Tensor, torch.Tensor | None]
    snapshot_data: tuple[torch.Tensor, torch.Tensor | None]
    val_count: int
    start_epoch: int = 0
    start_batch: int = 0
    epoch_sums: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    initial_weights: str = ""
    augmenter: Augmenter | None = None
    probe: GradientProbe | None = None
