"""Map one PyTorch module to a canvas layer: type id, parameter values and its tensors.

The table comes from the layer declarations (:class:`~engine.layers.recognize.FromModule`):
each layer says which module classes it imports and how it reads their options. Only exact
equivalents map: a module whose options no layer can express (a ``padding_mode`` other than
zeros, a batch-second RNN, ...) stays unmapped and is named in the import error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

import torch
from torch import nn

from engine.layers.recognize import FromModule, recognizers

Mapped = tuple[str, dict[str, Any], dict[str, torch.Tensor], FromModule]


@lru_cache(maxsize=1)
def _table() -> dict[Any, tuple[tuple[str, FromModule], ...]]:
    """Module class (``torch.nn`` classes) or class name (the app's modules) -> its recognizers, highest
    priority first."""
    table: dict[Any, list[tuple[str, FromModule]]] = {}
    for type_id, recognizer in recognizers(FromModule):
        for name in recognizer.classes:
            key = getattr(nn, name[3:]) if name.startswith("nn.") else name
            table.setdefault(key, []).append((type_id, recognizer))
    return {key: tuple(sorted(found, key=lambda item: -item[1].priority)) for key, found in table.items()}


@lru_cache(maxsize=1)
def custom_leaves() -> frozenset[str]:
    """Class names of the app's own modules that layers import (kept whole while tracing)."""
    return frozenset(key for key in _table() if isinstance(key, str))


def map_module(m: nn.Module) -> Mapped | None:
    """``(type_id, params, tensors, recognizer)`` for a module, or ``None`` when no layer matches exactly."""
    return next(module_candidates(m), None)


def module_candidates(m: nn.Module) -> Iterator[Mapped]:
    """Every ``(type_id, params, tensors, recognizer)`` whose recognizer reads the module, in order: how
    the module is called picks one (:attr:`~engine.layers.recognize.FromModule.call`)."""
    name = type(m).__name__
    for type_id, recognizer in _table().get(name if name in custom_leaves() else type(m), ()):
        found = recognizer.read(m)
        if found is not None:
            params, tensors = found
            yield type_id, params, tensors, recognizer
