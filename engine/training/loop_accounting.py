"""Book-keeping of the training loop that spans batches and epochs: the per-epoch metric sums, the
window behind each BatchMetrics event, the clock that holds them with the CPU thread governor,
and seeding."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import torch

from engine.training.threads import ThreadGovernor, fixed_threads


class EpochClock:
    """What spans epochs: the batch-event window, the last snapshot, the CPU thread governor.

    ``cpu_threads`` 0 lets the governor follow the free cores; another value fixes the count. A
    deterministic run keeps torch's thread count: float sums split over another number of threads
    round differently (a batch norm's statistics), so a run whose thread count followed the
    machine's load is not bit-for-bit repeatable.
    """

    def __init__(self, device: torch.device, cpu_threads: int, deterministic: bool = False) -> None:
        self.window = BatchWindow(device)
        self.last_snapshot = 0.0
        self.fixed_from = fixed_threads(cpu_threads) if cpu_threads and device.type == "cpu" else 0
        self.threads = ThreadGovernor(device.type == "cpu" and not cpu_threads and not deterministic)

    def restore(self) -> None:
        """Give torch the thread count it had before the run."""
        self.threads.restore()
        if self.fixed_from:
            fixed_threads(self.fixed_from)


class MetricSums:
    """Per-epoch sums of batch metrics (weighted by batch size).

    On CPU each value is read as a Python float (reading is free there, and a NaN loss is
    caught at its step); elsewhere the sums stay on the device so no batch waits for the GPU.
    """

    def __init__(self, device: torch.device, resumed: dict[str, float]) -> None:
        self.on_cpu = device.type == "cpu"
        self.values: dict[str, Any] = {k: v for k, v in resumed.items() if k != "_count"}
        self.seen = int(resumed.get("_count", 0))

    def add(self, metrics: dict[str, torch.Tensor], count: int) -> float | None:
        """Add one batch; returns its loss as a float on CPU, else ``None``."""
        self.seen += count
        values = self.values
        if self.on_cpu:
            loss = 0.0
            for key, tensor in metrics.items():
                value = float(tensor)
                values[key] = values.get(key, 0.0) + value * count
                if key == "loss":
                    loss = value
            return loss
        for key, tensor in metrics.items():
            values[key] = values[key] + tensor * count if key in values else tensor * count
        return None

    def totals(self) -> dict[str, float]:
        """The sums as floats."""
        return {key: float(value) for key, value in self.values.items()}


class BatchWindow:
    """Loss and throughput since the last BatchMetrics event (spans epochs)."""

    def __init__(self, device: torch.device) -> None:
        self.zero: Any = 0.0 if device.type == "cpu" else torch.zeros((), device=device)
        self.loss, self.count, self.samples, self.start = self.zero, 0, 0, time.perf_counter()

    def add(self, loss: Any, samples: int) -> None:
        """Add one batch's loss (float or device tensor)."""
        self.loss = self.loss + loss
        self.count += 1
        self.samples += samples

    def flush(self, now: float) -> tuple[float, float]:
        """Mean loss and samples/s of the window; starts a new one."""
        mean = float(self.loss) / max(self.count, 1)
        rate = self.samples / (now - self.start) if now > self.start else 0.0
        self.loss, self.count, self.samples, self.start = self.zero, 0, 0, now
        return mean, rate


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and torch; a deterministic run also asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random state ``torch.random.fork_rng`` must keep for ``device``."""
    return [device.index or 0] if device.type == "cuda" else []
