"""Classification: cross-entropy (or BCE for one logit), accuracy, top-k, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.training.tasks.base import TaskError, check_output, to_list
from engine.training.tasks.supervised import SupervisedTask

SAMPLES_SHOWN = 16
GRID = 60


class ClassificationTask(SupervisedTask):
    """Predict one class per sample."""

    name = "classification"
    default_metric = "val_accuracy"
    allowed_losses = ("cross_entropy", "bce_with_logits")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        compiled = self.setup()
        self.num_classes = self.data.dataset.num_classes
        if self.num_classes < 2:
            raise TaskError(f"dataset {self.data.dataset.name} has {self.num_classes} class(es); "
                            "classification needs at least 2")
        if self.loss_name == "bce_with_logits":
            if self.num_classes != 2:
                raise TaskError(f"training.loss: bce_with_logits classifies two classes; "
                                f"{self.data.dataset.name} has {self.num_classes}: use cross_entropy")
            check_output(self, compiled, (1,), "binary cross-entropy (one logit per sample)")
        else:
            check_output(self, compiled, (self.num_classes,), f"{self.data.dataset.name} "
                         f"with {self.num_classes} classes")
        self.top_k = self.config.top_k if self.num_classes > self.config.top_k else 0

    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss; ``target`` is class ids ``(N,)`` or, after mixup / cutmix, class probabilities ``(N, classes)``."""
        soft = target.dim() == 2
        if self.loss_name == "bce_with_logits":
            return self.loss_fn(output.squeeze(1), (target[:, 1] if soft else target).to(output.dtype))
        return self.loss_fn(output, target.to(output.dtype)) if soft else self.loss_fn(output, target)

    def predicted_classes(self, output: torch.Tensor) -> torch.Tensor:
        """Class ids from logits."""
        if self.loss_name == "bce_with_logits":
            return (output.squeeze(1) > 0).long()
        return output.argmax(1)

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        """Class probabilities from logits, (N, classes)."""
        if self.loss_name == "bce_with_logits":
            p = torch.sigmoid(output.squeeze(1))
            return torch.stack([1 - p, p], dim=1)
        return torch.softmax(output, dim=1)

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        sums = {"correct": (self.predicted_classes(output) == target).sum()}
        if self.top_k:
            top = output.topk(self.top_k, dim=1).indices
            sums["correct_top_k"] = (top == target[:, None]).any(1).sum()
        return sums

    def finish_metrics(self, sums: dict[str, float], count: int) -> dict[str, float]:
        result = {"loss": sums["loss"] / count, "accuracy": sums["correct"] / count}
        if self.top_k:
            result[f"top{self.top_k}_accuracy"] = sums["correct_top_k"] / count
        return result

    def confusion_matrix(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        """Counts of (true class, predicted class) over ``x``."""
        predicted = self.predicted_classes(self.predict(x))
        flat = y.long() * self.num_classes + predicted
        counts = torch.bincount(flat, minlength=self.num_classes ** 2)
        return counts.reshape(self.num_classes, self.num_classes).cpu().numpy()

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        assert y is not None
        dataset = self.data.dataset
        names = dataset.class_names or [str(i) for i in range(self.num_classes)]
        confusion = self.confusion_matrix(x, y).tolist()
        if dataset.sample_dims == (2,):
            return "decision_boundary", {**self._decision_grid(), "class_names": names, "confusion": confusion}
        count = min(SAMPLES_SHOWN, len(x))
        probabilities = self.probabilities(self.predict(x[:count]))
        raw = dataset.x[self.data.val_index[:count]]
        raw = raw / np.float32(255) if raw.dtype == np.uint8 else raw  # a streamed image folder's pixels
        samples = []
        for i in range(count):
            top = torch.topk(probabilities[i], min(3, self.num_classes))
            samples.append({"true": int(y[i]), "predicted": int(top.indices[0]),
                            "top": [[int(c), round(float(p), 4)] for c, p in zip(top.indices, top.values)]})
        payload: dict[str, Any] = {"class_names": names, "samples": samples, "confusion": confusion}
        if dataset.image_shape is not None:
            payload["images"] = to_list(raw.reshape(count, *dataset.image_shape), 3)
        return "classification", payload

    def _decision_grid(self) -> dict[str, Any]:
        """Predicted class and confidence on a grid over the data, with the points (original units)."""
        raw = self.data.dataset.x
        seen = raw[np.concatenate([self.data.train_index, self.data.val_index])]  # never the test rows
        lo, hi = seen.min(0), seen.max(0)
        pad = (hi - lo) * 0.1 + 1e-6
        xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID, dtype=np.float32)
        ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID, dtype=np.float32)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        norm = self.data.x_normalization
        inputs = torch.as_tensor(norm.apply(grid) if norm is not None else grid, device=self.device)
        probabilities = self.probabilities(self.predict(inputs))
        confidence, predicted = probabilities.max(1)
        shown = np.concatenate([self.data.train_index[:400], self.data.val_index[:200]])
        return {"x_range": [float(xs[0]), float(xs[-1])], "y_range": [float(ys[0]), float(ys[-1])],
                "size": GRID, "predicted": predicted.cpu().numpy().reshape(GRID, GRID).tolist(),
                "confidence": to_list(confidence.reshape(GRID, GRID), 3),
                "points": to_list(raw[shown], 3), "labels": [int(v) for v in self.data.dataset.y[shown]],
                "validation": [False] * min(400, len(self.data.train_index)) +
                              [True] * min(200, len(self.data.val_index))}
