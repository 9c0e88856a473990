"""Seeded train / validation / test splits.

The split is seeded. For classification it is stratified: each class keeps its share of the
test part and of the validation part to within one sample (largest-remainder allocation); a
class with a single sample always goes to the training part of a train / validation split. The
test rows are drawn first, from a random stream of their own, so they do not change with the
validation fraction; with no test part the validation rows are exactly those of a two-way split.
Datasets whose ``extras["ordered"]`` is true (forecasting windows of one series) keep time
order: the test part is the end of the series and validation comes just before it.

A dataset that arrives split (``extras["split"]``: 0 train, 1 validation, 2 test per row, e.g.
an image folder with ``train/``, ``val/`` and ``test/`` subfolders) keeps that split; a part it
lacks is drawn from its training rows with the configured fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.data.base import ArrayDataset, DataError

#: Values of ``extras["split"]``.
TRAIN, VALIDATION, TEST = 0, 1, 2
#: Salt of the test part's random stream (the validation draw keeps the plain seed).
_TEST_STREAM = 1


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of the three parts (each sorted, int64, disjoint).

    Args:
        train: Rows the model trains on.
        val: Rows of validation (early stopping, curves, snapshots).
        test: Held-out rows, used only by evaluation.
        given: Whether the dataset arrived split (``extras["split"]``).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    given: bool = False


def check_fractions(validation_fraction: float, test_fraction: float) -> None:
    """Refuse fractions outside ``[0, 1)`` or summing to 1 or more.

    Raises:
        DataError: ``validation_fraction: ...`` or ``test_fraction: ...`` (one line).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation_fraction: must be at least 0 and below 1, got {validation_fraction!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction: must be at least 0 and below 1, got {test_fraction!r}")
    if validation_fraction + test_fraction >= 1.0:
        raise DataError(f"test_fraction: validation_fraction + test_fraction must be below 1, got "
                        f"{validation_fraction:g} + {test_fraction:g}; lower one of them")


def _largest_remainder(counts: np.ndarray, n_take: int, rng: np.random.Generator) -> np.ndarray:
    """Samples per class: within one of the exact share ``n_take * count / total``."""
    total = counts.sum()
    exact = n_take * counts / total if total else np.zeros(len(counts))
    take = np.floor(exact).astype(np.int64)
    remainder = exact - take
    spare = n_take - int(take.sum())
    if spare > 0:
        # Largest remainders first; ties broken at random (seeded).
        order = np.lexsort((rng.random(len(counts)), -remainder))
        take[order[:spare]] += 1
    return take


def _allocate(counts: np.ndarray, n_take: int, rng: np.random.Generator) -> np.ndarray:
    """Like :func:`_largest_remainder`, leaving at least one sample of each class to train."""
    return np.minimum(_largest_remainder(counts, n_take, rng), np.maximum(counts - 1, 0))


def class_label(dataset: ArrayDataset, class_id: int) -> str:
    """A class's name for messages (its id when the dataset names none)."""
    names = dataset.class_names or []
    return repr(names[class_id]) if 0 <= class_id < len(names) else str(class_id)


def _part_sizes(n: int, validation_fraction: float, test_fraction: float, what: str) -> tuple[int, int]:
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_test < 1 + (validation_fraction > 0):
        field = "test_fraction" if n_test else "validation_fraction"
        raise DataError(f"{field}: {what} has {n} sample(s), too few to train"
                        f"{', validate' if validation_fraction > 0 else ''}{' and test' if n_test else ''}: "
                        f"add samples or lower {field}")
    n_val = min(n - 1 - n_test, round(n * validation_fraction))
    if validation_fraction > 0:
        n_val = max(1, n_val)
    return n_val, n_test


def _stratified_test(dataset: ArrayDataset, members: list[np.ndarray], classes: np.ndarray, n_test: int,
                     test_fraction: float, seed: int) -> list[np.ndarray]:
    """Test rows of each class; every class gets at least one and keeps one to train."""
    rng = np.random.default_rng([seed, _TEST_STREAM])
    counts = np.asarray([len(m) for m in members], dtype=np.int64)
    take = _allocate(counts, n_test, rng)
    for c in np.flatnonzero(take == 0):
        label, count = class_label(dataset, int(classes[c])), int(counts[c])
        if count < 2:
            raise DataError(f"test_fraction: class {label} has only 1 sample; a test part needs at least 2 of "
                            f"each class (one to train, one to test): add samples of {label} or set "
                            f"test_fraction to 0")
        needed = math.ceil(100 / count) / 100
        raise DataError(f"test_fraction: class {label} ({count} samples) gets no test sample at "
                        f"test_fraction {test_fraction:g}; raise test_fraction to about {needed:g} or add "
                        f"samples of {label}")
    return [rng.permutation(m)[:k] for m, k in zip(members, take)]


def _draw(dataset: ArrayDataset, rows: np.ndarray, validation_fraction: float, test_fraction: float,
          seed: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``rows`` (sorted row indices of ``dataset``) into train, validation and test rows."""
    n = len(rows)
    n_val, n_test = _part_sizes(n, validation_fraction, test_fraction, what)
    rng = np.random.default_rng(seed)
    if dataset.extras.get("ordered"):
        cut_val, cut_test = n - n_val - n_test, n - n_test
        return rows[:cut_val], rows[cut_val:cut_test], rows[cut_test:]
    test = np.zeros(0, dtype=np.int64)
    if dataset.target_kind == "classes" and dataset.y is not None:
        y = np.asarray(dataset.y).reshape(-1)[rows]
        classes, inverse = np.unique(y, return_inverse=True)
        members = [rows[np.flatnonzero(inverse == c)] for c in range(len(classes))]
        if n_test:
            held = _stratified_test(dataset, members, classes, n_test, test_fraction, seed)
            test = np.sort(np.concatenate(held))
            members = [np.setdiff1d(m, h, assume_unique=True) for m, h in zip(members, held)]
        counts = np.asarray([len(m) for m in members], dtype=np.int64)
        # Single-sample classes stay in training; the others share the validation rows.
        shared = np.where(counts >= 2, counts, 0)
        take = _allocate(shared, n_val, rng)
        val = np.sort(np.concatenate([rng.permutation(m)[:k] for m, k in zip(members, take)]))
    else:
        rest = rows
        if n_test:
            test = np.sort(np.random.default_rng([seed, _TEST_STREAM]).permutation(rows)[:n_test])
            rest = np.setdiff1d(rows, test, assume_unique=True)
        val = np.sort(rest[rng.permutation(len(rest))[:n_val]])
    held_out = np.concatenate([val, test])
    train = np.setdiff1d(rows, held_out, assume_unique=True)
    return train, val.astype(np.int64), test.astype(np.int64)


def _given(dataset: ArrayDataset, validation_fraction: float, test_fraction: float, seed: int) -> SplitIndices:
    """The split the dataset arrived with; a missing validation or test part is drawn from its training rows."""
    given = np.asarray(dataset.extras["split"]).reshape(-1)
    if len(given) != len(dataset) or not np.isin(given, (TRAIN, VALIDATION, TEST)).all():
        raise DataError(f"The data '{dataset.name}' carries a split that is not one of train (0), validation (1) "
                        f"or test (2) per sample")
    train, val, test = (np.flatnonzero(given == part).astype(np.int64) for part in (TRAIN, VALIDATION, TEST))
    if len(train) == 0:
        raise DataError(f"The data '{dataset.name}' arrived split but its training part (train/) is empty")
    draw_val = validation_fraction if len(val) == 0 else 0.0
    draw_test = test_fraction if len(test) == 0 else 0.0
    if draw_val > 0 or draw_test > 0:
        train, drawn_val, drawn_test = _draw(dataset, train, draw_val, draw_test, seed,
                                             f"the training part of '{dataset.name}'")
        val = drawn_val if len(val) == 0 else val
        test = drawn_test if len(test) == 0 else test
    if dataset.target_kind == "classes" and dataset.y is not None:
        y = np.asarray(dataset.y).reshape(-1)
        every = np.unique(y)
        for part, rows, fix in (("training", train, "train/"), ("test", test, "test/")):
            if part == "test" and len(rows) == 0:
                continue
            missing = np.setdiff1d(every, y[rows])
            if len(missing):
                class_id = int(missing[0])
                names = dataset.class_names or []
                name = names[class_id] if class_id < len(names) else str(class_id)
                raise DataError(f"class {name!r} has no sample in the {part} part of '{dataset.name}': add "
                                f"samples of it to {fix}{name}")
    return SplitIndices(train, val, test, given=True)


def three_way_split(dataset: ArrayDataset, validation_fraction: float, seed: int,
                    test_fraction: float = 0.0) -> SplitIndices:
    """Training, validation and test rows of a dataset.

    Args:
        dataset: The dataset; ``extras["split"]`` (0/1/2 per row), when present, is kept.
        validation_fraction: Share of rows for validation, in ``[0, 1)``.
        seed: Seed of the draw.
        test_fraction: Share of rows held out for testing, in ``[0, 1)``; ``0``: no test part,
            and the other two parts are exactly a two-way split's.

    Returns:
        The three parts' row indices.

    Raises:
        DataError: Fewer than 2 samples, bad fractions, a class a test part would leave empty
            or without a training sample (named, with the fix).
    """
    check_fractions(validation_fraction, test_fraction)
    n = len(dataset)
    if n < 2:
        raise DataError(f"The data '{dataset.name}' has {n} sample(s); training needs at least 2")
    if "split" in dataset.extras and dataset.extras["split"] is not None:
        return _given(dataset, validation_fraction, test_fraction, seed)
    train, val, test = _draw(dataset, np.arange(n, dtype=np.int64), validation_fraction, test_fraction, seed,
                             f"the data '{dataset.name}'")
    return SplitIndices(train, val, test)


def split_indices(dataset: ArrayDataset, validation_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices of a two-way split (each sorted).

    Args:
        dataset: The dataset.
        validation_fraction: Share of rows for validation, in ``[0, 1)``.
        seed: Seed of the shuffle.

    Returns:
        ``(train_index, val_index)`` as int64 arrays.

    Raises:
        DataError: Fewer than 2 samples, or a fraction outside ``[0, 1)``.
    """
    split = three_way_split(dataset, validation_fraction, seed)
    return split.train, split.val
