"""Optimizers and the learning-rate schedule.

One :class:`LearningRateSchedule` covers every schedule (constant, step, cosine,
one-cycle, reduce-on-plateau) with optional linear warm-up, and the hand-set learning rate
of a paused run. A parameter group with an ``lr_scale`` (a layer's learning-rate multiplier)
gets the scheduled rate times that multiplier. It is a small state machine with a ``state_dict`` so a resumed run
continues on exactly the same curve.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable

from engine.training.performance import fused_optimizer

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.layers.base import Params


def make_optimizer(params: Iterable[Any], config: "Params") -> "torch.optim.Optimizer":
    """Build the optimizer the settings name (SGD, Adam, AdamW, RMSprop), fused where PyTorch can.

    Args:
        params: Parameters, or parameter groups ``{"params", "lr_scale"}`` (a layer's
            learning-rate multiplier, :mod:`engine.training.finetune`): each group's rate is
            the configured one times its ``lr_scale``.
        config: Training settings.
    """
    import torch

    params = list(params)
    lr, wd = config.lr, config.weight_decay
    if params and isinstance(params[0], dict):
        params = [{**group, "lr": lr * group.get("lr_scale", 1.0)} for group in params]
    if config.optimizer == "sgd":
        return fused_optimizer(torch.optim.SGD, params, lr=lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0, weight_decay=wd)
    if config.optimizer in ("adam", "adamw"):
        optimizer_class = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return fused_optimizer(optimizer_class, params, lr=lr, betas=(config.beta1, 0.999), weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd)


class LearningRateSchedule:
    """Learning rate per step for every schedule, with warm-up and manual changes.

    Args:
        optimizers: Optimizers whose learning rate this sets (a GAN has two).
        config: Training settings (``lr``, ``schedule``, ``step_size``, ``gamma``,
            ``warmup_epochs``).
        steps_per_epoch: Optimizer steps in one epoch.
        epochs: Planned epochs.
    """

    def __init__(self, optimizers: list["torch.optim.Optimizer"], config: "Params", steps_per_epoch: int,
                 epochs: int) -> None:
        self.optimizers = optimizers
        self.kind: str = config.schedule
        self.base_lr: float = config.lr
        self.step_size: int = config.step_size
        self.gamma: float = config.gamma
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = self.steps_per_epoch * epochs
        self.warmup_steps = int(config.warmup_epochs * self.steps_per_epoch)
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad_epochs = 0
        self.manual_scale = 1.0
        self.current = 0.0
        #: Whether the rate changes from step to step (constant and plateau change only at
        #: epoch ends and by hand, which apply themselves).
        self.per_step = self.kind in ("step", "cosine", "one_cycle") or self.warmup_steps > 0
        self.apply(0)

    # ------------------------------------------------------------------ curve
    def factor(self, step: int) -> float:
        """Multiplier of ``base_lr`` at optimizer step ``step`` (manual and plateau changes excluded)."""
        if self.kind == "one_cycle":
            return _one_cycle(step, self.total_steps)
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "step":
            return warm * self.gamma ** (step // (self.step_size * self.steps_per_epoch))
        if self.kind == "cosine":
            progress = min(1.0, max(0, step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
            return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm  # constant and plateau

    def apply(self, step: int) -> float:
        """Set every optimizer's learning rate for ``step`` and return it."""
        lr = self.base_lr * self.factor(step) * self.plateau_scale * self.manual_scale
        if lr != self.current:
            for optimizer in self.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)  # a layer's multiplier (fine-tuning)
            self.current = lr
        return lr

    def epoch_end(self, metric: float, lower_is_better: bool, step: int) -> None:
        """Reduce-on-plateau bookkeeping: after ``step_size`` bad epochs multiply by ``gamma``."""
        if self.kind != "plateau" or not math.isfinite(metric):
            return
        better = (self.plateau_best is None or (metric < self.plateau_best if lower_is_better
                                                else metric > self.plateau_best))
        if better:
            self.plateau_best, self.plateau_bad_epochs = metric, 0
            return
        self.plateau_bad_epochs += 1
        if self.plateau_bad_epochs >= self.step_size:
            self.plateau_scale *= self.gamma
            self.plateau_bad_epochs = 0
            self.apply(step)

    def set_learning_rate(self, lr: float, step: int) -> None:
        """Make the learning rate ``lr`` from now on; the schedule's shape continues from there."""
        scheduled = self.base_lr * self.factor(step) * self.plateau_scale
        self.manual_scale = lr / scheduled if scheduled > 0 else 1.0
        self.current = -1.0  # force apply
        self.apply(step)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Resumable state (plain numbers)."""
        return {"plateau_scale": self.plateau_scale, "plateau_best": self.plateau_best,
                "plateau_bad_epochs": self.plateau_bad_epochs, "manual_scale": self.manual_scale}

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        """Restore :meth:`state_dict` output and set the learning rate for ``step``."""
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])
        self.manual_scale = float(state["manual_scale"])
        self.current = -1.0
        self.apply(step)


def _one_cycle(step: int, total: int, warm_share: float = 0.3, final_div: float = 1e4) -> float:
    """Cosine one-cycle: rise from 1/25 to 1 over the first 30%, then anneal to 1/final_div."""
    warm = max(1, int(total * warm_share))
    if step < warm:
        start = 1 / 25
        return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / warm))
    progress = min(1.0, (step - warm) / max(1, total - warm))
    end = 1 / final_div
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))
