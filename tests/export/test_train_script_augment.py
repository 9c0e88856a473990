"""The exported train.py augments its training batches as the app does (augment_ops.py beside it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.compile.export import export_model
from engine.graph.fileformat import load_project, save_project
from tests.conftest import ROOT

AUGMENT = {"crop": "padded", "crop_padding": 1, "hflip": True, "rotation": 10.0, "erasing": 0.5, "mixup": 0.4}


def _export(tmp_path: Path, augment: dict | None) -> Path:
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    if augment is not None:
        project.dataset["augment"] = augment
    save_project(project, tmp_path / "model.json")
    export_model(tmp_path / "model.json", "python", tmp_path / "code")
    return tmp_path / "code"


def test_the_script_augments_as_the_app_does_and_trains(tmp_path: Path) -> None:
    code = _export(tmp_path, AUGMENT)
    script = (code / "train.py").read_text(encoding="utf-8")
    assert (code / "augment_ops.py").is_file() and "AUGMENT = {" in script
    assert "Augmentation of training batches: crop, hflip, rotation, erasing, mixup (augment_ops.py)." in script
    # The script's augmenter and the app's augment_batch, same generator seed: the same batch.
    check = f"""
import sys, torch
sys.path.insert(0, {str(code)!r})
import train
from engine.training.augment import AugmentOptions, augment_batch
x = torch.randn(16, 1, 8, 8); y = torch.randint(0, 10, (16,))
ours = train.augmenter(None, torch.device("cpu"), 0)
from engine.training.augment_ops import augment_seed
seed = augment_seed(train.SETTINGS["seed"])
app = augment_batch(x, y, AugmentOptions(**{AUGMENT!r}), torch.Generator().manual_seed(seed), (1, 8, 8), 10)
script = ours(x, y)
assert torch.equal(app[0], script[0]) and torch.equal(app[1], script[1]), "different batches"
assert not torch.equal(script[0], x) and script[1].shape == (16, 10)
print("same")
"""
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "same", result.stderr
    run = subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=code, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "epoch 1/1" in run.stdout and "val accuracy" in run.stdout


def test_a_project_without_augmentation_gets_no_ops_file(tmp_path: Path) -> None:
    code = _export(tmp_path, None)
    assert not (code / "augment_ops.py").exists()
    assert "AUGMENT = None" in (code / "train.py").read_text(encoding="utf-8")


def test_augmentation_that_does_not_fit_the_data_is_refused_as_training_would(tmp_path: Path) -> None:
    from engine.errors import UserError

    project = load_project(ROOT / "templates" / "fnn_breast_cancer.json")
    project.dataset["augment"] = {"rotation": 10.0}
    save_project(project, tmp_path / "model.json")
    with pytest.raises(UserError, match="dataset.augment.rotation: needs images"):
        export_model(tmp_path / "model.json", "python", tmp_path / "code")
