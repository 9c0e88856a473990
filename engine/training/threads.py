"""CPU threads that follow the cores actually free, so a busy machine does not stall training.

torch's OpenMP threads wait for each other at the end of every parallel region. When
another process holds one of their cores, the whole step waits for the descheduled thread:
on a 2-core machine with one core busy, the CNN template trains 2x slower with 2 threads
than with 1 (``bench/contention.py``; passive OpenMP waiting makes it worse, 7x). The
:class:`ThreadGovernor` measures, a few times a second, how much CPU other processes use
(all CPU time on the machine minus this process's own) and sets torch's intra-op threads to
the cores left free, at most what torch started with; on an idle machine nothing changes.

The governor only acts on CPU runs; on a GPU the threads barely matter.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

#: Seconds between measurements.
INTERVAL_S = 1.0
#: Seconds until the first measurement, and until the next one after a change (a run on a busy
#: machine should not stay slow for long, nor one that stepped down for a passing burst).
FIRST_CHECK_S = 0.25
#: A core counts as free when other processes use less than this share of it.
FREE_MARGIN = 0.35


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fixed_threads(count: int) -> int:
    """Use exactly ``count`` CPU threads (the ``cpu_threads`` setting); returns the count before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    return before


def threads_for(foreign_cores: float, cores: int, most: int) -> int:
    """Threads to use when other processes keep ``foreign_cores`` cores busy.

    Args:
        foreign_cores: Cores' worth of CPU other processes used lately.
        cores: Cores this process may run on.
        most: The thread count torch started with (never exceeded).
    """
    return max(1, min(most, math.floor(cores - foreign_cores + FREE_MARGIN)))


class ThreadGovernor:
    """Adjusts ``torch.set_num_threads`` to the cores other processes leave free.

    Call :meth:`adjust` whenever ``time.perf_counter()`` has passed :attr:`due` (the trainer
    compares once per batch, which costs nanoseconds).

    Args:
        enabled: Whether to act (CPU runs); disabled, :attr:`due` is infinite.
        interval: Seconds between measurements.
    """

    def __init__(self, enabled: bool, interval: float = INTERVAL_S) -> None:
        import torch

        self.interval = interval
        self.most = torch.get_num_threads()
        self.threads = self.most
        self.cores = usable_cores()
        self.enabled = enabled and self.most > 1
        self.started = time.perf_counter()
        self.due = self.started + FIRST_CHECK_S if self.enabled else math.inf
        self.changes: list[tuple[float, int, float]] = []  # (time, threads, foreign cores) for benchmarks
        self._last: tuple[float, float, float] | None = self._sample() if self.enabled else None

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        """(wall seconds, busy CPU seconds of the whole machine, this process's CPU seconds)."""
        import psutil

        total = psutil.cpu_times()
        idle = total.idle + getattr(total, "iowait", 0.0)
        busy = sum(total) - idle - getattr(total, "guest", 0.0) - getattr(total, "guest_nice", 0.0)
        own = time.process_time()
        return time.perf_counter(), busy, own

    def adjust(self, now: float) -> int:
        """Measure the other processes' load since the last call and set the thread count."""
        self.due = now + self.interval
        previous, current = self._last, self._sample()
        self._last = current
        if previous is None:
            return self.threads
        wall = current[0] - previous[0]
        if wall <= 0:
            return self.threads
        foreign = max(0.0, ((current[1] - previous[1]) - (current[2] - previous[2])) / wall)
        threads = threads_for(foreign, self.cores, self.most)
        if threads != self.threads:
            import torch

            torch.set_num_threads(threads)
            self.threads = threads
            self.changes.append((now, threads, round(foreign, 2)))
            self.due = now + FIRST_CHECK_S  # a burst that made it step down should not cost a whole interval
        return threads

    def restore(self) -> None:
        """Give torch its starting thread count back (the trainer ran in-process, e.g. in a test)."""
        if self.enabled and self.threads != self.most:
            import torch

            torch.set_num_threads(self.most)
            self.threads = self.most

    def state(self) -> dict[str, Any]:
        """What the governor did, for run.json: threads at the start and now, and its last changes
        as ``[seconds into the epochs, threads, other processes' cores]``."""
        started = self.started
        return {"at_start": self.most, "now": self.threads,
                "changes": [[round(at - started, 1), threads, foreign] for at, threads, foreign in self.changes[-10:]]}
