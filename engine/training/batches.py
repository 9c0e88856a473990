"""Training batches: device-resident tensors for small data, a DataLoader for large data, and
for a streamed image folder a DataLoader whose workers decode the images
(:mod:`engine.training.streamed`).

Every epoch draws one permutation from a dedicated, seeded generator. In a distributed run
each rank takes an equal, disjoint share of it (as ``DistributedSampler(drop_last=True)``
does), so every rank takes the same number of steps. The permutation and the generator
are part of the checkpoint, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from engine.data.base import PreparedData
from engine.data.streaming import is_lazy

#: Datasets up to this size (inputs and targets, both splits) live on the training device.
RESIDENT_BYTES = 1 << 30
#: Validation samples handed to prediction snapshots.
SNAPSHOT_SAMPLES = 4096
#: The same for a streamed image folder (decoded once, at the start).
STREAMED_SNAPSHOT_SAMPLES = 512

Batch = tuple[torch.Tensor, torch.Tensor | None]


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    if array is None:
        return None
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.float() if tensor.is_floating_point() else tensor.long()


class BatchSource:
    """Batches of one training run.

    Args:
        data: The prepared split.
        device: Training device.
        batch_size: Samples per step (per rank).
        seed: Seed of the data-order generator.
        rank: This process's rank (0 when not distributed).
        world: Number of processes.
        num_workers: DataLoader workers when streaming large data.
    """

    def __init__(self, data: PreparedData, device: torch.device, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1, num_workers: int = 0) -> None:
        self.device = device
        self.batch_size = batch_size
        self.rank, self.world = rank, world
        self.num_workers = num_workers
        self.generator = torch.Generator().manual_seed(seed)
        self.streamed = None
        if is_lazy(data.train_x):  # streamed data: workers read batches of row indices
            from engine.training.streamed import streamed_parts

            self.resident = False
            self.streamed, self.streamed_val = streamed_parts(data, device, num_workers)
            self.train_x, self.train_y = self.streamed.x, self.streamed.y
            self.val_x, self.val_y = self.streamed_val.x, self.streamed_val.y
            self._count_steps(world, batch_size)
            return
        arrays = [data.train_x, data.train_y, data.val_x, data.val_y]
        self.resident = sum(a.nbytes for a in arrays if a is not None) <= RESIDENT_BYTES
        target = device if self.resident else torch.device("cpu")
        self.train_x, self.train_y, self.val_x, self.val_y = (
            t.to(target) if t is not None else None for t in map(_tensor, arrays))
        self._count_steps(world, batch_size)

    def _count_steps(self, world: int, batch_size: int) -> None:
        total = len(self.train_x)
        self.shard = total // world
        if self.shard < 1:
            raise ValueError(f"{total} training samples cannot be shared by {world} processes")
        steps, remainder = divmod(self.shard, batch_size)
        # a last batch of one sample would break BatchNorm in training mode: drop it
        self.steps_per_epoch = max(1, steps + (1 if remainder > 1 or (remainder == 1 and steps == 0) else 0))
        self.train_count = min(self.shard, self.steps_per_epoch * batch_size) * world
        self.current_permutation: torch.Tensor | None = None
        self._resumed: torch.Tensor | None = None

    def resume_permutation(self, permutation: torch.Tensor) -> None:
        """Use ``permutation`` (from a checkpoint) for the next epoch instead of drawing one."""
        self._resumed = permutation

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[int, Batch]]:
        """Yield ``(batch index, (x, y))`` for one epoch, starting at ``start_batch``."""
        if self._resumed is not None:
            permutation, self._resumed = self._resumed, None
        else:
            permutation = torch.randperm(len(self.train_x), generator=self.generator)
        self.current_permutation = permutation
        local = permutation[self.rank::self.world][:self.shard]
        if self.streamed is not None:
            rows = local[start_batch * self.batch_size:self.steps_per_epoch * self.batch_size].tolist()
            batches = [rows[i:i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
            yield from enumerate(self.streamed.batches(batches), start=start_batch)
            return
        if self.resident:
            local = local.to(self.device)
            for index in range(start_batch, self.steps_per_epoch):
                rows = local[index * self.batch_size:(index + 1) * self.batch_size]
                yield index, (self.train_x[rows], None if self.train_y is None else self.train_y[rows])
            return
        yield from self._stream(local, start_batch)

    def _stream(self, local: torch.Tensor, start_batch: int) -> Iterator[tuple[int, Batch]]:
        from torch.utils.data import DataLoader, TensorDataset

        tensors = [self.train_x] if self.train_y is None else [self.train_x, self.train_y]
        rows = local[start_batch * self.batch_size:self.steps_per_epoch * self.batch_size].tolist()
        # a private generator: the loader's worker seeds must not consume the global RNG (dropout)
        loader = DataLoader(TensorDataset(*tensors), batch_size=self.batch_size, sampler=rows,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator().manual_seed(len(rows)))
        for index, batch in enumerate(loader, start=start_batch):
            x = batch[0].to(self.device, non_blocking=True)
            y = batch[1].to(self.device, non_blocking=True) if len(batch) > 1 else None
            yield index, (x, y)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All validation data (tasks move streamed batches to the device themselves; a streamed
        image folder gives its :class:`~engine.training.streamed.StreamedPart`, whose
        ``device_batches`` the tasks' ``eval_batches`` read)."""
        if self.streamed is not None:
            return self.streamed_val, self.val_y  # type: ignore[return-value]
        return self.val_x, self.val_y

    def snapshot_data(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first validation samples, on the device, for prediction snapshots."""
        if self.streamed is not None:
            return self.streamed_val.decode(np.arange(min(STREAMED_SNAPSHOT_SAMPLES, len(self.val_x))))
        x = self.val_x[:SNAPSHOT_SAMPLES].to(self.device)
        return x, None if self.val_y is None else self.val_y[:SNAPSHOT_SAMPLES].to(self.device)

    def sample_batch(self, size: int) -> Batch:
        """The first ``size`` training samples on the device (for memory probing)."""
        if self.streamed is not None:
            return self.streamed.decode(np.arange(min(size, len(self.train_x))))
        x = self.train_x[:size].to(self.device)
        return x, None if self.train_y is None else self.train_y[:size].to(self.device)
