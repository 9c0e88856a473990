"""Import onto the canvas (torch.fx and ONNX), round trips, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import networkx as nx
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from engine.compile import compile_graph
from engine.compile.export import ExportResult
from engine.compile.export.source import load_source
from engine.compile.importers import ImportProblem, import_onnx, import_torch_module, save_imported
from engine.compile.weights import apply_weights, sibling_weights
from engine.graph import Graph
from engine.graph.fileformat import load_project
from engine.shapes import analyze, ancestors_and_self
from tests.conftest import ROOT
from tests.export.conftest import TEMPLATE_IDS, TEMPLATES

Exported = Callable[..., ExportResult]
#: No-ops in inference that an ONNX export drops (Identity emits no code at all).
INFERENCE_NO_OPS = {"dropout", "identity"}
#: Layers whose ONNX export does not map back onto one layer: a Transformer Encoder Layer imports
#: as its parts (tests/export/test_onnx_templates_roundtrip.py checks those templates).
NOT_FROM_ONNX = {"transformer_encoder_layer"}
#: Layers the ONNX optimizer folds into their neighbours (BatchNorm into the convolution).
FOLDED_IN_ONNX = {"batchnorm1d", "batchnorm2d"}


def _types(path: Path) -> set[str]:
    return {node.type_id for node in load_project(path).graph}


def _from_onnx(path: Path) -> bool:
    """Whether the template's ONNX export maps back (LSTM and GRU do, stacked and bidirectional too)."""
    return not _types(path) & NOT_FROM_ONNX


ONNX_ROUND_TRIP = [t for t in TEMPLATES if _from_onnx(t)]


def structure(graph: Graph, keep: set[str] | None = None, drop: frozenset[str] = frozenset()) -> nx.DiGraph:
    """The graph's layer types and connections, with ``drop`` types contracted away."""
    g = nx.DiGraph()
    nodes = [n for n in graph if keep is None or n.id in keep]
    for n in nodes:
        g.add_node(n.id, type="input" if n.type_id == "noise_input" else n.type_id)  # noise is an input elsewhere
    for e in graph.edges:
        if e.source in g and e.target in g:
            g.add_edge(e.source, e.target)
    for n in nodes:
        if n.type_id in drop:
            for source in list(g.predecessors(n.id)):
                for target in list(g.successors(n.id)):
                    g.add_edge(source, target)
            g.remove_node(n.id)
    return g


def assert_same_model(original: Path, project_graph: Graph, weights: dict[str, torch.Tensor],
                      drop: frozenset[str] = frozenset(), tolerance: float = 1e-5) -> None:
    source = load_source(original)
    keep = ancestors_and_self(source.project.graph.nx_graph(), source.compiled.output_ids)
    same = nx.is_isomorphic(structure(source.project.graph, keep, drop), structure(project_graph, None, drop),
                            node_match=lambda a, b: a["type"] == b["type"])
    assert same, "the imported graph has another structure"
    compiled = compile_graph(project_graph)
    apply_weights(compiled.module, weights, "imported")
    compiled.module.eval()
    assert analyze(project_graph).parameters == sum(p.numel() for p in source.compiled.module.parameters())
    inputs = source.sample_inputs(batch=4, seed=11)
    with torch.no_grad():
        torch.testing.assert_close(compiled.module(*inputs), source.compiled.module(*inputs), rtol=0, atol=tolerance)


@pytest.fixture
def importable(exported: Exported) -> Iterator[Callable[[Path], tuple[str, Path]]]:
    """Put an exported python folder on sys.path as module ``model``; returns the spec and weights."""
    added: list[str] = []

    def use(project: Path) -> tuple[str, Path]:
        folder = exported(project, "python").paths[0].parent
        sys.modules.pop("model", None)
        sys.path.insert(0, str(folder))
        added.append(str(folder))
        return "model:build_model", folder / "model.safetensors"

    yield use
    for folder in added:
        sys.path.remove(folder)
    sys.modules.pop("model", None)


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_python_export_imports_back_with_torch_fx(template: Path,
                                                   importable: Callable[[Path], tuple[str, Path]]) -> None:
    spec = load_source(template).compiled.input_specs[0]
    module, weights = importable(template)
    result = import_torch_module(module, None, spec.dims, weights)
    assert result.max_abs_diff <= 1e-5
    assert_same_model(template, result.project.graph, result.weights, drop=frozenset({"identity"}))


