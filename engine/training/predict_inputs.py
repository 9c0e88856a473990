"""Reading a predict command's inputs as training read its data: image files and folders decoded
and resized like the image folder source (unreadable ones skipped and listed), CSV columns found by
name and encoded like :func:`engine.data.tabular.load_csv`, ``.npz`` arrays checked for shape and
dtype, text through the character vocabulary. Every input is read before anything is predicted,
so a bad one stops the command with one line naming the file, row, column or character."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.images import IMAGE_SUFFIXES, read_image
from engine.errors import UserError
from engine.training.predict_table import skipped_line

if TYPE_CHECKING:  # pragma: no cover
    from engine.data.base import ArrayDataset


@dataclass
class Samples:
    """Inputs read and preprocessed, not yet normalized."""

    names: list[str] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)  # one per sample, the training per-sample shape
    truth: list[Any] = field(default_factory=list)
    texts: list[tuple[str, np.ndarray]] = field(default_factory=list)  # language models: name, token ids
    skipped: list[str] = field(default_factory=list)


class InputReader:
    """Reads inputs for a model trained on ``dataset`` (a ``task_name`` run; ``spec``: the project's
    ``dataset`` section, for the CSV delimiter)."""

    def __init__(self, task_name: str, dataset: ArrayDataset, spec: dict[str, Any]) -> None:
        self.task_name, self.dataset, self.spec = task_name, dataset, spec

    def read(self, inputs: list[str]) -> Samples:
        """Read and preprocess every input (files, folders, text) before any prediction.

        Raises:
            UserError: A missing file, an input of a kind this model does not read, or bad data (one
                line naming the file, row, column or character and the fix).
        """
        if not inputs:
            raise UserError("predict: give at least one input (image files or folders, .csv, .npz or .txt files"
                            f"{', or text' if self.task_name == 'language_model' else ''})")
        samples = Samples()
        for item in inputs:
            path = Path(item)
            if path.is_dir():
                self._folder(path, samples)
            elif path.is_file():
                self._file(path, samples)
            elif self.task_name == "language_model":
                self._text(_short(item), item, samples)
            else:
                raise UserError(f"{item}: no such file or folder; give image files or folders, .csv or .npz files")
        if not samples.arrays and not samples.texts:
            raise UserError(f"{', '.join(inputs)}: no input to predict on"
                            + (f" ({skipped_line(samples.skipped)})" if samples.skipped else ""))
        return samples

    def _file(self, path: Path, samples: Samples) -> None:
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            self._image(path, str(path), samples)
        elif suffix == ".csv":
            self._csv(path, samples)
        elif suffix == ".npz":
            self._npz(path, samples)
        elif suffix == ".txt" and self.task_name == "language_model":
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UserError(f"{path}: not readable UTF-8 text ({exc}); save it as UTF-8") from None
            self._text(str(path), text, samples)
        else:
            kinds = "text or .txt files" if self.task_name == "language_model" else \
                "image files or folders, .csv or .npz files"
            raise UserError(f"{path}: '{suffix or path.name}' files are not read; this model predicts on {kinds}")

    def _folder(self, folder: Path, samples: Samples) -> None:
        files = sorted(p for p in folder.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                self._image(path, str(path), samples)
            else:
                samples.skipped.append(str(path))

    def _image(self, path: Path, name: str, samples: Samples) -> None:
        shape = self.dataset.image_shape
        if shape is None or len(self.dataset.sample_dims) != 3:
            raise UserError(f"{path}: this model was trained on {self.dataset.name} samples of shape "
                            f"{self.dataset.sample_dims}, not images; give .csv or .npz files")
        channels, height, width = shape
        if channels not in (1, 3):
            raise UserError(f"{path}: the model reads {channels}-channel images, which an image file cannot be "
                            f"converted to; give the samples as an .npz array 'x' of shape (n, {channels}, "
                            f"{height}, {width})")
        from engine.data.base import DataError

        try:
            samples.arrays.append(read_image(path, (height, width), channels, str(path)))
        except DataError:  # corrupt or not an image at all: listed with the skipped files, the others go on
            samples.skipped.append(str(path))
            return
        samples.names.append(name)
        samples.truth.append(None)

    def _csv(self, path: Path, samples: Samples) -> None:
        from engine.data.tabular import encode_column, read_csv_table

        extras = self.dataset.extras
        columns: list[str] = list(extras.get("columns") or self.dataset.feature_names or [])
        if len(self.dataset.sample_dims) != 1 or not columns:
            raise UserError(f"{path}: this model was trained on {self.dataset.name} samples of shape "
                            f"{self.dataset.sample_dims}, not table rows; give "
                            f"{'image files or folders' if self.dataset.image_shape else '.npz files'}")
        header, rows, numbers = read_csv_table(path, str(self.spec.get("delimiter") or ","))
        missing = [c for c in columns if c not in header]
        if missing:
            raise UserError(f"{path}: no column '{missing[0]}', which the model was trained on; add it (the "
                            f"training columns: {', '.join(columns)})")
        categories: dict[str, list[str]] = extras.get("categories") or {}
        blocks = [encode_column([row[header.index(c)] for row in rows], numbers, c, path, categories.get(c))[0]
                  for c in columns]
        x = np.concatenate(blocks, axis=1).astype(np.float32)
        if x.shape[1:] != self.dataset.sample_dims:
            raise UserError(f"{path}: its columns give {x.shape[1]} features, the model reads "
                            f"{self.dataset.sample_dims[0]}; is it the table the model was trained on?")
        target = extras.get("target")
        truth = [row[header.index(target)] for row in rows] if target in header else [None] * len(rows)
        if self.dataset.target_kind == "values":
            truth = [_number(t) for t in truth]
        samples.names += [f"{path} row {n}" for n in numbers]
        samples.arrays += list(x)
        samples.truth += truth

    def _npz(self, path: Path, samples: Samples) -> None:
        from engine.data.tabular import read_npz_arrays

        x, y, _ = read_npz_arrays(path)
        expected = self.dataset.sample_dims
        if tuple(x.shape) == expected:  # one sample
            x = x[None]
        if tuple(x.shape[1:]) != expected:
            raise UserError(f"{path}: array 'x' has samples of shape {tuple(x.shape[1:])}, the model expects "
                            f"{expected}: save x with shape (n, {', '.join(map(str, expected))})")
        from engine.data.fit import holds_token_ids

        tokens = holds_token_ids(self.dataset)
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or \
                (tokens and not np.issubdtype(x.dtype, np.integer)):
            raise UserError(f"{path}: array 'x' has dtype {x.dtype}; the model reads "
                            f"{'integer token ids' if tokens else 'real numbers'}")
        if not tokens and not np.all(np.isfinite(x)):
            raise UserError(f"{path}: array 'x' contains NaN or infinite values; fix or remove those samples")
        truth: list[Any] = [None] * len(x)
        if y is not None and len(y) == len(x):
            truth = [self._npz_truth(v) for v in y]
        samples.names += [f"{path}[{i}]" for i in range(len(x))]
        samples.arrays += list(x.astype(np.int64 if tokens else np.float32))
        samples.truth += truth

    def _npz_truth(self, value: np.ndarray) -> Any:
        names = self.dataset.class_names or []
        if self.task_name == "classification" and np.ndim(value) == 0 and np.issubdtype(value.dtype, np.integer):
            return names[int(value)] if 0 <= int(value) < len(names) else str(int(value))
        flat = [float(v) for v in np.ravel(value)]
        return flat[0] if len(flat) == 1 else flat

    def _text(self, name: str, text: str, samples: Samples) -> None:
        vocabulary = self.dataset.vocabulary
        if self.task_name != "language_model" or not vocabulary:
            raise UserError(f"{name}: text is read by character language models; this run is "
                            f"{self.task_name.replace('_', ' ')}")
        if not text:
            raise UserError(f"{name}: empty text; give at least one character")
        index = {ch: i for i, ch in enumerate(vocabulary)}
        for position, ch in enumerate(text, start=1):
            if ch not in index:
                raise UserError(f"{name}: character {ch!r} (position {position}) is not in the model's vocabulary "
                                f"of {len(vocabulary)} characters; remove or replace it")
        samples.texts.append((name, np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))))


def _number(text: Any) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _short(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split()) or repr(text)
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


# ---------------------------------------------------------------------------------------- opening
