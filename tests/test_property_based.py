"""Property-based tests of the engine's promises under arbitrary input.

* Shape inference never raises, for any document: random layer types, random wiring (cycles
  and self-loops included) and random parameter values of the right kind.
* Incremental inference after any sequence of edits equals a fresh analysis.
* A graph the analysis calls valid compiles, and its forward pass has the inferred shapes.
* The file loader never crashes on corrupt input: it returns a project or raises
  :class:`ProjectFileError` with one line that names the file.
* Invalid but well-formed documents save and reopen with the same diagnostics.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import networkx as nx
import pytest
import torch
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from engine.compile import GraphInvalidError, compile_graph
from engine.graph import Edge, Graph, GraphError, Node, Project
from engine.graph.model import OUT
from engine.graph.fileformat import ProjectFileError, dumps, load_project, loads, save_project
from engine.layers import LayerType, Param, all_layers
from engine.layers.params import INT_LIMIT
from engine.shapes import Analysis, ShapeInference, analyze
from tests.graph_builders import chain, connect, describe, node

# When a property fails, hypothesis's pytest plugin imports libcst (to suggest a patch), which
# warns through mypy_extensions; with warnings as errors that hides the failure behind an
# INTERNALERROR. Import it once here with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # pragma: no cover - libcst not installed
        pass

LAYERS = all_layers()
INPUT_LAYERS = [layer for layer in LAYERS if layer.role == "input"]
HIDDEN_LAYERS = [layer for layer in LAYERS if layer.role == "layer"]

#: Multiplies every example budget; e.g. ``NEURAL_CANVAS_FUZZ_SCALE=20`` for a long local fuzzing run.
FUZZ_SCALE = float(os.environ.get("NEURAL_CANVAS_FUZZ_SCALE", "1"))


def fast(examples: int) -> settings:
    """Settings for a property: ``examples`` runs (times FUZZ_SCALE), no deadline (first torch calls are slow)."""
    return settings(max_examples=max(1, round(examples * FUZZ_SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


#: Edge cases for integers: zero, signs, the clamping limit and beyond it.
SPECIAL_INTS = [0, -1, 1, 2, -2, 7, 2**31, -(2**31), INT_LIMIT - 1, INT_LIMIT, -INT_LIMIT, INT_LIMIT + 1,
                2**63, -(2**70), 10**30]


# ============================================================ value strategies
def _in_range_ints(decl: Param, span: int = 8) -> st.SearchStrategy[int]:
    lo = int(decl.min) if decl.min is not None else -span
    hi = int(decl.max) if decl.max is not None else lo + span
    return st.integers(lo, max(lo, min(hi, lo + span)))


def wide_ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-10, 10), st.integers(-(2**62), 2**62), st.sampled_from(SPECIAL_INTS))


def param_values(decl: Param) -> st.SearchStrategy[Any]:
    """Values of the right kind for ``decl``: in bounds, out of bounds, absurd, edge cases."""
    kind = decl.kind
    if kind == "int":
        return st.one_of(_in_range_ints(decl), _in_range_ints(decl, 64), wide_ints())
    if kind == "float":
        lo = decl.min if decl.min is not None else -10.0
        hi = decl.max if decl.max is not None else 10.0
        return st.one_of(st.floats(lo, hi), st.floats(allow_nan=False, allow_infinity=False),
                         st.integers(-3, 3), st.sampled_from([0.0, -0.0, -1.0, 1e-300, 5e-324, 1e300]))
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.one_of(st.sampled_from(decl.choices), st.sampled_from(decl.choices),
                         st.text(max_size=6), st.sampled_from(["", "NONE", decl.choices[0].upper()]))
    elements = st.one_of(_in_range_ints(decl, 6), st.sampled_from([-1, 0, -1, 0, 1]), wide_ints())
    lists = st.lists(elements, min_size=0, max_size=10)
    if kind == "int_tuple":
        return st.one_of(lists.map(tuple), lists, st.lists(_in_range_ints(decl, 4), min_size=decl.length or 1,
                                                          max_size=decl.length or 1).map(tuple), elements)
    return st.one_of(lists.map(tuple), lists, st.lists(_in_range_ints(decl, 6), min_size=1, max_size=4))


@st.composite
def param_dicts(draw: st.DrawFn, layer: LayerType) -> dict[str, Any]:
    """Some of ``layer``'s parameters with random values (the rest stay default)."""
    values = {}
    for decl in layer.params:
        if draw(st.booleans()):
            values[decl.name] = draw(param_values(decl))
    return values


# ============================================================ graph strategies
COORDINATES = st.one_of(st.floats(-1e9, 1e9), st.integers(-10**9, 10**9))


@st.composite
def random_graphs(draw: st.DrawFn, max_nodes: int = 8, max_edges: int = 16) -> Graph:
    """Random layer types, random values, random wiring (cycles and self-loops included)."""
    graph = Graph()
    count = draw(st.integers(1, max_nodes))
    for index in range(count):
        pool = INPUT_LAYERS if index == 0 and draw(st.integers(0, 3)) else LAYERS
        layer = draw(st.sampled_from(pool))
        position = draw(st.one_of(st.just((0.0, 0.0)), st.tuples(COORDINATES, COORDINATES)))
        graph.add_node(Node(f"n{index}", layer.type_id, draw(param_dicts(layer)), position))
    for _ in range(draw(st.integers(0, max_edges))):
        try_add_random_edge(draw, graph)
    return graph


def _output_port(draw: st.DrawFn, graph: Graph, node_id: str) -> str:
    """One of the node's output ports (``out`` for most layers, ``out1``... for a Chunk)."""
    ports = graph.nodes[node_id].output_ports()
    return draw(st.sampled_from(ports)) if ports else OUT