@pytest.mark.parametrize("template", ONNX_ROUND_TRIP, ids=[t.stem for t in ONNX_ROUND_TRIP])
def test_onnx_export_imports_back(template: Path, exported: Exported) -> None:
    result = import_onnx(exported(template, "onnx").paths[0])
    assert result.max_abs_diff <= 1e-5
    if _types(template) & FOLDED_IN_ONNX:  # same outputs; BatchNorm lives inside the convolutions now
        source = load_source(template)
        compiled = compile_graph(result.project.graph)
        apply_weights(compiled.module, result.weights, "imported")
        inputs = source.sample_inputs(batch=4, seed=11)
        with torch.no_grad():
            torch.testing.assert_close(compiled.module.eval()(*inputs), source.compiled.module(*inputs), rtol=0,
                                       atol=1e-5)
    else:
        assert_same_model(template, result.project.graph, result.weights, drop=frozenset(INFERENCE_NO_OPS))


def test_every_layer_round_trips_through_python_source(test_projects: dict[str, Path],
                                                       importable: Callable[[Path], tuple[str, Path]]) -> None:
    for name in ("image_zoo", "sequence_zoo", "language_model"):
        spec = load_source(test_projects[name]).compiled.input_specs[0]
        module, weights_file = importable(test_projects[name])
        project, weights = import_torch_module(module, [], spec.dims, weights_file)
        assert_same_model(test_projects[name], project.graph, weights, drop=frozenset({"identity"}))


def test_onnx_import_of_every_image_layer(exported: Exported, test_projects: dict[str, Path]) -> None:
    # Resize, ConvTranspose, AveragePool, Concat, Mul, the GELU formula, LayerNormalization, LogSoftmax
    result = import_onnx(exported(test_projects["image_zoo"], "onnx").paths[0])
    assert result.max_abs_diff <= 1e-5
    types = {node.type_id for node in result.project.graph}
    assert {"upsample", "conv_transpose2d", "avgpool2d", "concat", "multiply", "gelu", "layernorm"} <= types


def test_imported_project_opens_with_its_weights_and_exports(tmp_path: Path, exported: Exported) -> None:
    template = next(t for t in TEMPLATES if t.stem == "cnn_digits")
    result = import_onnx(exported(template, "onnx").paths[0])
    lines = save_imported(result.project, result.weights, tmp_path / "imported.json")
    assert len(lines) == 2 and sibling_weights(tmp_path / "imported.json") == tmp_path / "imported.safetensors"
    reopened = load_source(tmp_path / "imported.json")
    assert reopened.origin == "weights from imported.safetensors"
    assert_same_model(template, load_project(tmp_path / "imported.json").graph, reopened.weights,
                      drop=frozenset(INFERENCE_NO_OPS))
    positions = {n.position for n in reopened.project.graph}
    assert len(positions) == len(reopened.project.graph)  # laid out, no two nodes on one spot


