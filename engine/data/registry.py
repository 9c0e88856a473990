"""The catalogue of dataset sources and :func:`load_dataset`.

A project's ``"dataset"`` section names a source and sets its options, e.g.
``{"name": "digits", "layout": "image"}`` or ``{"name": "csv", "path": "data.csv",
"target": "price"}``. :data:`DATASETS` declares each source's options; the same
declarations validate the section and document it (data panel, CLI).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.data import builtin, images, tabular
from engine.data.base import ArrayDataset, DataError
from engine.data.download import default_folder, missing_files, required_files
from engine.data.options import Option, read_options

Loader = Callable[[str, dict[str, Any]], ArrayDataset]
#: Where a source's data comes from.
Group = Literal["built-in", "generated", "file"]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset source.

    Args:
        name: The ``dataset.name`` that selects it.
        description: One line for the data panel and the CLI.
        group: ``built-in`` (shipped), ``generated`` (made from a seed) or ``file`` (user data).
        task: What it is for, e.g. ``"classification"``, ``"regression"``, ``"generation"``.
        options: Its fields besides ``name``.
        loader: Makes the dataset from the validated options.
    """

    name: str
    description: str
    group: Group
    task: str
    options: tuple[Option, ...]
    loader: Loader

    def option_lines(self) -> list[str]:
        """One line per option: name, kind, default, help."""
        return [o.describe() for o in self.options]


_SEED = Option("seed", "int", 0, "Random seed of the generator.", minimum=0, maximum=2**32 - 1)
_SAMPLES = Option("samples", "int", 1000, "Number of points.", minimum=2, maximum=1_000_000)
_PATH_FILE = Option("path", "file", None, "The file; relative to the project file's folder.", required=True)
_PATH_FOLDER = Option("path", "folder", None, "The folder; relative to the project file's folder.",
                      required=True)
_PATH_STANDARD = Option("path", "folder", None, "The folder; relative to the project file's folder. Default: "
                        "the app's datasets folder, where `python main.py download NAME` and the Data panel's "
                        "Download button put the files.")
_PART = Option("part", "choice", "train", "Which files to load.", choices=("train", "test", "both"))
_LIMIT = Option("limit", "int", None, "Keep only the first this many samples.", minimum=2,
                maximum=10_000_000)


def _noise(default: float) -> Option:
    return Option("noise", "float", default, "Standard deviation of the noise.", minimum=0.0, maximum=100.0)


def _standard(loader: Loader) -> Loader:
    """A loader that reads from the default datasets folder when no ``path`` is given."""
    def load(name: str, opts: dict[str, Any]) -> ArrayDataset:
        if opts.get("path") is None:
            folder = default_folder(name)
            missing = missing_files(name, folder)
            if missing:
                partly = len(missing) < len(required_files(name))
                some = f" (lacks {', '.join(Path(m).name for m in missing)})" if partly else ""
                raise DataError(f"{name}: its files are not in {folder}{some}; get them with `python main.py "
                                f"download {name}` or the Data panel's Download button, put them there by hand, "
                                f"or set dataset.path to a folder that holds them")
            opts = {**opts, "path": folder}
        return loader(name, opts)
    return load


def _info(name: str, description: str, group: Group, task: str, loader: Loader,
          *options: Option) -> DatasetInfo:
    return DatasetInfo(name, description, group, task, tuple(options), loader)


