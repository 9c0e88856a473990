"""Levels: the inside of one block instance, with that instance's shapes (engine/block_levels.py)."""

from __future__ import annotations

from engine.block_levels import level_analysis, resolve_level, segment_of, split_segment
from engine.block_shapes import analyze_blocks
from engine.graph.blocks import BlockLibrary
from tests.test_blocks import model, nested, residual


def test_segments_name_copies_of_repeated_instances() -> None:
    assert split_segment("layer2.3") == ("layer2", 3) and split_segment("stem") == ("stem", 0)
    assert segment_of("layer2", 4, 1) == "layer2.1" and segment_of("stem", 1) == "stem"


def test_resolve_walks_down_and_refuses_paths_that_lead_nowhere() -> None:
    graph, library = nested()  # stage1 (repeat 3) -> Stage: conv -> block (Res, repeat 2)
    view = resolve_level(graph, library, ("stage1.1", "block.0"))
    assert view is not None and view.definition is library["Res"] and view.graph is library["Res"].graph
    assert view.scope == "stage1.1/block.0" and view.instance_path == "stage1.1/block" and view.copy == 0
    assert view.titles == ("stage1.1 (Stage)", "block.0 (Res)")
    assert resolve_level(graph, library, ()).graph is graph
    for bad in [("stage1",), ("stage1.3",), ("stem",), ("nothing",), ("stage1.0", "conv")]:
        assert resolve_level(graph, library, bad) is None, bad


def test_the_inside_shows_what_that_instance_receives() -> None:
    graph, library = nested()
    result = analyze_blocks(graph, library)
    inside = level_analysis(result, resolve_level(graph, library, ("stage1.0",)))
    assert str(inside.nodes["x"].output) == "(N, 8, 4, 4)"
    assert inside.nodes["conv"].parameters == 8 * 8 + 8
    res_params = 8 * 8 * 9 + 8
    assert inside.nodes["block"].parameters == 2 * res_params  # repeat 2
    assert str(inside.nodes["block"].output) == "(N, 8, 4, 4)"
    assert set(inside.in_model) == {"x", "conv", "block", "y"}
    deepest = level_analysis(result, resolve_level(graph, library, ("stage1.2", "block.1")))
    assert deepest.nodes["conv1"].parameters == res_params and deepest.valid


def test_the_same_definition_shows_each_instances_own_shapes() -> None:
    res = residual(channels=8)
    graph = model(res, repeat=1, shape=[3, 4, 4])
    wide = model(res, instance="other", repeat=1, shape=[3, 6, 6])
    library = BlockLibrary([res])
    result = analyze_blocks(graph, library)
    assert str(level_analysis(result, resolve_level(graph, library, ("stage1",))).nodes["conv1"].output) == "(N, 8, 4, 4)"
    result = analyze_blocks(wide, library)
    assert str(level_analysis(result, resolve_level(wide, library, ("other",))).nodes["conv1"].output) == "(N, 8, 6, 6)"


def test_inner_problems_name_the_inner_node() -> None:
    res = residual(channels=8)
    res.graph.set_param("conv1", "out_channels", 4)  # the add no longer matches
    graph = model(res, repeat=1)
    library = BlockLibrary([res])
    inside = level_analysis(analyze_blocks(graph, library), resolve_level(graph, library, ("stage1",)))
    assert not inside.valid
    assert {d.node for d in inside.errors} == {"add"}


def test_freezing_an_instance_freezes_its_inside_and_scales_multiply() -> None:
    from engine.graph.flatten import flatten

    graph, library = nested()
    graph.set_training("stage1", "trainable", False)
    flat, paths = flatten(graph, library)
    inner = [n for n in flat if paths[n.id].startswith("stage1")]
    assert inner and all(not n.trainable for n in inner)
    assert flat.nodes["stem"].trainable
    graph.set_training("stage1", "trainable", True)
    graph.set_training("stage1", "lr_scale", 0.5)
    library["Res"].graph.set_training("conv1", "lr_scale", 0.2)
    flat, paths = flatten(graph, library)
    scales = {paths[n.id]: n.lr_scale for n in flat}
    assert abs(scales["stage1.0/block.0/conv1"] - 0.1) < 1e-12 and scales["stage1.0/conv"] == 0.5
