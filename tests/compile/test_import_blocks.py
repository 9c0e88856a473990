"""Imported models keep their module hierarchy as blocks (import-torch and import-onnx, one grouping code):
ResNet-50 opens as Stem, layer1..layer4 and Head; identical modules share one definition; weights still
load (the block project computes what the module computes); every level is laid out."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.block_shapes import analyze_blocks
from engine.compile import compile_graph
from engine.compile.block_compile import compile_with_blocks
from engine.compile.export import export_model
from engine.compile.export.common import quiet_export
from engine.compile.importers import IMPORT_TOLERANCE, ImportResult, import_onnx, import_torch_module, save_imported
from engine.compile.weights import apply_weights, load_weights, save_weights, sibling_weights
from engine.graph import Graph
from engine.graph.fileformat import load_project
from engine.graph.flat_project import flat_project
from engine.graph.layout import CARD_WIDTH, card_height
from engine.layers.block import BLOCK_TYPE
from tests.conftest import ROOT
from tests.export.test_python_source import import_file
from tests.zoo.resnet import resnet18, resnet50

RESNET50 = "tests.zoo.resnet:resnet50"
ENCODER = "tests.compile.encoder_models:Encoder"
SMALL_RESNET = {"num_classes": 10, "base_planes": 8}


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norms with non-trivial statistics and affine parameters (a swapped tensor shows)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
    return model.eval()


def blocks_module(result: ImportResult) -> nn.Module:
    """The block project compiled as the app and the exporters compile it, with the imported weights."""
    compiled, _ = compile_with_blocks(result.project.graph, result.project.blocks)
    apply_weights(compiled.module, result.weights, "imported")
    return compiled.module.eval()


def cards(graph: Graph) -> dict[str, tuple[float, float, float, float]]:
    return {n.id: (*n.position, CARD_WIDTH, card_height(max(len(n.input_ports()), len(n.output_ports()))))
            for n in graph}


def overlapping(graph: Graph) -> list[tuple[str, str]]:
    items = list(cards(graph).items())
    return [(a, b) for i, (a, (ax, ay, aw, ah)) in enumerate(items) for b, (bx, by, bw, bh) in items[i + 1:]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah]


def bounds(graph: Graph) -> tuple[float, float]:
    """Width and height of the rectangle holding every card."""
    boxes = cards(graph).values()
    return (max(x + w for x, _, w, _ in boxes) - min(x for x, _, _, _ in boxes),
            max(y + h for _, y, _, h in boxes) - min(y for _, y, _, _ in boxes))


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, ImportResult]:
    """Full-size ResNet-50 with random batch-norm statistics, imported with its weights as blocks."""
    torch.manual_seed(0)
    reference = randomized(resnet50())
    weights = tmp_path_factory.mktemp("resnet") / "resnet50.safetensors"
    save_weights(reference.state_dict(), weights)
    return reference, import_torch_module(RESNET50, {}, (3, 64, 64), weights, flat=False)


# ------------------------------------------------------------------------------- ResNet-50
def test_resnet50_opens_as_stem_four_stages_and_head(resnet: tuple[nn.Module, ImportResult]) -> None:
    _, result = resnet
    project = result.project
    assert [(n.id, n.params.get("definition")) for n in project.graph] == [
        ("x", None), ("stem", "Stem"), ("layer1", "Layer1"), ("layer2", "Layer2"), ("layer3", "Layer3"),
        ("layer4", "Layer4"), ("head", "Head"), ("output", None)]
    assert sorted(project.blocks) == sorted(["Stem", "Head", "Layer1", "Layer2", "Layer3", "Layer4",
                                             *[f"Bottleneck{k}" if k > 1 else "Bottleneck" for k in range(1, 9)]])
    assert [n.id for n in project.blocks["Stem"].graph] == ["in", "conv1", "bn1", "relu", "maxpool", "out"]
    stages = {name: [(n.id, n.params["definition"]) for n in project.blocks[name].graph if n.type_id == BLOCK_TYPE]
              for name in ("Layer1", "Layer2", "Layer3", "Layer4")}
    assert stages["Layer1"] == [("bottleneck_0", "Bottleneck"), ("bottleneck_1", "Bottleneck2"),
                                ("bottleneck_2", "Bottleneck2")]  # identical modules share a definition
    assert [len(stage) for stage in stages.values()] == [3, 4, 6, 3]
    assert len({d for stage in stages.values() for _, d in stage}) == 8  # first (projection) and the rest, per stage
    first = project.blocks["Bottleneck"].graph
    assert [n.id for n in first] == ["in", "conv1", "bn1", "relu", "conv2", "bn2", "relu_2", "conv3", "bn3",
                                     "downsample_0", "downsample_1", "add", "relu_3", "out"]
    assert all(not n.group for d in project.blocks.values() for n in d.graph)  # paths live in the hierarchy now


def test_resnet50_blocks_compute_the_module_with_its_exact_parameter_count(
        resnet: tuple[nn.Module, ImportResult]) -> None:
    reference, result = resnet
    assert result.max_abs_diff <= IMPORT_TOLERANCE
    analysis = analyze_blocks(result.project.graph, result.project.blocks)
    assert analysis.analysis.valid
    assert analysis.analysis.parameters == sum(p.numel() for p in reference.parameters()) == 25_557_032
    assert analysis.analysis.nodes["layer3"].parameters == sum(p.numel() for p in reference.layer3.parameters())
    module = blocks_module(result)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(module(x), reference(x), rtol=0, atol=1e-5)
    # each layer's tensors are the module's own, under the flat id of its path
    state = reference.state_dict()
    assert torch.equal(result.weights["layer1__bottleneck_0__conv1.weight"], state["layer1.0.conv1.weight"])
    assert torch.equal(result.weights["layer3__bottleneck_5__bn3.running_var"], state["layer3.5.bn3.running_var"])
    assert torch.equal(result.weights["layer2__bottleneck_0__downsample_1.bias"], state["layer2.0.downsample.1.bias"])
    assert torch.equal(result.weights["head__fc.weight"], state["fc.weight"])


def test_resnet50_every_level_is_laid_out_without_overlaps(resnet: tuple[nn.Module, ImportResult]) -> None:
    project = resnet[1].project
    assert not overlapping(project.graph)
    width, height = bounds(project.graph)
    assert width < 400 and height < 1400  # eight cards, top to bottom
    assert height > width
    for name, definition in project.blocks.items():
        assert not overlapping(definition.graph), name
        assert len({n.position for n in definition.graph}) == len(definition.graph)
    inside = project.blocks["Bottleneck"].graph  # twelve generations: top to bottom, the shortcut beside
    assert inside.nodes["in"].position[1] < inside.nodes["conv1"].position[1] < inside.nodes["add"].position[1]
    assert inside.nodes["downsample_0"].position[0] != inside.nodes["conv1"].position[0]


def test_saved_block_project_reopens_with_weights_that_load(tmp_path: Path,
                                                            resnet: tuple[nn.Module, ImportResult]) -> None:
    """What training and the exporters do: flatten the project, compile, load the sibling weights."""
    reference, result = resnet
    lines = save_imported(result.project, result.weights, tmp_path / "resnet50.json")
    assert lines[0].endswith("(8 nodes, 14 block definition(s))")
    assert json.loads((tmp_path / "resnet50.json").read_text())["version"] == 2
    project = load_project(tmp_path / "resnet50.json")
    compiled = compile_graph(flat_project(project).graph)
    apply_weights(compiled.module, load_weights(sibling_weights(tmp_path / "resnet50.json")), "file")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(compiled.module.eval()(x), reference(x), rtol=0, atol=1e-5)


def test_the_python_function_imports_flat_unless_asked() -> None:
    result = import_torch_module("tests.zoo.resnet:resnet18", SMALL_RESNET, (3, 32, 32))
    assert not result.project.blocks and "layer1_0_conv1" in result.project.graph.nodes


# ------------------------------------------------------------------------------- Transformer
def test_twelve_identical_encoder_blocks_are_instances_of_one_definition() -> None:
    torch.manual_seed(0)
    result = import_torch_module(ENCODER, {}, (10, 8), flat=False)
    project = result.project
    instances = [n for n in project.graph if n.type_id == BLOCK_TYPE and n.params["definition"] == "EncoderBlock"]
    assert [n.id for n in instances] == [f"blocks_{i}" for i in range(12)]
    assert [n.id for n in project.graph] == ["x", "embed", *[f"blocks_{i}" for i in range(12)], "head", "output"]
    assert sorted(project.blocks) == ["EncoderBlock", "Head"]
    assert [n.id for n in project.blocks["EncoderBlock"].graph] == [
        "in", "norm1", "attn", "add", "norm2", "mlp_0", "mlp_1", "mlp_2", "add_2", "out"]
    assert result.max_abs_diff <= IMPORT_TOLERANCE
    from tests.compile.encoder_models import Encoder

    torch.manual_seed(0)
    reference = Encoder().eval()
    analysis = analyze_blocks(project.graph, project.blocks).analysis
    assert analysis.parameters == sum(p.numel() for p in reference.parameters())
    x = torch.randn(3, 10, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(blocks_module(result)(x), reference(x), rtol=0, atol=1e-5)
    assert not overlapping(project.graph) and bounds(project.graph)[1] > bounds(project.graph)[0]


class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)


class _Interleaved(nn.Module):
    """``pair``'s layers are called around a top-level ReLU, so ``pair`` cannot be a block; ``body`` can."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = _Pair()
        self.body = nn.Sequential(_Pair(), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pair.fc2(torch.relu(self.pair.fc1(x)))
        inner = self.body[0]
        return self.body[1](inner.fc2(inner.fc1(x)))


def test_a_module_whose_layers_are_called_apart_stays_inline() -> None:
    result = import_torch_module(f"{__name__}:_Interleaved", None, (4,), flat=False)
    graph, blocks = result.project.graph, result.project.blocks
    assert [n.id for n in graph] == ["x", "stem", "body", "output"]
    assert sorted(blocks) == ["Body", "Stem", "_Pair"]  # no block for pair: the ReLU between its layers is not its
    assert [n.id for n in blocks["Stem"].graph] == ["in", "pair_fc1", "relu", "pair_fc2", "out"]
    assert [n.id for n in blocks["Body"].graph] == ["in", "pair_0", "relu_1", "out"]  # body.0 and body.1
    assert result.max_abs_diff <= IMPORT_TOLERANCE


# ------------------------------------------------------------------------------- ONNX
def test_onnx_import_makes_the_same_blocks_from_the_exporters_scopes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = randomized(resnet18(**SMALL_RESNET))
    path = tmp_path / "resnet18.onnx"
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module, (torch.randn(2, 3, 32, 32),), str(path), dynamo=True)
    result = import_onnx(path, flat=False)
    project = result.project
    assert [n.params.get("definition") for n in project.graph if n.type_id == BLOCK_TYPE] == [
        "Stem", "Layer1", "Layer2", "Layer3", "Layer4", "Head"]
    layer1 = [n.params["definition"] for n in project.blocks["Layer1"].graph if n.type_id == BLOCK_TYPE]
    assert layer1 == ["BasicBlock", "BasicBlock"]  # shared
    assert [n.id for n in project.blocks["BasicBlock2"].graph] == [  # batch norm folded into the convolutions
        "in", "conv1", "relu", "conv2", "downsample_0", "add", "relu_2", "out"]
    assert result.max_abs_diff <= IMPORT_TOLERANCE
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(blocks_module(result)(x), module(x), rtol=0, atol=1e-4)
    assert not import_onnx(path).project.blocks  # flat unless asked