#: Every dataset source by name.
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    _info("digits", "8x8 handwritten digits 0-9 (1797 images, scikit-learn).", "built-in",
          "classification", builtin.load_digits_set,
          Option("layout", "choice", "image", "image: (1, 8, 8); flat: (64,); rows: (8, 8), a sequence "
                 "of 8 rows of 8 pixels.", choices=("image", "flat", "rows")),
          Option("classes", "int_list", None, "Keep only these digits, relabelled 0, 1, ... in the order "
                 "given (e.g. [5, 6, 7, 8, 9]); default all ten.", minimum=0, maximum=9)),
    _info("iris", "Iris flowers: 3 species from 4 measurements (150 rows).", "built-in",
          "classification", builtin.load_sklearn_table),
    _info("wine", "Wines: 3 cultivars from 13 measurements (178 rows).", "built-in",
          "classification", builtin.load_sklearn_table),
    _info("breast_cancer", "Breast tumours, malignant or benign, from 30 measurements (569 rows).",
          "built-in", "classification", builtin.load_sklearn_table),
    _info("diabetes", "Diabetes progression from 10 measurements (442 rows).", "built-in",
          "regression", builtin.load_sklearn_table),
    _info("moons", "Two interleaving half circles of 2-D points.", "generated", "classification",
          builtin.load_points, _SAMPLES, _noise(0.1), _SEED),
    _info("circles", "A small circle of 2-D points inside a large one.", "generated", "classification",
          builtin.load_points, _SAMPLES, _noise(0.05), _SEED),
    _info("spirals", "Interleaved spiral arms of 2-D points, one class per arm.", "generated",
          "classification", builtin.load_points, _SAMPLES, _noise(0.05), _SEED,
          Option("classes", "int", 2, "Number of arms.", minimum=2, maximum=12)),
    _info("xor", "2-D points labelled by whether their coordinates have the same sign.", "generated",
          "classification", builtin.load_points, _SAMPLES, _noise(0.1), _SEED),
    _info("gaussian_ring", "2-D points from a ring of Gaussians, without labels (for GANs).", "generated",
          "generation", builtin.load_gaussian_ring, _SAMPLES, _SEED,
          Option("modes", "int", 8, "Number of Gaussians on the ring.", minimum=1, maximum=64),
          Option("radius", "float", 2.0, "Radius of the ring.", minimum=0.001, maximum=1e6),
          Option("std", "float", 0.05, "Standard deviation of each Gaussian.", minimum=0.0, maximum=1e6)),
    _info("sine_mixture", "A noisy mixture of sines: forecast the next steps from a window.", "generated",
          "forecasting", builtin.load_sine_mixture,
          Option("window", "int", 32, "Past steps each sample reads.", minimum=1, maximum=100_000),
          Option("horizon", "int", 1, "Future steps each sample predicts.", minimum=1, maximum=10_000),
          Option("series_length", "int", 2000, "Length of the generated series.", minimum=3,
                 maximum=10_000_000),
          _noise(0.1), _SEED),
    _info("text", "A character corpus Python or the project ships (Python's help() documentation, or "
          "prose and the Zen of Python).", "built-in", "next token", builtin.load_text,
          Option("corpus", "choice", "project", "project: a few KB of prose and the Zen of Python; "
                 "python_docs: the ~450,000-character documentation Python ships for help().",
                 choices=("project", "python_docs")),
          Option("max_chars", "int", None, "Keep only the first this many characters.", minimum=2,
                 maximum=100_000_000),
          Option("seq_len", "int", 32, "Tokens per sample.", minimum=1, maximum=100_000),
          Option("stride", "int", 1, "Characters between the starts of two samples.", minimum=1,
                 maximum=100_000)),
    _info("csv", "A CSV table with a header row; text columns are one-hot encoded.", "file",
          "classification or regression", tabular.load_csv, _PATH_FILE,
          Option("target", "text", None, "Target column name; default the last column."),
          Option("task", "choice", None, "Default: classification when the target is text or has at "
                 "most 20 distinct whole numbers, else regression.", choices=("classification", "regression")),
          Option("delimiter", "choice", ",", "Column separator.", choices=(",", ";", "\t", "|")),
          Option("storage", "choice", "auto", "memory: parse the whole table; stream: read it twice as a stream and "
                 "encode it once into a cached array that training reads in batches; auto: stream when parsing "
                 "would exceed the smaller of 1 GiB and a quarter of the free memory (about 10x the file).",
                 choices=("auto", "memory", "stream"))),
    _info("image_folder", "Images in one subfolder per class (PNG, JPEG, ...).", "file", "classification",
          images.load_image_folder, _PATH_FOLDER,
          Option("size", "size", (28, 28), "Images are resized to [height, width].", minimum=1, maximum=4096),
          Option("color", "choice", "grayscale", "Colour mode.", choices=("grayscale", "rgb")),
          Option("storage", "choice", "auto", "memory: decode every image up front; stream: decode batches "
                 "from disk while training (uint8, worker processes); auto: stream when the decoded images "
                 "would exceed the smaller of 1 GiB and a quarter of the free memory.",
                 choices=("auto", "memory", "stream")),
          Option("cache", "choice", "on", "Streamed images only: keep decoded, resized images in a cache file "
                 "under the app's data folder, so later epochs and runs skip decoding.", choices=("on", "off"))),
    _info("npz", "A NumPy .npz archive with arrays x and, optionally, y.", "file", "any",
          tabular.load_npz, _PATH_FILE,
          Option("storage", "choice", "auto", "memory: read x whole; stream: map x from disk and read batches "
                 "while training (worker processes); auto: stream when x as float32 would exceed the smaller of "
                 "1 GiB and a quarter of the free memory. Token sequences always load into memory.",
                 choices=("auto", "memory", "stream"))),
    _info("mnist", "MNIST handwritten digits from the standard idx files in a folder (downloadable).", "file",
          "classification", _standard(images.load_mnist), _PATH_STANDARD, _PART, _LIMIT),
    _info("fashion_mnist", "Fashion-MNIST clothing images from the standard idx files in a folder "
          "(downloadable).", "file", "classification", _standard(images.load_mnist), _PATH_STANDARD, _PART, _LIMIT),
    _info("cifar10", "CIFAR-10 colour images from the binary version's .bin batches in a folder (downloadable).",
          "file", "classification", _standard(images.load_cifar10), _PATH_STANDARD, _PART, _LIMIT),
)}


def dataset_names() -> list[str]:
    """Names of every dataset source, in catalogue order."""
    return list(DATASETS)


def load_dataset(spec: dict[str, Any], base_dir: Path | None = None) -> ArrayDataset:
    """Load the dataset a project's ``"dataset"`` section describes.

    Args:
        spec: The section, e.g. ``{"name": "digits", "layout": "image"}``.
        base_dir: Folder that relative paths resolve against (the project file's folder);
            the working directory when ``None``.

    Returns:
        The whole dataset in memory.

    Raises:
        DataError: A bad field (``dataset.<field>: <problem>``) or unusable data (the
            message names the file, and the row and column where it can).
    """
    if not isinstance(spec, dict):
        raise DataError(f"dataset: must be an object with a 'name', got {spec!r}")
    name = spec.get("name")
    known = ", ".join(DATASETS)
    if name is None:
        raise DataError(f"dataset.name: missing; choose one of {known}")
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(f"dataset.name: unknown dataset {name!r}; choose one of {known}")
    info = DATASETS[name]
    options = read_options(name, spec, info.options, base_dir)
    try:
        return info.loader(name, options)
    except DataError:
        raise
    except (OSError, EOFError, ValueError, struct.error, zlib.error) as exc:
        where = options.get("path")
        label = where.name if isinstance(where, Path) else name
        raise DataError(f"{label}: cannot be loaded ({exc})") from None
