"""Shared helpers for the benchmark scripts: machine description, statistics, result files,
and the five reference models (graph + hand-written ``nn.Module``) of the compiler tests.

The five models mirror tests/test_compiler_equivalence.py (MLP, LeNet-5, residual block,
LSTM classifier, Transformer encoder classifier). They are rebuilt here with the engine
API only, so the benchmarks do not depend on test modules that are still changing.
Torch is imported lazily (only :func:`models` needs it), so shapes_scale.py stays light.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------ run folders
def epoch_rates(run_dir: Path) -> list[float]:
    """Training samples/s of epochs 2..E from a run folder's metrics.jsonl (epoch 1 is warm-up)."""
    rates = []
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("type") == "epoch" and event["epoch"] >= 2:
            rates.append(float(event["samples_per_s"]))
    return rates


# ------------------------------------------------------------------ machine
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, with family/model numbers when the name is generic."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model") and key not in fields:
                fields[key] = value.strip()
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def machine_info(with_torch: bool = False) -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import networkx

        info["networkx"] = networkx.__version__
    except ImportError:  # pragma: no cover
        pass
    if with_torch:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def describe_machine(info: dict[str, Any]) -> str:
    parts = [info["date"], info["cpu"], f"{info['cpu_count']} cores", f"Python {info['python']}"]
    if "torch" in info:
        parts.append(f"torch {info['torch']} ({info['torch_threads']} threads)")
    if "networkx" in info:
        parts.append(f"networkx {info['networkx']}")
    return ", ".join(parts)


# ------------------------------------------------------- other processes' load
class ForeignLoad:
    """CPU used by *other* processes during a timed section, in cores (0.0 = machine was ours).

    On a shared 2-core machine another process's burst ruins a measurement (torch's two
    OpenMP threads then wait on each other: a step can become 40x slower), so the
    benchmarks measure this around every timed block and re-run blocks where it was high.
    Reads /proc/stat (all CPUs) and subtracts this process's own CPU time; returns 0.0
    where /proc/stat is missing.
    """

    _TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = None

    @classmethod
    def _busy_seconds(cls) -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # guest time is already counted in user
        return (total - idle) / cls._TICK

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def start(self) -> None:
        import time

        busy = self._busy_seconds()
        self._start = (busy if busy is not None else float("nan"), self._own_seconds(), time.perf_counter())

    def stop(self) -> float:
        """Average number of cores other processes kept busy since :meth:`start`."""
        import time

        assert self._start is not None
        busy0, own0, t0 = self._start
        busy = self._busy_seconds()
        wall = time.perf_counter() - t0
        if busy is None or busy0 != busy0 or wall <= 0:
            return 0.0
        foreign = (busy - busy0) - (self._own_seconds() - own0)
        return max(0.0, foreign / wall)


class ForeignLoadWithChildren(ForeignLoad):
    """:class:`ForeignLoad` that also counts this process's children as its own.

    A child's CPU time is only known once it has been waited for (``Process.join``), so
    call :meth:`stop` after joining the children started in the timed section.
    """

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


class QuietBudget:
    """Waits (up to a total budget) for other processes to leave the CPU alone.

    Args:
        threshold: Foreign load (cores) below which the CPU counts as quiet.
        budget_seconds: Total seconds :meth:`wait` may spend waiting over the whole run.
    """

    def __init__(self, threshold: float, budget_seconds: float) -> None:
        self.threshold = threshold
        self.left = budget_seconds
        self.waited = 0.0

    def wait(self) -> bool:
        """Return True once a 0.1 s window had less foreign load than the threshold,
        False when the budget is spent."""
        import time

        while True:
            monitor = ForeignLoad()
            monitor.start()
            time.sleep(0.1)
            if monitor.stop() < self.threshold:
                return True
            if self.left <= 0:
                return False
            self.left -= 0.1
            self.waited += 0.1


# --------------------------------------------------------------- statistics
def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """Lower and upper quartile (the values themselves when there are fewer than 2)."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


# ------------------------------------------------------------------- output
def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = [i > 0 for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1)) for w, r in zip(widths, right)) + "|"
    return "\n".join([fmt(cells[0]), sep, *(fmt(r) for r in cells[1:])])


def write_results(name: str, data: dict[str, Any], path: str | None = None) -> Path:
    """Write ``data`` as JSON to ``path`` or bench/results/<name>.json and return the path."""
    target = Path(path) if path else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")
    return target


# ----------------------------------------------------- the five test models
# One definition for tests and benchmarks: graphs, hand-written modules, weight name maps.
from tests.graph_builders import chain, node  # noqa: E402,F401 - re-exported for the benchmarks
from tests.reference_models import ModelCase, models  # noqa: E402,F401 - re-exported


def copy_weights(source: Any, target: Any, name_map: dict[str, str] | None = None) -> None:
    """Copy every parameter and buffer of ``source`` (compiled) into ``target`` (hand-written).

    By state-dict order (same count, same last name component, same shapes), or by an
    explicit ``source key -> target key`` map.
    """
    src = source.state_dict()
    dst = target.state_dict()
    if name_map is None:
        assert len(src) == len(dst), (list(src), list(dst))
        name_map = {}
        for src_key, dst_key in zip(src, dst):
            assert src_key.rsplit(".", 1)[-1] == dst_key.rsplit(".", 1)[-1], (src_key, dst_key)
            name_map[src_key] = dst_key
    assert set(name_map) == set(src) and set(name_map.values()) == set(dst)
    for src_key, dst_key in name_map.items():
        assert src[src_key].shape == dst[dst_key].shape, (src_key, dst_key)
    target.load_state_dict({name_map[k]: v.clone() for k, v in src.items()}, strict=True)