def test_onnx_names_of_the_torchscript_exporter_give_module_paths_too(tmp_path: Path) -> None:
    """``/layer1/layer1.0/conv1/Conv``: without class names, blocks are named from their paths."""
    torch.manual_seed(0)
    module = randomized(resnet18(**SMALL_RESNET))
    path = tmp_path / "legacy.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(2, 3, 32, 32),), str(path), dynamo=False)
    flat = import_onnx(path).project.graph
    assert flat.nodes["layer1_0_conv1"].group == "layer1.0" and flat.nodes["layer1_0_add"].group == "layer1.0"
    assert flat.nodes["layer2_0_downsample_0"].group == "layer2.0.downsample"
    result = import_onnx(path, flat=False)
    assert [n.params.get("definition") for n in result.project.graph if n.type_id == BLOCK_TYPE] == [
        "Stem", "Layer1", "Layer2", "Layer3", "Layer4", "Head"]
    assert [n.id for n in result.project.blocks["Layer2_0"].graph] == [
        "in", "conv1", "relu", "conv2", "downsample_0", "add", "relu_1", "out"]
    assert result.max_abs_diff <= IMPORT_TOLERANCE


# ------------------------------------------------------------------------------- CLI and export
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], check=False, capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_cli_imports_blocks_by_default_and_flat_on_request(tmp_path: Path) -> None:
    result = run_cli("import-torch", ENCODER, "--args", '{"depth": 3}', "--input-shape", "6,8",
                     "--out", str(tmp_path / "enc.json"))
    assert result.returncode == 0, result.stderr
    assert "(7 nodes, 2 block definition(s))" in result.stdout.splitlines()[0]
    project = load_project(tmp_path / "enc.json")
    assert [n.id for n in project.graph if n.type_id == BLOCK_TYPE] == ["blocks_0", "blocks_1", "blocks_2", "head"]
    result = run_cli("import-torch", ENCODER, "--args", '{"depth": 3}', "--input-shape", "6,8", "--flat",
                     "--out", str(tmp_path / "flat.json"))
    assert result.returncode == 0, result.stderr
    flat = load_project(tmp_path / "flat.json")
    assert not flat.blocks and "blocks_2_mlp_0" in flat.graph.nodes


