"""Imported layers keep the module hierarchy: ids follow module paths, each node its module's path."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx, import_torch_module
from engine.graph.fileformat import ProjectFileError, from_json_fragment, loads, to_json, to_json_fragment
from engine.graph.model import Edge, Graph, Node
from engine.graph.project import Project
from tests.zoo.resnet import resnet18

RESNET = "tests.zoo.resnet:resnet18"
SMALL_RESNET = {"num_classes": 10, "base_planes": 8}


def _groups(graph: Graph) -> dict[str, str]:
    return {node.id: node.group for node in graph}


def test_torch_import_names_nodes_after_modules_and_keeps_their_groups() -> None:
    result = import_torch_module(RESNET, SMALL_RESNET, (3, 32, 32))
    groups = _groups(result.project.graph)
    assert groups["conv1"] == "" and groups["layer1_0_conv1"] == "layer1.0"
    assert groups["layer1_0_add"] == "layer1.0"  # the residual sum in BasicBlock.forward
    assert groups["layer2_0_downsample_0"] == "layer2.0.downsample"
    assert groups["fc"] == ""


def test_onnx_import_reads_groups_from_the_exporters_scopes(tmp_path: Path) -> None:
    module = resnet18(**SMALL_RESNET).eval()
    path = tmp_path / "resnet.onnx"
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module, (torch.randn(2, 3, 32, 32),), str(path), dynamo=True)
    groups = _groups(import_onnx(path).project.graph)
    assert groups["layer1_0_conv1"] == "layer1.0" and groups["layer1_0_add"] == "layer1.0"
    assert groups["layer2_0_downsample_0"] == "layer2.0.downsample"


def test_groups_round_trip_through_files_and_the_clipboard() -> None:
    graph = Graph()
    graph.extend([Node("x", "input", {"shape": [4]}), Node("fc", "linear", {"out_features": 2}, group="head.0")],
                 [Edge("x", "fc", "in")])

    data = to_json(Project(graph=graph))
    assert "group" not in data["graph"]["nodes"][0] and data["graph"]["nodes"][1]["group"] == "head.0"
    assert loads(json.dumps(data)).graph.nodes["fc"].group == "head.0"
    nodes, _ = from_json_fragment(to_json_fragment(graph, ["fc"]))
    assert nodes[0].group == "head.0"
    assert graph.copy().nodes["fc"].group == "head.0"


@pytest.mark.parametrize("group", [7, "a\nb", "x" * 600])
def test_a_bad_group_is_refused_by_field(group: object) -> None:
    data = to_json(Project(graph=Graph()))
    data["graph"]["nodes"] = [{"id": "x", "type": "input", "params": {"shape": [4]}, "group": group}]
    with pytest.raises(ProjectFileError, match=r"graph\.nodes\[0\]\.group"):
        loads(json.dumps(data))


class _Spectrum(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x).real


class _SpectralNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(8, 8), _Spectrum()) for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


def test_an_unmapped_call_is_refused_with_its_module_path() -> None:
    from engine.compile.importers import ImportProblem

    with pytest.raises(ImportProblem, match=r"have no canvas layer: blocks\.0\.1\.fft_fft \(call_function fft_fft\)$"):
        import_torch_module(f"{__name__}:_SpectralNet", None, (8,))