def try_add_random_edge(draw: st.DrawFn, graph: Graph, forward_bias: bool = True) -> Edge | None:
    """Connect two random nodes (mostly earlier to later) unless that is structurally impossible."""
    ids = list(graph.nodes)
    if not ids:
        return None
    source = draw(st.sampled_from(ids))
    if forward_bias and draw(st.integers(0, 3)):
        later = ids[ids.index(source):]
        target = draw(st.sampled_from(later))
    else:
        target = draw(st.sampled_from(ids))  # anything: backwards, self-loops
    ports = graph.nodes[target].input_ports()
    port = draw(st.sampled_from(ports)) if ports else "in"
    source_port = _output_port(draw, graph, source)
    if graph.connection_problem(source, target, port, source_port) is not None:
        return None
    edge = Edge(source, target, port, source_port)
    graph.add_edge(edge)
    return edge


# ================================================================ invariants
def _event(text: str) -> None:
    """Count an outcome in hypothesis statistics (a no-op in plain tests)."""
    if currently_in_test_context():
        event(text)


def check_analysis(graph: Graph, analysis: Analysis) -> None:
    """What any analysis of any graph must satisfy."""
    assert set(analysis.nodes) == set(graph.nodes)
    assert set(analysis.order) <= set(graph.nodes)
    assert analysis.in_model <= set(graph.nodes)
    for diagnostic in analysis.diagnostics:
        assert diagnostic.severity in ("error", "warning"), diagnostic
        assert diagnostic.node is None or diagnostic.node in graph.nodes, diagnostic
        assert isinstance(diagnostic.message, str) and diagnostic.message.strip(), diagnostic
        assert "please report this" not in diagnostic.message, f"a layer rule raised: {diagnostic}"
        if diagnostic.field is not None:
            assert diagnostic.node is not None
            graph.nodes[diagnostic.node].layer.param(diagnostic.field)  # a declared parameter
        assert len(diagnostic.format(graph).splitlines()) == 1, diagnostic
    for node_id, info in analysis.nodes.items():
        layer = graph.nodes[node_id].layer
        if info.output is not None:
            assert layer.role != "output"
            assert all(isinstance(d, int) and d > 0 for d in info.output.dims), (node_id, info.output)
            assert info.output.dtype in ("float", "long")
        assert info.parameters >= 0 and info.flops >= 0
    assert analysis.valid == (not analysis.errors)
    assert analysis.parameters >= 0


def assert_same_analysis(incremental: Analysis, fresh: Analysis) -> None:
    """Incremental results equal a fresh analysis: per node and in order."""
    for node_id in fresh.nodes:
        assert incremental.nodes.get(node_id) == fresh.nodes[node_id], node_id
    assert list(incremental.nodes) == list(fresh.nodes)
    assert incremental.graph_diagnostics == fresh.graph_diagnostics
    assert incremental.in_model == fresh.in_model
    assert incremental.order == fresh.order
    assert incremental.diagnostics == fresh.diagnostics
    assert incremental.valid == fresh.valid
    assert incremental.parameters == fresh.parameters


# ======================================================== analysis never raises
@fast(300)
@given(random_graphs())
def test_analyze_never_raises_on_random_graphs(graph: Graph) -> None:
    analysis = analyze(graph)
    check_analysis(graph, analysis)
    event(f"valid={analysis.valid}")


# ======================================================== incremental inference
@st.composite
def edits(draw: st.DrawFn, graph: Graph, cycles: int = 1) -> str:
    """Apply one random edit to ``graph``; return a description for the failure report.

    Args:
        cycles: Weight of the edit that closes a loop on purpose (out of 10 + ``cycles``).
    """
    ids = list(graph.nodes)
    action = draw(st.sampled_from(["set_param"] * 4 + ["add_edge"] * 3 + ["remove_edge"] * 2 +
                                  ["add_node", "remove_node", "undo_remove", "move"] + ["cycle"] * cycles))
    if action == "set_param" and ids:
        node_id = draw(st.sampled_from(ids))
        layer = graph.nodes[node_id].layer
        if not layer.params:
            return "set_param on a node without parameters"
        decl = draw(st.sampled_from(layer.params))
        value = draw(param_values(decl))
        changed = {**graph.nodes[node_id].params, decl.name: decl.coerce(value)}
        ports, outputs = layer.input_ports(changed), layer.output_ports(changed)
        orphaned = [e for e in graph.incoming(node_id).values() if e.target_port not in ports]
        orphaned += [e for e in graph.outgoing(node_id) if e.source_port not in outputs]
        if orphaned and draw(st.booleans()):
            # a value that would leave edges on vanished ports is refused, and changes nothing
            before = dict(graph.nodes[node_id].params)
            with pytest.raises(GraphError, match="disconnect them first"):
                graph.set_param(node_id, decl.name, value)
            assert graph.nodes[node_id].params == before
            return f"set_param({node_id!r}, {decl.name!r}, {value!r}) refused: {orphaned}"
        for edge in orphaned:  # as the GUI does: disconnect them in the same step
            graph.remove_edge(edge)
        graph.set_param(node_id, decl.name, value)  # right kind: never refused
        return f"set_param({node_id!r}, {decl.name!r}, {value!r}) after removing {orphaned}"
    if action == "undo_remove" and ids:
        # delete a node with its edges, then undo: the same objects go back in
        node_id = draw(st.sampled_from(ids))
        edges = graph.edges_of(node_id)
        for edge in edges:
            graph.remove_edge(edge)
        removed = graph.remove_node(node_id)
        graph.add_node(removed)
        for edge in edges:
            graph.add_edge(edge)
        return f"remove and restore {node_id!r} with {len(edges)} edge(s)"
    if action == "move" and ids:
        node_id = draw(st.sampled_from(ids))
        graph.move_nodes({node_id: (draw(COORDINATES), draw(COORDINATES))})
        return f"move {node_id!r}"
    if action == "add_edge":
        edge = try_add_random_edge(draw, graph, forward_bias=False)
        return f"add_edge({edge})"
    if action == "cycle":
        # close a loop on purpose: from a node into one of its ancestors (or itself)
        sources = [i for i in ids if graph.nodes[i].layer.has_output]
        if not sources:
            return "cycle: no node with an output"
        source = draw(st.sampled_from(sources))
        upstream = sorted(nx.ancestors(graph.nx_graph(), source) | {source})
        targets = [i for i in upstream if graph.nodes[i].input_ports()]
        if not targets:
            return "cycle: no ancestor with an input"
        target = draw(st.sampled_from(targets))
        port = draw(st.sampled_from(graph.nodes[target].input_ports()))
        existing = graph.edge_into(target, port)
        if existing is not None:
            graph.remove_edge(existing)
        graph.add_edge(Edge(source, target, port, _output_port(draw, graph, source)))
        return f"cycle edge {source} -> {target}.{port} (replacing {existing})"
    if action == "remove_edge" and graph.edges:
        edge = draw(st.sampled_from(graph.edges))
        graph.remove_edge(edge)
        return f"remove_edge({edge})"
    if action == "add_node":
        layer = draw(st.sampled_from(LAYERS))
        node_id = graph.new_id("m")
        graph.add_node(Node(node_id, layer.type_id, draw(param_dicts(layer))))
        return f"add_node({node_id!r}, {layer.type_id!r})"
    if action == "remove_node" and ids:
        node_id = draw(st.sampled_from(ids))
        for edge in graph.edges_of(node_id):
            graph.remove_edge(edge)
        graph.remove_node(node_id)
        return f"remove_node({node_id!r})"
    return f"{action}: nothing to do"


