"""Group a selection into a new block and ungroup an instance (engine.graph.grouping): the plans,
the refusals, and round trips that keep shapes, parameters and FLOPs."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.block_shapes import analyze_blocks
from engine.graph import Edge, Graph, Node
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, instance_node
from engine.graph.grouping import apply_group, apply_ungroup, default_name, instance_id, plan_group, plan_ungroup
from engine.shapes import analyze
from tests.graph_builders import add, chain, connect, node


def mlp() -> Graph:
    """x (20) -> fc1 -> relu1 -> fc2 -> out, positioned left to right."""
    g = Graph()
    chain(g, node("input", "x", shape=[20]), node("linear", "fc1", out_features=16), node("relu", "relu1"),
          node("linear", "fc2", out_features=4), node("output", "out"))
    g.move_nodes({n: (i * 200.0, 40.0 + i * 10) for i, n in enumerate(g.nodes)})
    return g


def residual() -> Graph:
    """x (8, 6, 6) -> conv -> relu -> add(in1); x -> add(in2) -> pool -> out."""
    g = Graph()
    chain(g, node("input", "x", shape=[8, 6, 6]), node("conv2d", "conv", out_channels=8, padding=[1, 1]),
          node("relu", "relu"))
    add(g, "add", "add")
    connect(g, "relu", "add", "in1")
    connect(g, "x", "add", "in2")
    chain(g, "add", node("adaptive_avgpool2d", "pool", output_size=[1, 1], flatten=True), node("output", "out"))
    return g


def summary(graph: Graph, library: BlockLibrary | None = None) -> tuple[int, int, dict[str, str]]:
    """Parameters, FLOPs and the output shape of every top-level node."""
    analysis = analyze_blocks(graph, library or BlockLibrary()).analysis
    return analysis.parameters, analysis.flops, {n: str(info.output) for n, info in analysis.nodes.items()}


def edges(graph: Graph) -> set[tuple[str, str, str, str]]:
    return {(e.source, e.source_port, e.target, e.target_port) for e in graph.edges}


def group(graph: Graph, ids: list[str], library: BlockLibrary, name: str | None = None) -> Node:
    plan = plan_group(graph, ids, library, name, analyze_blocks(graph, library).analysis)
    apply_group(graph, library, plan)
    return plan.instance


# ---------------------------------------------------------------------------------- the plan
def test_group_plan_of_a_chain() -> None:
    g = mlp()
    library = BlockLibrary()
    plan = plan_group(g, ["relu1", "fc1"], library, analysis=analyze(g))
    d = plan.definition
    assert d.name == "Block" and [n.id for n in d.graph] == ["in", "fc1", "relu1", "out"]
    assert (d.inputs, d.outputs) == (("in",), ("out",))
    assert list(d.graph.nodes["in"].params["shape"]) == [20]  # the shape it receives, so it analyses alone
    assert d.graph.nodes["fc1"].position == (0.0, 0.0) and d.graph.nodes["relu1"].position == (200.0, 10.0)
    assert analyze(d.graph).valid and analyze(d.graph).parameters == 20 * 16 + 16
    assert plan.instance.id == "block1" and plan.instance.params["definition"] == "Block"
    assert plan.instance.position == (200.0, 50.0)  # the selection's top-left
    assert plan.remove_nodes == ["fc1", "relu1"]
    assert {(e.source, e.target) for e in plan.remove_edges} == {("x", "fc1"), ("fc1", "relu1"), ("relu1", "fc2")}
    assert plan.add_edges == [Edge("x", "block1", "in"), Edge("block1", "fc2", "in", "out")]
    before = summary(g)
    apply_group(g, library, plan)
    assert list(g.nodes) == ["x", "block1", "fc2", "out"] and "Block" in library
    assert summary(g, library)[:2] == before[:2]
    assert summary(g, library)[2]["fc2"] == before[2]["fc2"]


def test_names_and_instance_ids() -> None:
    library = BlockLibrary([BlockDefinition("Block"), BlockDefinition("Block2")])
    assert default_name(library) == "Block3" and default_name(BlockLibrary()) == "Block"
    g = mlp()
    assert instance_id(g, "Block1") == "block1"
    assert instance_id(g, "Block") == "block1"
    assert instance_id(g, "ResidualUnit") == "residual_unit1"
    g.add_node(Node("block1", "relu"))
    assert instance_id(g, "Block1") == "block1_1"
    plan = plan_group(g, ["fc1"], library, "Block1")
    assert plan.instance.id == "block1_1" and plan.definition.name == "Block1"


def test_residual_selection_has_one_input_for_both_readers() -> None:
    g = residual()
    before = summary(g)
    library = BlockLibrary()
    plan = plan_group(g, ["conv", "relu", "add"], library, "Res", analyze(g))
    assert plan.definition.inputs == ("in",) and plan.definition.outputs == ("out",)
    inner = {(e.source, e.target, e.target_port) for e in plan.definition.graph.edges}
    assert {("in", "conv", "in"), ("in", "add", "in2"), ("relu", "add", "in1"), ("add", "out", "in")} <= inner
    assert plan.add_edges == [Edge("x", "res1", "in"), Edge("res1", "pool", "in", "out")]
    apply_group(g, library, plan)
    assert summary(g, library)[:2] == before[:2]
    assert summary(g, library)[2]["pool"] == before[2]["pool"]


def chunked() -> Graph:
    """x -> fc1 -> chunk (parts); cat = [fc1, parts.out1, parts.out2, relu(parts.out1)] -> y."""
    g = Graph()
    chain(g, node("input", "x", shape=[8]), node("linear", "fc1", out_features=8), node("chunk", "parts", chunks=2))
    add(g, "relu", "act")
    g.add_edge(Edge("parts", "act", "in", "out1"))
    add(g, "concat", "cat", num_inputs=4, dim=1)
    connect(g, "fc1", "cat", "in1")
    g.add_edge(Edge("parts", "cat", "in2", "out1"))
    g.add_edge(Edge("parts", "cat", "in3", "out2"))
    connect(g, "act", "cat", "in4")
    chain(g, "cat", node("output", "y"))
    return g


def test_selection_read_from_outside_at_several_places_has_several_outputs() -> None:
    """fc1 and the two parts of a chunk leave the group (one part to two readers): three output ports."""
    g = chunked()
    before = summary(g)
    library = BlockLibrary()
    plan = plan_group(g, ["fc1", "parts"], library, analysis=analyze(g))
    assert plan.definition.outputs == ("out", "out2", "out3")
    assert {(e.source, e.source_port, e.target) for e in plan.definition.graph.edges if e.target.startswith("out")} \
        == {("fc1", "out", "out"), ("parts", "out1", "out2"), ("parts", "out2", "out3")}
    assert sorted((e.source_port, e.target, e.target_port) for e in plan.add_edges if e.source == "block1") == [
        ("out", "cat", "in1"), ("out2", "act", "in"), ("out2", "cat", "in2"), ("out3", "cat", "in3")]
    apply_group(g, library, plan)
    assert summary(g, library)[:2] == before[:2]
    assert summary(g, library)[2]["cat"] == before[2]["cat"] == "(N, 20)"
    apply_ungroup(g, plan_ungroup(g, "block1", library))
    assert edges(g) == edges(chunked()) and summary(g) == before


def test_token_inputs_become_token_input_ports() -> None:
    g = Graph()
    chain(g, node("token_input", "tokens", vocab_size=50, seq_len=7), node("embedding", "emb", num_embeddings=50,
                                                                           embedding_dim=4),
          node("output", "out"))
    plan = plan_group(g, ["emb"], BlockLibrary(), analysis=analyze(g))
    port = plan.definition.graph.nodes["in"]
    assert port.type_id == "token_input" and (port.params["vocab_size"], port.params["seq_len"]) == (50, 7)


# ------------------------------------------------------------------------------- refusals
def test_refusals_are_one_line_naming_nodes() -> None:
    g = mlp()
    library = BlockLibrary([BlockDefinition("Taken")])
    with pytest.raises(BlockError, match="^nothing to group"):
        plan_group(g, [], library)
    with pytest.raises(BlockError, match=r"^cannot group: no node 'ghost'"):
        plan_group(g, ["fc1", "ghost"], library)
    with pytest.raises(BlockError) as caught:
        plan_group(g, ["x", "fc1"], library)
    assert str(caught.value) == ("cannot group node x (Input): a model's Input takes its tensor from the data, so it "
                                 "stays outside blocks; leave it out of the selection")
    with pytest.raises(BlockError, match=r"nodes x \(Input\), out \(Output\): .*from the data and a model's Output "
                                         r"sends its tensor to the loss, so they stay outside blocks"):
        plan_group(g, ["out", "fc1", "x"], library)
    with pytest.raises(BlockError, match="'Taken' already exists"):
        plan_group(g, ["fc1"], library, "Taken")
    with pytest.raises(BlockError, match="must be a Python identifier"):
        plan_group(g, ["fc1"], library, "2nd block")


def test_a_selection_that_would_cut_a_node_off_says_why() -> None:
    g = mlp()
    with pytest.raises(BlockError) as caught:
        plan_group(g, ["fc1", "fc2"], BlockLibrary())
    assert str(caught.value) == (
        "grouping would cut node relu1 (ReLU) off from the group: it takes input from inside the group (fc1) and "
        "feeds back into it (fc2); select it too or leave out fc2")
    g = residual()  # x -> conv -> relu -> add and x -> add: conv and add without relu
    with pytest.raises(BlockError, match=r"cut node relu \(ReLU\) off .* \(conv\) .* \(add\); select it too or "
                                         "leave out add$"):
        plan_group(g, ["conv", "add"], BlockLibrary())
    plan_group(g, ["conv"], BlockLibrary())  # a prefix is fine


def test_ungroup_refusals_name_instance_and_definition() -> None:
    g = mlp()
    library = BlockLibrary()
    with pytest.raises(BlockError, match=r"^cannot ungroup node fc1 \(Linear\): only block instances ungroup$"):
        plan_ungroup(g, "fc1", library)
    with pytest.raises(BlockError, match="no node 'nope'"):
        plan_ungroup(g, "nope", library)
    instance = group(g, ["fc1", "relu1"], library, "Pair")
    library.remove("Pair")
    with pytest.raises(BlockError) as caught:
        plan_ungroup(g, instance.id, library)
    assert str(caught.value) == "cannot ungroup node pair1 (Block): its block definition 'Pair' does not exist"


# ------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("make, ids", [(mlp, ["fc1", "relu1"]), (mlp, ["relu1", "fc2"]), (mlp, ["fc1"]),
                                       (residual, ["conv", "relu", "add"]), (residual, ["relu", "add"]),
                                       (residual, ["conv", "relu", "add", "pool"])])
def test_group_then_ungroup_restores_the_graph(make, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    g = make()
    original = make()
    library = BlockLibrary()
    instance = group(g, ids, library)
    assert summary(g, library)[:2] == summary(original)[:2]
    apply_ungroup(g, plan_ungroup(g, instance.id, library))
    assert list(g.nodes) == list(original.nodes)  # document order too
    assert edges(g) == edges(original)
    assert {n.id: n.position for n in g} == {n.id: n.position for n in original}
    assert summary(g) == summary(original)


def test_nested_selection_groups_an_instance_and_ungroups_one_level() -> None:
    g = residual()
    original = summary(g)
    library = BlockLibrary()
    inner = group(g, ["conv", "relu", "add"], library, "Res")
    outer = group(g, [inner.id, "pool"], library, "Stage")
    assert [n.id for n in library["Stage"].graph] == ["in", "res1", "pool", "out"]
    assert [n.id for n in g] == ["x", "stage1", "out"]
    assert summary(g, library)[:2] == original[:2]
    apply_ungroup(g, plan_ungroup(g, outer.id, library))
    assert g.nodes["res1"].type_id == "block" and summary(g, library)[:2] == original[:2]


def test_a_repeated_instance_ungroups_into_chained_copies() -> None:
    library = BlockLibrary()
    g = residual()
    res = group(g, ["conv", "relu", "add"], library, "Res")
    g.set_param(res.id, "repeat", 3)
    before = summary(g, library)
    plan = plan_ungroup(g, res.id, library)
    assert [n.id for n in plan.nodes] == ["conv", "relu", "add", "conv1", "relu1", "add1", "conv2", "relu2", "add2"]
    apply_ungroup(g, plan)
    assert g.edge_into("conv1", "in").source == "add" and g.edge_into("add1", "in2").source == "add"
    assert g.edge_into("conv2", "in").source == "add1" and g.edge_into("pool", "in").source == "add2"
    assert g.nodes["conv1"].position[0] > g.nodes["add"].position[0]  # copies side by side
    assert summary(g)[:2] == before[:2] and summary(g)[2]["pool"] == before[2]["pool"]


def test_ungroup_keeps_free_inner_ids_and_renames_taken_ones() -> None:
    library = BlockLibrary()
    d = BlockDefinition("Pair")
    chain(d.graph, node("input", "x", shape=[20]), node("linear", "fc1", out_features=16),
          node("relu", "act"), node("output", "y"))
    library.add(d)
    g = mlp()  # already has an fc1
    for e in list(g.edges_of("relu1")):
        g.remove_edge(e)
    g.add_node(instance_node("pair", d, position=(500.0, 500.0)))
    g.add_edge(Edge("fc1", "pair", "x"))
    g.add_edge(Edge("pair", "relu1", "in", "y"))
    connect(g, "relu1", "fc2")
    plan = plan_ungroup(g, "pair", library)
    ids = [n.id for n in plan.nodes]
    assert ids == ["fc3", "act"]  # fc1 and fc2 are taken; act is free
    assert [n.position for n in plan.nodes] == [(500.0, 500.0)] * 2
    apply_ungroup(g, plan)
    assert g.edge_into(ids[0], "in").source == "fc1" and g.edge_into("relu1", "in").source == "act"


# ------------------------------------------------------------------------------- property
@st.composite
def graphs_and_selections(draw: st.DrawFn) -> tuple[Graph, list[str]]:
    """A random DAG of same-width layers (linear, relu, add) whose every layer leads to the Output,
    and a random selection of its layers."""
    g = Graph()
    g.add_node(Node("x", "input", {"shape": [6]}))
    layers: list[str] = []
    for i in range(draw(st.integers(2, 9))):
        kind = draw(st.sampled_from(["linear", "relu", "add"]))
        pick = st.sampled_from(["x", *layers])
        node_id = f"n{i}"
        if kind == "add":
            g.add_node(Node(node_id, "add", {}, (i * 100.0, 0.0)))
            g.add_edge(Edge(draw(pick), node_id, "in1"))
            g.add_edge(Edge(draw(pick), node_id, "in2"))
        else:
            params = {"out_features": 6} if kind == "linear" else {}
            g.add_node(Node(node_id, kind, params, (i * 100.0, (i % 3) * 50.0)))
            g.add_edge(Edge(draw(pick), node_id, "in"))
        layers.append(node_id)
    sinks = [n for n in layers if not g.outgoing(n)]
    last = sinks[0]
    for k, sink in enumerate(sinks[1:]):  # join every dead end into the output
        join = f"join{k}"
        g.add_node(Node(join, "add", {}, (1000.0 + k * 100, 0.0)))
        g.add_edge(Edge(last, join, "in1"))
        g.add_edge(Edge(sink, join, "in2"))
        last = join
    g.add_node(Node("y", "output", {}, (2000.0, 0.0)))
    g.add_edge(Edge(last, "y", "in"))
    candidates = [n for n in g.nodes if n not in ("x", "y")]
    selection = draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True))
    return g, selection


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs_and_selections())
def test_grouping_keeps_the_analysis_and_ungrouping_restores_the_graph(case: tuple[Graph, list[str]]) -> None:
    g, selection = case
    original = g.copy()
    before = summary(g)
    library = BlockLibrary()
    try:
        plan = plan_group(g, selection, library, analysis=analyze(g))
    except BlockError as exc:
        assert str(exc).startswith("grouping would cut node")
        outside = g.nx_graph().subgraph(n for n in g.nodes if n not in selection)
        chosen = set(selection)
        assert any(any(p in chosen for p in g.nx_graph().predecessors(a))
                   and any(s in chosen for s in g.nx_graph().successors(b)) and nx.has_path(outside, a, b)
                   for a in outside for b in outside)
        return
    apply_group(g, library, plan)
    after = summary(g, library)
    assert after[:2] == before[:2]
    assert {n: s for n, s in after[2].items() if n in g.nodes and n != plan.instance.id} == \
        {n: s for n, s in before[2].items() if n in g.nodes}
    assert analyze(library[plan.definition.name].graph).valid  # the definition analyses on its own
    apply_ungroup(g, plan_ungroup(g, plan.instance.id, library))
    assert set(g.nodes) == set(original.nodes) and edges(g) == edges(original)
    ends = [n.id for n in original if n.layer.role != "layer"]
    assert [n.id for n in g if n.layer.role != "layer"] == ends  # Inputs and Outputs keep their order
    assert {n.id: n.position for n in g} == {n.id: n.position for n in original}
    assert summary(g) == before
