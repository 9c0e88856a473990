"""The app opens a project with blocks: each instance is one node with its output shape and totals."""

from __future__ import annotations

from pathlib import Path

from engine.graph.fileformat import save_project
from gui.document import Document
from tests.test_blocks_cli import digits_project


def test_a_project_with_blocks_opens_with_one_node_per_instance(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "blocks.json"
    save_project(digits_project(), path)
    doc = Document.open(path)
    try:
        analysis = doc.analysis
        assert analysis.valid and set(analysis.nodes) == set(doc.graph.nodes)
        stage = analysis.nodes["stage1"]
        assert stage.output is not None and tuple(stage.output.dims) == (8, 8, 8)
        assert stage.parameters == 2 * (8 * 8 + 8 + 2 * (8 * 8 * 9 + 8))
        doc.project.blocks["Res"].graph.set_param("conv1", "out_channels", 4)  # an edit inside a definition
        assert not doc.refresh_analysis().valid
        assert any(d.message.startswith("stage1.0/block.0/add: ") for d in doc.analysis.nodes["stage1"].diagnostics)
    finally:
        doc.close()