@fast(300)
@given(random_graphs(max_nodes=7, max_edges=10), st.data())
def test_incremental_inference_matches_fresh_analysis(graph: Graph, data: st.DataObject) -> None:
    note(describe(graph))
    inference = ShapeInference(graph)
    try:
        check_analysis(graph, inference.analyze())
        steps = data.draw(st.integers(1, 12), label="steps")
        for _ in range(steps):
            note(data.draw(edits(graph)))
            if data.draw(st.booleans(), label="analyze now"):
                incremental = inference.analyze()
                check_analysis(graph, incremental)
                assert_same_analysis(incremental, analyze(graph))
        assert_same_analysis(inference.analyze(), analyze(graph))
    finally:
        inference.close()


@fast(150)
@given(random_graphs(max_nodes=6, max_edges=8), st.data())
def test_incremental_inference_with_an_analysis_after_every_edit(graph: Graph, data: st.DataObject) -> None:
    note(describe(graph))
    inference = ShapeInference(graph)
    try:
        inference.analyze()
        for _ in range(data.draw(st.integers(1, 8), label="steps")):
            note(data.draw(edits(graph)))
            assert_same_analysis(inference.analyze(), analyze(graph))
    finally:
        inference.close()


@fast(400)
@given(st.data())
def test_incremental_inference_on_mostly_valid_models(data: st.DataObject) -> None:
    """Edits on graphs whose nodes mostly have shapes, so that stale shapes would show."""
    graph = data.draw(small_models(), label="graph")
    note(describe(graph))
    inference = ShapeInference(graph)
    try:
        inference.analyze()
        for _ in range(data.draw(st.integers(1, 8), label="steps")):
            note(data.draw(edits(graph, cycles=4)))
            if data.draw(st.booleans(), label="analyze now"):
                assert_same_analysis(inference.analyze(), analyze(graph))
        assert_same_analysis(inference.analyze(), analyze(graph))
    finally:
        inference.close()


def test_incremental_inference_forgets_shapes_downstream_of_a_new_cycle() -> None:
    """x -> a -> b -> c -> out, then b -> a replaces x -> a: c's input is now on a cycle."""
    graph = Graph()
    chain(graph, node("input", "x", shape=[4]), node("relu", "a"), node("relu", "b"), node("relu", "c"),
          node("output", "out"))
    inference = ShapeInference(graph)
    try:
        assert inference.analyze().nodes["c"].output is not None
        graph.remove_edge(graph.edge_into("a", "in"))
        graph.add_edge(Edge("b", "a", "in"))
        fresh = analyze(graph)
        assert fresh.nodes["c"].output is None
        assert_same_analysis(inference.analyze(), fresh)
    finally:
        inference.close()


def test_incremental_inference_forgets_shapes_downstream_of_a_new_self_loop() -> None:
    graph = Graph()
    chain(graph, node("input", "x", shape=[4]), node("relu", "a"), node("linear", "fc", out_features=3),
          node("output", "out"))
    inference = ShapeInference(graph)
    try:
        inference.analyze()
        graph.remove_edge(graph.edge_into("a", "in"))
        graph.add_edge(Edge("a", "a", "in"))
        assert_same_analysis(inference.analyze(), analyze(graph))
        # and back: the shapes return once the loop is removed
        graph.remove_edge(graph.edge_into("a", "in"))
        graph.add_edge(Edge("x", "a", "in"))
        assert_same_analysis(inference.analyze(), analyze(graph))
        assert inference.analyze().nodes["fc"].output.dims == (3,)
    finally:
        inference.close()