def test_imported_block_project_exports_as_python_with_its_weights(tmp_path: Path) -> None:
    result = import_torch_module("tests.zoo.resnet:resnet18", SMALL_RESNET, (3, 32, 32), flat=False)
    save_imported(result.project, result.weights, tmp_path / "resnet18.json")
    exported = export_model(tmp_path / "resnet18.json", "python", tmp_path / "code")
    assert exported.max_abs_diff <= 1e-4
    source = (tmp_path / "code" / "model.py").read_text()
    assert "class BasicBlock(" in source and "class Layer1(" in source and "class Stem(" in source


def test_exported_resnet50_has_one_bottleneck_class_per_shape_of_block(resnet: tuple[nn.Module, ImportResult],
                                                                       tmp_path: Path) -> None:
    """Definitions that differ only in sizes (each stage's bottleneck) share a class whose sizes are
    __init__ arguments, as a hand-written ResNet has one Bottleneck."""
    _, result = resnet
    save_imported(result.project, result.weights, tmp_path / "resnet50.json")
    exported = export_model(tmp_path / "resnet50.json", "python", tmp_path / "code")
    assert exported.max_abs_diff <= 1e-4
    source = (tmp_path / "code" / "model.py").read_text()
    classes = [line.split("(")[0][6:] for line in source.splitlines() if line.startswith("class ")]
    assert sorted(c for c in classes if c.startswith("Bottleneck")) == ["Bottleneck", "Bottleneck2"]
    assert "self.layer4 = Layer(" in source and "self.layer1 = Layer(" in source  # layer1 and layer4: 3 blocks each
    model = import_file(tmp_path / "code" / "model.py", "resnet50_blocks").build_model()
    used = [type(m).__name__ for m in model.modules()]
    assert used.count("Bottleneck") == 4 and used.count("Bottleneck2") == 12
