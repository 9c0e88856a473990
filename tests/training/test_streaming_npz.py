"""An .npz archive streamed from disk: mapped in place (or from a decompressed copy), read in batches by
the same pipeline as image folders, with the same results as in memory."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import apply_split, lazy_array, load_dataset, streaming
from engine.data.base import DataError
from engine.data.lazy_array import LazyArray
from engine.training.evaluate import evaluate_run
from engine.training.events import EpochEnd, Finished
from engine.training.predict import predict_run
from engine.training.streamed import StreamedPart
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(streaming, "cache_root", lambda: tmp_path / "cache" / "images")
    return tmp_path / "cache" / "arrays"


def _images(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 1, 8, 8)) + np.where(y == 1, 1.5, -1.5)[:, None, None, None] * np.eye(8)[None, None]
    return x.astype(np.float32) * 40 + 100, y  # far from zero mean / unit variance: normalization matters


@pytest.mark.parametrize("compressed", [False, True])
def test_rows_read_from_disk_equal_the_array(tmp_path: Path, cache: Path, compressed: bool) -> None:
    x = np.random.default_rng(1).normal(size=(50, 3, 4, 5)).astype(np.float64)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", x=x)
    lazy = lazy_array.open_npz_member(tmp_path / "d.npz", "x", cache)
    assert lazy.shape == x.shape and lazy.dtype == np.float32
    assert (lazy.path.parent == cache) is compressed  # a stored member is mapped in place
    rows = np.array([7, 3, 3, 49, 0])
    np.testing.assert_array_equal(lazy[rows], x[rows].astype(np.float32))
    part = lazy.take(np.arange(10, 20))
    np.testing.assert_array_equal(part[2:5], x[12:15].astype(np.float32))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(part))[-1], x[19].astype(np.float32))  # workers
    fortran = np.asfortranarray(x[:, 0, 0, :])
    np.savez(tmp_path / "f.npz", x=fortran)
    np.testing.assert_array_equal(lazy_array.open_npz_member(tmp_path / "f.npz", "x", cache)[[4, 1]],
                                  fortran[[4, 1]].astype(np.float32))


def test_a_changed_compressed_archive_gets_a_fresh_copy(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=np.zeros((4, 2)))
    first = lazy_array.open_npz_member(path, "x", cache)
    np.savez_compressed(path, x=np.ones((6, 2)))
    os.utime(path, ns=(1, 1))  # another modification time, whatever the clock's resolution
    second = lazy_array.open_npz_member(path, "x", cache)
    assert second.path != first.path and second.shape == (6, 2) and second[5].tolist() == [1.0, 1.0]


def test_streamed_batches_equal_the_in_memory_batches(tmp_path: Path, cache: Path) -> None:
    x, y = _images()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    spec = {"name": "npz", "path": str(tmp_path / "d.npz")}
    streamed, memory = load_dataset({**spec, "storage": "stream"}), load_dataset({**spec, "storage": "memory"})
    assert isinstance(streamed.x, LazyArray) and "streamed from disk" in streamed.extras["storage"]
    assert isinstance(memory.x, np.ndarray) and "in memory" in memory.extras["storage"]
    train, val = np.arange(0, 500), np.arange(500, 600)
    lazy, eager = apply_split(streamed, train, val), apply_split(memory, train, val)
    assert len(train) < streaming.NORMALIZATION_SAMPLES  # every row sampled: the statistics agree
    np.testing.assert_allclose(lazy.x_normalization.mean, eager.x_normalization.mean, rtol=1e-5)
    np.testing.assert_allclose(lazy.x_normalization.std, eager.x_normalization.std, rtol=1e-4)
    part = StreamedPart(lazy.val_x, None, lazy.x_normalization, torch.device("cpu"), 0)
    batch, _ = part.decode(np.array([3, 0, 99]))
    np.testing.assert_allclose(batch.numpy(), eager.val_x[[3, 0, 99]], atol=1e-4)


def _train(project, run: Path, epochs: int = 3) -> list[EpochEnd]:  # noqa: ANN001
    events: list = []
    result = Trainer(TrainOptions(project, run, None, {"epochs": epochs, "device": "cpu"}), events.append).run()
    assert isinstance(result, Finished), getattr(result, "message", result)
    return [e for e in events if isinstance(e, EpochEnd)]


def test_a_streamed_archive_trains_evaluates_and_predicts(tmp_path: Path, cache: Path) -> None:
    x, y = _images(800)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=y)
    project = chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act", "relu", {}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 2}),
        ("logits", "output", {}),
    ], {"name": "npz", "path": str(tmp_path / "d.npz"), "storage": "stream"},
        {"batch_size": 32, "lr": 0.01, "seed": 4, "num_workers": 1, "test_fraction": 0.2})
    epochs = _train(project, tmp_path / "run")
    assert epochs[-1].train["loss"] < epochs[0].train["loss"] and epochs[-1].val["accuracy"] > 0.9
    evaluation = evaluate_run(tmp_path / "run")
    assert evaluation.samples == 160 and evaluation.metrics["accuracy"] > 0.9
    np.savez(tmp_path / "new.npz", x=x[:20], y=y[:20])
    rows = predict_run(tmp_path / "run", [str(tmp_path / "new.npz")]).rows
    assert np.mean([r.prediction == r.true for r in rows]) > 0.9


def test_a_streamed_table_trains_a_regression(tmp_path: Path, cache: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(5, 3, (1000, 6))
    y = x @ np.arange(1, 7) + 2.0
    np.savez(tmp_path / "t.npz", x=x, y=y)
    project = chain_project([("row", "input", {"shape": [6]}), ("fc", "linear", {"out_features": 1}),
                             ("value", "output", {})],
                            {"name": "npz", "path": str(tmp_path / "t.npz"), "storage": "stream"},
                            {"batch_size": 32, "lr": 0.05, "seed": 2, "task": "regression", "num_workers": 0})
    epochs = _train(project, tmp_path / "run", epochs=4)
    assert epochs[-1].val["r2"] > 0.95


def test_bad_streamed_archives_get_one_line(tmp_path: Path, cache: Path) -> None:
    x = np.ones((10, 3))
    x[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(10) % 2)
    with pytest.raises(DataError, match="nan.npz: array 'x' contains NaN or infinite values"):
        load_dataset({"name": "npz", "path": str(tmp_path / "nan.npz"), "storage": "stream"})
    np.savez(tmp_path / "objects.npz", x=np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="objects.npz: array 'x' holds Python objects"):
        load_dataset({"name": "npz", "path": str(tmp_path / "objects.npz"), "storage": "stream"})
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="broken.npz: not a readable .npz archive"):
        load_dataset({"name": "npz", "path": str(tmp_path / "broken.npz"), "storage": "stream"})


def test_tokens_and_small_archives_stay_in_memory(tmp_path: Path, cache: Path) -> None:
    ids = np.random.default_rng(0).integers(0, 9, (20, 5))
    np.savez(tmp_path / "tokens.npz", x=ids, y=np.roll(ids, -1, axis=1))
    tokens = load_dataset({"name": "npz", "path": str(tmp_path / "tokens.npz"), "storage": "stream"})
    assert isinstance(tokens.x, np.ndarray) and tokens.target_kind == "next_tokens"
    np.savez(tmp_path / "small.npz", x=np.ones((10, 3)), y=np.arange(10) % 2)
    small = load_dataset({"name": "npz", "path": str(tmp_path / "small.npz")})
    assert isinstance(small.x, np.ndarray) and "within the" in small.extras["storage"]


def test_the_exported_train_script_gets_streamed_data_without_loading_it_whole(tmp_path: Path, cache: Path) -> None:
    from engine.compile.export.train_script import write_npz

    x, y = _images(300)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dataset = load_dataset({"name": "npz", "path": str(tmp_path / "d.npz"), "storage": "stream"})
    write_npz(tmp_path / "data.npz", {"x": dataset.x, "y": dataset.y}, chunk_bytes=1000)  # many chunks
    with np.load(tmp_path / "data.npz", allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["x"], x)
        np.testing.assert_array_equal(archive["y"], dataset.y)
