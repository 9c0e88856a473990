"""Blocks in the engine: definitions, instances, flattening, analysis and compile through them.

The built-in definitions are checked against reference modules in tests/test_builtin_blocks.py.
"""

from __future__ import annotations

import time

import pytest
import torch

from engine.block_shapes import BlockInference, analyze_blocks
from engine.compile import compile_graph
from engine.compile.block_compile import compile_with_blocks
from engine.compile.fx_builder import GraphInvalidError
from engine.graph import Graph
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, instance_node
from engine.graph.flatten import flatten
from engine.layers import all_layers, get_layer
from engine.shapes import analyze
from tests.graph_builders import add, chain, connect, node


def residual(name: str = "Res", channels: int = 8) -> BlockDefinition:
    """x -> conv1 -> relu1 -> (+ x) -> out."""
    d = BlockDefinition(name)
    chain(d.graph, node("input", "x", shape=[channels, 4, 4]),
          node("conv2d", "conv1", out_channels=channels, padding=[1, 1]), node("relu", "relu1"))
    add(d.graph, "add", "add")
    connect(d.graph, "relu1", "add", "in1")
    connect(d.graph, "x", "add", "in2")
    chain(d.graph, "add", node("output", "out"))
    return d


def stage(name: str = "Stage", inner: BlockDefinition | None = None, repeat: int = 2) -> BlockDefinition:
    """x -> conv (1x1 to 8 channels) -> inner block (repeated) -> y."""
    d = BlockDefinition(name)
    chain(d.graph, node("input", "x", shape=[8, 4, 4]), node("conv2d", "conv", out_channels=8, kernel_size=[1, 1]))
    d.graph.add_node(instance_node("block", inner or residual(), repeat=repeat))
    connect(d.graph, "conv", "block", "x")
    chain(d.graph, "block", node("output", "y"))
    return d


def model(definition: BlockDefinition, instance: str = "stage1", repeat: int = 3, shape: list[int] | None = None) -> Graph:
    """img -> stem (1x1 conv to 8 channels) -> instance -> logits."""
    g = Graph()
    chain(g, node("input", "img", shape=shape or [3, 4, 4]), node("conv2d", "stem", out_channels=8, kernel_size=[1, 1]))
    g.add_node(instance_node(instance, definition, repeat=repeat))
    connect(g, "stem", instance, definition.inputs[0])
    chain(g, instance, node("output", "logits"))
    return g


def nested() -> tuple[Graph, BlockLibrary]:
    res = residual()
    outer = stage(inner=res)
    return model(outer), BlockLibrary([res, outer])


# ------------------------------------------------------------------ the layer type
def test_block_layer_is_declared_but_not_listed() -> None:
    layer = get_layer("block")
    assert layer not in all_layers() and layer.category == "Blocks"
    assert layer.check_params({"definition": "Res", "repeat": 0})[0][0] == "repeat"
    assert layer.check_params({"inputs": ["a", "a"]}) == [("inputs", "names must differ, got a, a")]
    assert layer.check_params({"definition": "1x"})[0][0] == "definition"
    n = instance_node("up1", BlockDefinition("Up", stage().graph))
    assert (n.input_ports(), n.output_ports()) == (("x",), ("y",))


# ------------------------------------------------------------------------- flatten
def test_flatten_nesting_and_repeat_ids_paths_and_edges() -> None:
    graph, library = nested()
    flat, paths = flatten(graph, library)
    assert paths["stage1_0__conv"] == "stage1.0/conv"
    assert paths["stage1_2__block_1__conv1"] == "stage1.2/block.1/conv1"
    assert paths["stem"] == "stem" and paths["logits"] == "logits"
    assert len(flat) == 3 + 3 * (1 + 2 * 3)  # img, stem, logits; 3 stages of a conv and 2 residuals
    assert all(node.type_id not in ("block",) for node in flat)
    edge = flat.edge_into("stage1_0__block_1__add", "in2")  # copy 1's skip reads copy 0's output
    assert (edge.source, edge.source_port) == ("stage1_0__block_0__add", "out")
    assert flat.edge_into("stage1_1__conv", "in").source == "stage1_0__block_1__add"
    assert flat.edge_into("logits", "in").source == "stage1_2__block_1__add"
    assert analyze(flat).valid


