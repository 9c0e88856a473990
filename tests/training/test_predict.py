"""``predict``: a run's predictions on new images, CSV rows, .npz arrays and text equal the model's outputs
computed by hand with the training normalization; --out, --json, the table and the one-line refusals."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from engine.cli import run_cli
from engine.compile import compile_graph
from engine.data import load_dataset
from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.graph.flat_project import flat_project
from engine.graph.project import Project
from engine.training.events import Finished
from engine.training.predict import Predictions, open_predictor, predict_run
from engine.training.split_file import SPLIT_FILE
from engine.training.trainer import Trainer, TrainOptions
from tests.conftest import ROOT
from tests.training.helpers import chain_project


def _train(project: Project, run_dir: Path, epochs: int = 2) -> Path:
    result = Trainer(TrainOptions(project, run_dir, ROOT / "templates", {"epochs": epochs, "device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Finished), result
    return run_dir


def _image(path: Path, bright: bool, seed: int, mode: str = "L") -> Path:
    rng = np.random.default_rng(seed)
    base = 190 if bright else 50
    pixels = np.clip(base + rng.normal(0, 30, (12, 10)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "L")
    path.parent.mkdir(parents=True, exist_ok=True)
    (image.convert(mode) if mode != "L" else image).save(path)
    return path


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A linear classifier of dark and light 8x8 grayscale images from an image folder."""
    root = tmp_path_factory.mktemp("predict_images")
    folder = root / "shades"
    for i in range(12):
        _image(folder / "dark" / f"d{i}.png", False, i)
        _image(folder / "light" / f"l{i}.png", True, 100 + i)
    project = chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 2}),
        ("logits", "output", {}),
    ], {"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "grayscale"},
        {"batch_size": 8, "lr": 0.05, "seed": 1})
    return _train(project, root / "run")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regression on a CSV with a text column: price from size, rooms and colour."""
    root = tmp_path_factory.mktemp("predict_table")
    rng = np.random.default_rng(0)
    lines = ["size,color,rooms,price"]
    for i in range(60):
        size, rooms, color = rng.uniform(20, 120), int(rng.integers(1, 5)), ["red", "blue", "green"][i % 3]
        lines.append(f"{size:.2f},{color},{rooms},{1000 * size + 5000 * rooms + (3000 if color == 'red' else 0):.1f}")
    (root / "houses.csv").write_text("\n".join(lines) + "\n")
    project = chain_project([
        ("row", "input", {"shape": [5]}),
        ("fc", "linear", {"out_features": 1}),
        ("price", "output", {}),
    ], {"name": "csv", "path": str(root / "houses.csv"), "target": "price"},
        {"batch_size": 16, "lr": 0.05, "seed": 2, "task": "regression"})
    return _train(project, root / "run")


@pytest.fixture(scope="module")
def language_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The character language model template trained one epoch on 3000 characters."""
    project = load_project(ROOT / "templates" / "transformer_char_lm.json")
    project.dataset["max_chars"] = 3000
    return _train(project, tmp_path_factory.mktemp("predict_lm") / "run", epochs=1)


def _model(run: Path) -> torch.nn.Module:
    model = compile_graph(flat_project(load_project(run / "project.json")).graph).module.eval()
    model.load_state_dict(load_file(str(run / "model.safetensors")))
    return model


def _train_rows(run: Path) -> np.ndarray:
    with np.load(run / SPLIT_FILE) as record:
        return record["train_index"]


