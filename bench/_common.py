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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.graph import Edge, Graph, Node  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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


# ------------------------------------------------------------ graph helpers
def chain(graph: Graph, *links: Node | str) -> str:
    """Add the nodes not yet in ``graph`` and connect each link to the next one's first free port."""
    ids = []
    for link in links:
        if isinstance(link, Node):
            graph.add_node(link)
            ids.append(link.id)
        else:
            ids.append(link)
    for source, target in zip(ids, ids[1:]):
        port = next(p for p in graph.nodes[target].input_ports() if graph.edge_into(target, p) is None)
        graph.add_edge(Edge(source, target, port))
    return ids[-1]


def node(type_id: str, node_id: str, **params: Any) -> Node:
    return Node(node_id, type_id, dict(params))


# ----------------------------------------------------- the five test models
@dataclass
class ModelCase:
    """One benchmark model: its graph, the equivalent hand-written module and its inputs.

    Args:
        name: Display name.
        graph: The canvas graph.
        make_reference: Builds the hand-written ``nn.Module``.
        input_shape: Per-sample input shape (float input).
        classes: Number of output classes (cross-entropy target range).
        name_map: compiled state-dict key -> reference key, when state-dict order differs.
    """

    name: str
    graph: Graph
    make_reference: Callable[[], Any]
    input_shape: tuple[int, ...]
    classes: int
    name_map: Callable[[Any], dict[str, str]] | None = None


def models() -> list[ModelCase]:
    """The five models of tests/test_compiler_equivalence.py, as graphs and hand-written modules."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(20, 64)
            self.fc2 = nn.Linear(64, 32)
            self.fc3 = nn.Linear(32, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    class LeNet(nn.Module):
        """LeNet-5 as in the PyTorch "Neural Networks" tutorial."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    class ResidualNet(nn.Module):
        def __init__(self, channels: int = 8, classes: int = 10) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(channels)
            self.head = nn.Linear(channels, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out = F.relu(out + x)
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)
            return self.head(out)

    class LSTMClassifier(nn.Module):
        def __init__(self, features: int = 8, hidden: int = 32, classes: int = 10) -> None:
            super().__init__()
            self.lstm = nn.LSTM(features, hidden, batch_first=True)
            self.fc = nn.Linear(hidden, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h_n, _) = self.lstm(x)
            return self.fc(h_n[-1])

    class TransformerClassifier(nn.Module):
        def __init__(self, steps: int = 8, features: int = 8, d_model: int = 32, max_len: int = 16,
                     classes: int = 10) -> None:
            super().__init__()
            self.input_proj = nn.Linear(features, d_model)
            self.pos_embedding = nn.Parameter(torch.zeros(max_len, d_model))
            layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.head = nn.Linear(steps * d_model, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.input_proj(x)
            x = x + self.pos_embedding[: x.size(1)]
            x = self.encoder(x)
            return self.head(x.flatten(1))

    mlp = Graph()
    chain(mlp, node("input", "x", shape=[20]), node("linear", "fc1", out_features=64), node("relu", "relu1"),
          node("linear", "fc2", out_features=32), node("relu", "relu2"), node("linear", "fc3", out_features=3),
          node("output", "out"))

    lenet = Graph()
    chain(lenet, node("input", "image", shape=[1, 32, 32]),
          node("conv2d", "conv1", out_channels=6, kernel_size=[5, 5]), node("relu", "relu1"),
          node("maxpool2d", "pool1", kernel_size=[2, 2]),
          node("conv2d", "conv2", out_channels=16, kernel_size=[5, 5]), node("relu", "relu2"),
          node("maxpool2d", "pool2", kernel_size=[2, 2]), node("flatten", "flatten"),
          node("linear", "fc1", out_features=120), node("relu", "relu3"),
          node("linear", "fc2", out_features=84), node("relu", "relu4"),
          node("linear", "fc3", out_features=10), node("output", "logits"))

    residual = Graph()
    conv = {"out_channels": 8, "kernel_size": [3, 3], "padding": [1, 1]}
    chain(residual, node("input", "x", shape=[8, 6, 6]), node("conv2d", "conv1", **conv),
          node("batchnorm2d", "bn1"), node("relu", "relu1"), node("conv2d", "conv2", **conv),
          node("batchnorm2d", "bn2"), node("add", "add"), node("relu", "relu2"),
          node("adaptive_avgpool2d", "gap", output_size=[1, 1], flatten=True),
          node("linear", "head", out_features=10), node("output", "out"))
    residual.add_edge(Edge("x", "add", "in2"))  # the skip connection

    lstm = Graph()
    chain(lstm, node("input", "x", shape=[8, 8]), node("lstm", "lstm", hidden_size=32, output="last"),
          node("linear", "fc", out_features=10), node("output", "out"))

    transformer = Graph()
    encoder = {"nhead": 4, "dim_feedforward": 64, "dropout": 0.0}
    chain(transformer, node("input", "x", shape=[8, 8]), node("linear", "proj", out_features=32),
          node("positional_encoding", "pos", kind="learned", max_len=16),
          node("transformer_encoder_layer", "enc1", **encoder),
          node("transformer_encoder_layer", "enc2", **encoder),
          node("flatten", "flat"), node("linear", "head", out_features=10), node("output", "out"))

    def transformer_names(reference: Any) -> dict[str, str]:
        layer_keys = list(reference.encoder.layers[0].state_dict())
        names = {"proj.weight": "input_proj.weight", "proj.bias": "input_proj.bias",
                 "pos.position_embedding": "pos_embedding", "head.weight": "head.weight", "head.bias": "head.bias"}
        names.update({f"enc{i + 1}.{key}": f"encoder.layers.{i}.{key}" for i in range(2) for key in layer_keys})
        return names

    return [
        ModelCase("MLP", mlp, MLP, (20,), 3),
        ModelCase("LeNet-5", lenet, LeNet, (1, 32, 32), 10),
        ModelCase("Residual block", residual, ResidualNet, (8, 6, 6), 10),
        ModelCase("LSTM classifier", lstm, LSTMClassifier, (8, 8), 10),
        ModelCase("Transformer classifier", transformer, TransformerClassifier, (8, 8), 10,
                  name_map=transformer_names),
    ]


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