# ============================================ valid graphs compile and run
def _small(decl: Param) -> st.SearchStrategy[Any]:
    """In-bounds, small values so that graphs are often valid and always cheap to run."""
    kind = decl.kind
    if kind == "int":
        lo = int(decl.min) if decl.min is not None else -2
        hi = int(decl.max) if decl.max is not None else 2
        return st.integers(lo, max(lo, min(hi, lo + 3)))
    if kind == "float":
        lo = decl.min if decl.min is not None else 0.0
        hi = decl.max if decl.max is not None else 1.0
        return st.floats(lo, min(hi, lo + 1.0))
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(decl.choices)
    lo = int(decl.min) if decl.min is not None else 0
    hi = int(decl.max) if decl.max is not None else 3
    element = st.integers(lo, max(lo, min(hi, lo + 2)))
    if kind == "int_tuple":
        return st.lists(element, min_size=decl.length or 1, max_size=decl.length or 1).map(tuple)
    if decl.name == "dims":  # Permute: a permutation that keeps the batch first
        return st.integers(2, 4).flatmap(lambda r: st.permutations(range(1, r))).map(lambda p: (0, *p))
    items = st.one_of(element, st.just(-1)) if decl.allow_minus_one else element
    return st.lists(items, min_size=max(1, decl.min_length), max_size=min(decl.max_length, 3)).map(tuple)


#: Layers whose defaults are large enough to make tiny test models slow.
_SMALL_OVERRIDES = {"hidden_size": 4, "out_features": 4, "out_channels": 4, "dim_feedforward": 8,
                    "embedding_dim": 4, "num_embeddings": 4, "max_len": 16}


def _add_small_layer(draw: st.DrawFn, graph: Graph, ids: list[str], node_id: str) -> str:
    """Add a random layer with small in-bounds values, its inputs wired to recent nodes."""
    layer = draw(st.sampled_from(HIDDEN_LAYERS))
    params = {d.name: _SMALL_OVERRIDES[d.name] for d in layer.params if d.name in _SMALL_OVERRIDES}
    for decl in layer.params:
        if decl.name == "scale_factor":
            params[decl.name] = draw(st.integers(1, 2))
        elif draw(st.integers(0, 2)) == 0:
            params[decl.name] = draw(_small(decl))
    graph.add_node(Node(node_id, layer.type_id, params))
    for port in graph.nodes[node_id].input_ports():
        back = draw(st.integers(0, min(2, len(ids) - 1)))  # mostly the latest node
        graph.add_edge(Edge(ids[-1 - back], node_id, port, _output_port(draw, graph, ids[-1 - back])))
    return node_id


@st.composite
def small_models(draw: st.DrawFn) -> Graph:
    """Mostly-valid small graphs: an Input, a few layers wired to recent nodes, one or two Outputs."""
    graph = Graph()
    kind = draw(st.sampled_from(["vector", "sequence", "sequence", "image", "image", "any", "tokens", "noise"]))
    if kind == "tokens":
        graph.add_node(Node("x", "token_input", {"vocab_size": draw(st.integers(2, 6)),
                                                  "seq_len": draw(st.integers(1, 6))}))
    elif kind == "noise":
        graph.add_node(Node("x", "noise_input", {"latent_dim": draw(st.integers(1, 6))}))
    else:
        shape = {
            "vector": st.tuples(st.integers(1, 8)),
            "sequence": st.tuples(st.integers(1, 6), st.sampled_from([2, 3, 4, 6, 8])),
            "image": st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8)),
            "any": st.lists(st.integers(1, 4), min_size=1, max_size=4),
        }[kind]
        graph.add_node(Node("x", "input", {"shape": list(draw(shape))}))
    ids = ["x"]
    for index in range(draw(st.integers(1, 6))):
        for attempt in range(4):  # mostly keep only layers that fit what they receive
            node_id = _add_small_layer(draw, graph, ids, f"n{index}_{attempt}")
            fits = analyze(graph).nodes[node_id].output is not None
            if fits or attempt == 3 or draw(st.integers(0, 4)) == 0:
                break
            for edge in graph.edges_of(node_id):
                graph.remove_edge(edge)
            graph.remove_node(node_id)
        ids.append(node_id)
    chain(graph, ids[-1], node("output", "out"))
    if len(ids) > 2 and draw(st.booleans()):
        chain(graph, draw(st.sampled_from(ids[1:-1])), node("output", "out_b"))
    return graph


@fast(200)
@given(small_models())
def test_valid_graphs_compile_and_run_with_inferred_shapes(graph: Graph) -> None:
    analysis = analyze(graph)
    check_analysis(graph, analysis)
    event(f"valid={analysis.valid}")
    if not analysis.valid:
        with pytest.raises(GraphInvalidError) as info:
            compile_graph(graph)
        assert [d.format(graph) for d in analysis.errors] == info.value.lines
        return
    biggest = max((math.prod(i.output.dims) for i in analysis.nodes.values() if i.output), default=0)
    if biggest > 200_000 or analysis.parameters > 2_000_000:
        event("too large to run")
        return
    torch.manual_seed(0)
    compiled = compile_graph(graph)
    model = compiled.module.eval()
    assert sum(p.numel() for p in model.parameters()) == analysis.parameters
    inputs = compiled.example_inputs(batch=2)
    # token ids anywhere in the declared vocabulary, not just the example's 0 and 1
    inputs = tuple(torch.randint(0, spec.vocab or 2, x.shape) if spec.dtype == "long" else x
                   for x, spec in zip(inputs, compiled.input_specs))
    with torch.no_grad():
        result = model(*inputs)
    outputs = result if isinstance(result, tuple) else (result,)
    assert len(outputs) == len(compiled.output_ids) == len(compiled.output_specs)
    for output_id, tensor, spec in zip(compiled.output_ids, outputs, compiled.output_specs):
        source = graph.incoming(output_id)["in"].source
        assert spec == analysis.nodes[source].output
        assert tuple(tensor.shape) == (2, *spec.dims), (output_id, source, tuple(tensor.shape), spec)
        assert tensor.dtype == (torch.int64 if spec.dtype == "long" else torch.float32), (output_id, tensor.dtype)


