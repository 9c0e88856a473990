"""Three-way splits: train / validation / test, stratified, seeded, given by the folder, recorded in runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.data import (
    ArrayDataset,
    DataError,
    load_dataset,
    prepare_data,
    split_indices,
)
from engine.data.splits import three_way_split
from engine.errors import UserError
from engine.settings import training_config
from engine.training.split_file import (
    SPLIT_FILE,
    check_same_data,
    read_split,
    write_split,
)

LABELS = [0] * 60 + [1] * 25 + [2] * 9 + [3] * 106


def _toy(labels: list[int], features: int = 3, names: list[str] | None = None) -> ArrayDataset:
    rng = np.random.default_rng(1)
    y = np.asarray(labels, dtype=np.int64)
    return ArrayDataset("toy", rng.normal(size=(len(y), features)).astype(np.float32), y, "classes",
                        class_names=names or [f"c{c}" for c in range(int(y.max()) + 1)])


# ------------------------------------------------------------------------------------ drawn splits
@pytest.mark.parametrize(("validation", "test"), [(0.2, 0.2), (0.1, 0.3), (0.25, 0.15), (0.05, 0.5)])
def test_three_way_split_is_stratified_disjoint_and_complete(validation: float, test: float) -> None:
    data = _toy(LABELS)
    split = three_way_split(data, validation, seed=4, test_fraction=test)
    n = len(LABELS)
    assert len(split.test) == round(n * test)
    assert len(split.val) == round(n * validation)
    parts = [split.train, split.val, split.test]
    assert sum(len(p) for p in parts) == n and len(np.unique(np.concatenate(parts))) == n
    counts = np.bincount(data.y, minlength=4)  # type: ignore[arg-type]
    for part in parts:
        assert np.all(np.diff(part) > 0)  # sorted, no repeats
        assert set(data.y[part]) == {0, 1, 2, 3}  # type: ignore[index]  # every class in every part
    test_counts = np.bincount(data.y[split.test], minlength=4)  # type: ignore[index]
    assert np.all(np.abs(test_counts - len(split.test) * counts / n) <= 1.0)


def test_split_is_seeded_and_test_rows_do_not_follow_the_validation_fraction() -> None:
    data = _toy(LABELS)
    a, b = (prepare_data(data, 0.2, seed=7, test_fraction=0.2) for _ in range(2))
    c = prepare_data(data, 0.2, seed=8, test_fraction=0.2)
    for name in ("train_index", "val_index", "test_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test_index, c.test_index)
    other = prepare_data(data, 0.35, seed=7, test_fraction=0.2)
    np.testing.assert_array_equal(a.test_index, other.test_index)
    np.testing.assert_array_equal(a.test_y, data.y[a.test_index])  # type: ignore[index]


@pytest.mark.parametrize("spec", [{"name": "wine"}, {"name": "diabetes"}, {"name": "sine_mixture"},
                                  {"name": "digits"}])
def test_no_test_fraction_is_the_two_way_split(spec: dict[str, object]) -> None:
    data = load_dataset(spec)
    two = split_indices(data, 0.2, 3)
    three = prepare_data(data, 0.2, 3, test_fraction=0.0)
    np.testing.assert_array_equal(two[0], three.train_index)
    np.testing.assert_array_equal(two[1], three.val_index)
    assert len(three.test_index) == 0 and len(three.test_x) == 0
    assert training_config({}).test_fraction == 0.0


def test_normalization_is_fitted_on_the_training_rows_only() -> None:
    data = load_dataset({"name": "iris"})
    before = prepare_data(data, 0.2, seed=3, test_fraction=0.2)
    changed = ArrayDataset(data.name, data.x.copy(), data.y, data.target_kind, data.class_names)
    changed.x[before.val_index] += 1000.0
    changed.x[before.test_index] -= 1000.0
    after = prepare_data(changed, 0.2, seed=3, test_fraction=0.2)
    assert before.x_normalization is not None and after.x_normalization is not None
    np.testing.assert_array_equal(before.x_normalization.mean, after.x_normalization.mean)
    np.testing.assert_array_equal(before.x_normalization.std, after.x_normalization.std)
    np.testing.assert_allclose(before.x_normalization.mean, data.x[before.train_index].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(before.test_x, before.x_normalization.apply(data.x[before.test_index]))


def test_regression_targets_of_the_test_part_are_normalized_with_training_statistics() -> None:
    data = load_dataset({"name": "diabetes"})
    prepared = prepare_data(data, 0.2, seed=1, test_fraction=0.1)
    assert prepared.y_normalization is not None and prepared.test_y is not None
    np.testing.assert_allclose(prepared.y_normalization.mean, data.y[prepared.train_index].mean(0),  # type: ignore[index]
                               rtol=1e-5)
    np.testing.assert_allclose(prepared.y_normalization.invert(prepared.test_y), data.y[prepared.test_index],  # type: ignore[index]
                               rtol=1e-4, atol=1e-3)
    assert len(prepared.test_index) == round(0.1 * len(data))


def test_series_keep_time_order_with_the_test_part_last() -> None:
    data = load_dataset({"name": "sine_mixture", "series_length": 300})
    prepared = prepare_data(data, 0.2, test_fraction=0.1)
    train, val, test = prepared.train_index, prepared.val_index, prepared.test_index
    assert val[0] == train[-1] + 1 and test[0] == val[-1] + 1 and test[-1] == len(data) - 1
    assert len(test) == round(0.1 * len(data))


def test_without_test_hides_the_test_part() -> None:
    prepared = prepare_data(_toy(LABELS), 0.2, test_fraction=0.2)
    hidden = prepared.without_test()
    assert len(hidden.test_x) == len(hidden.test_index) == 0 and hidden.test_x.base is None
    assert hidden.test_y is not None and len(hidden.test_y) == 0
    np.testing.assert_array_equal(hidden.train_x, prepared.train_x)


# ------------------------------------------------------------------------------------ bad input
def test_a_class_too_small_for_the_test_split_is_named() -> None:
    with pytest.raises(DataError, match=r"^test_fraction: class 'lonely' has only 1 sample; .*add samples of "
                                        r"'lonely' or set test_fraction to 0$"):
        prepare_data(_toy([0] * 20 + [1] * 20 + [2], names=["a", "b", "lonely"]), 0.2, test_fraction=0.2)
    with pytest.raises(DataError, match=r"^test_fraction: class 'rare' \(3 samples\) gets no test sample at "
                                        r"test_fraction 0.05; raise test_fraction to about 0.34"):
        prepare_data(_toy([0] * 100 + [1] * 100 + [2] * 3, names=["a", "b", "rare"]), 0.2, test_fraction=0.05)
    # without a test part a single-sample class still just stays in training
    assert 40 in prepare_data(_toy([0] * 20 + [1] * 20 + [2]), 0.2).train_index


@pytest.mark.parametrize(("section", "message"), [
    ({"test_fraction": -0.1}, "training.test_fraction: "),
    ({"test_fraction": 1.0}, "training.test_fraction: "),
    ({"test_fraction": 0.6, "validation_fraction": 0.4},
     "training.test_fraction: validation_fraction + test_fraction must be below 1, got 0.4 + 0.6"),
])
def test_bad_test_fractions_name_the_field(section: dict[str, float], message: str) -> None:
    with pytest.raises(UserError) as caught:
        training_config(section)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_bad_fractions_in_prepare_data() -> None:
    with pytest.raises(DataError, match="^test_fraction: must be at least 0 and below 1"):
        prepare_data(_toy(LABELS), 0.2, test_fraction=1.0)
    with pytest.raises(DataError, match="^test_fraction: validation_fraction \\+ test_fraction must be below 1"):
        prepare_data(_toy(LABELS), 0.5, test_fraction=0.5)
    with pytest.raises(DataError, match="^test_fraction: the data 'toy' has 2 sample"):
        prepare_data(ArrayDataset("toy", np.zeros((2, 1), np.float32), None, "none"), 0.4, test_fraction=0.4)


# ------------------------------------------------------------------------------------ given splits
def _png_folder(root: Path, layout: dict[str, int]) -> Path:
    """``layout``: ``"train/cat"`` -> number of 6x6 PNGs (pixel values tell the images apart)."""
    from PIL import Image

    value = 0
    for folder, count in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            value = (value + 7) % 256
            Image.fromarray(np.full((6, 6), value, dtype=np.uint8)).save(root / folder / f"img{i}.png")
    return root


def _images(root: Path) -> ArrayDataset:
    return load_dataset({"name": "image_folder", "path": str(root), "size": [6, 6]})


def test_a_folder_split_into_train_val_test_is_kept(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "pets", {"train/cat": 6, "train/dog": 5, "val/cat": 2, "val/dog": 2,
                                           "test/cat": 3, "test/dog": 2})
    data = _images(root)
    assert data.class_names == ["cat", "dog"] and len(data) == 20
    files = data.extras["files"]
    assert files[0] == "train/cat/img0.png" and "arrived split (11 train, 4 val, 5 test)" in data.description
    np.testing.assert_array_equal(data.extras["split"], [0] * 11 + [1] * 4 + [2] * 5)
    for seed in (0, 1):
        prepared = prepare_data(data, 0.3, seed=seed, test_fraction=0.1)  # fractions do not apply: given
        assert [files[i].split("/")[0] for i in prepared.train_index] == ["train"] * 11
        assert [files[i].split("/")[0] for i in prepared.val_index] == ["val"] * 4
        assert [files[i] for i in prepared.test_index] == [f"test/{c}/img{i}.png" for c, k in (("cat", 3), ("dog", 2))
                                                           for i in range(k)]
        assert list(data.y[prepared.test_index]) == [0, 0, 0, 1, 1]  # type: ignore[index]


def test_a_folder_without_val_draws_validation_from_its_train_part(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "pets", {"train/cat": 10, "train/dog": 10, "test/cat": 2, "test/dog": 2})
    data = _images(root)
    prepared = prepare_data(data, 0.2, seed=0)
    files = data.extras["files"]
    assert len(prepared.val_index) == 4 and all(files[i].startswith("train/") for i in prepared.val_index)
    assert set(data.y[prepared.val_index]) == {0, 1}  # type: ignore[index]
    assert all(files[i].startswith("test/") for i in prepared.test_index) and len(prepared.test_index) == 4
    # train/ and val/ only, with a test fraction: the test part is drawn from train/, stratified
    root2 = _png_folder(tmp_path / "pets2", {"train/cat": 10, "train/dog": 10, "val/cat": 2, "val/dog": 2})
    data2 = _images(root2)
    prepared2 = prepare_data(data2, 0.2, seed=0, test_fraction=0.2)
    files2 = data2.extras["files"]
    assert all(files2[i].startswith("val/") for i in prepared2.val_index)
    assert len(prepared2.test_index) == 4 and all(files2[i].startswith("train/") for i in prepared2.test_index)
    assert list(np.bincount(data2.y[prepared2.test_index])) == [2, 2]  # type: ignore[index]


def test_a_given_split_missing_a_class_is_refused_naming_it(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "a", {"train/cat": 3, "train/dog": 3, "test/cat": 2})
    with pytest.raises(DataError, match=r"^class 'dog' has no sample in the test part of 'a': add samples of it to "
                                        r"test/dog$"):
        prepare_data(_images(root), 0.2)
    root = _png_folder(tmp_path / "b", {"train/cat": 3, "val/dog": 2, "val/cat": 1})
    with pytest.raises(DataError, match=r"^class 'dog' has no sample in the training part of 'b'"):
        prepare_data(_images(root), 0.2)


def test_class_folders_named_train_and_test_are_classes(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "odd", {"train": 3, "test": 3})
    data = _images(root)
    assert data.class_names == ["test", "train"] and "split" not in data.extras


# ------------------------------------------------------------------------------------ the run's record
def test_split_record_round_trips_and_knows_its_data(tmp_path: Path) -> None:
    data = load_dataset({"name": "wine"})
    prepared = prepare_data(data, 0.2, seed=2, test_fraction=0.2)
    write_split(tmp_path, prepared)
    recorded = read_split(tmp_path)
    assert recorded is not None and recorded.rows == len(data) and not recorded.given
    np.testing.assert_array_equal(recorded.test, prepared.test_index)
    np.testing.assert_array_equal(recorded.train, prepared.train_index)
    check_same_data(recorded, load_dataset({"name": "wine"}), tmp_path)  # loaded again: the same data
    changed = ArrayDataset(data.name, data.x.copy(), data.y, data.target_kind, data.class_names)
    changed.x[0] += 1.0
    with pytest.raises(UserError, match="changed since this run trained \\(same size, other contents\\)"):
        check_same_data(recorded, changed, tmp_path)
    with pytest.raises(UserError, match="changed since this run trained \\(150 samples now, 178 then\\)"):
        check_same_data(recorded, load_dataset({"name": "iris"}), tmp_path)
    assert read_split(tmp_path / "nowhere") is None
    (tmp_path / SPLIT_FILE).write_bytes(b"not a zip")
    with pytest.raises(UserError, match=f"{SPLIT_FILE}: not a readable split record"):
        read_split(tmp_path)
