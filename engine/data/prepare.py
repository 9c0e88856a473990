"""Split a dataset for training and fit normalization on the training part only.

The split (train / validation / optional test, seeded, stratified for classification, time
order kept for series, a given split kept) comes from :mod:`engine.data.splits`.
Normalization statistics come from the training rows alone, so neither validation nor test
data leaks into them. Streamed data (``x`` a :class:`engine.data.streaming.LazyImages` or a
:class:`engine.data.lazy_array.LazyArray`) is never read whole: its parts stay lazy row
selections (as stored, un-normalized; the trainer reads and normalizes batches on the device)
and its normalization is fitted on a fixed-seed sample of at most 2048 training rows.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import ArrayDataset, Normalization, PreparedData
from engine.data.splits import split_indices, three_way_split
from engine.data.streaming import fit_sampled_normalization, is_lazy

__all__ = ["apply_split", "fit_normalization", "prepare_data", "split_indices"]


def _stats_axes(x: np.ndarray) -> tuple[int, ...]:
    """Axes to average over: per channel for images, per feature for tables and sequences."""
    if x.ndim == 4:
        return (0, 2, 3)
    if x.ndim == 3:
        return (0, 1)
    if x.ndim == 2:
        return (0,)
    return tuple(range(x.ndim))


def fit_normalization(x: np.ndarray) -> Normalization:
    """Mean and standard deviation of real-valued data, shaped to broadcast to one sample.

    Images ``(n, C, H, W)`` get one statistic per channel ``(C, 1, 1)``; tables ``(n, F)``
    one per feature ``(F,)``; sequences ``(n, T, F)`` one per feature over all steps
    ``(1, F)``. Standard deviations below ``1e-8`` are replaced by one.

    Args:
        x: The training rows.

    Returns:
        The fitted normalization (float32 statistics).
    """
    data = np.asarray(x, dtype=np.float64)
    axes = _stats_axes(data)
    mean = data.mean(axis=axes, keepdims=True)[0]
    std = data.std(axis=axes, keepdims=True)[0]
    std = np.where(std < 1e-8, 1.0, std)
    return Normalization(mean=mean.astype(np.float32), std=std.astype(np.float32))


def prepare_data(dataset: ArrayDataset, validation_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = True, test_fraction: float = 0.0) -> PreparedData:
    """Split a dataset and normalize it with statistics of the training part.

    Args:
        dataset: The whole dataset.
        validation_fraction: Share of rows held out for validation, in ``[0, 1)``; ``0``
            gives an empty validation part.
        seed: Seed of the split.
        normalize: Standardize real-valued inputs (never int64 token ids) and, for
            ``values`` targets, each target column.
        test_fraction: Share of rows held out for testing, in ``[0, 1)``; ``0`` (the default)
            gives an empty test part and the two-way split of earlier versions.

    Returns:
        The split arrays (float32 inputs or int64 tokens; targets as in the dataset,
        ``values`` targets normalized), the normalizations and the row indices.

    Raises:
        DataError: Fewer than 2 samples, bad fractions, or a class the split would leave
            without a training or test sample.
    """
    split = three_way_split(dataset, validation_fraction, seed, test_fraction)
    return apply_split(dataset, split.train, split.val, split.test, normalize)


def apply_split(dataset: ArrayDataset, train_index: np.ndarray, val_index: np.ndarray,
                test_index: np.ndarray | None = None, normalize: bool = True) -> PreparedData:
    """Cut a dataset along given row indices and normalize with statistics of the training rows.

    Args:
        dataset: The whole dataset.
        train_index: Rows to train on.
        val_index: Rows of validation.
        test_index: Held-out rows (``None``: none).
        normalize: As in :func:`prepare_data`.

    Returns:
        The prepared parts; the same indices always give the same arrays.
    """
    parts = [np.asarray(i, dtype=np.int64) for i in (train_index, val_index,
                                                      np.zeros(0, np.int64) if test_index is None else test_index)]
    x = dataset.x
    x_norm: Normalization | None = None
    if is_lazy(x):  # streamed data: keep the rows, the trainer reads and normalizes batches
        xs = [x.take(i) for i in parts]
        x_norm = fit_sampled_normalization(xs[0]) if normalize else None
    else:
        tokens = np.issubdtype(x.dtype, np.integer)
        xs = [x[i].astype(np.int64 if tokens else np.float32) for i in parts]
        if not tokens and normalize:
            x_norm = fit_normalization(xs[0])
            xs = [x_norm.apply(part) for part in xs]
    y = dataset.y
    y_norm: Normalization | None = None
    ys: list[np.ndarray | None] = [None, None, None]
    if y is not None:
        ys = [y[i] for i in parts]
        if dataset.target_kind == "values":
            ys = [part.astype(np.float32) for part in ys]
            if normalize:
                y_norm = fit_normalization(ys[0].reshape(len(ys[0]), -1))
                ys = [y_norm.apply(part) for part in ys]
    return PreparedData(dataset=dataset, train_x=xs[0], train_y=ys[0], val_x=xs[1], val_y=ys[1],
                        x_normalization=x_norm, y_normalization=y_norm,
                        train_index=parts[0], val_index=parts[1],
                        test_x=xs[2], test_y=ys[2], test_index=parts[2])
