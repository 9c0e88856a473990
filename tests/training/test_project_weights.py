"""A new run starts from the weights saved beside the project (import/export), where they still fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from engine.compile import compile_graph
from engine.compile.weights import load_matching
from engine.graph.fileformat import save_project, sibling_weights
from engine.training.events import Event, Finished, RunStarted
from engine.training.trainer import Trainer, TrainOptions
from tests.conftest import ROOT
from tests.training.helpers import mlp_project


def _run(project, run_dir: Path | None = None, weights_file: Path | None = None,  # noqa: ANN001
         **overrides) -> tuple[Event, RunStarted]:
    events: list[Event] = []
    result = Trainer(TrainOptions(project, run_dir, overrides=overrides, weights_file=weights_file),
                     events.append).run()
    return result, next(e for e in events if isinstance(e, RunStarted))


def _trained_weights(tmp_path: Path) -> Path:
    """Train the MLP well once and keep its weights as ``mlp.safetensors`` beside ``mlp.json``."""
    project = mlp_project({"epochs": 8})
    _run(project, tmp_path / "first")
    save_project(project, tmp_path / "mlp.json")
    weights = tmp_path / "mlp.safetensors"
    weights.write_bytes((tmp_path / "first" / "model.safetensors").read_bytes())
    assert sibling_weights(tmp_path / "mlp.json") == weights
    return weights


def test_a_run_starts_from_the_project_weights(tmp_path: Path) -> None:
    weights = _trained_weights(tmp_path)
    fresh, started_fresh = _run(mlp_project(), epochs=1)
    warm, started_warm = _run(mlp_project(), weights_file=weights, epochs=1)
    assert started_fresh.initial_weights == ""
    assert started_warm.initial_weights == "started from mlp.safetensors: 4 of 4 tensors"
    assert isinstance(warm, Finished) and isinstance(fresh, Finished)
    assert warm.metrics["val_accuracy"] > fresh.metrics["val_accuracy"]  # one epoch on trained weights is ahead
    off, started_off = _run(mlp_project(), weights_file=weights, epochs=1, use_project_weights=False)
    assert started_off.initial_weights == "" and off.metrics == fresh.metrics


def test_an_edited_graph_reuses_what_still_fits(tmp_path: Path) -> None:
    weights = _trained_weights(tmp_path)
    edited = mlp_project(hidden=24)  # fc1 and fc2 change shape
    edited.graph.nodes["fc2"].params["out_features"] = 2
    result, started = _run(edited, weights_file=weights, epochs=1)
    assert isinstance(result, Finished)
    assert started.initial_weights.startswith("started from mlp.safetensors: 1 of 4 tensors; new: fc1.weight (shape ")
    assert "fc2.weight (shape 2x16 in the file, 2x24 in the graph)" in started.initial_weights


def test_load_matching_copies_by_name_and_shape_only() -> None:
    torch.manual_seed(0)
    module = compile_graph(mlp_project().graph).module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    stored = {"fc1.weight": torch.ones(16, 2), "fc2.weight": torch.ones(5, 5), "other.bias": torch.ones(3)}
    part = load_matching(module, stored)
    assert part.loaded == ["fc1.weight"]
    assert torch.equal(module.state_dict()["fc1.weight"], torch.ones(16, 2))
    assert torch.equal(module.state_dict()["fc2.weight"], before["fc2.weight"])
    assert part.fresh == ["fc1.bias (not in the file)", "fc2.weight (shape 5x5 in the file, 2x16 in the graph)",
                          "fc2.bias (not in the file)"]


def test_resume_ignores_the_project_weights(tmp_path: Path) -> None:
    weights = _trained_weights(tmp_path)
    save_file({k: torch.zeros_like(v) for k, v in load_file(str(weights)).items()}, str(weights))
    project = mlp_project({"epochs": 2})
    _run(project, tmp_path / "run", epochs=1)
    events: list[Event] = []
    Trainer(TrainOptions(project, tmp_path / "run", resume=True, weights_file=weights), events.append).run()
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.initial_weights == "" and started.start_epoch == 1


def test_cli_train_uses_the_sibling_weights(tmp_path: Path) -> None:
    _trained_weights(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(tmp_path / "mlp.json"), "--epochs",
                             "1", "--out", str(tmp_path / "cli"), "--quiet"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "started from mlp.safetensors: 4 of 4 tensors" in result.stdout
    first = json.loads((tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["initial_weights"] == "started from mlp.safetensors: 4 of 4 tensors"
