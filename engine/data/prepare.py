"""Split a dataset for training and fit normalization on the training part only.

The split is seeded. For classification it is stratified: each class keeps its share
of the validation part to within one sample (largest-remainder allocation); a class
with a single sample always goes to the training part. Datasets whose
``extras["ordered"]`` is true (forecasting windows of one series) keep time order:
validation is the end of the series. Normalization statistics come from the training
rows alone, so validation data never leaks into them.
"""

from __future__ import annotations

import numpy as np

from engine.data.base import ArrayDataset, DataError, Normalization, PreparedData


def _allocate(counts: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """Validation samples per class: within one of the exact share, at least one left to train."""
    total = counts.sum()
    exact = n_val * counts / total if total else np.zeros(len(counts))
    take = np.floor(exact).astype(np.int64)
    remainder = exact - take
    spare = n_val - int(take.sum())
    if spare > 0:
        # Largest remainders first; ties broken at random (seeded).
        order = np.lexsort((rng.random(len(counts)), -remainder))
        take[order[:spare]] += 1
    return np.minimum(take, np.maximum(counts - 1, 0))


def split_indices(dataset: ArrayDataset, validation_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices (each sorted).

    Args:
        dataset: The dataset.
        validation_fraction: Share of rows for validation, in ``[0, 1)``.
        seed: Seed of the shuffle.

    Returns:
        ``(train_index, val_index)`` as int64 arrays.

    Raises:
        DataError: Fewer than 2 samples, or a fraction outside ``[0, 1)``.
    """
    n = len(dataset)
    if n < 2:
        raise DataError(f"The data '{dataset.name}' has {n} sample(s); training needs at least 2")
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation_fraction: must be at least 0 and below 1, got {validation_fraction!r}")
    n_val = min(n - 1, round(n * validation_fraction))
    if validation_fraction > 0:
        n_val = max(1, n_val)
    rng = np.random.default_rng(seed)
    if dataset.extras.get("ordered"):
        return np.arange(n - n_val, dtype=np.int64), np.arange(n - n_val, n, dtype=np.int64)
    if dataset.target_kind == "classes" and dataset.y is not None:
        y = np.asarray(dataset.y).reshape(-1)
        classes, inverse = np.unique(y, return_inverse=True)
        members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
        counts = np.asarray([len(m) for m in members], dtype=np.int64)
        # Single-sample classes stay in training; the others share the validation rows.
        shared = np.where(counts >= 2, counts, 0)
        take = _allocate(shared, n_val, rng)
        val = [rng.permutation(m)[:k] for m, k in zip(members, take)]
        val_index = np.sort(np.concatenate(val)).astype(np.int64)
    else:
        val_index = np.sort(rng.permutation(n)[:n_val]).astype(np.int64)
    mask = np.ones(n, dtype=bool)
    mask[val_index] = False
    return np.flatnonzero(mask).astype(np.int64), val_index


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
                 normalize: bool = True) -> PreparedData:
    """Split a dataset and normalize it with statistics of the training part.

    Args:
        dataset: The whole dataset.
        validation_fraction: Share of rows held out for validation, in ``[0, 1)``; ``0``
            gives an empty validation part.
        seed: Seed of the split.
        normalize: Standardize real-valued inputs (never int64 token ids) and, for
            ``values`` targets, each target column.

    Returns:
        The split arrays (float32 inputs or int64 tokens; targets as in the dataset,
        ``values`` targets normalized), the normalizations and the row indices.

    Raises:
        DataError: Fewer than 2 samples, or a fraction outside ``[0, 1)``.
    """
    train_index, val_index = split_indices(dataset, validation_fraction, seed)
    x = dataset.x
    tokens = np.issubdtype(x.dtype, np.integer)
    x_norm: Normalization | None = None
    if tokens:
        train_x, val_x = x[train_index].astype(np.int64), x[val_index].astype(np.int64)
    else:
        train_x, val_x = x[train_index].astype(np.float32), x[val_index].astype(np.float32)
        if normalize:
            x_norm = fit_normalization(train_x)
            train_x, val_x = x_norm.apply(train_x), x_norm.apply(val_x)
    y = dataset.y
    y_norm: Normalization | None = None
    train_y = val_y = None
    if y is not None:
        train_y, val_y = y[train_index], y[val_index]
        if dataset.target_kind == "values":
            train_y, val_y = train_y.astype(np.float32), val_y.astype(np.float32)
            if normalize:
                y_norm = fit_normalization(train_y.reshape(len(train_y), -1))
                train_y, val_y = y_norm.apply(train_y), y_norm.apply(val_y)
    return PreparedData(dataset=dataset, train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y,
                        x_normalization=x_norm, y_normalization=y_norm,
                        train_index=train_index, val_index=val_index)
