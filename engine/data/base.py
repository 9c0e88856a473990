"""The data contract between datasets, trainers and views.

A dataset source (built-in or user file) produces an :class:`ArrayDataset`: NumPy arrays
in memory plus what a view needs to label them. :func:`engine.data.prepare.prepare_data`
splits it (seeded, stratified for classification), fits normalization on the training
part only, and returns :class:`PreparedData`, which trainers turn into tensors on the
training device (small data) or a DataLoader (large data).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from engine.errors import UserError

#: What the targets of a dataset are.
TargetKind = Literal["classes", "values", "none", "next_tokens"]


class DataError(UserError):
    """Data that cannot be used; the message names the file, row, column or field."""


@dataclass
class ArrayDataset:
    """A whole dataset in memory.

    Args:
        name: Display name, e.g. ``"digits"`` or the file name.
        x: Inputs, shape ``(n, *sample_dims)``; float32, or int64 token ids.
        y: Targets: int64 ``(n,)`` class ids (``classes``); float32 ``(n, k)`` values
            (``values``); int64 ``(n, T)`` next tokens (``next_tokens``); ``None`` (``none``:
            autoencoders and GANs learn from ``x`` alone).
        target_kind: What ``y`` holds.
        class_names: Label of each class id (classification).
        feature_names: Name of each input feature (tables).
        vocabulary: The characters of a character corpus, index = token id.
        image_shape: ``(C, H, W)`` when the samples are images (views draw them as such).
        description: One line for the data panel.
        extras: Source-specific data views can use (e.g. the full series of a forecast set).
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None
    target_kind: TargetKind
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    vocabulary: list[str] | None = None
    image_shape: tuple[int, int, int] | None = None
    description: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_dims(self) -> tuple[int, ...]:
        """Per-sample input shape (what the graph's Input node must declare)."""
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes (0 when the targets are not classes)."""
        return len(self.class_names or ()) if self.target_kind == "classes" else 0


@dataclass
class Normalization:
    """Per-feature standardization fitted on the training part: ``(x - mean) / std``.

    Args:
        mean: Broadcastable to one sample.
        std: Broadcastable to one sample; zeros are replaced by one.
    """

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalize ``x`` (returns float32)."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Undo :meth:`apply`."""
        return (x * self.std + self.mean).astype(np.float32)


@dataclass
class PreparedData:
    """A dataset split for training, normalized with statistics of the training part.

    The test part is held out for evaluation: trainers get :meth:`without_test`, so it never
    reaches training, early stopping, curves or snapshots.

    Args:
        dataset: The source dataset (un-normalized arrays, for views).
        train_x: Training inputs (normalized when real-valued).
        train_y: Training targets (``None`` when the dataset has none).
        val_x: Validation inputs.
        val_y: Validation targets.
        x_normalization: Applied to inputs, or ``None``.
        y_normalization: Applied to regression / forecasting targets, or ``None``.
        train_index: Rows of ``dataset`` in the training part.
        val_index: Rows of ``dataset`` in the validation part.
        test_x: Test inputs (normalized as the others); empty without a test part.
        test_y: Test targets.
        test_index: Rows of ``dataset`` in the test part (empty without one).
    """

    dataset: ArrayDataset
    train_x: np.ndarray
    train_y: np.ndarray | None
    val_x: np.ndarray
    val_y: np.ndarray | None
    x_normalization: Normalization | None
    y_normalization: Normalization | None
    train_index: np.ndarray
    val_index: np.ndarray
    test_x: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.float32))
    test_y: np.ndarray | None = None
    test_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def without_test(self) -> PreparedData:
        """The same parts with the test part emptied (what a trainer may see)."""
        def empty(array: np.ndarray) -> np.ndarray:  # a copy: a view would keep the rows alive
            return np.zeros((0, *array.shape[1:]), dtype=array.dtype)

        return replace(self, test_x=empty(self.test_x), test_y=None if self.test_y is None else empty(self.test_y),
                       test_index=empty(self.test_index))
