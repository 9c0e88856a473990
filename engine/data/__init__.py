"""Datasets: loading (built-in, generated, user files), splitting, normalization, fit checks.

Headless: imports neither Qt nor torch. scikit-learn and Pillow are imported lazily by the
sources that need them.
"""

from __future__ import annotations

from engine.data.base import (
    ArrayDataset,
    DataError,
    Normalization,
    PreparedData,
    TargetKind,
)
from engine.data.fit import check_input_fits, describe, vocabulary_size
from engine.data.options import Option
from engine.data.prepare import apply_split, fit_normalization, prepare_data, split_indices
from engine.data.registry import DATASETS, DatasetInfo, dataset_names, load_dataset

__all__ = [
    "DATASETS", "ArrayDataset", "DataError", "DatasetInfo", "Normalization", "Option", "PreparedData",
    "TargetKind", "apply_split", "check_input_fits", "dataset_names", "describe", "fit_normalization",
    "load_dataset", "prepare_data", "split_indices", "vocabulary_size",
]
