"""Single-model tasks: the shared step and evaluation, plus regression and forecasting."""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from engine.compile import CompiledModel
from engine.data.fit import check_input_fits
from engine.settings import DEFAULT_LOSS
from engine.training.tasks.base import Task, TaskError, check_output, require_single_io, to_list

LOSS_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "bce_with_logits": F.binary_cross_entropy_with_logits,
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "huber": F.huber_loss,
}


class SupervisedTask(Task):
    """One compiled model trained on ``loss(model(inputs), targets)``."""

    allowed_losses: ClassVar[tuple[str, ...]] = ("mse", "l1", "huber")

    def setup(self) -> CompiledModel:
        """Compile the graph, check it against the data, create the optimizer."""
        compiled = self.compile()
        require_single_io(compiled, f"a {self.name.replace('_', ' ')} model")
        check_input_fits(self.data.dataset, compiled.input_ids[0], compiled.input_specs[0])
        loss_name = DEFAULT_LOSS[self.name] if self.config.loss == "auto" else self.config.loss
        if loss_name not in self.allowed_losses:
            raise TaskError(f"training.loss: {loss_name} does not suit {self.name.replace('_', ' ')}; use one of "
                            f"{', '.join(self.allowed_losses)}")
        self.loss_name = loss_name
        self.loss_fn = LOSS_FUNCTIONS[loss_name]
        self.compiled = compiled
        self.model = compiled.module
        self.add_optimizer("model", self.model)
        return compiled

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs and loss targets for a batch (autoencoders override this)."""
        assert y is not None
        return x, y

    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of one batch."""
        return self.loss_fn(output, target)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        inputs, target = self.prepare_batch(x, y)
        with self.autocast():
            loss = self.compute_loss(self.model(inputs), target)
        self.optimize("model", loss, self.model)
        return {"loss": loss.detach()}

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-batch sums of the task's extra validation metrics (override)."""
        return {}

    def finish_metrics(self, sums: dict[str, float], count: int) -> dict[str, float]:
        """Turn summed metrics into reported values (override); ``sums['loss']`` is summed loss."""
        return {"loss": sums["loss"] / count}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        sums: dict[str, torch.Tensor] = {}
        count = 0
        with self.evaluating():
            for xb, yb in self.eval_batches(x, y):
                inputs, target = self.prepare_batch(xb, yb)
                output = self.model(inputs).float()
                batch = {"loss": self.compute_loss(output, target) * len(xb), **self.metric_sums(output, target)}
                for key, value in batch.items():
                    sums[key] = sums.get(key, 0) + value.detach().double()
                count += len(xb)
        return self.finish_metrics({k: float(v) for k, v in sums.items()}, max(count, 1))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs for ``x`` in eval mode, as float32."""
        with self.evaluating():
            return torch.cat([self.model(self.prepare_batch(xb, xb)[0]).float() for xb, _ in
                              self.eval_batches(x, None)])


class RegressionTask(SupervisedTask):
    """Predict real values; reports MAE (in the data's units) and R²."""

    name = "regression"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        compiled = self.setup()
        y = self.data.train_y
        assert y is not None
        check_output(self, compiled, tuple(y.shape[1:]), f"the {self.data.dataset.name} target")
        norm = self.data.y_normalization
        self.y_scale = torch.as_tensor(norm.std if norm is not None else np.ones(y.shape[1:]),
                                       dtype=torch.float32, device=self.device).reshape(-1)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        assert y is not None
        predicted = self.predict(x)
        target = y.to(self.device).float()
        residual = float((predicted - target).pow(2).sum())
        total = float((target - target.mean(0)).pow(2).sum())
        loss = float(self.compute_loss(predicted, target))
        mae = float(((predicted - target).abs().reshape(len(target), -1) * self.y_scale).mean())
        return {"loss": loss, "mae": mae, "r2": 1.0 - residual / total if total > 0 else 0.0}

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        assert y is not None
        count = min(len(x), 300)
        predicted = self._original(self.predict(x[:count]))
        target = self._original(y[:count].float())
        return "regression", {"target": to_list(target[:, 0]), "predicted": to_list(predicted[:, 0]),
                              "unit": "target"}

    def _original(self, values: torch.Tensor) -> np.ndarray:
        array = values.detach().cpu().numpy().reshape(len(values), -1)
        norm = self.data.y_normalization
        return norm.invert(array) if norm is not None else array


class ForecastingTask(RegressionTask):
    """Predict the next values of a series from a window of past values."""

    name = "forecasting"

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        assert y is not None
        order = np.argsort(self.data.val_index)[:200]
        index = torch.as_tensor(order, device=x.device)
        predicted = self._original(self.predict(x[index]))
        target = self._original(y[index].float())
        return "forecast", {"position": [int(i) for i in self.data.val_index[order]],
                            "target": to_list(target[:, 0]), "predicted": to_list(predicted[:, 0])}