# ============================================================ corrupted files
def _base_project() -> Project:
    graph = Graph()
    chain(graph, node("input", "image", shape=[1, 12, 12]),
          node("conv2d", "conv1", out_channels=4, kernel_size=[3, 3], padding=[1, 1]),
          node("batchnorm2d", "bn1", eps=1e-4), node("leaky_relu", "act", negative_slope=0.2),
          node("maxpool2d", "pool"), node("flatten", "flat"), node("dropout", "drop", p=0.25),
          node("linear", "fc", out_features=10, bias=False), node("add", "sum"), node("output", "logits"))
    connect(graph, "fc", "sum", "in2")
    graph.add_node(Node("tokens", "token_input", {"vocab_size": 100, "seq_len": 6}))
    graph.add_node(Node("gelu", "gelu", {"approximate": "tanh"}, (10.5, -3.25)))
    graph.add_node(Node("shape", "reshape", {"shape": (-1, 2)}))
    return Project(graph=graph, dataset={"name": "mnist", "split": [0.8, 0.2], "augment": {"flip": True}},
                   training={"epochs": 3, "lr": 0.001, "optimizer": "adam", "seed": None},
                   meta={"name": "fuzz base", "task": "classification"})


BASE_TEXT = dumps(_base_project())
BASE_DATA = json.loads(BASE_TEXT)
SOURCE = "fuzz.json"


