"""Batches of streamed data: a DataLoader over row indices, reading in worker processes.

Workers decode uint8 images (:class:`engine.data.streaming.LazyImages`, through its cache) or
read rows of a memory-mapped array (:class:`engine.data.lazy_array.LazyArray`, float32); the
training process copies them to the device (pinned memory and non-blocking copies on CUDA) and
converts them there to float32 (images scaled to [0, 1]) normalized with the training part's
statistics. A file that became unreadable after the scan is left out of its batch and logged
once, never a traceback mid-epoch. The batch order is the caller's seeded permutation, so runs
stay reproducible.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import numpy as np
import torch

from engine.data.base import Normalization

log = logging.getLogger(__name__)
#: Most decoding workers chosen automatically.
MAX_AUTO_WORKERS = 8


def auto_workers(setting: int) -> int:
    """Decoding workers: the ``num_workers`` setting when above 0, else the free cores (one is left
    to the training process), at most :data:`MAX_AUTO_WORKERS`."""
    if setting > 0:
        return setting
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_AUTO_WORKERS, cores - 1))


class _Rows(torch.utils.data.Dataset):
    """Index = a list of positions in ``x``; item = ``(stored rows, targets, unreadable names)``."""

    def __init__(self, x: Any, y: torch.Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
        index = np.asarray(positions, dtype=np.int64)
        images, bad = self.x.read_skipping(self.x.rows[index])
        y = None
        if self.y is not None:
            if bad:
                names = set(bad)
                keep = [i for i, row in enumerate(self.x.rows[index]) if self.x.labels[row] not in names]
                index = index[keep]
            y = self.y[torch.from_numpy(index)]
        return torch.from_numpy(images), y, bad


class _EpochBatches(torch.utils.data.Sampler):
    """The batches (lists of positions) of the epoch being read: set before each pass, so one loader with
    persistent workers serves every epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamedPart:
    """A streamed part (training or validation) of a run: lazy rows, their targets, and how to
    turn read batches into normalized device tensors.

    Args:
        x: The part's lazy rows (:class:`~engine.data.streaming.LazyImages` or
            :class:`~engine.data.lazy_array.LazyArray`).
        y: Its targets (CPU tensor) or ``None``.
        normalization: The training part's statistics (images in [0, 1] units), or ``None``.
        device: The training device.
        workers: Decoding worker processes (0: decode in this process).
    """

    def __init__(self, x: Any, y: torch.Tensor | None, normalization: Normalization | None,
                 device: torch.device, workers: int) -> None:
        self.x, self.y, self.device, self.workers = x, y, device, workers
        if normalization is None:
            scale, shift = np.asarray(1.0 / x.unit), np.asarray(0.0)
        else:  # statistics shaped to broadcast to one sample: (C, 1, 1) images, (F,) tables, (1, F) sequences
            std = np.asarray(normalization.std, dtype=np.float64)
            scale, shift = 1.0 / (x.unit * std), -np.asarray(normalization.mean, dtype=np.float64) / std
        self.scale = torch.as_tensor(scale, dtype=torch.float32, device=device)
        self.shift = torch.as_tensor(shift, dtype=torch.float32, device=device)
        self.reported: set[str] = set()
        self._epoch_batches = _EpochBatches()
        self._loader: Any = None  # made on first use; its worker processes live as long as this part

    def __len__(self) -> int:
        return len(self.x)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """Stored rows (uint8 images, float32 arrays) -> normalized float32 on the device."""
        return images.to(self.device, non_blocking=True).float().mul_(self.scale).add_(self.shift)

    def decode(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Positions of this part decoded in this process, normalized, on the device."""
        images, y, bad = _Rows(self.x, self.y)[list(map(int, positions))]
        self._report(bad)
        return self.to_device(images), None if y is None else y.to(self.device)

    def _report(self, bad: list[str]) -> None:
        new = [name for name in bad if name not in self.reported]
        if new:
            self.reported.update(new)
            log.warning("skipped unreadable image(s) while training: %s", ", ".join(new))

    def batches(self, batches: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The given batches (lists of positions), read by the workers, in order, on the device;
        a batch whose every image became unreadable is left out.

        The worker processes persist from one call to the next: started for every epoch, they cost
        seconds each time in a process whose children are spawned (the app's training process).
        """
        if not batches:
            return
        self._epoch_batches.batches = batches
        for images, y, bad in self._reader():
            self._report(bad)
            if len(images) == 0:
                continue
            yield self.to_device(images), None if y is None else y.to(self.device, non_blocking=True)

    def _reader(self) -> Any:
        from torch.utils.data import DataLoader

        if self._loader is None:
            # a private generator: the loader's worker seeds must not consume the global RNG (dropout)
            self._loader = DataLoader(_Rows(self.x, self.y), batch_size=None, sampler=self._epoch_batches,
                                      num_workers=self.workers, pin_memory=self.device.type == "cuda",
                                      generator=torch.Generator().manual_seed(0), persistent_workers=self.workers > 0,
                                      prefetch_factor=4 if self.workers else None)
        return self._loader

    def device_batches(self, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Every sample in order (validation), in batches of ``batch_size``."""
        n = len(self.x)
        yield from self.batches([list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)])


def normalized_rows(x: Any, normalization: Normalization | None, positions: list[int] | None = None,
                    device: torch.device | None = None) -> torch.Tensor:
    """Rows of a streamed part (all, or ``positions``) read and normalized as training feeds
    them, as one tensor (for evaluation and Look Inside: a split that fits memory)."""
    part = StreamedPart(x, None, normalization, device or torch.device("cpu"), 0)
    chosen = list(range(len(x))) if positions is None else positions
    return torch.cat([part.decode(np.asarray(chosen[s:s + 256]))[0] for s in range(0, len(chosen), 256)]) \
        if chosen else torch.empty(0)


def streamed_parts(data: Any, device: torch.device, num_workers: int) -> tuple[StreamedPart, StreamedPart]:
    """The training and validation parts of prepared data whose inputs are lazy."""
    from engine.training.batches import _tensor

    workers = auto_workers(num_workers)
    norm = data.x_normalization
    return (StreamedPart(data.train_x, _tensor(data.train_y), norm, device, workers),
            StreamedPart(data.val_x, _tensor(data.val_y), norm, device, workers))
