"""The learning-rate range test: train a fresh copy of the model for a few hundred steps with
an exponentially rising learning rate, record the loss, and suggest the rate where the loss
falls fastest (Leslie Smith's test, as fastai's ``lr_find`` runs it).

Nothing is saved: the copy's weights are thrown away. Use the suggestion as ``training.lr``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.errors import UserError
from engine.graph.project import Project
from engine.training.scratch_task import scratch_task

#: Smoothing of the recorded loss (an exponential moving average, bias-corrected).
SMOOTHING = 0.98
#: The test stops once the smoothed loss exceeds this multiple of its lowest value.
DIVERGENCE = 4.0


@dataclass
class LrRange:
    """What a range test recorded and what it suggests.

    Args:
        lrs: Learning rate of each step.
        losses: Training loss of each step.
        smoothed: The smoothed loss of each step.
        suggestion: Where the smoothed loss fell fastest (``None`` when it never fell).
        stopped: Why the test ended (``diverged``, ``end of range``).
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    stopped: str = "end of range"

    @property
    def lowest(self) -> float | None:
        """The learning rate of the lowest smoothed loss."""
        return self.lrs[int(np.argmin(self.smoothed))] if self.smoothed else None


def lr_range_test(project: Project, base_dir: Path | None, steps: int = 200, start: float = 1e-7,
                  end: float = 10.0, device_name: str | None = None,
                  progress: Callable[[int, float, float], None] | None = None) -> LrRange:
    """Run the range test on a fresh copy of ``project``'s model.

    Args:
        project: The project (its data, model and optimizer settings).
        base_dir: Folder its dataset paths are relative to.
        steps: Optimizer steps from ``start`` to ``end``.
        start: First learning rate.
        end: Last learning rate.
        device_name: ``auto``, ``cpu``, ``cuda`` or ``mps`` (default: the project's setting).
        progress: Called after each step with ``(step, lr, loss)``.

    Raises:
        UserError: Bad arguments, a GAN (two optimizers), or a loss that is not finite from the
            first step (the model or the data is the problem, not the learning rate).
    """
    if steps < 10 or not 0 < start < end:
        raise UserError("lr-find: needs at least 10 steps and 0 < --start < --end")
    scratch = scratch_task(project, base_dir, device_name, "lr-find")
    task, batches = scratch.task, scratch.batches
    result = LrRange()
    factor = (end / start) ** (1.0 / (steps - 1))
    average, epoch = 0.0, 0
    while len(result.lrs) < steps and result.stopped == "end of range":
        for _, (x, y) in batches.epoch(epoch):
            step = len(result.lrs)
            if step == steps:
                break
            lr = start * factor ** step
            for optimizer in task.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
            loss = float(task.train_step(x, y)["loss"])
            if step == 0 and not math.isfinite(loss):
                raise UserError(f"lr-find: the loss is {loss} at the very first step (learning rate {start:g}): the "
                                f"model or the data is the problem, not the learning rate")
            average = SMOOTHING * average + (1 - SMOOTHING) * (loss if math.isfinite(loss) else 1e30)
            smoothed = average / (1 - SMOOTHING ** (step + 1))
            result.lrs.append(lr)
            result.losses.append(loss)
            result.smoothed.append(smoothed)
            if progress is not None:
                progress(step, lr, loss)
            if not math.isfinite(loss) or (step > 10 and smoothed > DIVERGENCE * min(result.smoothed)):
                result.stopped = "diverged"
                break
        epoch += 1
    result.suggestion = steepest_descent(result.lrs, result.smoothed)
    return result


def steepest_descent(lrs: list[float], smoothed: list[float]) -> float | None:
    """The learning rate where the smoothed loss falls fastest against log(lr), before its lowest
    point (the first tenth of the steps, still noisy, left out); ``None`` when it never falls."""
    lowest = int(np.argmin(smoothed)) if smoothed else 0
    skip = max(1, len(lrs) // 10)
    if lowest - skip < 2:
        return None
    slopes = np.gradient(np.asarray(smoothed[skip:lowest + 1]), np.log(np.asarray(lrs[skip:lowest + 1])))
    index = int(np.argmin(slopes))
    return float(lrs[skip + index]) if slopes[index] < 0 else None