def check_loads(text: str, source: str = SOURCE) -> Project | None:
    """``loads`` returns a project or raises ProjectFileError with one line naming ``source``."""
    try:
        project = loads(text, source=source)
    except ProjectFileError as exc:
        message = str(exc)
        assert message.startswith(f"{source}: "), message
        assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, message
        _event("refused")
        return None
    assert isinstance(project, Project)
    check_analysis(project.graph, analyze(project.graph))
    _event("loaded")
    return project


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree: keys of objects, indices of lists."""
    result = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            result += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            result += _paths(value, (*prefix, index))
    return result


_ALL_PARAMS = [decl for layer in LAYERS for decl in layer.params]


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = value if len(path) == 1 else _replace(copy[path[0]], path[1:], value)
    return copy


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


NASTY_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
    st.sampled_from(["", " ", "\n", "a\nb", "\r", "\u2028", "\x85", "\x00", "\ud7ff", "é", "💥", "..", "in",
                     "nodes", "input", "linear", "out_channels", "__proto__", "[1,2]", '"', "\\"]),
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([0, -1, 1, 2, 10**400, -(10**400), 2**62, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False), NASTY_TEXT,
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)), max_leaves=8)
#: Texts that are not valid JSON values but are things a broken file may hold.
RAW_VALUES = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 5000, "1" * 4301, "0.5e-400", "[" * 100000,
    "[" * 500 + "]" * 500, "{" * 3000, '{"a":' * 2000 + "1" + "}" * 2000, "[" * 2000 + "]" * 2000, "tru",
    "nul", "'x'", "01", "+1", ".5", "1.", "0x10", '"\\ud800"', '"\\u0000"', '"a\\nb"', "[1,]", "{,}",
    "[1, 2, 3]", "1e308", "-0", "9" * 400,
])


def _nodes(data: Any) -> list[Any] | None:
    graph = data.get("graph") if isinstance(data, dict) else None
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    return nodes if isinstance(nodes, list) and nodes else None


@st.composite
def corrupted_texts(draw: st.DrawFn) -> str:
    """A valid project text with one to three corruptions."""
    data: Any = BASE_DATA
    raw_edit = None
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["replace", "replace", "add_key", "delete", "type", "param", "version",
                                    "raw"]))
        paths = _paths(data)
        nodes = _nodes(data)
        if how == "replace":
            data = _replace(data, draw(st.sampled_from(paths)), draw(JSON_VALUES))
        elif how == "add_key":
            objects = [p for p in paths if isinstance(_get(data, p), dict)]
            if objects:
                path = draw(st.sampled_from(objects))
                data = _replace(data, path, {**_get(data, path), draw(NASTY_TEXT): draw(JSON_VALUES)})
        elif how == "delete" and len(paths) > 1:
            path = draw(st.sampled_from(paths[1:]))
            parent = _get(data, path[:-1])
            if isinstance(parent, dict):
                parent = {k: v for k, v in parent.items() if k != path[-1]}
            else:
                parent = [v for i, v in enumerate(parent) if i != path[-1]]
            data = _replace(data, path[:-1], parent)
        elif how == "type" and nodes:
            index = draw(st.integers(0, len(nodes) - 1))
            if isinstance(nodes[index], dict):
                new_type = draw(st.one_of(NASTY_TEXT, st.sampled_from([l.type_id for l in LAYERS])))
                data = _replace(data, ("graph", "nodes", index, "type"), new_type)
        elif how == "param" and nodes:
            index = draw(st.integers(0, len(nodes) - 1))
            params = nodes[index].get("params") if isinstance(nodes[index], dict) else None
            if isinstance(params, dict):
                name = draw(st.one_of(NASTY_TEXT, st.sampled_from(list(params) + ["kernel_size", "p", "shape",
                                                                                  "bias", "num_inputs"])))
                value = draw(st.one_of(JSON_VALUES, param_values(draw(st.sampled_from(_ALL_PARAMS)))))
                data = _replace(data, ("graph", "nodes", index, "params"), {**params, name: value})
        elif how == "version" and isinstance(data, dict):
            data = {**data, "version": draw(st.one_of(JSON_SCALARS, st.sampled_from(
                [0, -1, 2, 1.0, "1", True, 10**400, [1], {"v": 1}])))}
        elif how == "raw":
            raw_edit = draw(RAW_VALUES)
    text = json.dumps(data, indent=draw(st.sampled_from([None, 2])), ensure_ascii=draw(st.booleans()))
    if raw_edit is not None:
        # splice a raw (often invalid) value in place of one scalar
        scalar = draw(st.sampled_from(['1', 'true', 'false', 'null', '"neural-canvas-project"', '12', '0.001']))
        at = text.find(scalar, draw(st.integers(0, len(text))))
        if at >= 0:
            text = text[:at] + raw_edit + text[at + len(scalar):]
        else:
            text = raw_edit + text
    return text


@st.composite
def mangled_texts(draw: st.DrawFn) -> str:
    """The base text truncated, with characters flipped, inserted or deleted."""
    text = BASE_TEXT
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(text)))
        if how == "truncate":
            text = text[:at]
        elif how == "flip":
            text = text[:at] + draw(st.characters()) + text[at + 1:]
        elif how == "insert":
            text = text[:at] + draw(st.one_of(st.sampled_from(list('{}[]",:0-.eE\\ntfu ') + ["\x00", "\ufeff"]),
                                               st.text(max_size=3))) + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        else:
            end = draw(st.integers(at, len(text)))
            text = text[:end] + text[at:end] + text[end:]
    return text


@fast(300)
@given(corrupted_texts())
def test_corrupted_json_values_never_crash_the_loader(text: str) -> None:
    check_loads(text)


@fast(300)
@given(mangled_texts())
def test_mangled_text_never_crashes_the_loader(text: str) -> None:
    check_loads(text)


@fast(150)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")), JSON_VALUES.map(json.dumps),
                 st.builds(lambda v: json.dumps({"format": "neural-canvas-project", "version": 1, "graph": v}),
                           JSON_VALUES)))
def test_random_text_never_crashes_the_loader(text: str) -> None:
    check_loads(text)


def _edit(old: str, new: str, count: int = -1) -> str:
    assert old in BASE_TEXT, old
    return BASE_TEXT.replace(old, new, count)


#: Named corruptions and what the loader must do: refuse them, or load them (values of the
#: right kind, out of bounds, are loaded and diagnosed); None: either.
KNOWN_CORRUPTIONS: dict[str, tuple[str, str | None]] = {
    "empty": ("", "refuse"), "blank": (" ", "refuse"), "null": ("null", "refuse"), "list": ("[]", "refuse"),
    "empty-object": ("{}", "refuse"), "number": ("0", "refuse"), "string": ('"x"', "refuse"),
    "deep-open-lists": ("[" * 100000, "refuse"), "deep-open-objects": ("{" * 100000, "refuse"),
    "deep-keys": ('{"a":' * 100000, "refuse"), "deep-closed-lists": ("[" * 100000 + "]" * 100000, "refuse"),
    "nan": ("NaN", "refuse"), "nan-version": ('{"format": "neural-canvas-project", "version": NaN}', "refuse"),
    "utf8-bom": ("\ufeff" + BASE_TEXT, None), "trailing-garbage": (BASE_TEXT + "x", "refuse"),
    "version-3": (_edit('"version": 1', '"version": 3'), "refuse"),  # newer than this app reads
    "version-0": (_edit('"version": 1', '"version": 0'), "refuse"),
    "version-float": (_edit('"version": 1', '"version": 1.0'), "refuse"),
    "version-string": (_edit('"version": 1', '"version": "1"'), "refuse"),
    "version-huge": (_edit('"version": 1', '"version": ' + "9" * 400), "refuse"),
    "version-bool": (_edit('"version": 1', '"version": true'), "refuse"),
    "version-over-int-limit": (_edit('"version": 1', '"version": ' + "1" * 5000), "refuse"),
    "unknown-type": (_edit('"type": "conv2d"', '"type": "conv3d"'), "refuse"),
    "type-number": (_edit('"type": "conv2d"', '"type": 7'), "refuse"),
    "unknown-param": (_edit('"out_channels": 4', '"out_channels": 4, "kernel": 3'), "refuse"),
    "int-as-string": (_edit('"out_channels": 4', '"out_channels": "4"'), "refuse"),
    "int-as-float": (_edit('"out_channels": 4', '"out_channels": 4.0'), "refuse"),
    "int-infinite": (_edit('"out_channels": 4', '"out_channels": 1e999'), "refuse"),
    "int-4000-digits": (_edit('"out_channels": 4', '"out_channels": ' + "9" * 4000), "load"),
    "int-huge-negative": (_edit('"out_channels": 4', '"out_channels": -' + "9" * 400), "load"),
    "float-nan": (_edit('"eps": 0.0001', '"eps": NaN'), "refuse"),
    "float-infinite": (_edit('"eps": 0.0001', '"eps": 1e999'), "refuse"),
    "float-huge-int": (_edit('"eps": 0.0001', '"eps": ' + "9" * 400), "load"),
    "duplicate-id": (_edit('"id": "conv1"', '"id": "image"'), "refuse"),
    "id-not-identifier": (_edit('"id": "conv1"', '"id": "1conv"'), "refuse"),
    "id-too-long": (_edit('"id": "conv1"', '"id": "' + "c" * 65 + '"'), "refuse"),
    "missing-port": (_edit('"port": "in"', '"port": "in2"', 1), "refuse"),
    "port-out": (_edit('"port": "in"', '"port": "out"', 1), "refuse"),
    "unknown-source": (_edit('"source": "image"', '"source": "nowhere"'), "refuse"),
    "source-without-output": (_edit('"source": "image"', '"source": "logits"'), "refuse"),
    "empty-nodes": (_edit('"nodes": [', '"nodes": [' + "{}," * 10), "refuse"),
    "other-format": (_edit('"format": "neural-canvas-project"', '"format": "other"'), "refuse"),
    "unknown-meta": (_edit('"meta": {', '"meta": {"author": "x", '), "refuse"),
    "meta-number": (_edit('"meta": {', '"meta": {"family": 3, '), "refuse"),
    "position-infinite": (_edit('"position": [10.5, -3.25]', '"position": [1e999, 0]'), "refuse"),
    "position-three": (_edit('"position": [10.5, -3.25]', '"position": [1, 2, 3]'), "refuse"),
    "position-bool": (_edit('"position": [10.5, -3.25]', '"position": [true, 0]'), "refuse"),
}


@pytest.mark.parametrize("name", list(KNOWN_CORRUPTIONS))
def test_known_corruptions_never_crash_the_loader(name: str) -> None:
    text, expected = KNOWN_CORRUPTIONS[name]
    project = check_loads(text)
    if expected == "refuse":
        assert project is None, f"{name} was loaded"
    elif expected == "load":
        assert project is not None, f"{name} was refused"
        assert not analyze(project.graph).valid  # the absurd value is diagnosed


def test_error_messages_stay_on_one_line_whatever_the_key() -> None:
    """An unknown key with a line break in it must not break the message over two lines."""
    broken = []
    for where in ("top", "meta", "graph", "node", "params", "edge"):
        for key in ("a\nb", "\r", "x\u2028y"):
            data = json.loads(BASE_TEXT)
            target = {"top": data, "meta": data["meta"], "graph": data["graph"], "node": data["graph"]["nodes"][1],
                      "params": data["graph"]["nodes"][1]["params"], "edge": data["graph"]["edges"][0]}[where]
            target[key] = 1
            with pytest.raises(ProjectFileError) as info:
                loads(json.dumps(data), source=SOURCE)
            if len(str(info.value).splitlines()) != 1:
                broken.append(f"{where}: {str(info.value)!r}")
    assert not broken, "\n".join(broken)


def test_anything_the_loader_accepts_can_be_saved_again() -> None:
    """An infinite number (1e999 parses to inf) is accepted in dataset/training but cannot be written."""
    data = json.loads(BASE_TEXT)
    text = json.dumps(data).replace('"lr": 0.001', '"lr": 1e999')
    project = check_loads(text)
    if project is not None:
        assert loads(dumps(project)).training == project.training


@fast(100)
@given(corrupted_texts())
def test_loaded_corrupt_projects_round_trip(text: str) -> None:
    """Whatever the loader accepts saves and reloads to the same document."""
    try:
        project = loads(text, source=SOURCE)
    except ProjectFileError:
        return
    leaves = _leaves([project.dataset, project.training, project.meta])
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in leaves)
    saved = dumps(project)
    again = loads(saved, source=SOURCE)
    assert dumps(again) == saved
    assert again.dataset == project.dataset and again.training == project.training and again.meta == project.meta


def _leaves(data: Any) -> list[Any]:
    """Every scalar in a JSON tree, object keys included."""
    if isinstance(data, dict):
        return [*data, *(leaf for value in data.values() for leaf in _leaves(value))]
    if isinstance(data, list):
        return [leaf for value in data for leaf in _leaves(value)]
    return [data]


def _fragment_from_corrupted(text: str) -> Any:
    """The graph section of a corrupted project text, as a clipboard fragment (or the raw value)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    graph = data.get("graph") if isinstance(data, dict) else data
    if not isinstance(graph, dict):
        return graph
    return {"format": "neural-canvas-nodes", "version": 1, **graph}


