"""engine.data: built-in and file datasets, spec validation, seeded split, normalization, fit checks.

Every user file is written by the test in ``tmp_path`` (CSV, PNG via Pillow, npz, MNIST
idx, CIFAR-10 binary); nothing is downloaded.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import (
    DATASETS,
    ArrayDataset,
    DataError,
    check_input_fits,
    dataset_names,
    describe,
    load_dataset,
    prepare_data,
)
from engine.data.corpus import corpus_text, zen_of_python
from engine.layers.base import TensorSpec
from tests.conftest import ROOT

# --------------------------------------------------------------------------- built-ins

BUILTIN_CASES = [
    ({"name": "digits"}, (1797, 1, 8, 8), "classes", 10),
    ({"name": "digits", "layout": "flat"}, (1797, 64), "classes", 10),
    ({"name": "digits", "layout": "rows"}, (1797, 8, 8), "classes", 10),
    ({"name": "iris"}, (150, 4), "classes", 3),
    ({"name": "wine"}, (178, 13), "classes", 3),
    ({"name": "breast_cancer"}, (569, 30), "classes", 2),
    ({"name": "diabetes"}, (442, 10), "values", 0),
    ({"name": "moons", "samples": 200, "noise": 0.2}, (200, 2), "classes", 2),
    ({"name": "circles", "samples": 100}, (100, 2), "classes", 2),
    ({"name": "spirals", "samples": 300, "classes": 3}, (300, 2), "classes", 3),
    ({"name": "xor", "samples": 120}, (120, 2), "classes", 2),
    ({"name": "gaussian_ring", "samples": 400, "modes": 6}, (400, 2), "none", 0),
]


@pytest.mark.parametrize(("spec", "shape", "kind", "classes"), BUILTIN_CASES,
                         ids=[f"{c[0]['name']}-{c[0].get('layout', '')}" for c in BUILTIN_CASES])
def test_builtin_shapes_dtypes_and_classes(spec: dict, shape: tuple, kind: str, classes: int) -> None:
    data = load_dataset(spec)
    assert data.x.shape == shape and data.x.dtype == np.float32
    assert data.target_kind == kind and data.num_classes == classes
    if kind == "classes":
        assert data.y is not None and data.y.dtype == np.int64 and data.y.shape == (shape[0],)
        assert set(np.unique(data.y)) == set(range(classes)) and len(data.class_names or []) == classes
    elif kind == "values":
        assert data.y is not None and data.y.dtype == np.float32 and data.y.shape == (shape[0], 1)
    else:
        assert data.y is None
    assert data.description


def test_digits_pixels_scaled_and_layouts_agree() -> None:
    image = load_dataset({"name": "digits"})
    flat = load_dataset({"name": "digits", "layout": "flat"})
    rows = load_dataset({"name": "digits", "layout": "rows"})
    assert image.x.min() == 0.0 and image.x.max() == 1.0
    np.testing.assert_array_equal(image.x.reshape(-1, 64), flat.x)
    np.testing.assert_array_equal(image.x[:, 0], rows.x)
    assert image.class_names == [str(d) for d in range(10)] and image.image_shape == (1, 8, 8)


def test_generated_sets_follow_their_seed() -> None:
    a = load_dataset({"name": "spirals", "samples": 50, "seed": 3})
    b = load_dataset({"name": "spirals", "samples": 50, "seed": 3})
    c = load_dataset({"name": "spirals", "samples": 50, "seed": 4})
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)


def test_gaussian_ring_points_lie_near_their_modes() -> None:
    data = load_dataset({"name": "gaussian_ring", "samples": 500, "radius": 3.0, "std": 0.01})
    radii = np.linalg.norm(data.x, axis=1)
    assert np.all(np.abs(radii - 3.0) < 0.1) and data.extras["centers"].shape == (8, 2)


def test_sine_mixture_windows_and_series() -> None:
    data = load_dataset({"name": "sine_mixture", "window": 16, "horizon": 3, "series_length": 200})
    series = data.extras["series"]
    assert data.x.shape == (182, 16, 1) and data.y is not None and data.y.shape == (182, 3)
    assert data.x.dtype == np.float32 and data.y.dtype == np.float32 and data.target_kind == "values"
    np.testing.assert_array_equal(data.x[10, :, 0], series[10:26])
    np.testing.assert_array_equal(data.y[10], series[26:29])
    with pytest.raises(DataError, match=r"^dataset\.series_length: must be at least window \+ horizon \+ 1 = 20, got 19$"):
        load_dataset({"name": "sine_mixture", "window": 16, "horizon": 3, "series_length": 19})


def test_text_corpus_next_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    data = load_dataset({"name": "text", "seq_len": 16})
    assert capsys.readouterr().out == ""  # the Zen comes from this.py's source, not from importing it
    assert data.x.dtype == np.int64 and data.x.shape[1] == 16 and data.target_kind == "next_tokens"
    assert data.y is not None and data.y.shape == data.x.shape and data.y.dtype == np.int64
    np.testing.assert_array_equal(data.y[:, :-1], data.x[:, 1:])
    vocab = data.vocabulary or []
    assert vocab == sorted(set(corpus_text()))
    assert "".join(vocab[i] for i in data.x[0]) == corpus_text()[:16]
    assert zen_of_python().startswith("The Zen of Python") and "Beautiful is better than ugly." in corpus_text()


def test_catalogue_documents_every_source() -> None:
    assert dataset_names() == list(DATASETS)
    assert {"digits", "iris", "csv", "image_folder", "npz", "mnist", "fashion_mnist", "cifar10",
            "text", "sine_mixture", "gaussian_ring"} <= set(DATASETS)
    for info in DATASETS.values():
        assert info.description and all(line.startswith(o.name) for line, o in
                                         zip(info.option_lines(), info.options))


def test_importing_engine_data_loads_neither_torch_nor_heavy_libraries() -> None:
    code = "import sys, engine.data; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in ("torch", "sklearn", "PIL", "PySide6"):
        assert f"'{name}'" not in out.stdout


# --------------------------------------------------------------------------- spec validation

@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "digitz"}, r"^dataset\.name: unknown dataset 'digitz'; choose one of digits, iris"),
    ({}, r"^dataset\.name: missing"),
    ({"name": "digits", "colour": "red"},
     r"^dataset\.colour: unknown field for 'digits'; its fields are: name, layout, classes$"),
    ({"name": "digits", "layout": "grid"}, r"^dataset\.layout: must be one of 'image', 'flat', 'rows'"),
    ({"name": "moons", "samples": "100"}, r"^dataset\.samples: must be a whole number"),
    ({"name": "moons", "samples": True}, r"^dataset\.samples: must be a whole number"),
    ({"name": "moons", "samples": 10.5}, r"^dataset\.samples: must be a whole number"),
    ({"name": "moons", "samples": 1}, r"^dataset\.samples: must be at least 2"),
    ({"name": "moons", "noise": -0.1}, r"^dataset\.noise: must be at least 0"),
    ({"name": "moons", "noise": float("nan")}, r"^dataset\.noise: must be a finite number"),
    ({"name": "spirals", "classes": 40}, r"^dataset\.classes: must be at most 12"),
    ({"name": "csv"}, r"^dataset\.path: missing"),
    ({"name": "csv", "path": 3}, r"^dataset\.path: must be a path as text"),
    ({"name": "csv", "path": "nope.csv"}, r"^dataset\.path: no such file: .*nope\.csv$"),
    ({"name": "mnist", "path": "nope"}, r"^dataset\.path: no such folder"),
    ({"name": "image_folder", "path": ".", "size": [28]}, r"^dataset\.size: must be two whole numbers"),
    ({"name": "image_folder", "path": ".", "size": [0, 28]}, r"^dataset\.size: must be at least 1"),
])
def test_bad_specs_name_the_field(spec: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(spec, base_dir=tmp_path)


def test_spec_must_be_an_object() -> None:
    with pytest.raises(DataError, match=r"^dataset: must be an object"):
        load_dataset(["digits"])  # type: ignore[arg-type]


def test_relative_paths_resolve_against_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text("a,b\n1,x\n2,y\n")
    data = load_dataset({"name": "csv", "path": "sub/t.csv"}, base_dir=tmp_path)
    assert data.name == "t.csv" and len(data) == 2


# --------------------------------------------------------------------------- split and normalization

def _toy(labels: list[int], features: int = 3) -> ArrayDataset:
    rng = np.random.default_rng(1)
    y = np.asarray(labels, dtype=np.int64)
    return ArrayDataset("toy", rng.normal(size=(len(y), features)).astype(np.float32), y, "classes",
                        class_names=[str(c) for c in range(int(y.max()) + 1)])


def test_split_is_reproducible_disjoint_and_complete() -> None:
    data = load_dataset({"name": "wine"})
    a, b, c = prepare_data(data, 0.25, seed=5), prepare_data(data, 0.25, seed=5), prepare_data(data, 0.25, seed=6)
    np.testing.assert_array_equal(a.val_index, b.val_index)
    assert not np.array_equal(a.val_index, c.val_index)
    assert set(a.train_index).isdisjoint(a.val_index)
    assert sorted([*a.train_index, *a.val_index]) == list(range(len(data)))
    assert len(a.val_index) == round(0.25 * len(data))


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.33, 0.5])
def test_split_is_stratified(fraction: float) -> None:
    labels = [0] * 37 + [1] * 11 + [2] * 5 + [3] * 80
    data = _toy(labels)
    prepared = prepare_data(data, fraction, seed=2)
    n_val = len(prepared.val_index)
    counts = np.bincount(data.y, minlength=4)  # type: ignore[arg-type]
    val_counts = np.bincount(data.y[prepared.val_index], minlength=4)  # type: ignore[index]
    assert np.all(np.abs(val_counts - n_val * counts / len(labels)) <= 1.0)
    np.testing.assert_array_equal(prepared.val_y, data.y[prepared.val_index])  # type: ignore[index]


def test_single_sample_class_stays_in_training() -> None:
    data = _toy([0] * 10 + [1] * 10 + [2])
    prepared = prepare_data(data, 0.3, seed=0)
    assert 20 in prepared.train_index and len(prepared.val_index) > 0


def test_too_few_samples_and_bad_fraction() -> None:
    with pytest.raises(DataError, match="at least 2"):
        prepare_data(_toy([0]))
    with pytest.raises(DataError, match="validation_fraction"):
        prepare_data(_toy([0, 1, 0, 1]), validation_fraction=1.0)
    prepared = prepare_data(_toy([0, 1, 0, 1]), validation_fraction=0.0)
    assert len(prepared.val_x) == 0 and len(prepared.train_x) == 4


def test_forecasting_split_keeps_time_order() -> None:
    data = load_dataset({"name": "sine_mixture", "series_length": 300})
    prepared = prepare_data(data, 0.2)
    assert prepared.val_index[0] == prepared.train_index[-1] + 1 and prepared.val_index[-1] == len(data) - 1
    assert prepared.y_normalization is not None and prepared.y_normalization.mean.shape == (1,)
    restored = prepared.y_normalization.invert(prepared.val_y)  # type: ignore[arg-type]
    np.testing.assert_allclose(restored, data.y[prepared.val_index], atol=1e-5)  # type: ignore[index]


def test_normalization_uses_training_rows_only() -> None:
    data = load_dataset({"name": "iris"})
    before = prepare_data(data, seed=3)
    changed = ArrayDataset(data.name, data.x.copy(), data.y, data.target_kind, data.class_names)
    changed.x[before.val_index] += 1000.0
    after = prepare_data(changed, seed=3)
    assert before.x_normalization is not None and after.x_normalization is not None
    np.testing.assert_array_equal(before.val_index, after.val_index)
    np.testing.assert_array_equal(before.x_normalization.mean, after.x_normalization.mean)
    np.testing.assert_array_equal(before.x_normalization.std, after.x_normalization.std)
    np.testing.assert_allclose(before.x_normalization.mean, data.x[before.train_index].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(before.train_x.mean(axis=0), 0.0, atol=1e-5)
    assert before.train_x.dtype == np.float32


@pytest.mark.parametrize(("spec", "mean_shape"), [
    ({"name": "digits"}, (1, 1, 1)),                       # one statistic per channel
    ({"name": "digits", "layout": "flat"}, (64,)),         # per feature
    ({"name": "digits", "layout": "rows"}, (1, 8)),        # per feature over all steps
    ({"name": "diabetes"}, (10,)),
])
def test_normalization_shapes(spec: dict, mean_shape: tuple) -> None:
    prepared = prepare_data(load_dataset(spec))
    norm = prepared.x_normalization
    assert norm is not None and norm.mean.shape == mean_shape and np.all(norm.std > 0)
    assert prepared.train_x.dtype == np.float32 and prepared.val_x.dtype == np.float32


def test_tokens_are_never_normalized_and_values_targets_are() -> None:
    text = prepare_data(load_dataset({"name": "text"}))
    assert text.x_normalization is None and text.train_x.dtype == np.int64
    assert text.train_y is not None and text.train_y.dtype == np.int64
    diabetes = prepare_data(load_dataset({"name": "diabetes"}))
    assert diabetes.y_normalization is not None and diabetes.y_normalization.mean.shape == (1,)
    np.testing.assert_allclose(diabetes.train_y.mean(), 0.0, atol=1e-5)  # type: ignore[union-attr]
    raw = prepare_data(load_dataset({"name": "diabetes"}), normalize=False)
    assert raw.x_normalization is None and raw.y_normalization is None


# --------------------------------------------------------------------------- CSV

def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_numeric_and_categorical_columns(tmp_path: Path) -> None:
    _csv(tmp_path, "age,color,height,label\n30,red,1.8,yes\n41,blue,1.6,no\n25,red,1.7,no\n")
    data = load_dataset({"name": "csv", "path": "data.csv"}, base_dir=tmp_path)
    assert data.feature_names == ["age", "color=blue", "color=red", "height"]
    np.testing.assert_allclose(data.x[0], [30, 0, 1, 1.8], rtol=1e-6)
    assert data.x.dtype == np.float32 and data.target_kind == "classes"
    assert data.class_names == ["no", "yes"] and data.y.tolist() == [1, 0, 0]  # type: ignore[union-attr]


def test_csv_target_and_task_choice(tmp_path: Path) -> None:
    _csv(tmp_path, "a,grade,price\n1,3,10.5\n2,1,12.25\n3,3,9.75\n4,2,11\n")
    by_default = load_dataset({"name": "csv", "path": "data.csv"}, base_dir=tmp_path)
    assert by_default.target_kind == "values" and by_default.y.shape == (4, 1)  # type: ignore[union-attr]
    grade = load_dataset({"name": "csv", "path": "data.csv", "target": "grade"}, base_dir=tmp_path)
    assert grade.target_kind == "classes" and grade.class_names == ["1", "2", "3"]
    assert grade.feature_names == ["a", "price"]
    forced = load_dataset({"name": "csv", "path": "data.csv", "target": "grade", "task": "regression"},
                          base_dir=tmp_path)
    assert forced.target_kind == "values" and forced.y.dtype == np.float32  # type: ignore[union-attr]


def test_csv_mostly_text_column_is_categorical(tmp_path: Path) -> None:
    _csv(tmp_path, "size,label\nsmall,a\nlarge,b\n3,a\n")
    data = load_dataset({"name": "csv", "path": "data.csv"}, base_dir=tmp_path)
    assert data.feature_names == ["size=3", "size=large", "size=small"]


def test_csv_semicolons_and_blank_lines(tmp_path: Path) -> None:
    _csv(tmp_path, "x;y\n1;a\n\n2;b\n")
    data = load_dataset({"name": "csv", "path": "data.csv", "delimiter": ";"}, base_dir=tmp_path)
    assert len(data) == 2


@pytest.mark.parametrize(("text", "spec", "message"), [
    ("age,label\n30,a\n31,b\n,a\n", {},
     r"^data\.csv: row 4, column 'age': empty value; fill it in or remove the row$"),
    ("age,label\n30,a\n\n31,b\n32,b\n33,a\nabc,a\n", {},
     r"^data\.csv: row 7, column 'age': 'abc' is not a number"),
    ("age,label\n30,a\nNA,b\n31,b\n32,a\n33,a\n", {}, r"row 3, column 'age': missing value 'NA'"),
    ("age,label\n30,a\n31,b\nabc,b\n", {}, r"row 4, column 'age': 'abc' is not a number"),  # mostly numbers
    ("age,label\n30,a\n31,\n", {}, r"row 3, column 'label': empty value"),
    ("age,label\n30,a\n31,b\n", {"target": "price"},
     r"^dataset\.target: no column 'price' in data\.csv; its columns are: age, label$"),
    ("age,label\n30,a\n31,b\n", {"task": "regression"}, r"^dataset\.task: regression needs a numeric target"),
    ("age,label\n30,a\n31,a\n", {}, r"single value 'a'"),
    ("age,label\n30,a\n31,b,7\n", {}, r"^data\.csv: row 3 has 3 values but the header has 2 columns$"),
    ("", {}, r"^data\.csv: the file is empty"),
    ("age,label\n", {}, r"no data rows"),
    ("age,age\n1,2\n", {}, r"repeats the column name"),
    ("label\na\nb\n", {}, r"at least one feature column"),
])
def test_csv_problems_name_row_and_column(tmp_path: Path, text: str, spec: dict, message: str) -> None:
    _csv(tmp_path, text)
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "csv", "path": "data.csv", **spec}, base_dir=tmp_path)


def test_csv_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    with pytest.raises(DataError, match=r"^data\.csv: not UTF-8 text"):
        load_dataset({"name": "csv", "path": "data.csv"}, base_dir=tmp_path)


# --------------------------------------------------------------------------- image folder

def _image_folder(root: Path, classes: dict[str, list[tuple[str, tuple[int, int, int]]]]) -> Path:
    from PIL import Image

    for cls, images in classes.items():
        (root / cls).mkdir(parents=True)
        for i, (mode, color) in enumerate(images):
            Image.new("RGB", (6, 4), color).convert(mode).save(root / cls / f"img{i}.png")
    return root


def test_image_folder_grayscale_and_rgb(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "pics", {"dog": [("RGB", (255, 0, 0)), ("L", (255, 255, 255))],
                                            "cat": [("RGB", (0, 0, 255))]})
    (root / "cat" / "notes.txt").write_text("not an image")
    gray = load_dataset({"name": "image_folder", "path": str(root), "size": [5, 7]})
    assert gray.x.shape == (3, 1, 5, 7) and gray.x.dtype == np.float32 and gray.image_shape == (1, 5, 7)
    assert gray.class_names == ["cat", "dog"] and gray.y.tolist() == [0, 1, 1]  # type: ignore[union-attr]
    assert 0.0 <= gray.x.min() and gray.x.max() == 1.0 and np.allclose(gray.x[2], 1.0)
    rgb = load_dataset({"name": "image_folder", "path": str(root), "color": "rgb"})
    assert rgb.x.shape == (3, 3, 28, 28)
    np.testing.assert_allclose(rgb.x[0, :, 3, 3], [0, 0, 1])       # cat: blue
    np.testing.assert_allclose(rgb.x[1, :, 3, 3], [1, 0, 0])       # dog: red
    assert rgb.extras["files"][0] == str(Path("cat") / "img0.png")


def test_image_folder_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="at least 2 classes; found none"):
        load_dataset({"name": "image_folder", "path": "empty"}, base_dir=tmp_path)
    one = _image_folder(tmp_path / "one", {"a": [("L", (0, 0, 0))]})
    with pytest.raises(DataError, match="found only 'a'"):
        load_dataset({"name": "image_folder", "path": str(one)})
    (one / "b").mkdir()
    with pytest.raises(DataError, match="class folder 'b' holds no images"):
        load_dataset({"name": "image_folder", "path": str(one)})
    (one / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"every image of class 'b' is unreadable \(b/broken\.png\)"):
        load_dataset({"name": "image_folder", "path": str(one)})
    from PIL import Image

    Image.new("L", (4, 4)).save(one / "b" / "fine.png")  # an unreadable file among good ones: skipped, listed once
    loaded = load_dataset({"name": "image_folder", "path": str(one), "storage": "memory"})
    assert len(loaded) == 2 and loaded.extras["skipped"] == ["b/broken.png"]
    assert loaded.description.count("broken.png") == 1 and "1 unreadable image(s) skipped" in loaded.description


# --------------------------------------------------------------------------- npz

def test_npz_kinds_of_targets(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float64).reshape(6, 4)
    np.savez(tmp_path / "c.npz", x=x, y=np.array([3, 5, 3, 5, 7, 7]), class_names=np.array(["a", "b", "c"]))
    classes = load_dataset({"name": "npz", "path": "c.npz"}, base_dir=tmp_path)
    assert classes.target_kind == "classes" and classes.y.tolist() == [0, 1, 0, 1, 2, 2]  # type: ignore[union-attr]
    assert classes.class_names == ["a", "b", "c"] and classes.x.dtype == np.float32
    np.savez(tmp_path / "v.npz", x=x, y=np.linspace(0, 1, 6))
    values = load_dataset({"name": "npz", "path": "v.npz"}, base_dir=tmp_path)
    assert values.target_kind == "values" and values.y.shape == (6, 1) and values.y.dtype == np.float32  # type: ignore[union-attr]
    np.savez(tmp_path / "n.npz", x=np.zeros((5, 3, 8, 8), np.float32))
    none = load_dataset({"name": "npz", "path": "n.npz"}, base_dir=tmp_path)
    assert none.target_kind == "none" and none.y is None and none.image_shape == (3, 8, 8)
    tokens = np.array([[1, 2, 3], [2, 3, 4]])
    np.savez(tmp_path / "t.npz", x=tokens, y=tokens + 1)
    text = load_dataset({"name": "npz", "path": "t.npz"}, base_dir=tmp_path)
    assert text.target_kind == "next_tokens" and text.x.dtype == np.int64 and describe(text)["vocabulary_size"] == 6


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.array([1, "a", None], dtype=object)}, r"array 'x' holds Python objects"),
    ({"x": np.zeros((4, 2)), "y": np.array([{"a": 1}] * 4, dtype=object)}, r"array 'y' holds Python objects"),
    ({"x": np.zeros((4, 2)), "y": np.zeros(3, np.int64)}, r"'x' has 4 samples but 'y' has 3"),
    ({"features": np.zeros((4, 2))}, r"no array named 'x'; it holds: features"),
    ({"x": np.array([[1.0, np.nan]])}, r"NaN or infinite"),
    ({"x": np.array(["a", "b"])}, r"dtype <U1; it must hold real numbers"),
])
def test_npz_problems(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "npz", "path": "d.npz"}, base_dir=tmp_path)


def test_npz_that_is_an_npy_file(tmp_path: Path) -> None:
    with open(tmp_path / "d.npz", "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(DataError, match="not an .npz archive"):
        load_dataset({"name": "npz", "path": "d.npz"}, base_dir=tmp_path)


# --------------------------------------------------------------------------- MNIST idx and CIFAR-10 binary

def _idx(path: Path, array: np.ndarray, magic: int, compress: bool = False) -> None:
    payload = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def _mnist_folder(root: Path, train: int = 6, test: int = 3) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", train, False), ("t10k", test, True)):
        _idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x803, gz)
        _idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x801, gz)
    return root


def test_mnist_idx_files(tmp_path: Path) -> None:
    root = _mnist_folder(tmp_path / "mnist")
    train = load_dataset({"name": "mnist", "path": "mnist"}, base_dir=tmp_path)
    assert train.x.shape == (6, 1, 28, 28) and train.x.dtype == np.float32 and train.x.max() <= 1.0
    assert train.y.tolist() == [0, 1, 2, 3, 4, 5] and train.class_names == [str(d) for d in range(10)]  # type: ignore[union-attr]
    both = load_dataset({"name": "fashion_mnist", "path": str(root), "part": "both", "limit": 8})
    assert len(both) == 8 and both.class_names[0] == "T-shirt/top"  # type: ignore[index]
    test = load_dataset({"name": "mnist", "path": str(root), "part": "test"})
    assert len(test) == 3


@pytest.mark.parametrize(("damage", "message"), [
    (lambda r: _idx(r / "train-images-idx3-ubyte", np.zeros((6, 28, 28)), 0x801),
     r"train-images-idx3-ubyte: magic number 0x00000801, expected 0x00000803"),
    (lambda r: (r / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x06\x01"),
     r"announces 6 bytes of data but the file has 1"),
    (lambda r: (r / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00"), r"too short for an idx file"),
    (lambda r: _idx(r / "train-labels-idx1-ubyte", np.arange(5), 0x801), r"has 6 images but .* has 5 labels"),
    (lambda r: _idx(r / "train-labels-idx1-ubyte", np.full(6, 12), 0x801), r"label 12 is out of range"),
    (lambda r: (r / "train-images-idx3-ubyte").unlink(), r"^dataset\.path: .* lacks train-images-idx3-ubyte"),
])
def test_mnist_damaged_files(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    root = _mnist_folder(tmp_path / "mnist")
    damage(root)
    with pytest.raises(DataError, match=message):
        load_dataset({"name": "mnist", "path": str(root)})


def test_mnist_corrupt_gzip(tmp_path: Path) -> None:
    root = _mnist_folder(tmp_path / "mnist")
    (root / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot be read"):
        load_dataset({"name": "mnist", "path": str(root), "part": "test"})


def _cifar(path: Path, labels: list[int]) -> np.ndarray:
    pixels = np.random.default_rng(len(labels)).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    records = np.concatenate([np.asarray(labels, np.uint8)[:, None], pixels], axis=1)
    path.write_bytes(records.tobytes())
    return pixels


def test_cifar10_binary_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    pixels = _cifar(root / "data_batch_1.bin", [3, 9, 0])
    _cifar(root / "test_batch.bin", [1, 2])
    train = load_dataset({"name": "cifar10", "path": str(tmp_path)})
    assert train.x.shape == (3, 3, 32, 32) and train.x.dtype == np.float32 and train.image_shape == (3, 32, 32)
    assert train.y.tolist() == [3, 9, 0] and train.class_names[3] == "cat"  # type: ignore[union-attr,index]
    np.testing.assert_allclose(train.x[1, 0, 0, :4], pixels[1, :4] / 255.0, rtol=1e-6)  # red plane first
    np.testing.assert_allclose(train.x[1, 2, 31, 31], pixels[1, 3071] / 255.0, rtol=1e-6)
    assert len(load_dataset({"name": "cifar10", "path": str(root), "part": "both"})) == 5
    (root / "data_batch_2.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=r"data_batch_2\.bin: 100 bytes is not a whole number of CIFAR-10"):
        load_dataset({"name": "cifar10", "path": str(root)})
    _cifar(root / "data_batch_2.bin", [10])
    with pytest.raises(DataError, match=r"label 10 is out of range"):
        load_dataset({"name": "cifar10", "path": str(root)})
    with pytest.raises(DataError, match=r"holds none of data_batch_1\.bin"):
        load_dataset({"name": "cifar10", "path": str(tmp_path / "cifar-10-batches-bin" / ".." / "..")})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("name", "file"), [
    ("csv", "data.csv"), ("npz", "data.npz"), ("mnist", "train-images-idx3-ubyte"),
    ("cifar10", "data_batch_1.bin"), ("image_folder", "a/x.png"),
])
def test_random_bytes_give_data_errors(tmp_path: Path, name: str, file: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
    if name == "npz":
        blob = b"PK\x03\x04" + blob  # looks like a zip at first glance
    target = tmp_path / file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)
    if name == "mnist":
        _idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2), 0x801)
    if name == "image_folder":
        _image_folder(tmp_path / "z", {"b": [("L", (0, 0, 0))]})
        (tmp_path / "z" / "b").rename(tmp_path / "b")
    path = file if name in ("csv", "npz") else "."
    try:
        load_dataset({"name": name, "path": path}, base_dir=tmp_path)
    except DataError:
        pass  # any other exception fails the test; random bytes may also happen to parse


# --------------------------------------------------------------------------- fit checks and summaries

def test_shape_mismatch_message() -> None:
    digits = load_dataset({"name": "digits"})
    with pytest.raises(DataError) as info:
        check_input_fits(digits, "image", TensorSpec((1, 28, 28)))
    assert str(info.value) == ("Input node image declares (N, 1, 28, 28) but the data 'digits' gives "
                               "(N, 1, 8, 8): set its shape to 1, 8, 8")
    check_input_fits(digits, "image", TensorSpec((1, 8, 8)))


def test_token_input_checks() -> None:
    text = load_dataset({"name": "text", "seq_len": 32})
    vocab = len(text.vocabulary or [])
    check_input_fits(text, "tokens", TensorSpec((32,), "long", vocab))
    with pytest.raises(DataError, match=r"^Token Input tokens declares seq_len 64 but the data 'text' gives "
                                        r"sequences of 32 tokens: set its seq_len to 32$"):
        check_input_fits(text, "tokens", TensorSpec((64,), "long", vocab))
    with pytest.raises(DataError, match=rf"has vocab_size 10 but .* uses {vocab} distinct tokens: set its "
                                        rf"vocab_size to at least {vocab}$"):
        check_input_fits(text, "tokens", TensorSpec((32,), "long", 10))
    with pytest.raises(DataError, match=r"^Input node x takes real values but the data 'text' gives token ids"):
        check_input_fits(text, "x", TensorSpec((32,)))
    with pytest.raises(DataError, match=r"^Token Input tokens expects integer token ids but the data 'iris'"):
        check_input_fits(load_dataset({"name": "iris"}), "tokens", TensorSpec((4,), "long", 64))


def test_describe_summarizes_a_dataset() -> None:
    summary = describe(load_dataset({"name": "iris"}))
    assert summary["samples"] == 150 and summary["input_shape"] == [4] and summary["input_dtype"] == "float"
    assert summary["class_counts"] == {"setosa": 50, "versicolor": 50, "virginica": 50}
    text = describe(load_dataset({"name": "text", "seq_len": 8}))
    assert text["input_dtype"] == "long" and text["target_shape"] == [8] and text["vocabulary_size"] > 26
    ring = describe(load_dataset({"name": "gaussian_ring"}))
    assert ring["target_shape"] is None and ring["class_counts"] is None


def test_the_python_docs_corpus_has_a_fixed_alphabet_and_overlapping_windows_split_in_order() -> None:
    from engine.data.corpus import PYTHON_DOCS_ALPHABET

    docs = load_dataset({"name": "text", "corpus": "python_docs", "max_chars": 20_000, "seq_len": 64, "stride": 64})
    assert docs.vocabulary == PYTHON_DOCS_ALPHABET and len(docs.vocabulary) == 96
    assert len(docs.extras["text"]) == 20_000 and "  " not in docs.extras["text"]
    assert not docs.extras["ordered"]  # windows that do not overlap may be split at random
    overlapping = load_dataset({"name": "text", "seq_len": 32, "stride": 4})
    assert overlapping.extras["ordered"]  # else validation text would also be training text


def test_a_corpus_this_python_lacks_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.data.builtin as builtin

    monkeypatch.setitem(builtin.CORPORA, "python_docs", lambda: "")
    with pytest.raises(DataError, match="dataset.corpus: this Python does not ship"):
        load_dataset({"name": "text", "corpus": "python_docs"})
