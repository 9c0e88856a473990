"""One-click diagnostics: overfit one batch, and the overfitting watch."""

from __future__ import annotations

import subprocess
import sys

from engine.graph.fileformat import load_project
from engine.training.overfit_batch import overfit_one_batch
from engine.training.overfitting import overfitting_advice, overfitting_since
from tests.search.projects import ROOT


def test_the_cnn_template_memorizes_one_batch() -> None:
    result = overfit_one_batch(load_project(ROOT / "templates" / "cnn_digits.json"), ROOT / "templates")
    assert result.fitted and result.steps < 300 and result.samples == 64
    assert result.last_loss <= 0.02 * result.first_loss
    assert result.message().startswith("fits one batch of 64: loss 2.")


def test_a_model_that_cannot_learn_is_told_so() -> None:
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    project.training["lr"] = 1e-8  # as good as no learning
    result = overfit_one_batch(project, ROOT / "templates", max_steps=20)
    assert not result.fitted and result.steps == 20
    assert "cannot fit one batch of 64" in result.message() and "lr-find" in result.message()


def test_the_cli_exits_1_when_the_batch_is_not_fitted(tmp_path) -> None:  # noqa: ANN001
    project = load_project(ROOT / "templates" / "fnn_spirals.json")
    project.training["lr"] = 1e-8
    from engine.graph.fileformat import save_project

    save_project(project, tmp_path / "p.json")
    result = subprocess.run([sys.executable, "main.py", "overfit-batch", str(tmp_path / "p.json"), "--steps", "10"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout.startswith("cannot fit one batch of 32")


def _history(train: list[float], val: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train": {"loss": t}, "val": {"loss": v}} for i, (t, v) in enumerate(zip(train, val))]


def test_the_watch_speaks_when_validation_stalls_and_training_keeps_improving() -> None:
    assert overfitting_since(_history([1.0, 0.8, 0.6, 0.5, 0.4, 0.3], [1.0, 0.7, 0.6, 0.62, 0.65, 0.7])) == 3
    assert overfitting_since(_history([1.0, 0.8, 0.6, 0.5, 0.4], [1.0, 0.7, 0.6, 0.62, 0.65])) is None  # 2 epochs
    assert overfitting_since(_history([1.0, 0.8, 0.6, 0.6, 0.4, 0.3], [1.0, 0.7, 0.6, 0.62, 0.65, 0.7])) is None
    accuracy = [{"epoch": i + 1, "train": {"loss": 1.0 - i / 10}, "val": {"accuracy": a}}
                for i, a in enumerate([0.5, 0.8, 0.79, 0.78, 0.78])]
    assert overfitting_since(accuracy, "accuracy") == 2
    assert "training.early_stopping_patience" in overfitting_advice(3, "loss")
