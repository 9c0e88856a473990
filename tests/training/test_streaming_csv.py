"""A CSV table streamed from disk: read twice as a stream, encoded once into a cached array, the same
dataset as in memory; its bad rows named as in memory; a run trains and predicts on it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.data import csv_stream, load_dataset, streaming
from engine.data.base import DataError
from engine.data.lazy_array import LazyArray
from engine.training.events import EpochEnd, Finished
from engine.training.predict import predict_run
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project


@pytest.fixture(autouse=True)
def small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "cache_root", lambda: tmp_path / "cache" / "images")
    monkeypatch.setattr(csv_stream, "CHUNK_ROWS", 37)  # many chunks, one short last chunk


def _houses(path: Path, rows: int, seed: int = 0, label: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["size,color,rooms,price" + (",band" if label else "")]
    for i in range(rows):
        size, rooms, color = rng.uniform(20, 120), int(rng.integers(1, 5)), ["red", "blue", "green"][i % 3]
        price = 1000 * size + 5000 * rooms + (3000 if color == "red" else 0)
        lines.append(f"{size:.2f},{color},{rooms},{price:.1f}" + (f",{'high' if price > 80000 else 'low'}"
                                                                  if label else ""))
        if i % 50 == 7:
            lines.append("")  # blank lines are skipped, as in memory
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("target", [None, "band"])
def test_the_streamed_table_is_the_in_memory_table(tmp_path: Path, target: str | None) -> None:
    spec = {"name": "csv", "path": str(_houses(tmp_path / "h.csv", 500, label=True)), "target": target}
    memory, streamed = load_dataset({**spec, "storage": "memory"}), load_dataset({**spec, "storage": "stream"})
    assert isinstance(streamed.x, LazyArray) and isinstance(memory.x, np.ndarray)
    np.testing.assert_array_equal(streamed.x[np.arange(len(memory))], memory.x)
    np.testing.assert_array_equal(streamed.y, memory.y)
    assert (streamed.target_kind, streamed.class_names, streamed.feature_names, streamed.description) == \
        (memory.target_kind, memory.class_names, memory.feature_names, memory.description)
    assert {k: streamed.extras[k] for k in ("target", "columns", "categories")} == \
        {k: memory.extras[k] for k in ("target", "columns", "categories")}
    assert "streamed from disk" in streamed.extras["storage"] and "in memory" in memory.extras["storage"]


def test_the_encoded_array_is_reused_until_the_file_changes(tmp_path: Path) -> None:
    path = _houses(tmp_path / "h.csv", 100)
    spec = {"name": "csv", "path": str(path), "storage": "stream"}
    first = load_dataset(spec).x
    assert load_dataset(spec).x.path == first.path
    _houses(path, 120, seed=1)
    os.utime(path, ns=(1, 1))
    second = load_dataset(spec).x
    assert second.path != first.path and len(second) == 120


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: lines.insert(300, "1,red,2"), r"h.csv: row \d+ has 3 values but the header has 4 columns"),
    (lambda lines: lines.__setitem__(250, "12,red,two,9000"), r"h.csv: row 251, column 'rooms': 'two' is not a number"),
    (lambda lines: lines.__setitem__(260, "12,,2,9000"), r"h.csv: row 261, column 'color': empty value"),
    (lambda lines: lines.__setitem__(0, "size,color,size,price"), r"h.csv: the header repeats the column name\(s\) 'size'"),
])
def test_a_bad_row_deep_in_the_file_is_named_as_in_memory(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "h.csv"
    lines = _houses(path, 400).read_text().splitlines()
    lines = [line for line in lines if line]  # row numbers = list index + 1
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    for storage in ("memory", "stream"):
        with pytest.raises(DataError, match=message):
            load_dataset({"name": "csv", "path": str(path), "storage": storage})


def test_a_streamed_table_trains_and_predicts(tmp_path: Path) -> None:
    path = _houses(tmp_path / "h.csv", 600)
    project = chain_project([("row", "input", {"shape": [5]}), ("fc", "linear", {"out_features": 1}),
                             ("price", "output", {})], {"name": "csv", "path": str(path), "storage": "stream"},
                            {"batch_size": 16, "lr": 0.05, "seed": 2, "task": "regression", "num_workers": 0})
    events: list = []
    result = Trainer(TrainOptions(project, tmp_path / "run", None, {"epochs": 4, "device": "cpu"}),
                     events.append).run()
    assert isinstance(result, Finished), getattr(result, "message", result)
    assert [e for e in events if isinstance(e, EpochEnd)][-1].val["r2"] > 0.95
    rows = predict_run(tmp_path / "run", [str(_houses(tmp_path / "new.csv", 5, seed=7))]).rows
    assert all(abs(r.prediction - r.true) < 0.1 * r.true for r in rows)
