"""``evaluate``: metrics on the held-out test split equal a hand computation with the run's weights;
the trainer never sees test rows; JSON, CSV and the one-line refusals."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.cli import run_cli
from engine.compile import compile_graph
from engine.data import ArrayDataset, load_dataset, prepare_data
from engine.data.splits import three_way_split
from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.graph.flat_project import flat_project
from engine.graph.project import Project
from engine.training.evaluate import Evaluation, evaluate_run
from engine.training.events import (
    Event,
    Failed,
    Finished,
    PredictionSnapshot,
    exit_code,
)
from engine.training.split_file import SPLIT_FILE, write_split
from engine.training.trainer import Trainer, TrainOptions
from tests.conftest import ROOT
from tests.training.helpers import chain_project, mlp_project


def _train(project: Project, run_dir: Path, epochs: int = 1) -> list[Event]:
    events: list[Event] = []
    result = Trainer(TrainOptions(project, run_dir, ROOT / "templates", {"epochs": epochs, "device": "cpu"}),
                     events.append).run()
    assert isinstance(result, Finished), result
    return events


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN template trained one epoch with a test part of 0.2."""
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    project.training["test_fraction"] = 0.2
    run = tmp_path_factory.mktemp("evaluate") / "cnn"
    _train(project, run)
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained without a test part (the default)."""
    run = tmp_path_factory.mktemp("evaluate") / "mlp"
    _train(mlp_project(), run)
    return run


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(["evaluate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------ the numbers
def test_metrics_equal_a_hand_computation_with_the_checkpoint(digits_run: Path) -> None:
    result = evaluate_run(digits_run)
    data = load_dataset({"name": "digits"})
    with np.load(digits_run / SPLIT_FILE) as record:
        train, val, test = record["train_index"], record["val_index"], record["test_index"]
    assert len(test) == round(0.2 * len(data)) and result.samples == len(test)
    assert not set(test) & set(train) and not set(test) & set(val)
    # normalization: one mean and std per channel over the training images alone
    images = data.x[train].astype(np.float64)
    mean, std = images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))
    x = ((data.x[test] - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    y = torch.from_numpy(data.y[test])  # type: ignore[index]
    model = compile_graph(flat_project(load_project(digits_run / "project.json")).graph).module.eval()
    model.load_state_dict(load_file(str(digits_run / "model.safetensors")))
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    predicted = logits.argmax(1)
    assert result.metrics["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    assert result.metrics["accuracy"] == int((predicted == y).sum()) / len(y)
    top3 = int((logits.topk(3, 1).indices == y[:, None]).any(1).sum()) / len(y)
    assert result.metrics["top3_accuracy"] == top3
    truth, guess = y.numpy(), predicted.numpy()
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (truth, guess), 1)
    np.testing.assert_array_equal(result.confusion, confusion)
    for c, scores in enumerate(result.per_class):
        hits = confusion[c, c]
        assert scores.name == str(c) and scores.support == confusion[c].sum()
        precision = hits / confusion[:, c].sum() if confusion[:, c].sum() else 0.0
        recall = hits / confusion[c].sum()
        assert scores.precision == pytest.approx(precision) and scores.recall == pytest.approx(recall)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert scores.f1 == pytest.approx(f1)
    assert result.macro["f1"] == pytest.approx(np.mean([s.f1 for s in result.per_class]))
    probabilities = torch.softmax(logits, 1)
    assert [r.index for r in result.rows] == [int(i) for i in test]
    assert [r.prediction for r in result.rows] == [str(int(p)) for p in guess]
    assert [r.true for r in result.rows] == [str(int(t)) for t in truth]
    np.testing.assert_allclose([r.confidence for r in result.rows], probabilities.max(1).values.numpy(), atol=1e-5)
    assert result.weights == "model.safetensors (end of run)"


def test_the_validation_split_gives_the_trainers_last_numbers(digits_run: Path) -> None:
    final = json.loads((digits_run / "run.json").read_text())["final_metrics"]
    result = evaluate_run(digits_run, "val")
    assert result.samples == json.loads((digits_run / "run.json").read_text())["split"]["val"]
    assert result.metrics["loss"] == pytest.approx(final["val_loss"], rel=1e-5)
    assert result.metrics["accuracy"] == pytest.approx(final["val_accuracy"], abs=1e-9)


def test_run_json_records_the_split(digits_run: Path, plain_run: Path) -> None:
    split = json.loads((digits_run / "run.json").read_text())["split"]
    assert split == {"train": 1079, "val": 359, "test": 359, "given": False, "file": SPLIT_FILE}
    assert json.loads((plain_run / "run.json").read_text())["split"]["test"] == 0
    assert (plain_run / SPLIT_FILE).is_file()


# ------------------------------------------------------------------------------------ the trainer
def test_the_trainer_never_sees_test_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test rows are NaN: any use in normalization, training, validation or snapshots shows up."""
    moons = load_dataset({"name": "moons", "samples": 300})
    marked = ArrayDataset("marked", moons.x.copy(), moons.y, "classes", moons.class_names)
    project = mlp_project({"test_fraction": 0.25, "early_stopping_patience": 1})
    test_rows = three_way_split(marked, 0.2, 3, test_fraction=0.25).test  # the project's seed and fractions
    marked.x[test_rows] = np.nan
    monkeypatch.setattr("engine.training.trainer.load_dataset", lambda spec, base_dir=None: marked)
    trainer_events: list[Event] = []
    trainer = Trainer(TrainOptions(project, tmp_path / "run", None, {"epochs": 3, "device": "cpu"}),
                      trainer_events.append)
    result = trainer.run()
    assert isinstance(result, Finished) and all(np.isfinite(v) for v in result.metrics.values()), result
    assert trainer.state is not None
    seen = trainer.state.task.data
    assert len(seen.test_index) == 0 and len(seen.test_x) == 0
    assert np.isfinite(seen.train_x).all() and np.isfinite(seen.val_x).all()
    snapshots = [e for e in trainer_events if isinstance(e, PredictionSnapshot)]
    assert snapshots and snapshots[-1].view == "decision_boundary"
    for snapshot in snapshots:
        json.dumps(snapshot.payload, allow_nan=False)  # no NaN: the test rows never reached the model
    with np.load(tmp_path / "run" / SPLIT_FILE) as record:
        np.testing.assert_array_equal(record["test_index"], test_rows)


