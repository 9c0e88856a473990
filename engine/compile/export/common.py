"""Helpers the format writers share: names, the dynamic batch axis, quiet exporters."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

from engine.compile.export.source import ExportSource
from engine.compile.fx_builder import attribute_name
from engine.fileio import atomic_write_bytes

#: Largest batch the exported programs accept (torch.export needs a bound to reason about).
MAX_BATCH = 1 << 20


def input_names(src: ExportSource) -> list[str]:
    """Argument names of the exported model: the Input nodes' (sanitised) ids."""
    return [attribute_name(i) for i in src.compiled.input_ids]


def output_names(src: ExportSource) -> list[str]:
    """Result names: the Output nodes' (sanitised) ids."""
    return [attribute_name(i) for i in src.compiled.output_ids]


def batch_dynamic_shapes(src: ExportSource) -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` for torch.export: dimension 0 of every input is the batch."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return tuple({0: batch} for _ in src.compiled.input_ids)


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Silence the exporters' progress prints and known third-party warnings.

    torch.export and the ONNX exporter print progress to stdout, log that torchvision is
    missing, and raise warnings about their own internals (a pytree deprecation, tensor
    attributes of ``nn.LSTM`` assigned during tracing) that say nothing about the model; with
    two or more inputs the ONNX exporter also says that the batch axis name of the second is
    not used (every input's axis 0 is the one shared "batch" dimension, named once).
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                    category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"_check_is_size will be removed", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"The \.grad attribute of a Tensor that is not a leaf Tensor",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", message=r"The tensor attributes .*_flat_weights.* were assigned "
                                    "during export", category=UserWarning)
            warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used, since it shares "
                                    "the same shape constraints with another axis: batch", category=UserWarning)
            yield
    finally:
        logger.setLevel(level)


def vocabulary_path(out: Path) -> Path:
    """Where the vocabulary goes beside an exported file: ``model.onnx`` -> ``model.vocab.json``."""
    return out.with_name(out.stem + ".vocab.json")


def write_vocabulary(src: ExportSource, path: Path) -> list[Path]:
    """Write the token of each id as a JSON list; nothing when the model has no vocabulary."""
    if src.vocabulary is None:
        return []
    atomic_write_bytes(path, (json.dumps(src.vocabulary, ensure_ascii=False) + "\n").encode("utf-8"))
    return [path]
