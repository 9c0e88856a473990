"""PyTorch source of projects with blocks: one nn.Module class per block definition, used per instance."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.compile.export import export_model
from engine.compile.export.source import load_source
from engine.graph import Graph, Project
from engine.graph.blocks import BlockDefinition, BlockLibrary, instance_node
from engine.graph.builtin_blocks import bottleneck
from engine.graph.fileformat import save_project
from engine.graph.model import Edge
from tests.export.test_python_source import import_file
from tests.graph_builders import add, chain, connect, node


def conv_relu() -> BlockDefinition:
    """x -> conv (8 channels, input channels inferred per use) -> relu -> out."""
    d = BlockDefinition("conv_relu", doc="3x3 convolution and ReLU.")
    chain(d.graph, node("input", "x", shape=[8, 8, 8]), node("conv2d", "conv", out_channels=8, padding=[1, 1]),
          node("relu", "act"), node("output", "out"))
    return d


def stage() -> BlockDefinition:
    """x -> conv_relu (repeat 2) -> (+ x) -> y: a nested definition."""
    d = BlockDefinition("Stage")
    d.graph.add_node(node("input", "x", shape=[8, 8, 8]))
    d.graph.add_node(instance_node("inner", conv_relu(), repeat=2))
    connect(d.graph, "x", "inner", "x")
    add(d.graph, "add", "add")
    connect(d.graph, "inner", "add", "in1")
    connect(d.graph, "x", "add", "in2")
    chain(d.graph, "add", node("output", "y"))
    return d


def pair() -> BlockDefinition:
    """Two ports in, two out: (a, b) -> (relu(a), a + b)."""
    d = BlockDefinition("Pair")
    chain(d.graph, node("input", "a", shape=[8, 8, 8]), node("relu", "r"), node("output", "p"))
    d.graph.add_node(node("input", "b", shape=[8, 8, 8]))
    add(d.graph, "add", "s")
    connect(d.graph, "a", "s", "in1")
    connect(d.graph, "b", "s", "in2")
    chain(d.graph, "s", node("output", "q"))
    return d


def blocks_project() -> Project:
    """image -> c1 (conv_relu, 3 -> 8) -> s1 (Stage x2) -> s2 (Stage) -> pp (Pair x2 on s1, s2) -> head."""
    library = BlockLibrary([conv_relu(), stage(), pair()])
    g = Graph()
    g.add_node(node("input", "image", shape=[3, 8, 8]))
    for instance, definition, repeat in (("c1", "conv_relu", 1), ("s1", "Stage", 2), ("s2", "Stage", 1),
                                         ("pp", "Pair", 2)):
        g.add_node(instance_node(instance, library[definition], repeat=repeat))
    connect(g, "image", "c1", "x")
    connect(g, "c1", "s1", "x")
    connect(g, "s1", "s2", "x")
    connect(g, "s1", "pp", "a")
    connect(g, "s2", "pp", "b")
    add(g, "add", "merge")
    g.add_edge(Edge("pp", "merge", "in1", "p"))
    g.add_edge(Edge("pp", "merge", "in2", "q"))
    chain(g, "merge", node("flatten", "flat"), node("linear", "fc", out_features=10), node("output", "logits"))
    return Project(graph=g, blocks=library, dataset={"name": "digits"}, training={"seed": 3},
                   meta={"name": "nested blocks", "description": ""})


def _export(project: Project, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "blocks.json"
    save_project(project, path)
    result = export_model(path, "python", tmp_path / "out")
    assert result.max_abs_diff <= result.tolerance
    return path, (tmp_path / "out" / "model.py").read_text(encoding="utf-8")


def _classes(text: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(text).body if isinstance(n, ast.ClassDef)}


def _loads_strictly_and_matches(path: Path, folder: Path) -> torch.nn.Module:
    generated = import_file(folder / "model.py", f"nested_{abs(hash(str(folder)))}")
    model = generated.build_model()
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    model.eval()
    source = load_source(path)
    inputs = source.sample_inputs(batch=4, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), source.compiled.module(*inputs), rtol=0, atol=1e-6)
    return model


def test_a_class_per_definition_used_per_instance(tmp_path: Path) -> None:
    path, text = _export(blocks_project(), tmp_path)
    classes = _classes(text)
    assert list(classes) == ["Chain", "ConvRelu", "Stage", "Pair", "NestedBlocks"]
    # the convolution's input channels differ between uses (3 for c1, 8 inside Stage): an argument
    assert "def __init__(self, conv_in_channels: int) -> None:" in text
    assert "self.conv = nn.Conv2d(conv_in_channels, 8, 3, padding=1)" in text
    assert "self.inner = nn.Sequential(*[ConvRelu(conv_in_channels=8) for _ in range(2)])" in text
    assert "self.c1 = ConvRelu(conv_in_channels=3)" in text
    assert "self.s1 = nn.Sequential(*[Stage() for _ in range(2)])" in text and "self.s2 = Stage()" in text
    assert "self.pp = Chain(*[Pair() for _ in range(2)])" in text
    # forward takes the ports in order and returns a tuple for several outputs
    forward = next(f for f in classes["Pair"].body if isinstance(f, ast.FunctionDef) and f.name == "forward")
    assert [a.arg for a in forward.args.args] == ["self", "a", "b"]
    assert isinstance(forward.body[-1], ast.Return) and isinstance(forward.body[-1].value, ast.Tuple)
    model = _loads_strictly_and_matches(path, tmp_path / "out")
    names = dict(model.named_modules())
    assert type(names["s1.1.inner.0"]).__name__ == "ConvRelu" and type(names["pp.1"]).__name__ == "Pair"
    assert "s1.1.inner.0.conv.weight" in model.state_dict()
    assert "flat" not in text.split("class NestedBlocks")[0]  # the model's own layers stay in its class


def test_the_builtin_bottleneck_used_three_times_reads_like_resnet(tmp_path: Path) -> None:
    block = bottleneck()
    g = Graph()
    chain(g, node("input", "image", shape=[3, 16, 16]),
          node("conv2d", "stem", out_channels=256, kernel_size=[1, 1], bias=False))
    g.add_node(instance_node("layer1", block, repeat=3))
    connect(g, "stem", "layer1", "x")
    chain(g, "layer1", node("adaptive_avgpool2d", "pool", output_size=[1, 1]), node("flatten", "flat"),
          node("linear", "fc", out_features=10), node("output", "logits"))
    project = Project(graph=g, blocks=BlockLibrary([block]), dataset={"name": "digits"},
                      meta={"name": "resnet stage", "description": ""})
    path, text = _export(project, tmp_path)
    assert list(_classes(text)) == ["Bottleneck", "ResnetStage"]
    assert "self.layer1 = nn.Sequential(*[Bottleneck() for _ in range(3)])" in text
    assert text.count("nn.Conv2d(") == 4 and "self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)" in text
    assert "layer1 = self.layer1(stem)" in text
    model = _loads_strictly_and_matches(path, tmp_path / "out")
    assert "layer1.2.bn3.running_mean" in model.state_dict()


def test_train_py_trains_the_nested_model(tmp_path: Path) -> None:
    project = blocks_project()
    project.graph.nodes["image"].params["shape"] = [1, 8, 8]  # digits
    _export(project, tmp_path)
    folder = tmp_path / "out"
    result = subprocess.run([sys.executable, "train.py", "--epochs", "1"], cwd=folder, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (folder / "trained.safetensors").is_file()


def test_train_py_freezes_and_scales_layers_inside_blocks(tmp_path: Path) -> None:
    project = blocks_project()
    project.graph.nodes["image"].params["shape"] = [1, 8, 8]  # digits
    project.blocks["conv_relu"].graph.set_training("conv", "trainable", False)  # every use of the definition
    project.graph.set_training("fc", "lr_scale", 2.0)
    _export(project, tmp_path)
    folder = tmp_path / "out"
    sys.path.insert(0, str(folder))
    try:
        script = import_file(folder / "train.py", "generated_nested_train")
        model = import_file(folder / "model.py", "model").build_model()
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("model", None)
    groups = script.trainable_groups(model)
    convs = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Conv2d)]
    assert len(convs) == 7 and sorted(script.FROZEN) == sorted(convs)  # c1, s1 x2 (inner x2 each), s2 (x2)
    assert all(not module.weight.requires_grad for name, module in model.named_modules() if name in convs)
    assert [(g["lr_scale"], len(g["params"])) for g in groups] == [(2.0, 2)]  # only fc trains, at 2x
