"""Streamed image folders: the lazy array, its cache, unreadable files and the storage choice."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.data import describe, load_dataset, prepare_data
from engine.data import streaming
from engine.data.streaming import LazyImages, is_lazy


def make_image_folder(root: Path, per_class: int = 40, size: int = 12, classes: int = 3) -> Path:
    """Class folders of small PNGs (RGB, RGBA, greyscale and 16-bit), one corrupt PNG, one text file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            kind = i % 4
            base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            base[..., c % 3] = np.clip(base[..., c % 3].astype(int) + 120, 0, 255)  # learnable colour cue
            if kind == 0:
                image = Image.fromarray(base)
            elif kind == 1:
                alpha = rng.integers(0, 256, (size, size, 1), dtype=np.uint8)
                image = Image.fromarray(np.concatenate([base, alpha], axis=2))
            elif kind == 2:
                image = Image.fromarray(base.mean(2).astype(np.uint8))
            else:
                image = Image.fromarray(base.mean(2).astype(np.uint16) * 257)
            image.save(folder / f"img{i:03d}.png")
    (root / "class0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (root / "class1" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(streaming, "cache_root", lambda: folder)
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


def _spec(folder: Path, **extra: object) -> dict:
    return {"name": "image_folder", "path": str(folder), "size": [10, 10], "color": "rgb", **extra}


def _without_broken(folder: Path) -> Path:
    (folder / "class0" / "broken.png").unlink()
    return folder


@pytest.mark.parametrize("color", ["rgb", "grayscale"])
def test_lazy_indexing_equals_the_in_memory_arrays(folder: Path, cache_dir: Path, color: str) -> None:
    streamed = load_dataset(_spec(folder, storage="stream", color=color))
    assert is_lazy(streamed.x)
    skipped = streamed.extras["skipped"]
    assert skipped == ["class0/broken.png"]
    memory = load_dataset(_spec(_without_broken(folder), storage="memory", color=color))
    assert not is_lazy(memory.x) and memory.x.dtype == np.float32
    x = streamed.x
    assert len(x) == len(memory) == 120 and x.shape == memory.x.shape and x.dtype == np.uint8
    assert streamed.extras["files"] == memory.extras["files"]
    np.testing.assert_array_equal(streamed.y, memory.y)
    whole = x[:]
    np.testing.assert_array_equal(whole.astype(np.float32) / np.float32(255), memory.x)  # the same decode
    np.testing.assert_array_equal(x[7], whole[7])
    np.testing.assert_array_equal(x[10:20], whole[10:20])
    rows = np.array([5, 3, 100, 0])
    np.testing.assert_array_equal(x[rows], whole[rows])
    np.testing.assert_array_equal(x.take(rows)[1:3], whole[[3, 100]])


def test_cache_is_written_reused_and_invalidated(folder: Path, cache_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset(_spec(folder, storage="stream")).x
    assert isinstance(first, LazyImages) and first.cache is not None
    expected = first[:]  # decodes every image into the cache
    state = np.fromfile(first.cache / "state.u8", dtype=np.uint8)
    assert (state == 1).sum() == 120 and (state == 2).sum() == 1  # decoded, and the broken one

    calls: list[str] = []
    real, real_verify = streaming.images.decode_image, streaming.verify_image

    def counting(path: Path, *args: object) -> np.ndarray:
        calls.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(streaming.images, "decode_image", counting)
    monkeypatch.setattr(streaming, "verify_image", lambda path: pytest.fail(f"verified {path} again"))
    again = load_dataset(_spec(folder, storage="stream")).x
    np.testing.assert_array_equal(again[:], expected)
    assert calls == []  # second epoch / second run: all from the cache

    changed = folder / "class2" / "img005.png"
    from PIL import Image
    Image.fromarray(np.full((12, 12, 3), 7, np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    monkeypatch.setattr(streaming, "verify_image", lambda path: True)
    fresh = load_dataset(_spec(folder, storage="stream"))
    row = fresh.extras["files"].index("class2/img005.png")
    assert np.all(fresh.x[row] == 7) and calls == ["img005.png"]

    (folder / "class2" / "img006.png").unlink()  # a changed file list rebuilds the cache
    monkeypatch.setattr(streaming, "verify_image", real_verify)
    rebuilt = load_dataset(_spec(folder, storage="stream"))
    calls.clear()
    rebuilt.x[:3]
    assert len(calls) == 3


def test_cache_off_decodes_without_writing(folder: Path, cache_dir: Path) -> None:
    data = load_dataset(_spec(folder, storage="stream", cache="off"))
    assert data.x.cache is None and data.extras["cache"] is None
    assert data.x[:4].shape == (4, 3, 10, 10)
    assert not cache_dir.exists()


def test_unreadable_files_are_listed_once(folder: Path, cache_dir: Path) -> None:
    data = load_dataset(_spec(folder, storage="stream"))
    info = describe(data)
    assert info["skipped"] == ["class0/broken.png"]
    assert info["description"].count("broken.png") == 1 and "1 unreadable image(s) skipped" in info["description"]
    assert info["input_dtype"] == "float" and info["vocabulary_size"] is None
    assert "streamed from disk" in info["storage"] and "storage: stream" in info["storage"]
    assert "notes.txt" not in " ".join(data.extras["files"])


def test_a_file_that_breaks_later_is_skipped_not_raised(folder: Path, cache_dir: Path) -> None:
    x = load_dataset(_spec(folder, storage="stream", cache="off")).x
    (folder / "class1" / "img002.png").write_bytes(b"now broken")
    images, bad = x.read_skipping(x.rows[:50])
    assert bad == ["class1/img002.png"] or len(images) == 50  # the row is in the first 50 only if sorted there
    images, bad = x.read_skipping(x.rows)
    assert bad == ["class1/img002.png"] and len(images) == len(x) - 1


def test_auto_streams_above_the_budget_only(folder: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_broken(folder)
    default = load_dataset(_spec(folder))
    assert not is_lazy(default.x) and default.x.dtype == np.float32
    assert "storage: auto" in default.extras["storage"] and "in memory" in default.extras["storage"]
    assert "streamed" not in default.description  # the in-memory description is unchanged
    memory = load_dataset(_spec(folder, storage="memory"))
    np.testing.assert_array_equal(default.x, memory.x)
    monkeypatch.setattr(streaming, "stream_budget", lambda: 1000)
    small = load_dataset(_spec(folder))
    assert is_lazy(small.x) and "exceeds the 1000 bytes memory budget" in small.description


def test_budget_is_at_most_a_gib_and_a_quarter_of_free_memory() -> None:
    import psutil

    assert 0 < streaming.stream_budget() <= min(1 << 30, psutil.virtual_memory().available // 4 + (1 << 20))


def test_prepare_keeps_streamed_parts_lazy(folder: Path, cache_dir: Path) -> None:
    data = load_dataset(_spec(_without_broken(folder), storage="stream"))
    split = prepare_data(data, 0.2, seed=3, test_fraction=0.1)
    for part, index in ((split.train_x, split.train_index), (split.val_x, split.val_index),
                        (split.test_x, split.test_index)):
        assert is_lazy(part) and len(part) == len(index)
        np.testing.assert_array_equal(part.rows, data.x.rows[index])
    norm = split.x_normalization
    train = data.x[split.train_index].astype(np.float64) / 255
    np.testing.assert_allclose(norm.mean.ravel(), train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(norm.std.ravel(), train.std(axis=(0, 2, 3)), rtol=1e-4)
    trainer_view = split.without_test()
    assert len(trainer_view.test_x) == 0
    memory = prepare_data(load_dataset(_spec(folder, storage="memory")), 0.2, seed=3, test_fraction=0.1)
    np.testing.assert_array_equal(memory.train_index, split.train_index)