@fast(150)
@given(st.one_of(corrupted_texts().map(_fragment_from_corrupted), JSON_VALUES,
                 st.builds(lambda v: {"format": "neural-canvas-nodes", "version": 1, "nodes": v}, JSON_VALUES)))
def test_clipboard_fragments_are_validated_like_files(data: Any) -> None:
    from engine.graph.fileformat import from_json_fragment

    try:
        nodes, edges = from_json_fragment(data)
    except ProjectFileError as exc:
        message = str(exc)
        assert message.startswith("clipboard: ") and len(message.splitlines()) == 1, message
        return
    graph = Graph()
    graph.extend(nodes, edges)  # a valid fragment pastes into an empty graph
    check_analysis(graph, analyze(graph))


@pytest.mark.parametrize("where", ["dataset", "training"])
def test_deeply_nested_settings_are_refused_or_saved_again(where: str) -> None:
    """Whatever nesting depth the loader accepts in free-form sections, saving writes it back."""
    for depth in range(50, 1300, 50):
        for opener, closer in (("[", "]"), ('{"a": ', "}")):
            text = (f'{{"format": "neural-canvas-project", "version": 1, "{where}": {{"a": '
                    + opener * depth + "1" + closer * depth + "}}")
            project = check_loads(text)
            if project is None:
                continue
            try:
                saved = dumps(project)
            except RecursionError:
                pytest.fail(f"{where} nested {depth} deep ({opener}) loads but cannot be saved")
            assert getattr(loads(saved), where) == getattr(project, where)


# ----------------------------------------------------------- load_project
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("files")


@fast(40)
@given(st.one_of(st.binary(max_size=300), corrupted_texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
                 mangled_texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.binary(max_size=50).map(lambda b: BASE_TEXT.encode()[:200] + b)))
def test_load_project_never_crashes_on_file_bytes(files, content: bytes) -> None:
    path = files / "fuzz.json"
    path.write_bytes(content)
    try:
        project = load_project(path)
    except ProjectFileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and len(message.splitlines()) == 1, message
        return
    check_analysis(project.graph, analyze(project.graph))


