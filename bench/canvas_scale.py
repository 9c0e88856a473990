"""Canvas at scale: open, repaint and move-a-node times of a CanvasView on generated graphs.

Uses the ``dense`` / ``conv`` graph generators of bench/shapes_scale.py (all valid graphs)
at 100, 1,000 and 5,000 nodes, on Qt's offscreen platform, in a 1400x900 CanvasView.

Rows per graph (median ms; each repeat timed separately):

* ``open``: from a built ``Project`` to a shown view with its first paint done:
  ``Document(project)`` + ``CanvasView`` + ``set_document`` + ``show()`` +
  ``processEvents()`` + ``viewport().repaint()``. Target at 1,000 nodes: < 1 s.
* ``repaint, fit-all`` / ``repaint, 100%``: ``viewport().repaint()`` (synchronous paint)
  after ``fit_all()``, and after ``zoom_reset()`` centred on the graph; after a warm-up.
  Target at 1,000 nodes: < 16 ms.
* ``move 1 node + re-infer + repaint``: push ``commands.move_nodes`` for one node in the
  middle (alternating two positions), ``document.refresh_analysis()`` and a viewport
  repaint, at 100% centred on that node. Target at 1,000 nodes: < 16 ms.

The block rows (an imported ResNet-50, a definition used 16 times) are described in
bench/block_rows.py.

Usage::

    python bench/canvas_scale.py            # about a minute
    python bench/canvas_scale.py --quick    # fewer repeats

Writes bench/results/canvas_scale.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from bench._common import (ForeignLoad, describe_machine, format_table, machine_info, quartiles,  # noqa: E402
                           write_results)
from bench.block_rows import bench_blocks, close_view, open_view  # noqa: E402
from bench.shapes_scale import GENERATORS, Row  # noqa: E402
from engine.graph import Project  # noqa: E402
from gui import commands  # noqa: E402
from gui.canvas.view import CanvasView  # noqa: E402
from gui.document import Document  # noqa: E402

OPEN_TARGET_MS = 1000.0
FRAME_TARGET_MS = 16.0
TARGET_NODES = 1000
VIEW_SIZE = (1400, 900)


def timed(fn: Callable[[], Any], reps: int, warmup: int = 0) -> tuple[list[float], float]:
    """Time ``fn`` ``reps`` times (ms each) after ``warmup`` untimed calls; also the foreign load."""
    for _ in range(warmup):
        fn()
    times = []
    monitor = ForeignLoad()
    monitor.start()
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times, monitor.stop()


def bench_graph(app: QApplication, kind: str, n_nodes: int, args: argparse.Namespace) -> list[Row]:
    gen = GENERATORS[kind](n_nodes)
    probe = gen.build()
    n, m = len(probe), len(probe.edges)
    at_target = n_nodes == TARGET_NODES
    rows: list[Row] = []

    # ---- open: a fresh Project each time (the document takes ownership)
    views: list[CanvasView] = []
    open_times = []
    monitor = ForeignLoad()
    monitor.start()
    for _ in range(args.open_reps):
        project = Project(graph=gen.build())
        gc.collect()
        start = time.perf_counter()
        view = open_view(app, Document(project))
        open_times.append((time.perf_counter() - start) * 1e3)
        views.append(view)
        # keep the last view; close the others
        if len(views) > 1:
            close_view(app, views.pop(0))
    rows.append(Row(kind, n, m, "open (Document + view + first paint)", open_times, monitor.stop(),
                    OPEN_TARGET_MS if at_target else None))

    view = views[0]
    document = view.document
    assert document is not None and document.analysis.valid, kind
    app.processEvents()
    repaint = view.viewport().repaint

    # ---- full repaint at fit-all and at 100% centred on the graph
    view.fit_all()
    app.processEvents()
    fit_zoom = view.zoom_factor()
    gc.collect()
    times, load = timed(repaint, args.reps, warmup=args.warmup)
    rows.append(Row(kind, n, m, f"repaint, fit-all ({fit_zoom:.0%})", times, load,
                    FRAME_TARGET_MS if at_target else None))

    view.zoom_reset()
    view.centerOn(view.content_rect().center())
    app.processEvents()
    gc.collect()
    times, load = timed(repaint, args.reps, warmup=args.warmup)
    rows.append(Row(kind, n, m, "repaint, 100%", times, load, FRAME_TARGET_MS if at_target else None))

    # ---- move one node in the middle + live re-inference + repaint (at 100%, centred on it)
    graph = document.graph
    node_id = gen.nodes[len(gen.nodes) // 2].id
    x, y = graph.nodes[node_id].position
    positions = [(x, y), (x + 40.0, y + 20.0)]
    view.centerOn(x, y)
    app.processEvents()
    state = {"i": 0}

    def move() -> None:
        old = positions[state["i"] % 2]
        state["i"] += 1
        new = positions[state["i"] % 2]
        document.push(commands.move_nodes(graph, {node_id: old}, {node_id: new}))
        document.refresh_analysis()
        repaint()

    gc.collect()
    times, load = timed(move, args.reps, warmup=args.warmup)
    assert graph.nodes[node_id].position in positions and document.analysis.valid
    rows.append(Row(kind, n, m, "move 1 node + re-infer + repaint", times, load,
                    FRAME_TARGET_MS if at_target else None))

    close_view(app, view)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--sizes", default="100,1000,5000", help="node counts (default 100,1000,5000)")
    parser.add_argument("--graphs", default="dense,conv,blocks",
                        help="generated graph kinds, and blocks (bench/block_rows.py) (default dense,conv,blocks)")
    parser.add_argument("--json", help="result file (default bench/results/canvas_scale.json)")
    args = parser.parse_args(argv)
    args.open_reps = 3 if args.quick else 5
    args.reps = 10 if args.quick else 30
    args.warmup = 2 if args.quick else 5
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.graphs.split(",")]

    app = QApplication.instance() or QApplication([sys.argv[0]])
    info = machine_info()
    info["qt_platform"] = app.platformName()
    try:
        import PySide6

        info["pyside6"] = PySide6.__version__
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    print(f"# canvas_scale: {describe_machine(info)}, Qt platform {info['qt_platform']}")
    started = time.perf_counter()
    rows: list[Row] = []
    for kind in kinds:
        if kind == "blocks":
            block_rows = bench_blocks(app, args)
            rows.extend(block_rows)
            for row in block_rows:
                print(f"  {row.graph}: {row.what}: {row.median_ms:.2f} ms", flush=True)
            continue
        for size in sizes:
            graph_rows = bench_graph(app, kind, size, args)
            rows.extend(graph_rows)
            for row in graph_rows:
                print(f"  {kind} {size}: {row.what}: {row.median_ms:.2f} ms", flush=True)
    total = time.perf_counter() - started

    table = []
    for r in rows:
        lo, hi = quartiles(r.times_ms)
        table.append((r.graph, f"{r.nodes:,}", f"{r.edges:,}", r.what, f"{r.median_ms:.2f}", f"{lo:.2f}-{hi:.2f}",
                      len(r.times_ms), f"< {r.target_ms:g} ms" if r.target_ms else "-", r.status,
                      f"{r.foreign_load:.2f}"))
    print()
    print(format_table(("graph", "nodes", "edges", "measurement", "median ms", "IQR ms", "runs", "target", "result",
                        "foreign CPU"), table))
    print(f"\ntotal {total:.0f} s")
    path = write_results("canvas_scale", {
        "benchmark": "canvas_scale",
        "command": " ".join(["python", "bench/canvas_scale.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "view_size": list(VIEW_SIZE),
        "targets": {"open_ms_at_1000": OPEN_TARGET_MS, "frame_ms_at_1000": FRAME_TARGET_MS},
        "total_seconds": total,
        "rows": [{"graph": r.graph, "nodes": r.nodes, "edges": r.edges, "measurement": r.what,
                  "median_ms": r.median_ms, "quartiles_ms": quartiles(r.times_ms), "min_ms": min(r.times_ms),
                  "runs": len(r.times_ms), "target_ms": r.target_ms, "result": r.status,
                  "foreign_load": r.foreign_load} for r in rows],
    }, args.json)
    print(f"wrote {path}")
    return 0 if all(r.status != "MISS" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
