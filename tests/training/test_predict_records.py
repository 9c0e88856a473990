"""``preprocessing.json``: a run predicts without its training data, and a source export predicts
as its run did, with blocks, without its ``model.py`` being run; damaged records get one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import run_cli
from engine.compile.export import export_model
from engine.errors import UserError
from engine.graph.blocks import BlockLibrary
from engine.graph.fileformat import load_project
from engine.graph.grouping import apply_group, plan_group
from engine.shapes import analyze
from engine.training.events import Finished
from engine.training.evaluate import evaluate_run
from engine.training.predict import open_predictor, predict_run
from engine.training.preprocessing_file import PREPROCESSING_FILE
from engine.training.trainer import Trainer, TrainOptions
from tests.conftest import ROOT
from tests.training.helpers import chain_project


def _train(project, run_dir: Path, epochs: int = 2) -> Path:  # noqa: ANN001
    result = Trainer(TrainOptions(project, run_dir, ROOT / "templates", {"epochs": epochs, "device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Finished), result
    return run_dir


def _houses(path: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["size,color,rooms,price"]
    for i in range(rows):
        size, rooms, color = rng.uniform(20, 120), int(rng.integers(1, 5)), ["red", "blue", "green"][i % 3]
        lines.append(f"{size:.2f},{color},{rooms},{1000 * size + 5000 * rooms + (3000 if color == 'red' else 0):.1f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def digits_blocks_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CNN template with its first convolution and activation grouped into a block, trained one epoch."""
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    library = BlockLibrary()
    plan = plan_group(project.graph, ["conv1", "relu1"], library, "ConvRelu", analyze(project.graph))
    apply_group(project.graph, library, plan)
    project.blocks = library
    return _train(project, tmp_path_factory.mktemp("blocks_run") / "run", epochs=1)


def _digits_npz(path: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(path, x=digits.images[:12].reshape(12, 1, 8, 8).astype(np.float32), y=digits.target[:12])
    return path


def test_a_run_predicts_after_its_training_data_is_gone(tmp_path: Path) -> None:
    data = _houses(tmp_path / "houses.csv", 60, 0)
    project = chain_project([("row", "input", {"shape": [5]}), ("fc", "linear", {"out_features": 1}),
                             ("price", "output", {})], {"name": "csv", "path": str(data), "target": "price"},
                            {"batch_size": 16, "lr": 0.05, "seed": 2, "task": "regression"})
    run = _train(project, tmp_path / "run")
    new = _houses(tmp_path / "new.csv", 5, 9)
    before = predict_run(run, [str(new)])
    data.unlink()  # the run moved to another machine, or the data was tidied away
    after = open_predictor(run, examples=True)  # the Try It panel asks for example rows: none, no error
    assert len(after.data.train_index) == 0
    rows = after.predict([str(new)]).rows
    assert [r.prediction for r in rows] == pytest.approx([r.prediction for r in before.rows], rel=1e-6)
    with pytest.raises(UserError, match="houses.csv"):
        evaluate_run(run, "val")  # evaluation needs the held-out rows themselves: it names the missing file


def test_a_source_export_with_blocks_predicts_as_its_run_without_running_model_py(digits_blocks_run: Path,
                                                                                  tmp_path: Path) -> None:
    out = tmp_path / "code"
    export_model(digits_blocks_run, "python", out)
    assert "class ConvRelu(" in (out / "model.py").read_text()  # nested weight names in model.safetensors
    assert (out / PREPROCESSING_FILE).read_bytes() == (digits_blocks_run / PREPROCESSING_FILE).read_bytes()
    (out / "model.py").write_text("raise SystemExit('model.py must not run')\n")
    inputs = [str(_digits_npz(tmp_path / "x.npz"))]
    from_run, from_export = predict_run(digits_blocks_run, inputs, top_k=3), predict_run(out, inputs, top_k=3)
    assert [(r.prediction, r.top_k) for r in from_export.rows] == [(r.prediction, r.top_k) for r in from_run.rows]
    assert [r.true for r in from_export.rows] == [str(d) for d in range(10)] + ["0", "1"]


def test_the_predict_command_reads_an_export_folder(digits_blocks_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "code"
    export_model(digits_blocks_run, "python", out)
    code = run_cli(["predict", str(out), str(_digits_npz(tmp_path / "x.npz")), "--json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 12 and all(0 <= row["confidence"] <= 1 for row in rows)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.update(x_shape=[1, -8, 8]), "x_shape: expected positive whole numbers"),
    (lambda r: r.update(target_kind="colours"), "target_kind: must be one of"),
    (lambda r: r["x_normalization"].update(std=[0.0] * len(r["x_normalization"]["std"])), "x_normalization.std"),
    (lambda r: r["x_normalization"].update(mean=r["x_normalization"]["mean"] + [1.0]),
     r"x_normalization.mean: expected \d+ finite numbers?"),
    (lambda r: r["x_normalization"].update(mean=["nan"] * len(r["x_normalization"]["mean"])),
     r"x_normalization.mean: expected \d+ finite numbers?"),
    (lambda r: r.update(class_names=[0, 1]), "class_names: expected a list of strings"),
    (lambda r: r.update(version=7), "unknown preprocessing format"),
])
def test_a_damaged_record_is_refused_in_one_line_naming_the_field(digits_blocks_run: Path, tmp_path: Path,
                                                                  edit, message: str) -> None:  # noqa: ANN001
    run = tmp_path / "run"
    shutil.copytree(digits_blocks_run, run)
    record = json.loads((run / PREPROCESSING_FILE).read_text())
    edit(record)
    (run / PREPROCESSING_FILE).write_text(json.dumps(record))
    with pytest.raises(UserError, match=message) as caught:
        open_predictor(run)
    assert PREPROCESSING_FILE in str(caught.value) and "\n" not in str(caught.value)


def test_a_run_from_before_the_record_still_predicts_from_its_data(digits_blocks_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(digits_blocks_run, run)
    (run / PREPROCESSING_FILE).unlink()
    inputs = [str(_digits_npz(tmp_path / "x.npz"))]
    assert [r.top_k for r in predict_run(run, inputs).rows] == [r.top_k for r in predict_run(digits_blocks_run,
                                                                                               inputs).rows]