def _refused(path: os.PathLike[str] | str) -> str:
    with pytest.raises(ProjectFileError) as info:
        load_project(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and len(message.splitlines()) == 1, message
    return message


def test_load_project_reports_unreadable_paths(tmp_path) -> None:
    assert "no such file" in _refused(tmp_path / "missing.json")
    assert "folder" in _refused(tmp_path)
    not_utf8 = tmp_path / "latin1.json"
    not_utf8.write_bytes(BASE_TEXT.replace("fuzz base", "caf\u00e9").encode("latin-1"))
    assert "UTF-8" in _refused(not_utf8)
    binary = tmp_path / "random.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    _refused(binary)
    inside_file = tmp_path / "latin1.json" / "x.json"
    _refused(inside_file)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    _refused(empty)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: costs no disk
    assert "MiB" in _refused(huge)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000)
    _refused(deep)


def test_load_project_reads_a_saved_file_and_accepts_str_paths(tmp_path) -> None:
    path = tmp_path / "model.json"
    save_project(_base_project(), path)
    assert path.read_text(encoding="utf-8") == BASE_TEXT
    assert dumps(load_project(path)) == BASE_TEXT
    assert dumps(load_project(str(path))) == BASE_TEXT
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left behind


# ============================================ invalid graphs survive save/load
def _reloaded(project: Project) -> Project:
    return loads(dumps(project), source="roundtrip.json")


def test_invalid_but_well_formed_graph_round_trips_with_the_same_diagnostics(tmp_path) -> None:
    graph = Graph()
    chain(graph, node("input", "image", shape=[3, 8, 8]), node("linear", "fc", out_features=0),
          node("output", "out1"))
    chain(graph, "image", node("conv2d", "big", kernel_size=[9, 9]), node("output", "out2"))
    chain(graph, "image", node("conv2d", "zero", kernel_size=[0, 3], out_channels=-5), node("output", "out3"))
    chain(graph, node("relu", "loop_a"), node("relu", "loop_b"), "loop_a")  # a cycle
    chain(graph, "image", node("add", "half"))  # unconnected input and a dead end
    graph.add_node(Node("lost", "maxpool2d", {"kernel_size": (2, 2), "padding": (5, 5)}))
    before = analyze(graph)
    assert not before.valid
    faulty = {d.node for d in before.errors}
    assert {"fc", "big", "zero", "loop_a", "loop_b", "half", "lost"} <= faulty
    project = Project(graph=graph, meta={"name": "broken"})
    path = tmp_path / "broken.json"
    save_project(project, path)
    for reopened in (_reloaded(project), load_project(path)):
        after = analyze(reopened.graph)
        assert after.diagnostics == before.diagnostics
        assert {n: i.output for n, i in after.nodes.items()} == {n: i.output for n, i in before.nodes.items()}
        assert dumps(reopened) == dumps(project)


def test_lowering_a_merge_input_count_needs_its_extra_inputs_disconnected_first() -> None:
    """The model never holds an edge on a vanished port, so every document it holds can reopen."""
    graph = Graph()
    chain(graph, node("input", "x", shape=[4]), node("add", "sum", num_inputs=3), node("output", "out"))
    connect(graph, "x", "sum", "in2")
    connect(graph, "x", "sum", "in3")
    with pytest.raises(GraphError, match="in3"):
        graph.set_param("sum", "num_inputs", 2)
    assert graph.nodes["sum"].params["num_inputs"] == 3
    graph.remove_edge(graph.edge_into("sum", "in3"))
    graph.set_param("sum", "num_inputs", 2)
    before = analyze(graph)
    assert before.valid
    reopened = _reloaded(Project(graph=graph))
    assert analyze(reopened.graph).diagnostics == before.diagnostics == []


@fast(150)
@given(random_graphs())
def test_random_graphs_round_trip_with_the_same_diagnostics(graph: Graph) -> None:
    project = Project(graph=graph)
    text = dumps(project)
    reopened = loads(text, source="roundtrip.json")
    assert dumps(reopened) == text
    for node_id, original in graph.nodes.items():
        copy = reopened.graph.nodes[node_id]
        assert copy.type_id == original.type_id and copy.position == original.position
        assert copy.params == original.params, node_id
        assert {k: type(v) for k, v in copy.params.items()} == {k: type(v) for k, v in original.params.items()}
    assert reopened.graph.edges == graph.edges
    before, after = analyze(graph), analyze(reopened.graph)
    assert after.diagnostics == before.diagnostics
    assert after.nodes == before.nodes


@fast(100)
@given(random_graphs(), st.data())
def test_copied_nodes_paste_back_identically(graph: Graph, data: st.DataObject) -> None:
    from engine.graph.fileformat import from_json_fragment, to_json_fragment

    chosen = data.draw(st.lists(st.sampled_from(list(graph.nodes)), unique=True), label="copied")
    fragment = json.loads(json.dumps(to_json_fragment(graph, chosen)))  # through the clipboard's text
    nodes, edges = from_json_fragment(fragment)
    assert [n.id for n in nodes] == [n for n in graph.nodes if n in chosen]
    for pasted in nodes:
        original = graph.nodes[pasted.id]
        assert (pasted.type_id, pasted.params, pasted.position) == (original.type_id, original.params,
                                                                    original.position)
    assert set(edges) == {e for e in graph.edges if e.source in chosen and e.target in chosen}


@pytest.mark.parametrize("text", ["[1,2]", "sizes [ 3 , 4 ]", "[true,false]", "a [1,\n2] b", "[-1e5]", "[1, 2]",
                                  "[[1, 2]]", '"[1,2]"', "[1,2]\\"])
def test_strings_that_look_like_number_lists_round_trip(text: str) -> None:
    """dumps keeps number lists on one line; it must not touch strings that merely look like one."""
    graph = Graph()
    graph.add_node(Node("g", "gelu", {"approximate": text}))
    project = Project(graph=graph, meta={"name": text, "description": text}, dataset={text: text},
                      training={"note": [text]})
    reopened = _reloaded(project)
    assert reopened.meta == project.meta
    assert reopened.dataset == project.dataset and reopened.training == project.training
    assert reopened.graph.nodes["g"].params == graph.nodes["g"].params