def test_a_class_the_test_split_would_leave_empty_fails_the_run_with_its_name(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    moons = load_dataset({"name": "moons", "samples": 100})
    y = moons.y.copy()  # type: ignore[union-attr]
    y[0] = 2
    odd = ArrayDataset("odd", moons.x, y, "classes", ["a", "b", "single"])
    monkeypatch.setattr("engine.training.trainer.load_dataset", lambda spec, base_dir=None: odd)
    result = Trainer(TrainOptions(mlp_project({"test_fraction": 0.2}), tmp_path / "run", None, {"device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Failed) and result.reason == "data" and exit_code(result) == 1
    assert result.message.startswith("test_fraction: class 'single' has only 1 sample") and "\n" not in result.message


# ------------------------------------------------------------------------------------ the command
def test_evaluate_json_and_csv(digits_run: Path, tmp_path: Path) -> None:
    table = tmp_path / "samples.csv"
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "evaluate", str(digits_run), "--json",
                           "--csv", str(table)], check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"run", "split", "task", "weights", "samples", "metrics", "classes", "per_class",
                         "macro_avg", "confusion", "rows"}
    assert data["split"] == "test" and data["task"] == "classification" and data["samples"] == 359
    assert set(data["metrics"]) == {"loss", "accuracy", "top3_accuracy"}
    assert data["classes"] == [str(d) for d in range(10)]
    assert [set(c) for c in data["per_class"]] == [{"class", "precision", "recall", "f1", "support"}] * 10
    assert sum(c["support"] for c in data["per_class"]) == 359 == np.sum(data["confusion"])
    assert set(data["macro_avg"]) == {"precision", "recall", "f1"}
    rows = data["rows"]
    assert len(rows) == 359 and set(rows[0]) == {"index", "file", "true", "prediction", "confidence", "correct"}
    assert rows[0]["file"] is None  # the built-in digits have no files
    accuracy = np.mean([r["correct"] for r in rows])
    assert accuracy == pytest.approx(data["metrics"]["accuracy"])
    lines = list(csv.reader(io.StringIO(table.read_text())))
    assert lines[0] == ["index", "file", "true", "prediction", "confidence", "correct"]
    assert len(lines) == 360
    for line, row in zip(lines[1:], rows):
        assert int(line[0]) == row["index"] and line[2] == row["true"] and line[3] == row["prediction"]
        assert float(line[4]) == pytest.approx(row["confidence"], abs=1e-6) and line[5] == str(int(row["correct"]))


def test_evaluate_text_report(digits_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, str(digits_run))
    assert code == 0, err
    assert out.startswith(f"{digits_run}: test split, 359 samples, classification, weights model.safetensors")
    assert "accuracy" in out and "precision  recall      f1  support" in out and "macro avg" in out
    assert "confusion matrix (rows: true class, columns: predicted)" in out


def test_a_run_without_a_test_split_says_how_to_get_one(plain_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, str(plain_run))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {plain_run}: this run has no test split (it trained with test_fraction 0); set "
                          f"training.test_fraction")
    assert "--split val" in err
    code, out, err = _cli(capsys, str(plain_run), "--split", "val", "--json")
    assert code == 0, err
    assert json.loads(out)["split"] == "val" and json.loads(out)["samples"] == 60


def _damaged(run: Path, tmp_path: Path, name: str, content: bytes) -> Path:
    copy = tmp_path / f"copy-{name}"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".writer.lock"))
    (copy / name).write_bytes(content)
    return copy


