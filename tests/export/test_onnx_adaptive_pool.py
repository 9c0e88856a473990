"""ONNX import of adaptive pooling that the exporter wrote out as a gather of windows."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx
from engine.compile.importers.onnx_windows import adaptive_window_indices
from engine.errors import UserError


def _export(model: nn.Module, size: int, path: Path) -> Path:
    x = torch.randn(2, 3, size, size)
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=True,
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    return path


def test_window_indices_follow_adaptive_pooling() -> None:
    assert adaptive_window_indices(1, 3).tolist() == [[0], [0], [0]]
    assert adaptive_window_indices(7, 6).tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]
    assert adaptive_window_indices(5, 3) is None  # windows of 2, 3 and 2 rows


@pytest.mark.parametrize(("size", "output"), [(1, 6), (13, 6), (7, (6, 3))])
def test_gathered_windows_import_as_one_adaptive_pooling(tmp_path: Path, size: int,
                                                          output: int | tuple[int, int]) -> None:
    cells = output * output if isinstance(output, int) else output[0] * output[1]
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(output), nn.Flatten(), nn.Linear(4 * cells, 2))
    result = import_onnx(_export(model, size, tmp_path / "pool.onnx"))
    types = [node.type_id for node in result.project.graph.nodes.values()]
    assert "adaptive_avgpool2d" in types and "permute" not in types
    pooled = next(n for n in result.project.graph.nodes.values() if n.type_id == "adaptive_avgpool2d")
    assert tuple(pooled.params["output_size"]) == ((output, output) if isinstance(output, int) else output)
    assert result.max_abs_diff < 1e-5


def test_windows_of_different_sizes_are_reported_by_name(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(3))
    with pytest.raises(UserError, match="adaptive pooling whose windows differ in size"):
        import_onnx(_export(model, 5, tmp_path / "uneven.onnx"))
