"""The exported train.py fine-tunes as the app does: frozen layers keep their weights and batch-norm
statistics, learning-rate multipliers become parameter groups."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.compile.export import export_model
from engine.graph.fileformat import save_project
from tests.export.test_python_source import _run, import_file
from tests.training.test_finetune import _project


def test_train_py_leaves_frozen_layers_as_loaded_and_scales_learning_rates(tmp_path: Path) -> None:
    project = _project()
    project.graph.set_training("fc2", "lr_scale", 2.5)
    path = tmp_path / "frozen.json"
    save_project(project, path)
    folder = export_model(path, "python", tmp_path / "export").paths[0].parent
    script = (folder / "train.py").read_text(encoding="utf-8")
    assert "FROZEN = ['conv1', 'bn1']" in script and "LR_SCALES = {'fc2': 2.5}" in script
    result = _run(folder, sys.executable, "train.py", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    start, trained = load_file(str(folder / "model.safetensors")), load_file(str(folder / "trained.safetensors"))
    for key in ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked"):
        assert torch.equal(start[key], trained[key]), key
    assert not torch.equal(start["fc1.weight"], trained["fc1.weight"])
    assert not torch.equal(start["fc2.weight"], trained["fc2.weight"])


def test_train_py_groups_parameters_by_multiplier(tmp_path: Path) -> None:
    project = _project()
    project.graph.set_training("fc2", "lr_scale", 2.5)
    path = tmp_path / "frozen.json"
    save_project(project, path)
    folder = export_model(path, "python", tmp_path / "export").paths[0].parent
    sys.path.insert(0, str(folder))
    try:
        script = import_file(folder / "train.py", "generated_finetune_train")
        model = import_file(folder / "model.py", "model").build_model()
        optimizer = script.make_optimizer(script.trainable_groups(model))
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("model", None)
    lr = script.SETTINGS["lr"]
    assert [(g["lr_scale"], g["lr"], len(g["params"])) for g in optimizer.param_groups] == [(1.0, lr, 2),
                                                                                             (2.5, 2.5 * lr, 2)]
    assert not model.conv1.weight.requires_grad and model.fc1.weight.requires_grad
    script.train_mode(model)
    assert model.training and model.fc1.training and not model.bn1.training
