"""Shape inference at scale: generated graphs of 100, 1,000 and 5,000 nodes.

Graphs (all valid, every node leads to the Output):

* ``dense``: Input(64) -> feed-forward blocks ``Linear(128) -> ReLU -> Dropout -> Linear(64)
  -> LayerNorm``, a residual Add around every 3 blocks, and every 5th block a Concatenate
  of two Linear(32) branches; head ``Linear(10) -> Output``.
* ``conv``: Input(3x32x32) -> stem Conv -> residual blocks ``Conv(16, 3x3, pad 1) -> BN ->
  ReLU -> Conv(16) -> BN -> Add(skip) -> ReLU``, every 4th block a Concatenate of two
  1x1 Conv(8) branches; head ``GlobalAvgPool -> Linear(10) -> Output``.

Rows per graph (median ms over repeats; each repeat is timed separately):

* ``build``: create the graph with ``add_node``/``add_edge`` (explicit ids, as a loader).
* ``dumps`` / ``loads``: ``engine.graph.fileformat`` save to / load from the JSON text.
* ``full analyze``: ``analyze(graph)`` from scratch plus ``.valid`` (shape inference and
  validation). Target at 1,000 nodes: < 50 ms.
* ``incremental, <edit>``: a ``ShapeInference`` built and analysed once; then repeatedly
  ``graph.set_param`` on one node in the middle of the graph (alternating two values) and
  ``analyze()``; the time covers both. Target at 1,000 nodes: < 5 ms. Edits:
  ``dropout p`` (no shape changes), ``linear hidden width`` / ``conv width`` (the next
  layers' shapes and the following Linear/Conv's parameter count change; nothing after),
  ``nothing changed`` (``analyze()`` with no edit: the floor), and, for information,
  ``break shapes`` (an edit before a residual Add makes it an error, so every node after
  it is re-inferred).

The incremental result is checked against a fresh ``analyze`` after the edits.

Usage::

    python bench/shapes_scale.py            # about a minute
    python bench/shapes_scale.py --quick    # a few seconds
    python bench/shapes_scale.py --profile  # also cProfile the rows that miss their target

Writes bench/results/shapes_scale.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (ForeignLoad, describe_machine, format_table, machine_info, median,  # noqa: E402
                           quartiles, write_results)
from engine.graph import Edge, Graph, Node, Project  # noqa: E402
from engine.graph.fileformat import dumps, loads  # noqa: E402
from engine.shapes import ShapeInference, analyze  # noqa: E402

FULL_TARGET_MS = 50.0
INCREMENTAL_TARGET_MS = 5.0
TARGET_NODES = 1000


# ------------------------------------------------------------- generation
@dataclass
class Edit:
    """A parameter edit alternating between two values."""

    label: str
    node_id: str
    param: str
    values: tuple[Any, Any]
    target: bool = True  # whether the incremental target applies


@dataclass
class Generated:
    nodes: list[Node]
    edges: list[Edge]
    edits: list[Edit] = field(default_factory=list)

    def build(self) -> Graph:
        graph = Graph()
        for n in self.nodes:
            graph.add_node(Node(n.id, n.type_id, dict(n.params), n.position))
        for e in self.edges:
            graph.add_edge(Edge(e.source, e.target, e.target_port))
        return graph


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.counts: dict[str, int] = {}
        self.column = 0

    def add(self, type_id: str, *sources: str, **params: Any) -> str:
        prefix = {"linear": "fc", "dropout": "drop", "layernorm": "ln", "conv2d": "conv",
                  "batchnorm2d": "bn", "concat": "cat"}.get(type_id, type_id)
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        node_id = f"{prefix}{self.counts[prefix]}"
        index = len(self.nodes)
        self.nodes.append(Node(node_id, type_id, params, (240.0 * (index // 12), 90.0 * (index % 12))))
        ports = ("in",) if len(sources) == 1 else tuple(f"in{i + 1}" for i in range(len(sources)))
        for source, port in zip(sources, ports):
            self.edges.append(Edge(source, node_id, port))
        return node_id


def generate_dense(n_nodes: int) -> Generated:
    """The ``dense`` graph with exactly ``n_nodes`` nodes (at least 12)."""
    b = _Builder()
    cur = b.add("input", shape=[64])
    head = 2  # Linear(10) + Output
    group_start = cur
    block = 0
    blocks: list[dict[str, str]] = []
    while True:
        left = n_nodes - len(b.nodes) - head
        size = 5 + (block % 3 == 2) + (3 if block % 5 == 4 else 0)
        if left < size:
            break
        start = cur
        ids = {"fc_hidden": b.add("linear", cur, out_features=128)}
        ids["relu"] = b.add("relu", ids["fc_hidden"])
        ids["dropout"] = b.add("dropout", ids["relu"], p=0.1)
        ids["fc_out"] = b.add("linear", ids["dropout"], out_features=64)
        cur = b.add("layernorm", ids["fc_out"])
        if block % 5 == 4:  # a two-branch Concatenate: 32 + 32 features
            left_branch = b.add("linear", cur, out_features=32)
            right_branch = b.add("linear", cur, out_features=32)
            cur = b.add("concat", left_branch, right_branch, dim=1)
        if block % 3 == 2:  # residual skip around the last 3 blocks
            ids["add"] = cur = b.add("add", group_start, cur)
            group_start = cur
        ids["start"] = start
        blocks.append(ids)
        block += 1
    while len(b.nodes) < n_nodes - head:  # pad to the exact size
        cur = b.add("dropout", cur, p=0.0)
    cur = b.add("linear", cur, out_features=10)
    b.add("output", cur)
    mid = blocks[len(blocks) // 2]
    before_add = next(ids for ids in blocks[len(blocks) // 2:] if "add" in ids and ids["fc_out"] != ids["add"])
    edits = [
        Edit("dropout p", mid["dropout"], "p", (0.1, 0.2)),
        Edit("linear hidden width", mid["fc_hidden"], "out_features", (128, 96)),
        Edit("break shapes (info)", before_add["fc_out"], "out_features", (64, 63), target=False),
    ]
    return Generated(b.nodes, b.edges, edits)


def generate_conv(n_nodes: int) -> Generated:
    """The ``conv`` graph with exactly ``n_nodes`` nodes (at least 16)."""
    b = _Builder()
    conv = {"out_channels": 16, "kernel_size": [3, 3], "padding": [1, 1]}
    cur = b.add("conv2d", b.add("input", shape=[3, 32, 32]), **conv)
    head = 3  # pool + Linear(10) + Output
    block = 0
    blocks: list[dict[str, str]] = []
    while True:
        left = n_nodes - len(b.nodes) - head
        size = 7 + (3 if block % 4 == 3 else 0)
        if left < size:
            break
        ids = {"conv1": b.add("conv2d", cur, **conv)}
        ids["bn1"] = b.add("batchnorm2d", ids["conv1"])
        relu = b.add("relu", ids["bn1"])
        ids["conv2"] = b.add("conv2d", relu, **conv)
        bn2 = b.add("batchnorm2d", ids["conv2"])
        cur = b.add("relu", b.add("add", cur, bn2))
        if block % 4 == 3:  # Inception-like pair of 1x1 branches: 8 + 8 channels
            left_branch = b.add("conv2d", cur, out_channels=8, kernel_size=[1, 1])
            right_branch = b.add("conv2d", cur, out_channels=8, kernel_size=[1, 1])
            cur = b.add("concat", left_branch, right_branch, dim=1)
        blocks.append(ids)
        block += 1
    while len(b.nodes) < n_nodes - head:
        cur = b.add("identity", cur)
    cur = b.add("adaptive_avgpool2d", cur, output_size=[1, 1], flatten=True)
    cur = b.add("linear", cur, out_features=10)
    b.add("output", cur)
    mid = blocks[len(blocks) // 2]
    edits = [
        Edit("batchnorm momentum", mid["bn1"], "momentum", (0.1, 0.2)),
        Edit("conv width", mid["conv1"], "out_channels", (16, 24)),
        Edit("break shapes (info)", mid["conv2"], "out_channels", (16, 12), target=False),
    ]
    return Generated(b.nodes, b.edges, edits)


GENERATORS: dict[str, Callable[[int], Generated]] = {"dense": generate_dense, "conv": generate_conv}


# ---------------------------------------------------------------- timing
@dataclass
class Row:
    graph: str
    nodes: int
    edges: int
    what: str
    times_ms: list[float]
    foreign_load: float
    target_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return median(self.times_ms)

    @property
    def status(self) -> str:
        if self.target_ms is None:
            return "info"
        return "PASS" if self.median_ms < self.target_ms else "MISS"


def repeat(fn: Callable[[], Any], budget_s: float, min_reps: int, max_reps: int,
           setup: Callable[[], Any] | None = None) -> tuple[list[float], float]:
    """Time ``fn`` repeatedly (each call separately, in ms) within ``budget_s``; also the foreign load."""
    times = []
    monitor = ForeignLoad()
    monitor.start()
    end = time.perf_counter() + budget_s
    while len(times) < min_reps or (len(times) < max_reps and time.perf_counter() < end):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times, monitor.stop()


def bench_graph(kind: str, n_nodes: int, args: argparse.Namespace) -> tuple[list[Row], dict[str, Callable[[], Any]]]:
    gen = GENERATORS[kind](n_nodes)
    graph = gen.build()
    n, m = len(graph), len(graph.edges)
    assert n == n_nodes, (kind, n, n_nodes)
    budget = args.budget
    reps_full = (3, 50) if n_nodes >= 5000 else (5, 200)
    rows: list[Row] = []
    workloads: dict[str, Callable[[], Any]] = {}

    def add_row(what: str, fn: Callable[[], Any], target: float | None = None, reps: tuple[int, int] = reps_full,
                setup: Callable[[], Any] | None = None) -> None:
        gc.collect()
        times, load = repeat(fn, budget, *reps, setup=setup)
        rows.append(Row(kind, n, m, what, times, load, target))
        workloads[what] = fn

    add_row("build (add_node/add_edge)", gen.build)
    text = dumps(Project(graph=graph))
    add_row("dumps (save to JSON text)", lambda: dumps(Project(graph=graph)))
    add_row("loads (load from JSON text)", lambda: loads(text))
    loaded = loads(text).graph
    assert len(loaded) == n and len(loaded.edges) == m

    def full() -> bool:
        return analyze(graph).valid

    reference = analyze(graph)
    assert reference.valid, [d.format(graph) for d in reference.errors][:5]
    assert not reference.diagnostics, [d.format(graph) for d in reference.diagnostics][:5]
    add_row("full analyze + valid", full, FULL_TARGET_MS if n_nodes == TARGET_NODES else None)

    inference = ShapeInference(graph)
    inference.analyze()
    add_row("incremental, nothing changed", inference.analyze, reps=(20, 2000))
    for edit in gen.edits:
        state = {"i": 0}

        def step(edit: Edit = edit, state: dict[str, int] = state) -> Any:
            state["i"] += 1
            graph.set_param(edit.node_id, edit.param, edit.values[state["i"] % 2])
            return inference.analyze()

        target = INCREMENTAL_TARGET_MS if (edit.target and n_nodes == TARGET_NODES) else None
        add_row(f"incremental, {edit.label}", step, target, reps=(20, 2000))
        graph.set_param(edit.node_id, edit.param, edit.values[0])
        inference.analyze()
        workloads[f"incremental, {edit.label}"] = step
    # The incremental state must agree with a fresh analysis.
    incremental = inference.analyze()
    fresh = analyze(graph)
    assert incremental.nodes == fresh.nodes and incremental.valid, kind
    return rows, workloads


def profile(fn: Callable[[], Any], seconds: float, lines: int) -> str:
    """cProfile ``fn`` called repeatedly for about ``seconds``; the top functions by own time."""
    profiler = cProfile.Profile()
    calls = 0
    end = time.perf_counter() + seconds
    profiler.enable()
    while calls < 3 or time.perf_counter() < end:
        fn()
        calls += 1
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{calls} calls profiled\n")
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--sizes", default="100,1000,5000", help="node counts (default 100,1000,5000)")
    parser.add_argument("--graphs", default="dense,conv", help="generated graph kinds (default dense,conv)")
    parser.add_argument("--budget", type=float, help="seconds of repeats per row (default 1.5, quick 0.2)")
    parser.add_argument("--profile", action="store_true", help="cProfile every row that misses its target")
    parser.add_argument("--profile-rows", help="also profile rows whose name contains this text (e.g. 'full')")
    parser.add_argument("--json", help="result file (default bench/results/shapes_scale.json)")
    args = parser.parse_args(argv)
    args.budget = args.budget or (0.2 if args.quick else 1.5)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.graphs.split(",")]

    info = machine_info()
    print(f"# shapes_scale: {describe_machine(info)}")
    started = time.perf_counter()
    rows: list[Row] = []
    profiles: dict[str, str] = {}
    for kind in kinds:
        for size in sizes:
            graph_rows, workloads = bench_graph(kind, size, args)
            rows.extend(graph_rows)
            for row in graph_rows:
                print(f"  {kind} {size}: {row.what}: {row.median_ms:.3f} ms", flush=True)
                wanted = (args.profile and row.status == "MISS") or (
                    args.profile_rows and args.profile_rows in row.what)
                if wanted:
                    key = f"{kind} {size} nodes: {row.what}"
                    profiles[key] = profile(workloads[row.what], 3.0, 25)
    total = time.perf_counter() - started

    table = []
    for r in rows:
        lo, hi = quartiles(r.times_ms)
        table.append((r.graph, f"{r.nodes:,}", f"{r.edges:,}", r.what, f"{r.median_ms:.3f}", f"{lo:.3f}-{hi:.3f}",
                      len(r.times_ms), f"< {r.target_ms:g} ms" if r.target_ms else "-", r.status,
                      f"{r.foreign_load:.2f}"))
    print()
    print(format_table(("graph", "nodes", "edges", "measurement", "median ms", "IQR ms", "runs", "target", "result",
                        "foreign CPU"), table))
    print(f"\ntotal {total:.0f} s; 'foreign CPU': cores other processes used meanwhile "
          "(this benchmark is single-threaded; on 2 cores it is mostly unaffected below 1.0)")
    for key, text in profiles.items():
        print(f"\n===== profile: {key}\n{text}")
    path = write_results("shapes_scale", {
        "benchmark": "shapes_scale",
        "command": " ".join(["python", "bench/shapes_scale.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "targets": {"full_analyze_ms_at_1000": FULL_TARGET_MS, "incremental_ms_at_1000": INCREMENTAL_TARGET_MS},
        "total_seconds": total,
        "rows": [{"graph": r.graph, "nodes": r.nodes, "edges": r.edges, "measurement": r.what,
                  "median_ms": r.median_ms, "quartiles_ms": quartiles(r.times_ms), "min_ms": min(r.times_ms),
                  "runs": len(r.times_ms), "target_ms": r.target_ms, "result": r.status,
                  "foreign_load": r.foreign_load} for r in rows],
        "profiles": profiles,
    }, args.json)
    print(f"wrote {path}")
    return 0 if all(r.status != "MISS" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
