"""Block rows of bench/canvas_scale.py: an imported ResNet-50 and a definition used 16 times.

Rows (median ms; each repeat timed separately, after a warm-up):

* ``open imported ResNet-50``: ``load_project`` of the saved block project (import-torch of
  tests/zoo's ResNet-50, 8 top-level nodes, 14 definitions, 175 layers) + ``Document`` +
  ``CanvasView`` + show + first paint. Target: < 500 ms.
* ``repaint, fit-all``: a synchronous viewport repaint of that canvas. Target: < 16 ms.
* ``expand layer3 + repaint`` / ``collapse + repaint``: ``Document.set_expanded`` and the canvas
  rebuilt for the graph shown (as the window does on ``level_changed``), then a repaint.
  Target: < 50 ms each.
* ``edit inside a definition used 16 times + re-infer``: a chain of 16 instances of one
  definition of 60 layers (962 layers in all); one parameter of the definition's 4th convolution
  changes, to a value it never had before (so no earlier result can be reused), and
  ``Document.refresh_analysis()`` re-infers. Three rows:

  - ``out_channels`` (the next convolution brings the channels back): the shapes of two layers
    change in every copy, and every copy receives the same tensors. Target: < 5 ms.
  - ``padding`` grows: every layer downstream in every copy changes shape (up to 960 layers
    re-inferred; a layer that receives tensors it received before, with the same parameters,
    reuses that result): the worst case.
  - ``bias`` on/off: no shape changes.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from bench._common import ForeignLoad
from bench.shapes_scale import Row
from engine.graph import Graph
from engine.graph.blocks import BlockDefinition, BlockLibrary, instance_node
from engine.graph.fileformat import load_project
from engine.graph.model import Edge, Node
from engine.graph.project import Project
from gui.canvas.view import CanvasView
from gui.document import Document

OPEN_TARGET_MS = 500.0
EXPAND_TARGET_MS = 50.0
EDIT_TARGET_MS = 5.0
FRAME_TARGET_MS = 16.0
VIEW_SIZE = (1400, 900)


def imported_resnet50(folder: Path) -> Path:
    """import-torch of tests/zoo's ResNet-50 as blocks, saved in ``folder`` (not timed)."""
    from engine.compile.importers import import_torch_module, save_imported

    result = import_torch_module("tests.zoo.resnet:resnet50", {}, (3, 224, 224), flat=False)
    path = folder / "resnet50.json"
    save_imported(result.project, result.weights, path)
    return path


def chain_of_instances(instances: int = 16, depth: int = 30) -> tuple[Project, BlockDefinition]:
    """``instances`` instances in a chain of one definition of ``depth`` conv+relu pairs."""
    d = BlockDefinition("Deep")
    previous = "x"
    d.graph.add_node(Node("x", "input", {"shape": [8, 8, 8]}))
    for i in range(depth):
        for node_id, type_id, params in ((f"conv{i}", "conv2d", {"out_channels": 8, "padding": [1, 1]}),
                                         (f"relu{i}", "relu", {})):
            d.graph.add_node(Node(node_id, type_id, params, (160.0 * len(d.graph), 0.0)))
            d.graph.add_edge(Edge(previous, node_id, "in"))
            previous = node_id
    d.graph.add_node(Node("out", "output"))
    d.graph.add_edge(Edge(previous, "out", "in"))
    g = Graph()
    g.add_node(Node("img", "input", {"shape": [8, 8, 8]}))
    previous = "img"
    for i in range(instances):
        g.add_node(instance_node(f"b{i}", d, position=(0.0, 140.0 * (i + 1))))
        g.add_edge(Edge(previous, f"b{i}", "x"))
        previous = f"b{i}"
    g.add_node(Node("logits", "output", {}, (0.0, 140.0 * (instances + 1))))
    g.add_edge(Edge(previous, "logits", "in"))
    return Project(graph=g, blocks=BlockLibrary([d])), d