def test_flatten_keeps_ids_valid_and_unique() -> None:
    res = residual()
    g = Graph()
    chain(g, node("input", "img", shape=[8, 4, 4]), node("relu", "b__conv1"))  # the id b's conv1 would take
    long_id = "b" + "x" * 60
    g.add_node(instance_node("b", res))
    g.add_node(instance_node(long_id, res))
    connect(g, "b__conv1", "b", "x")
    connect(g, "b", long_id, "x")
    chain(g, long_id, node("output", "out"))
    flat, paths = flatten(g, BlockLibrary([res]))
    assert paths["b__conv1"] == "b__conv1" and paths["b__conv1_2"] == "b/conv1"
    assert all(len(i) <= 64 for i in paths) and len(set(paths.values())) == len(paths)
    assert f"{long_id}/conv1" in paths.values()


def test_flatten_refuses_a_definition_that_contains_itself() -> None:
    a, b = BlockDefinition("A"), BlockDefinition("B")
    for outer, inner in ((a, b), (b, a)):
        chain(outer.graph, node("input", "x", shape=[8]))
        outer.graph.add_node(instance_node("inner", BlockDefinition(inner.name, stage().graph)))
        connect(outer.graph, "x", "inner", "x")
        chain(outer.graph, "inner", node("output", "y"))
    library = BlockLibrary([a, b])
    assert library.cycle() == ["A", "B", "A"]
    g = model(a, "top", repeat=1, shape=[8])
    with pytest.raises(BlockError) as caught:
        flatten(g, library)
    message = str(caught.value)
    assert message == "node top/inner/inner (Block): block definition 'A' contains itself: A -> B -> A"
    assert "\n" not in message


def test_flatten_names_a_missing_definition_and_mismatched_ports() -> None:
    res = residual()
    g = model(res, "layer1", repeat=1)
    with pytest.raises(BlockError, match=r"^node layer1 \(Block\): uses block definition 'Res', which does not "
                                         r"exist$"):
        flatten(g, BlockLibrary())
    other = BlockDefinition("Res")  # the definition's Input was renamed: its port is now "inp"
    chain(other.graph, node("input", "inp", shape=[8, 4, 4]), node("relu", "r"), node("output", "out"))
    with pytest.raises(BlockError) as caught:
        flatten(g, BlockLibrary([other]))
    assert str(caught.value) == ("node layer1 (Block): ports (inputs x; outputs out) do not match block definition "
                                 "'Res' (inputs inp; outputs out): update the instance's ports")


def test_repeat_needs_as_many_outputs_as_inputs() -> None:
    two = BlockDefinition("Two")
    chain(two.graph, node("input", "x", shape=[8]), node("relu", "r"), node("output", "a"))
    chain(two.graph, "r", node("output", "b"))
    g = Graph()
    chain(g, node("input", "v", shape=[8]))
    g.add_node(instance_node("t", two, repeat=2))
    connect(g, "v", "t", "x")
    chain(g, "t", node("output", "o"))
    with pytest.raises(BlockError, match=r"^node t \(Block\): repeat 2 feeds each copy's outputs to the next "
                                         r"copy's inputs, but block definition 'Two' has 1 input\(s\) and 2 output"):
        flatten(g, BlockLibrary([two]))
    result = analyze_blocks(g, BlockLibrary([two]))
    assert [d.message.split(",")[0] for d in result.analysis.nodes["t"].diagnostics] == [
        "repeat 2 feeds each copy's outputs to the next copy's inputs"]


# ----------------------------------------------------------------------- analysis
def test_instance_totals_equal_the_flat_graph() -> None:
    graph, library = nested()
    result = analyze_blocks(graph, library)
    top, flat = result.analysis, result.flat_analysis
    inner = [i for i in flat.nodes if i.startswith("stage1_")]
    info = top.nodes["stage1"]
    assert info.parameters == sum(flat.nodes[i].parameters for i in inner) == 3 * (72 + 2 * (8 * 8 * 9 + 8))
    assert info.flops == sum(flat.nodes[i].flops for i in inner) > 0
    assert info.output == flat.nodes["stage1_2__block_1__add"].output
    assert (top.parameters, top.flops) == (flat.parameters, flat.flops)
    assert list(top.nodes) == ["img", "stem", "stage1", "logits"] and top.valid


def test_inner_diagnostics_carry_the_path_and_chain_errors_say_why() -> None:
    res = residual()
    res.graph.set_param("conv1", "out_channels", 16)  # the skip Add no longer matches
    g = model(res, "layer2", repeat=2, shape=[8, 4, 4])
    result = analyze_blocks(g, BlockLibrary([res]))
    (d,) = result.analysis.nodes["layer2"].diagnostics
    assert d.node == "layer2" and d.message.startswith("layer2.0/add: ")
    assert d.format(g).startswith("node layer2 (Block): layer2.0/add: ")
    assert result.analysis.nodes["layer2"].output is None and not result.analysis.valid

    grow = BlockDefinition("Grow")  # 128 -> 256 values: a second copy cannot reshape them to 128
    chain(grow.graph, node("input", "x", shape=[8, 4, 4]), node("reshape", "r", shape=[128]),
          node("linear", "fc", out_features=256), node("output", "out"))
    g = model(grow, "layer3", repeat=2)
    (d,) = analyze_blocks(g, BlockLibrary([grow])).analysis.nodes["layer3"].diagnostics
    assert d.message.startswith("the copies do not chain: copy 2 receives (N, 256) where copy 1 receives "
                                "(N, 8, 4, 4): layer3.1/r: ")
    with pytest.raises(GraphInvalidError) as caught:
        compile_with_blocks(g, BlockLibrary([grow]))
    assert caught.value.lines[0].startswith("node layer3.1/r (Reshape): ")


