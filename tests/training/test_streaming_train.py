"""Training on a streamed image folder: worker decoding, device normalization, decreasing loss."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import load_dataset, prepare_data, streaming
from engine.training.batches import BatchSource
from engine.training.events import EpochEnd, Finished
from engine.training.trainer import Trainer, TrainOptions
from tests.test_streaming import make_image_folder
from tests.training.helpers import chain_project


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(streaming, "cache_root", lambda: tmp_path / "cache")
    return make_image_folder(tmp_path / "images", per_class=100, size=8)


def _project(folder: Path, storage: str, workers: int, epochs: int = 3):  # noqa: ANN202
    return chain_project([
        ("image", "input", {"shape": [3, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act1", "relu", {}),
        ("conv2", "conv2d", {"out_channels": 8, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act2", "relu", {}),
        ("pool", "maxpool2d", {"kernel_size": [2, 2]}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 3}),
        ("logits", "output", {}),
    ], {"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb", "storage": storage},
        {"batch_size": 32, "epochs": epochs, "lr": 0.01, "seed": 5, "num_workers": workers})


def _train(project) -> tuple[object, list]:  # noqa: ANN001
    events: list = []
    result = Trainer(TrainOptions(project, None, None, {}, False), events.append, None).run()
    return result, events


def test_stream_storage_trains_and_the_loss_decreases(folder: Path) -> None:
    result, events = _train(_project(folder, "stream", workers=1))
    assert isinstance(result, Finished), getattr(result, "message", result)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(epochs) == 3
    assert epochs[-1].train["loss"] < epochs[0].train["loss"]
    assert epochs[-1].val["loss"] < 1.0 and epochs[-1].val["accuracy"] > 0.6


def test_streamed_batches_equal_the_in_memory_batches(folder: Path) -> None:
    (folder / "class0" / "broken.png").unlink()
    spec = {"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb"}
    streamed = prepare_data(load_dataset({**spec, "storage": "stream"}), 0.2, seed=1).without_test()
    memory = prepare_data(load_dataset({**spec, "storage": "memory"}), 0.2, seed=1).without_test()
    cpu = torch.device("cpu")
    lazy, eager = BatchSource(streamed, cpu, 16, seed=2, num_workers=1), BatchSource(memory, cpu, 16, seed=2)
    assert lazy.steps_per_epoch == eager.steps_per_epoch and lazy.train_count == eager.train_count
    for (i, (xa, ya)), (j, (xb, yb)) in zip(lazy.epoch(0), eager.epoch(0)):
        assert i == j and torch.equal(ya, yb)
        # in-memory normalization is fitted on every training image; streamed on the same (few) images here
        torch.testing.assert_close(xa, xb, atol=1e-4, rtol=1e-4)
    val_x, val_y = lazy.validation()
    got = list(val_x.device_batches())
    torch.testing.assert_close(torch.cat([x for x, _ in got]), eager.val_x, atol=1e-4, rtol=1e-4)
    assert torch.equal(torch.cat([y for _, y in got]), eager.val_y)
    snap_x, snap_y = lazy.snapshot_data()
    torch.testing.assert_close(snap_x, eager.val_x[:len(snap_x)], atol=1e-4, rtol=1e-4)
    assert np.array_equal(snap_y.numpy(), eager.val_y[:len(snap_y)].numpy())


def test_a_file_broken_after_the_scan_is_skipped_in_its_batch(folder: Path) -> None:
    project = _project(folder, "stream", workers=0, epochs=1)
    project.dataset["cache"] = "off"
    data = load_dataset(project.dataset)
    target = folder / data.extras["files"][10]
    original = target.read_bytes()
    import engine.data.registry as registry

    real = registry.DATASETS["image_folder"].loader

    def load_then_break(name: str, opts: dict) -> object:
        dataset = real(name, opts)
        target.write_bytes(b"broken after the scan")
        return dataset

    info = registry.DATASETS["image_folder"]
    registry.DATASETS["image_folder"] = type(info)(info.name, info.description, info.group, info.task,
                                                   info.options, load_then_break)
    records: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        result, _ = _train(project)
    finally:
        logging.getLogger().removeHandler(handler)
        registry.DATASETS["image_folder"] = info
        target.write_bytes(original)
    assert isinstance(result, Finished), getattr(result, "message", result)
    assert "\n".join(records).count(data.extras["files"][10]) == 1


def test_default_storage_trains_from_memory(folder: Path) -> None:
    (folder / "class0" / "broken.png").unlink()
    project = _project(folder, "auto", workers=0, epochs=1)
    data = load_dataset(project.dataset)
    assert not streaming.is_lazy(data.x)
    result, _ = _train(project)
    assert isinstance(result, Finished)


def test_evaluate_and_look_inside_read_a_streamed_run_as_training_fed_it(folder: Path, tmp_path: Path) -> None:
    """The test split and Look Inside's sample are decoded and normalized as training batches are,
    so a streamed run evaluates to the same numbers as the same run kept in memory."""
    from engine.training.evaluate import evaluate_run
    from engine.training.insight import ModelInsight

    (folder / "class0" / "broken.png").unlink()
    results = {}
    for storage in ("stream", "memory"):
        project = _project(folder, storage, workers=0, epochs=1)
        project.training["test_fraction"] = 0.2
        run = tmp_path / storage
        assert isinstance(Trainer(TrainOptions(project, run, None, {}, False), lambda e: None, None).run(), Finished)
        evaluation = evaluate_run(run, "test")
        assert evaluation.images is not None and evaluation.images.shape[1:] == (3, 8, 8)
        insight = ModelInsight.from_run(run)
        results[storage] = (evaluation.metrics["accuracy"], insight.node_report("fc", 0).probability)
    assert results["stream"][0] == pytest.approx(results["memory"][0])
    assert results["stream"][1] == pytest.approx(results["memory"][1], abs=1e-4)


def test_augmentation_applies_to_streamed_images(folder: Path) -> None:
    """Streamed images are uint8 on disk and float on the device: every image option applies to them,
    the preview shows them, and a run augments its streamed batches."""
    from engine.training.augment import check_fits, image_shape_of, preview_augmented, read_augment

    augment = {"crop": "padded", "hflip": True, "rotation": 10, "brightness": 0.2, "erasing": 0.2, "mixup": 0.2}
    dataset = load_dataset({"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb",
                            "storage": "stream"})
    options = read_augment({"augment": augment})
    check_fits(options, dataset)
    assert image_shape_of(dataset) == (3, 8, 8)
    preview = preview_augmented(dataset.x[:6], options, 0, (3, 8, 8))
    assert preview.shape == (6, 3, 8, 8) and np.isfinite(preview).all()
    project = _project(folder, "stream", workers=1, epochs=2)
    project.dataset["augment"] = augment
    result, events = _train(project)
    assert isinstance(result, Finished), getattr(result, "message", result)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(epochs) == 2 and all(np.isfinite(e.train["loss"]) for e in epochs)


def test_an_exported_train_script_gets_a_streamed_folder_as_the_memory_loader_gives_it(folder: Path,
                                                                                       tmp_path: Path) -> None:
    from engine.compile.export.train_script import write_npz

    spec = {"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb"}
    streamed, memory = load_dataset({**spec, "storage": "stream"}), load_dataset({**spec, "storage": "memory"})
    write_npz(tmp_path / "data.npz", {"x": streamed.x}, chunk_bytes=500)
    with np.load(tmp_path / "data.npz", allow_pickle=False) as archive:
        np.testing.assert_allclose(archive["x"], memory.x, atol=1e-6)


def test_a_streamed_image_run_predicts_on_image_arrays(folder: Path, tmp_path: Path) -> None:
    """Streamed images are stored as uint8, which is not token ids: an .npz of images in training's
    units ([0, 1]) is predicted on, and equals predicting on the image files."""
    from engine.training.predict import predict_run

    project = _project(folder, "stream", workers=0, epochs=1)
    run = tmp_path / "run"
    result = Trainer(TrainOptions(project, run, None, {}, False), lambda event: None).run()
    assert isinstance(result, Finished), getattr(result, "message", result)
    files = sorted((folder / "class1").glob("*.png"))[:3]
    arrays = load_dataset({"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb",
                           "storage": "memory"})
    x = np.stack([arrays.x[arrays.extras["files"].index(f"class1/{f.name}")] for f in files])
    np.savez(tmp_path / "x.npz", x=x)
    from_files = predict_run(run, [str(f) for f in files]).rows
    from_array = predict_run(run, [str(tmp_path / "x.npz")]).rows
    assert [r.top_k for r in from_array] == [r.top_k for r in from_files]


def test_the_loader_workers_persist_across_epochs(folder: Path) -> None:
    """One loader (its worker processes started once) serves every epoch: the app's training process
    spawns its children, and starting them each epoch cost about 2 s an epoch."""
    data = prepare_data(load_dataset({"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb",
                                      "storage": "stream"}), 0.2, seed=1).without_test()
    source = BatchSource(data, torch.device("cpu"), 32, seed=0, num_workers=1)
    first = [x.clone() for _, (x, _) in source.epoch(0)]
    loader = source.streamed._loader
    second = [x.clone() for _, (x, _) in source.epoch(1)]
    assert source.streamed._loader is loader and loader.persistent_workers
    assert len(first) == len(second) and not all(torch.equal(a, b) for a, b in zip(first, second))  # reshuffled
    rows = sorted(torch.cat(first).sum(dim=(1, 2, 3)).tolist())
    assert rows == pytest.approx(sorted(torch.cat(second).sum(dim=(1, 2, 3)).tolist()), abs=1e-3)  # same samples
