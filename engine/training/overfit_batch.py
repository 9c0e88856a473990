"""Overfit one batch: a fresh copy of the model trains on a single batch until its loss is near
zero, or the test reports that it cannot fit even that (a wiring or capacity problem, or a
learning rate far off). Seconds, and it says more about a broken network than an epoch does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.graph.project import Project
from engine.training.scratch_task import scratch_task

#: The batch counts as fitted when the loss falls to this share of its first value...
FIT_SHARE = 0.02
#: ...or below this absolute value.
FIT_LOSS = 0.01


@dataclass(frozen=True)
class OverfitResult:
    """How training on one batch went.

    Args:
        fitted: Whether the loss reached the target.
        steps: Steps taken.
        first_loss: The loss of the first step.
        last_loss: The loss of the last step.
        seconds: Wall time of the steps.
        samples: Samples in the batch.
    """

    fitted: bool
    steps: int
    first_loss: float
    last_loss: float
    seconds: float
    samples: int

    def message(self) -> str:
        """One line: the verdict and what to do."""
        figures = f"loss {self.first_loss:.4g} -> {self.last_loss:.4g} in {self.steps} steps ({self.seconds:.1f} s)"
        if self.fitted:
            return f"fits one batch of {self.samples}: {figures}; the wiring can learn"
        return (f"cannot fit one batch of {self.samples}: {figures}; a network that cannot memorize a few samples "
                f"has a wiring or capacity problem (a missing activation, a too narrow layer, frozen layers) or a "
                f"learning rate far off (python main.py lr-find FILE)")


def overfit_one_batch(project: Project, base_dir: Path | None, max_steps: int = 300, device_name: str | None = None,
                      progress: Callable[[int, float], None] | None = None) -> OverfitResult:
    """Train a fresh copy of the model on the first training batch, at the project's settings.

    Raises:
        UserError: Bad settings or data, or a GAN.
    """
    scratch = scratch_task(project, base_dir, device_name, "overfit-batch")
    task = scratch.task
    _, (x, y) = next(iter(scratch.batches.epoch(0)))
    first = last = math.nan
    started = time.perf_counter()
    step = 0
    for step in range(1, max_steps + 1):
        last = float(task.train_step(x, y)["loss"])
        first = last if step == 1 else first
        if progress is not None:
            progress(step, last)
        if not math.isfinite(last) or last <= max(FIT_LOSS, FIT_SHARE * first):
            break
    fitted = math.isfinite(last) and last <= max(FIT_LOSS, FIT_SHARE * first)
    return OverfitResult(fitted, step, first, last, time.perf_counter() - started, len(x))