def _timed(fn, reps: int, warmup: int) -> tuple[list[float], float]:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    gc.collect()
    monitor = ForeignLoad()
    monitor.start()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times, monitor.stop()


def open_view(app: QApplication, document: Document) -> CanvasView:
    """A shown canvas of ``document`` with its first paint done (what the open rows time)."""
    view = CanvasView()
    view.resize(*VIEW_SIZE)
    view.set_document(document)
    view.show()
    app.processEvents()
    view.viewport().repaint()
    return view


def close_view(app: QApplication, view: CanvasView) -> None:
    """Close a benchmark's view and its document."""
    document = view.document
    view.close()
    view.set_document(None)
    if document is not None:
        document.close()
    view.deleteLater()
    app.processEvents()


def bench_blocks(app: QApplication, args: argparse.Namespace) -> list[Row]:
    """The block rows (see the module docstring)."""
    rows: list[Row] = []
    folder = Path(tempfile.mkdtemp(prefix="nc-blocks-bench-"))
    path = imported_resnet50(folder)
    probe = load_project(path)
    n, m = len(probe.graph), len(probe.graph.edges)
    views: list[CanvasView] = []

    def open_once() -> None:
        views.append(open_view(app, Document(load_project(path))))

    times, load = _timed(open_once, args.open_reps, 1)
    rows.append(Row("resnet50 blocks", n, m, "open imported ResNet-50 (load + Document + view + paint)", times,
                    load, OPEN_TARGET_MS))
    for view in views[:-1]:
        close_view(app, view)
    view = views[-1]
    document = view.document
    assert document is not None and document.model_analysis.valid
    view.fit_all()
    app.processEvents()
    times, load = _timed(view.viewport().repaint, args.reps, args.warmup)
    rows.append(Row("resnet50 blocks", n, m, "repaint, fit-all", times, load, FRAME_TARGET_MS))

    # as the window does (BlockController.on_level_changed): the canvas shows the expanded graph
    document.level_changed.connect(lambda _level: view.set_document(document))
    expand_times, collapse_times = [], []
    monitor = ForeignLoad()
    monitor.start()
    for rep in range(args.reps + 1):
        for ids, into in ((["layer3"], expand_times), ([], collapse_times)):
            start = time.perf_counter()
            document.set_expanded(ids)
            app.processEvents()
            view.viewport().repaint()
            if rep:  # the first round warms up
                into.append((time.perf_counter() - start) * 1e3)
    load = monitor.stop()
    assert document.expanded is None and "layer3" in view.canvas_scene().nodes
    rows.append(Row("resnet50 blocks", n, m, "expand layer3 (6 bottlenecks) + repaint", expand_times, load,
                    EXPAND_TARGET_MS))
    rows.append(Row("resnet50 blocks", n, m, "collapse + repaint", collapse_times, load, EXPAND_TARGET_MS))
    close_view(app, view)

    project, definition = chain_of_instances()
    document = Document(project)
    layers = len(document.block_result.flat.graph)
    edges = len(document.block_result.flat.graph.edges)
    fresh = {"out_channels": iter(range(9, 10_000)), "padding": iter(range(2, 10_000))}

    def edit(name: str) -> None:
        value = next(fresh[name]) if name in fresh else not definition.graph.nodes["conv3"].params[name]
        definition.graph.set_param("conv3", name, [value, value] if name == "padding" else value)
        document.refresh_analysis()

    for name, what, target in (
            ("out_channels", "two layers per copy change shape, every copy receives the same tensors",
             EDIT_TARGET_MS),
            ("padding", "every layer downstream in every copy changes shape (worst case)", None),
            ("bias", "no shape changes", EDIT_TARGET_MS)):
        times, load = _timed(lambda name=name: edit(name), args.reps, args.warmup)
        assert document.model_analysis.valid, name
        rows.append(Row("16 instances", layers, edges, f"edit inside a definition used 16 times + re-infer: {what}",
                        times, load, target))
    document.close()
    return rows
