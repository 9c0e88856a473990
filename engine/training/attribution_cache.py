"""Keys and a cache for attributions (:mod:`engine.training.attributions`), and the mode they run in.

A result is kept per (weights, sample, method, layer, output): :func:`weights_version` names the
weights a module holds now, :func:`sample_key` one sample's values. Importing this module does not
import torch.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.training.attributions import Attribution


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """``module`` in eval mode (no dropout, batch-norm statistics) with gradients on, its mode again after."""
    import torch

    training = module.training
    module.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        module.train(training)


def weights_version(module: torch.nn.Module) -> tuple[int, int]:
    """Identity of ``module``'s weights: its id and the sum of its tensors' in-place write counters
    (``load_state_dict`` and optimizer steps change it)."""
    return id(module), sum(p._version for p in module.state_dict(keep_vars=True).values())


def sample_key(array: np.ndarray) -> str:
    """A key of one sample's values (shape, dtype and bytes)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha1(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


class AttributionCache:
    """Results per key, the ``size`` most recently used kept (``get`` returns the same object for a key)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Any, Attribution] = OrderedDict()

    def get(self, key: Any, compute: Callable[[], Attribution]) -> Attribution:
        """The cached result for ``key``, or ``compute()``'s, stored."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        result = self._items[key] = compute()
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return result

    def clear(self) -> None:
        """Forget every result (new weights)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
