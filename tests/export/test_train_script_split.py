"""The exported train.py holds the test split out as the app does, and trains on a run's own rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.compile.export import export_model
from engine.graph.fileformat import load_project, save_project
from engine.training.events import Finished
from engine.training.trainer import Trainer, TrainOptions
from tests.conftest import ROOT


def _split_of(folder: Path, rows: int) -> tuple[list[int], list[int]]:
    """train.split(rows) as the generated script computes it (run in its own process)."""
    code = (f"import sys, json; sys.path.insert(0, {str(folder)!r}); import train; "
            f"a, b = train.split({rows}); print(json.dumps([list(map(int, a)), list(map(int, b))]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, timeout=120)
    assert result.returncode == 0, result.stderr
    train, val = json.loads(result.stdout)
    return train, val


def test_a_projects_script_holds_the_test_fraction_out(tmp_path: Path) -> None:
    project = load_project(ROOT / "templates" / "fnn_breast_cancer.json")
    project.training.update(test_fraction=0.25, validation_fraction=0.2)
    save_project(project, tmp_path / "model.json")
    export_model(tmp_path / "model.json", "python", tmp_path / "code")
    train, val = _split_of(tmp_path / "code", 569)
    assert len(val) == round(569 * 0.2) and len(train) == 569 - len(val) - round(569 * 0.25)
    assert not set(train) & set(val)


def test_an_exported_run_trains_on_the_runs_own_rows(tmp_path: Path) -> None:
    project = load_project(ROOT / "templates" / "fnn_breast_cancer.json")
    project.training.update(test_fraction=0.25)
    result = Trainer(TrainOptions(project, tmp_path / "run", ROOT / "templates", {"epochs": 1, "device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Finished), result
    export_model(tmp_path / "run", "python", tmp_path / "code")
    assert (tmp_path / "code" / "split.npz").is_file()
    train, val = _split_of(tmp_path / "code", 569)
    with np.load(tmp_path / "run" / "split.npz") as record:
        assert train == record["train_index"].tolist() and val == record["val_index"].tolist()
        assert not set(record["test_index"].tolist()) & set(train + val)
    subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=tmp_path / "code", check=True,
                   capture_output=True, timeout=300)
