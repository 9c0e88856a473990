"""The learning-rate range test (``lr-find``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.training.lr_finder import lr_range_test, steepest_descent
from tests.search.projects import ROOT


def test_the_cnn_template_gets_a_rate_where_its_loss_falls() -> None:
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    result = lr_range_test(project, ROOT / "templates", steps=150)
    assert result.smoothed[-1] > 1.5 * min(result.smoothed)  # the rate grows until the loss rises again
    assert np.allclose(np.diff(np.log(result.lrs)), np.log(result.lrs[1] / result.lrs[0]))
    assert result.suggestion is not None and 1e-4 < result.suggestion < 0.1
    at = result.lrs.index(result.suggestion)
    assert result.smoothed[at] < result.smoothed[0]


def test_steepest_descent_is_before_the_lowest_point() -> None:
    lrs = list(np.logspace(-6, 1, 100))
    loss = [2.0 - 1.5 / (1 + np.exp(-(np.log10(lr) + 3) * 3)) + (0.5 * (np.log10(lr) + 0.5) ** 2 if lr > 0.3 else 0)
            for lr in lrs]
    suggestion = steepest_descent(lrs, loss)
    assert suggestion is not None and 3e-4 < suggestion < 3e-3
    assert steepest_descent(lrs, list(np.linspace(1, 3, 100))) is None  # the loss never falls


def test_a_loss_that_is_nan_from_the_start_blames_the_model_or_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.training.tasks.classification import ClassificationTask

    monkeypatch.setattr(ClassificationTask, "train_step", lambda self, x, y: {"loss": torch.tensor(float("nan"))})
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    with pytest.raises(UserError, match="the loss is nan at the very first step .* the model or the data is the "
                                        "problem"):
        lr_range_test(project, ROOT / "templates", steps=20)


def test_a_gan_is_refused() -> None:
    with pytest.raises(UserError, match="a GAN trains two networks"):
        lr_range_test(load_project(ROOT / "templates" / "gan_ring.json"), ROOT / "templates", steps=20)


def test_the_cli_prints_the_suggestion_as_json() -> None:
    result = subprocess.run([sys.executable, "main.py", "lr-find", "templates/fnn_spirals.json", "--steps", "60",
                             "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"lrs", "losses", "smoothed", "suggestion", "lowest", "stopped"}
    assert len(data["lrs"]) == len(data["losses"]) <= 60