# ------------------------------------------------------------------ bad input
def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], check=False, capture_output=True,
                          text=True,
                          cwd=cwd, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_cli_export_and_import_round_trip(tmp_path: Path) -> None:
    template = ROOT / "templates" / "cnn_digits.json"
    result = run_cli("export", str(template), "--format", "onnx", "--out", str(tmp_path / "cnn.onnx"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("onnx: self-check max |diff| ")
    result = run_cli("import-onnx", str(tmp_path / "cnn.onnx"), "--out", str(tmp_path / "cnn.json"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cnn.safetensors").exists() and "import: self-check" in result.stdout
    result = run_cli("export", str(tmp_path / "cnn.json"), "--format", "pt2", "--out", str(tmp_path / "again.pt2"))
    assert result.returncode == 0, result.stderr


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00\x01 this is not a protobuf \xff" * 10)
    assert_user_error(run_cli("import-onnx", str(path), "--out", str(tmp_path / "x.json")), "not an ONNX model")
    assert not (tmp_path / "x.json").exists()


def test_unsupported_onnx_operators_are_all_listed(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    nodes = [helper.make_node("Sin", ["x"], ["s"], name="wave"), helper.make_node("Relu", ["s"], ["r"], name="act"),
             helper.make_node("Cos", ["r"], ["y"], name="other_wave")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(tmp_path / "trig.onnx"))
    result = run_cli("import-onnx", str(tmp_path / "trig.onnx"), "--out", str(tmp_path / "trig.json"))
    assert_user_error(result, "nothing imported", "wave (Sin)", "other_wave (Cos)")
    assert not (tmp_path / "trig.json").exists() and not (tmp_path / "trig.safetensors").exists()


MODULES = '''
import torch
from torch import nn


class Branchy(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = nn.Linear(width, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


class Wavy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gru = nn.GRU(4, 3, batch_first=False)

    def forward(self, x):
        return torch.sin(self.fc(x)) + torch.cos(x)


class Fine(nn.Module):
    def __init__(self, hidden, classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return torch.log_softmax(self.head(self.body(x)), dim=1)
'''


def test_torch_import_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "user_models.py").write_text(MODULES)
    result = run_cli("import-torch", "user_models:Fine", "--args", '{"hidden": 8}', "--out", "fine.json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = load_project(tmp_path / "fine.json")
    assert [n.type_id for n in project.graph] == ["input", "linear", "relu", "dropout", "linear", "log_softmax",
                                                  "output"]
    assert "body_0" in project.graph.nodes and "head" in project.graph.nodes


def test_a_module_that_cannot_be_traced(tmp_path: Path) -> None:
    (tmp_path / "user_models.py").write_text(MODULES)
    result = run_cli("import-torch", "user_models:Branchy", "--out", "b.json", cwd=tmp_path)
    assert_user_error(result, "cannot trace the module with torch.fx")


def test_unmapped_torch_operations_are_all_listed(tmp_path: Path) -> None:
    (tmp_path / "user_models.py").write_text(MODULES)
    result = run_cli("import-torch", "user_models:Wavy", "--out", "w.json", cwd=tmp_path)
    assert_user_error(result, "nothing imported", "sin", "cos")
    assert not (tmp_path / "w.json").exists()


@pytest.mark.parametrize("args", [["no_such_module:Net"], ["user_models"], ["user_models:Fine", "--args", "[1"],
                                  ["user_models:Fine", "--args", "[]"], ["user_models:Fine", "--args", "[4]",
                                                                          "--input-shape", "a,b"]])
def test_bad_torch_import_arguments(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "user_models.py").write_text(MODULES)
    assert_user_error(run_cli("import-torch", *args, "--out", "x.json", cwd=tmp_path))


def test_export_of_an_invalid_graph(tmp_path: Path) -> None:
    text = (ROOT / "tests" / "data" / "lenet5.json").read_text().replace('"out_features": 120', '"out_features": 0')
    (tmp_path / "bad.json").write_text(text)
    result = run_cli("export", str(tmp_path / "bad.json"), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert_user_error(result, "the graph is invalid", "fc1")


@pytest.mark.parametrize("args", [["--format", "onnx", "--out", "/nonexistent/folder/m.onnx"],
                                  ["--format", "keras", "--out", "m.h5"],
                                  ["--format", "pt2", "--out", "m.pt2", "--discriminator"]])
def test_bad_export_arguments(tmp_path: Path, args: list[str]) -> None:
    assert_user_error(run_cli("export", str(ROOT / "templates" / "cnn_digits.json"), *args))


def test_export_of_something_that_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text("[1, 2")
    assert_user_error(run_cli("export", str(tmp_path / "notes.json"), "--format", "onnx", "--out", "m.onnx"))
    assert_user_error(run_cli("export", str(tmp_path), "--format", "onnx", "--out", "m.onnx"), "not a run folder")


def test_import_problem_is_a_user_error() -> None:
    with pytest.raises(ImportProblem, match="expected MODULE:CLASS"):
        import_torch_module("nocolon")