def _by_hand(run: Path, images: list[Path]) -> np.ndarray:
    """Class probabilities: Pillow decode as the image folder does, per-channel training statistics."""
    project = load_project(run / "project.json")
    train = load_dataset(project.dataset).x[_train_rows(run)].astype(np.float64)
    mean, std = train.mean(axis=(0, 2, 3)), train.std(axis=(0, 2, 3))
    x = np.stack([np.asarray(Image.open(p).convert("L").resize((8, 8), Image.Resampling.BILINEAR),
                             dtype=np.float32)[None] / 255.0 for p in images])
    x = ((x - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    with torch.no_grad():
        return torch.softmax(_model(run)(torch.from_numpy(x)), 1).numpy()


# ------------------------------------------------------------------------------------ classifiers
def test_images_equal_the_model_by_hand(image_run: Path, tmp_path: Path) -> None:
    folder = Path(load_project(image_run / "project.json").dataset["path"])
    known = [folder / "dark" / "d0.png", folder / "light" / "l3.png"]
    new = tmp_path / "new"
    fresh = [_image(new / "a.png", True, 500), _image(new / "b" / "c.png", False, 501)]
    result = predict_run(image_run, [str(p) for p in known] + [str(new)], top_k=5)
    expected = _by_hand(image_run, known + fresh)
    assert [r.input for r in result.rows] == [str(p) for p in known + fresh]
    for row, probabilities in zip(result.rows, expected):
        order = np.argsort(-probabilities)
        assert row.prediction == ["dark", "light"][order[0]]
        assert row.confidence == pytest.approx(float(probabilities[order[0]]), abs=1e-5)
        assert [name for name, _ in row.top_k] == [["dark", "light"][i] for i in order]  # k capped at 2 classes
        assert [p for _, p in row.top_k] == sorted((p for _, p in row.top_k), reverse=True)
        assert sum(p for _, p in row.top_k) == pytest.approx(1.0, abs=1e-5)
    assert [r.prediction for r in result.rows] == ["dark", "light", "light", "dark"]
    assert result.skipped == []


def test_colour_images_are_converted_as_training_does_and_other_files_skipped(image_run: Path,
                                                                              tmp_path: Path) -> None:
    rgb = _image(tmp_path / "new" / "colour.png", True, 7, mode="RGB")
    rgba = _image(tmp_path / "new" / "alpha.png", False, 8, mode="RGBA")
    (tmp_path / "new" / "notes.txt").write_text("not an image")
    result = predict_run(image_run, [str(tmp_path / "new")])
    assert [r.input for r in result.rows] == [str(rgba), str(rgb)]
    expected = _by_hand(image_run, [rgba, rgb])
    np.testing.assert_allclose([r.confidence for r in result.rows], expected.max(1), atol=1e-5)
    assert result.skipped == [str(tmp_path / "new" / "notes.txt")]
    assert "skipped 1 file(s) that are not images" in result.table() and "notes.txt" in result.table()


def test_cli_writes_csv_atomically_and_prints_json(image_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    image = _image(tmp_path / "one.png", True, 9)
    out = tmp_path / "preds.csv"
    assert run_cli(["predict", str(image_run), str(image), "--out", str(out), "--json", "--top-k", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"run", "task", "weights", "skipped", "rows"} and data["task"] == "classification"
    row = data["rows"][0]
    assert set(row) == {"input", "prediction", "confidence", "top_k"} and len(row["top_k"]) == 1
    assert row["top_k"][0] == {"class": row["prediction"], "probability": row["confidence"]}
    lines = list(csv.reader(io.StringIO(out.read_text())))
    assert lines[0] == ["input", "prediction", "confidence", "top1", "top1_probability"]
    assert lines[1][:2] == [str(image), row["prediction"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "preds.csv"]  # no temporary file left
    assert run_cli(["predict", str(image_run), str(image)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["input", "prediction", "confidence", "top-k"] and str(image) in table[2]


# ------------------------------------------------------------------------------------ tables
def test_csv_rows_in_any_column_order_give_prices_in_the_datas_units(table_run: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.csv"
    new.write_text("rooms,price,color,size,extra\n2,,blue,50,x\n4,150000,red,100,y\n")
    result = predict_run(table_run, [str(new)])
    source = load_dataset(load_project(table_run / "project.json").dataset)
    train = _train_rows(table_run)
    x_train, y_train = source.x[train].astype(np.float64), source.y[train].astype(np.float64)  # type: ignore[index]
    x = np.array([[50, 1, 0, 0, 2], [100, 0, 0, 1, 4]], dtype=np.float64)  # size, color=blue/green/red, rooms
    assert source.feature_names == ["size", "color=blue", "color=green", "color=red", "rooms"]
    x = ((x - x_train.mean(0)) / x_train.std(0)).astype(np.float32)
    with torch.no_grad():
        out = _model(table_run)(torch.from_numpy(x)).numpy()[:, 0]
    expected = out * y_train.std() + y_train.mean()
    assert [r.input for r in result.rows] == [f"{new} row 2", f"{new} row 3"]
    np.testing.assert_allclose([r.prediction for r in result.rows], expected, rtol=1e-4)
    assert [r.confidence for r in result.rows] == [None, None] and all(not r.top_k for r in result.rows)
    assert [r.true for r in result.rows] == ["", 150000.0]
    assert "true" in result.csv_text().splitlines()[0]


def test_npz_inputs_and_their_shape(table_run: Path, image_run: Path, tmp_path: Path) -> None:
    good = tmp_path / "rows.npz"
    np.savez(good, x=np.array([[50, 1, 0, 0, 2]], dtype=np.float32))
    [row] = predict_run(table_run, [str(good)]).rows
    assert row.input == f"{good}[0]" and isinstance(row.prediction, float)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 8, 9), dtype=np.float32))
    with pytest.raises(UserError, match=r"bad.npz: array 'x' has samples of shape \(8, 9\), the model expects "
                                        r"\(1, 8, 8\): save x with shape \(n, 1, 8, 8\)"):
        predict_run(image_run, [str(bad)])


# ------------------------------------------------------------------------------------ text
def test_next_character_after_a_text(language_run: Path, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Beautiful is better than ugl")
    result = predict_run(language_run, ["Simple is better than complex", str(prompt)], top_k=4)
    predictor = open_predictor(language_run)
    vocabulary = predictor.dataset.vocabulary
    assert vocabulary is not None
    model = _model(language_run)
    for row, text in zip(result.rows, ["Simple is better than complex", prompt.read_text()]):
        ids = torch.tensor([[vocabulary.index(ch) for ch in text[-64:]]])
        with torch.no_grad():
            probabilities = torch.softmax(model(ids)[0, -1], 0)
        best = probabilities.topk(4)
        assert [name for name, _ in row.top_k] == [vocabulary[int(i)] for i in best.indices]
        np.testing.assert_allclose([p for _, p in row.top_k], best.values.numpy(), atol=1e-5)
        assert row.prediction == row.top_k[0][0] and row.confidence == row.top_k[0][1]
    assert result.rows[1].input == str(prompt)


def test_a_character_outside_the_vocabulary_is_named(language_run: Path) -> None:
    with pytest.raises(UserError, match=r"café: character 'é' \(position 4\) is not in the model's vocabulary of "
                                        r"96 characters; remove or replace it"):
        predict_run(language_run, ["café"])


# ------------------------------------------------------------------------------------ refusals
def _one_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert run_cli(["predict", *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_a_csv_missing_a_training_column_names_it(table_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "partial.csv"
    new.write_text("size,rooms\n50,2\n")
    out = tmp_path / "preds.csv"
    err = _one_line(capsys, str(table_run), str(new), "--out", str(out))
    assert "partial.csv: no column 'color', which the model was trained on; add it" in err
    assert not out.exists()
    new.write_text("size,rooms,color\n50,2,purple\n")
    err = _one_line(capsys, str(table_run), str(new))
    assert "partial.csv: row 2, column 'color': 'purple' is not one of the categories" in err


def test_unknown_folder_run_without_weights_and_wrong_kinds(image_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    image = _image(tmp_path / "x.png", True, 3)
    assert "no such run folder" in _one_line(capsys, str(tmp_path / "nowhere"), str(image))
    assert "not a run folder (no run.json)" in _one_line(capsys, str(tmp_path), str(image))
    bare = tmp_path / "bare"
    shutil.copytree(image_run, bare, ignore=shutil.ignore_patterns("*.safetensors", "checkpoint.pt", "*.lock"))
    assert "no weights yet; train the model for at least one epoch" in _one_line(capsys, str(bare), str(image))
    assert "missing.png: no such file or folder" in _one_line(capsys, str(image_run), str(tmp_path / "missing.png"))
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    assert "not table rows; give image files or folders" in _one_line(capsys, str(image_run), str(table))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    err = _one_line(capsys, str(image_run), str(empty))
    assert "no input to predict on" in err and "readme.md" in err


def test_predictions_table_lists_regression_values(table_run: Path, tmp_path: Path) -> None:
    new = tmp_path / "n.csv"
    new.write_text("size,color,rooms\n80,green,3\n")
    result = predict_run(table_run, [str(new)])
    assert isinstance(result, Predictions) and result.task == "regression"
    assert result.table().splitlines()[1].split() == ["input", "prediction"]


def test_autoencoder_rows_give_the_reconstruction_error(tmp_path: Path) -> None:
    project = load_project(ROOT / "templates" / "autoencoder_digits_2d.json")
    run = _train(project, tmp_path / "run", epochs=1)
    digits = load_dataset({"name": "digits", "layout": "flat"}).x[:5]
    np.savez(tmp_path / "digits.npz", x=digits, y=np.arange(5, dtype=np.int64))
    result = predict_run(run, [str(tmp_path / "digits.npz")])
    with torch.no_grad():
        recon = _model(run)(torch.from_numpy(digits)).numpy()
    np.testing.assert_allclose([r.prediction for r in result.rows], ((recon - digits) ** 2).mean(1), rtol=1e-4)
    assert result.task == "autoencoder" and "reconstruction error" in result.table().splitlines()[1]


def test_an_unreadable_image_file_is_skipped_and_listed_not_fatal(image_run: Path, tmp_path: Path) -> None:
    good = _image(tmp_path / "good.png", True, 3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = predict_run(image_run, [str(good), str(broken)])
    assert [r.input for r in result.rows] == [str(good)] and result.skipped == [str(broken)]
    assert "skipped 1 file(s) that are not images" in result.table() and "cannot be read" in result.table()
    with pytest.raises(UserError, match="no input to predict on .*broken.png"):
        predict_run(image_run, [str(broken)])
