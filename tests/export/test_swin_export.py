"""Shifted Window Attention and Patch Merging export to every format, as readable model.py code that
imports back exactly; their ONNX export (rolls, pads, masks) is refused by the ONNX importer with one
entry per kind of operator."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.compile.export import FORMATS, TOLERANCE, ExportResult
from engine.compile.export.source import load_source
from engine.compile.importers import ImportProblem, import_onnx, import_torch_module
from engine.graph import Graph, Project
from engine.graph.fileformat import save_project
from engine.graph.layout import layered_layout
from tests.export.test_import import assert_same_model, importable  # noqa: F401 - a fixture
from tests.graph_builders import chain, connect, node

Exported = Callable[..., ExportResult]


@pytest.fixture(scope="module")
def swin_blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Channels-last maps (6 x 5, padded to whole 3 x 3 windows): a plain and a shifted window block
    with residuals, then Patch Merging."""
    graph = Graph()
    chain(graph, node("input", "x", shape=[6, 5, 8]), node("layernorm", "norm1"),
          node("shifted_window_attention", "attn1", num_heads=2, window_size=[3, 3]))
    chain(graph, node("add", "res1"))
    connect(graph, "x", "res1", "in1")
    connect(graph, "attn1", "res1", "in2")
    chain(graph, "res1", node("shifted_window_attention", "attn2", num_heads=2, window_size=[3, 3],
                              shift_size=[1, 1], qkv_bias=False))
    chain(graph, node("add", "res2"))
    connect(graph, "res1", "res2", "in1")
    connect(graph, "attn2", "res2", "in2")
    chain(graph, "res2", node("patch_merging", "merge"), node("output", "out"))
    graph.move_nodes(layered_layout(graph))
    project = Project(graph=graph, dataset={"name": "digits"}, training={"epochs": 1, "batch_size": 64},
                      meta={"name": "Swin blocks", "family": "transformer", "task": "", "description": ""})
    path = tmp_path_factory.mktemp("swin") / "swin_blocks.json"
    save_project(project, path)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_swin_layers_export_and_check_themselves(fmt: str, exported: Exported, swin_blocks: Path) -> None:
    assert exported(swin_blocks, fmt).max_abs_diff <= TOLERANCE


def test_model_py_of_swin_layers_imports_back_exactly(swin_blocks: Path, exported: Exported,
                                                      importable: Callable[[Path], tuple[str, Path]],  # noqa: F811
                                                      ) -> None:
    text = (exported(swin_blocks, "python").paths[0].parent / "model.py").read_text(encoding="utf-8")
    for line in ("class ShiftedWindowAttention(nn.Module):", "class PatchMerging(nn.Module):",
                 "self.attn1 = ShiftedWindowAttention(8, (3, 3), (0, 0), 2, (6, 5))",
                 "self.attn2 = ShiftedWindowAttention(8, (3, 3), (1, 1), 2, (6, 5), qkv_bias=False)",
                 "self.merge = PatchMerging(8)"):
        assert line in text, line
    module, weights = importable(swin_blocks)
    result = import_torch_module(module, None, load_source(swin_blocks).compiled.input_specs[0].dims, weights)
    assert result.max_abs_diff <= 1e-5
    assert_same_model(swin_blocks, result.project.graph, result.weights)


def test_onnx_import_of_window_attention_is_refused_by_kind(swin_blocks: Path, exported: Exported) -> None:
    with pytest.raises(ImportProblem) as info:
        import_onnx(exported(swin_blocks, "onnx").paths[0])
    message = str(info.value)
    assert "\n" not in message and "nothing imported" in message and "Pad 3x" in message