def test_unconnected_and_missing_are_diagnosed_on_the_instance() -> None:
    res = residual()
    g = model(res, "b1", repeat=1)
    g.remove_edge(g.edge_into("b1", "x"))
    result = analyze_blocks(g, BlockLibrary([res]))
    assert [d.message for d in result.analysis.nodes["b1"].diagnostics] == [
        "its input is not connected: drag a connection from a layer's output to it"]
    missing = analyze_blocks(model(res, "b2", repeat=1), BlockLibrary())
    assert [d.message for d in missing.analysis.nodes["b2"].diagnostics] == [
        "uses block definition 'Res', which does not exist"]
    assert not missing.analysis.valid


# ------------------------------------------------------------------------ compile
def test_compiled_blocks_equal_the_flat_graph() -> None:
    graph, library = nested()
    compiled, flat = compile_with_blocks(graph, library)
    reference = compile_graph(flat.graph)
    assert compiled.module.code == reference.module.code
    reference.module.load_state_dict(compiled.module.state_dict())
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(compiled.module(x), reference.module(x), rtol=0, atol=0)
    assert "stage1_1__block_0__conv1" in dict(compiled.module.named_modules())


# ------------------------------------------------------------------- incremental
def wide_model(instances: int = 16, depth: int = 30) -> tuple[Graph, BlockDefinition, BlockLibrary]:
    """``instances`` instances in a chain of a definition of ``depth * 2`` layers."""
    d = BlockDefinition("Deep")
    links = [node("input", "x", shape=[8, 4, 4])]
    for i in range(depth):
        links += [node("conv2d", f"conv{i}", out_channels=8, padding=[1, 1]), node("relu", f"relu{i}")]
    chain(d.graph, *links, node("output", "out"))
    g = Graph()
    chain(g, node("input", "img", shape=[8, 4, 4]))
    last = "img"
    for i in range(instances):
        g.add_node(instance_node(f"b{i}", d))
        connect(g, last, f"b{i}", "x")
        last = f"b{i}"
    chain(g, last, node("output", "out"))
    return g, d, BlockLibrary([d])


def test_an_edit_inside_a_definition_reinfers_every_instance() -> None:
    graph, definition, library = wide_model()
    inference = BlockInference(graph, library)
    try:
        first = inference.analyze()
        assert len(first.flat.graph) == 16 * 60 + 2
        timings = []
        for value in (2, 1, 2, 1):  # kernel 3 <-> 5 with padding kept: shapes shrink, then recover
            start = time.perf_counter()
            definition.graph.set_param("conv3", "padding", [value, value])
            result = inference.analyze()
            timings.append(time.perf_counter() - start)
            fresh = analyze_blocks(graph, library)
            assert {k: (v.output, v.parameters, v.flops) for k, v in result.analysis.nodes.items()} == \
                   {k: (v.output, v.parameters, v.flops) for k, v in fresh.analysis.nodes.items()}
        local = []
        for name, value in (("bias", False), ("out_channels", 16)):  # a few layers per copy re-infer
            start = time.perf_counter()
            definition.graph.set_param("conv5", name, value)
            result = inference.analyze()
            local.append(time.perf_counter() - start)
        # conv5 loses its bias and doubles its filters, conv6 takes twice the channels
        assert result.analysis.nodes["b0"].parameters == first.analysis.nodes["b0"].parameters - 8 + 2 * 576
        assert result.analysis.parameters == analyze_blocks(graph, library).analysis.parameters
        assert result.analysis.nodes["b0"].output == first.analysis.nodes["b0"].output
        print(f"\none-parameter edit in a definition used 16 times, {len(result.flat.graph)} layers: "
              f"shapes downstream change {', '.join(f'{t * 1000:.2f}' for t in timings)} ms; "
              f"local {', '.join(f'{t * 1000:.2f}' for t in local)} ms")
        definition.graph.move_nodes({"conv1": (5.0, 5.0)})
        assert inference.analyze() is not None
    finally:
        inference.close()
