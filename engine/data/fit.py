"""Does the data fit the graph's input? And a summary of a dataset for panels and the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, DataError
from engine.data.streaming import is_lazy
from engine.layers.base import TensorSpec


def _shape(dims: tuple[int, ...]) -> str:
    return "(" + ", ".join(["N", *map(str, dims)]) + ")"


def holds_token_ids(dataset: ArrayDataset) -> bool:
    """Whether the dataset's inputs are integer token ids, as opposed to real values, which include
    images stored as uint8 (streamed from disk, or described by a run's preprocessing record)."""
    return bool(np.issubdtype(dataset.x.dtype, np.integer)) and dataset.image_shape is None and not is_lazy(dataset.x)


def vocabulary_size(dataset: ArrayDataset) -> int:
    """How many token ids a token dataset needs: its vocabulary, or the largest id + 1 (a dataset
    described by a run's preprocessing record, with no rows, carries it in ``extras["vocabulary_size"]``).

    Args:
        dataset: A dataset of int64 token ids.

    Returns:
        The size (0 for an empty or non-token dataset).
    """
    if dataset.vocabulary is not None:
        return len(dataset.vocabulary)
    if "vocabulary_size" in dataset.extras:
        return int(dataset.extras["vocabulary_size"])
    if not holds_token_ids(dataset) or dataset.x.size == 0:
        return 0
    largest = int(dataset.x.max())
    if dataset.y is not None and dataset.target_kind == "next_tokens" and dataset.y.size:
        largest = max(largest, int(dataset.y.max()))
    return largest + 1


def check_input_fits(dataset: ArrayDataset, input_id: str, spec: TensorSpec) -> None:
    """Check that the dataset's samples fit an input node's declared tensor.

    Args:
        dataset: The data the model will be trained on.
        input_id: The input node's id, for the message.
        spec: The node's declared per-sample tensor (``float`` for an Input node,
            ``long`` with ``vocab`` for a Token Input).

    Raises:
        DataError: A dtype, shape, sequence length or vocabulary mismatch, with the fix.
    """
    dims = dataset.sample_dims
    tokens = holds_token_ids(dataset)
    name = dataset.name
    if spec.dtype == "long":
        if not tokens:
            raise DataError(f"Token Input {input_id} expects integer token ids but the data '{name}' gives "
                            f"real values {_shape(dims)}: use an Input node of shape "
                            f"{', '.join(map(str, dims))} instead")
        if len(dims) != 1:
            raise DataError(f"Token Input {input_id} expects sequences (N, T) but the data '{name}' gives "
                            f"{_shape(dims)}")
        if tuple(spec.dims) != dims:
            raise DataError(f"Token Input {input_id} declares seq_len {spec.dims[0] if spec.dims else '?'} "
                            f"but the data '{name}' gives sequences of {dims[0]} tokens: set its "
                            f"seq_len to {dims[0]}")
        needed = vocabulary_size(dataset)
        if spec.vocab is not None and needed > spec.vocab:
            raise DataError(f"Token Input {input_id} has vocab_size {spec.vocab} but the data '{name}' "
                            f"uses {needed} distinct tokens: set its vocab_size to at least {needed}")
        return
    if tokens:
        raise DataError(f"Input node {input_id} takes real values but the data '{name}' gives token ids "
                        f"{_shape(dims)}: use a Token Input (seq_len {dims[-1] if dims else 1}, vocab_size "
                        f"{vocabulary_size(dataset)}) feeding an Embedding")
    if tuple(spec.dims) != dims:
        raise DataError(f"Input node {input_id} declares {spec} but the data '{name}' gives "
                        f"{_shape(dims)}: set its shape to {', '.join(map(str, dims))}")


def describe(dataset: ArrayDataset) -> dict[str, Any]:
    """A JSON-friendly summary for the data panel and the CLI.

    Args:
        dataset: The dataset.

    Returns:
        ``name``, ``description``, ``samples``, ``input_shape`` (per sample), ``input_dtype``
        (``"float"``/``"long"``), ``target_kind``, ``target_shape`` (per sample, or
        ``None``), ``num_classes``, ``class_counts`` (class name -> count, classification
        only), ``feature_names``, ``vocabulary_size`` (token data), ``image_shape``.
    """
    tokens = holds_token_ids(dataset)
    y = dataset.y
    counts: dict[str, int] | None = None
    if dataset.target_kind == "classes" and y is not None:
        names = dataset.class_names or [str(i) for i in range(int(y.max()) + 1 if y.size else 0)]
        tally = np.bincount(np.asarray(y, dtype=np.int64).reshape(-1), minlength=len(names))
        counts = {names[i] if i < len(names) else str(i): int(c) for i, c in enumerate(tally)}
    return {
        "name": dataset.name,
        "description": dataset.description,
        "samples": len(dataset),
        "input_shape": list(dataset.sample_dims),
        "input_dtype": "long" if tokens else "float",
        "target_kind": dataset.target_kind,
        "target_shape": None if y is None else [int(d) for d in y.shape[1:]],
        "num_classes": dataset.num_classes,
        "class_counts": counts,
        "feature_names": list(dataset.feature_names) if dataset.feature_names else None,
        "vocabulary_size": vocabulary_size(dataset) if tokens else None,
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "storage": dataset.extras.get("storage"),
        "skipped": list(dataset.extras.get("skipped") or []),
    }