@pytest.mark.parametrize(("name", "content", "message"), [
    ("run.json", b"{not json", "run.json: unreadable"),
    ("model.safetensors", b"garbage", "model.safetensors: not readable weights"),
    (SPLIT_FILE, b"PK garbage", f"{SPLIT_FILE}: not a readable split record"),
    ("project.json", b"[]", "project.json"),
])
def test_a_corrupt_run_folder_gets_one_line(digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            name: str, content: bytes, message: str) -> None:
    copy = _damaged(digits_run, tmp_path, name, content)
    code, out, err = _cli(capsys, str(copy))
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: ") and message in err


def test_no_run_folder_and_changed_data_are_refused(digits_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, str(tmp_path / "nowhere"))
    assert code == 1 and "not a run folder" in err and err.count("\n") == 1
    copy = tmp_path / "changed"
    shutil.copytree(digits_run, copy, ignore=shutil.ignore_patterns(".writer.lock"))
    write_split(copy, prepare_data(load_dataset({"name": "wine"}), 0.2, test_fraction=0.2))  # another data's record
    code, _, err = _cli(capsys, str(copy))
    assert code == 1 and "the data 'digits' changed since this run trained (1797 samples now, 178 then)" in err


def test_csv_is_refused_for_tasks_without_a_per_sample_table(tmp_path: Path) -> None:
    evaluation = Evaluation(tmp_path, "test", "gan", "model.safetensors (end of run)", 10, {"loss": 1.0})
    with pytest.raises(UserError, match="^--csv: the per-sample table exists for classification, regression"):
        evaluation.write_csv(tmp_path / "x.csv")
    assert json.loads(json.dumps(evaluation.to_json()))["rows"] == []


# ------------------------------------------------------------------------------------ other data
def _png_folder(root: Path, layout: dict[str, int]) -> Path:
    from PIL import Image

    for folder, count in layout.items():
        (root / folder).mkdir(parents=True)
        bright = 230 if folder.endswith("light") else 20
        for i in range(count):
            Image.fromarray(np.full((6, 6), bright + i, dtype=np.uint8)).save(root / folder / f"{i}.png")
    return root


def test_a_split_image_folder_reports_its_test_files(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "shades", {"train/dark": 8, "train/light": 8, "val/dark": 2, "val/light": 2,
                                             "test/dark": 3, "test/light": 2})
    project = chain_project([("image", "input", {"shape": [1, 6, 6]}), ("flat", "flatten", {}),
                             ("fc", "linear", {"out_features": 2}), ("logits", "output", {})],
                            {"name": "image_folder", "path": str(root), "size": [6, 6]},
                            {"batch_size": 8, "lr": 0.05, "seed": 1})
    run = tmp_path / "run"
    _train(project, run, epochs=3)
    assert json.loads((run / "run.json").read_text())["split"] == {"train": 16, "val": 4, "test": 5, "given": True,
                                                                   "file": SPLIT_FILE}
    result = evaluate_run(run)
    assert [r.file for r in result.rows] == ["test/dark/0.png", "test/dark/1.png", "test/dark/2.png",
                                             "test/light/0.png", "test/light/1.png"]
    assert [r.true for r in result.rows] == ["dark"] * 3 + ["light"] * 2
    assert result.class_names == ["dark", "light"] and result.metrics["accuracy"] == 1.0


def test_regression_rows_hold_values_in_the_data_units(tmp_path: Path) -> None:
    project = chain_project([("x", "input", {"shape": [10]}), ("fc1", "linear", {"out_features": 16}),
                             ("act", "relu", {}), ("fc2", "linear", {"out_features": 1}), ("y", "output", {})],
                            {"name": "diabetes"}, {"batch_size": 32, "lr": 0.01, "seed": 2, "test_fraction": 0.15})
    run = tmp_path / "run"
    _train(project, run, epochs=2)
    result = evaluate_run(run)
    assert result.task == "regression" and set(result.metrics) == {"loss", "mae", "r2"}
    assert result.samples == round(0.15 * 442) == len(result.rows)
    truth = np.asarray([r.true for r in result.rows])
    predicted = np.asarray([r.prediction for r in result.rows])
    diabetes = load_dataset({"name": "diabetes"})
    np.testing.assert_allclose(truth, diabetes.y[[r.index for r in result.rows], 0])  # type: ignore[index]
    assert result.metrics["mae"] == pytest.approx(np.abs(truth - predicted).mean(), rel=1e-4)
    text = result.csv_text().splitlines()
    assert text[0] == "index,file,true,prediction" and len(text) == result.samples + 1
    assert "mae" in result.report()
