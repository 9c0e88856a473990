"""ONNX import of strided views (``aten.as_strided``) written out as a Gather of a flattened tensor.

ConvNeXt's block ends with permute -> Linear -> permute: the pooling after it reads a
channels-last-strided tensor, which ``torch.onnx.export(dynamo=True)`` writes as
``Reshape(x, [-1])`` and a ``Gather`` of constant indices (fixed batch) or of indices computed
from the batch size with ``Range`` (dynamic batch).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from engine.compile import compile_graph
from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx
from engine.compile.importers.onnx_strided import apply_view, permuted_view
from engine.compile.weights import apply_weights
from engine.errors import UserError

SHAPE = (3, 4, 5)
NOT_A_PERMUTATION = r"a strided view \(as_strided\) that is not a permutation of its input"


def _export(model: nn.Module, path: Path, dynamic: bool) -> Path:
    extra: dict[str, Any] = {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1, max=1024)},)} if dynamic else {}
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model.eval(), (torch.randn(2, *SHAPE),), str(path), dynamo=True, **extra)
    return path


def _ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _check_outputs(result: Any, model: nn.Module, dynamic: bool) -> None:
    """The compiled import computes the module's outputs, at several batch sizes for a dynamic batch."""
    module = compile_graph(result.project.graph).module
    apply_weights(module, result.weights, "imported")
    module.eval()
    for size in (1, 2, 5) if dynamic else (2,):
        x = torch.randn(size, *SHAPE, generator=torch.Generator().manual_seed(size))
        with torch.no_grad():
            torch.testing.assert_close(module(x), model(x), rtol=0, atol=1e-5)


def _layers(result: Any, type_id: str) -> list[Any]:
    return [node for node in result.project.graph.nodes.values() if node.type_id == type_id]


class _ChannelsLastBlock(nn.Module):
    """ConvNeXt's ending: a Linear on channels-last values, permuted back, then pooled."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.linear = nn.Linear(8, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(torch.flatten(self.pool(x), 1))


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed_batch", "dynamic_batch"])
def test_pooling_after_permute_linear_permute_imports(tmp_path: Path, dynamic: bool) -> None:
    torch.manual_seed(0)
    model = _ChannelsLastBlock().eval()
    path = _export(model, tmp_path / "block.onnx", dynamic)
    assert "Gather" in _ops(path)  # the pooled map is exported through as_strided
    assert ("Range" in _ops(path)) == dynamic
    result = import_onnx(path)
    assert result.max_abs_diff < 1e-5
    assert not _layers(result, "reshape")  # the view is the pooled tensor itself: no layer for it
    assert len(_layers(result, "permute")) == 2
    _check_outputs(result, model, dynamic)


class _StridedView(nn.Module):
    """``x.as_strided`` of a convolution's output, read by a Linear on its last dimension."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(3, 6, 1)
        self.linear = nn.Linear(6 if kind != "window" else 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, c, h, w = x.shape
        if self.kind == "channels_last":  # x.permute(0, 2, 3, 1)
            x = x.as_strided((n, h, w, c), (c * h * w, w, 1, h * w))
        elif self.kind == "pixels_by_channel":  # x.reshape(n, c, h * w).transpose(1, 2)
            x = x.as_strided((n, h * w, c), (c * h * w, 1, h * w))
        else:  # a 2 x 2 window of each channel: not every value, not a permutation
            x = x.as_strided((n, c, 2, 2), (c * h * w, h * w, w, 1))
        return self.linear(x)


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed_batch", "dynamic_batch"])
@pytest.mark.parametrize(("kind", "reshape", "dims"), [("channels_last", None, [0, 2, 3, 1]),
                                                       ("pixels_by_channel", [6, 20], [0, 2, 1])])
def test_strided_view_that_permutes_maps_to_reshape_and_permute(tmp_path: Path, dynamic: bool, kind: str,
                                                                reshape: list[int] | None, dims: list[int]) -> None:
    torch.manual_seed(0)
    model = _StridedView(kind).eval()
    path = _export(model, tmp_path / f"{kind}.onnx", dynamic)
    assert {"Reshape", "Gather"} <= _ops(path)
    result = import_onnx(path)
    assert result.max_abs_diff < 1e-5
    assert [list(node.params["shape"]) for node in _layers(result, "reshape")] == ([reshape] if reshape else [])
    assert [list(node.params["dims"]) for node in _layers(result, "permute")] == [dims]
    _check_outputs(result, model, dynamic)


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed_batch", "dynamic_batch"])
def test_strided_view_that_is_not_a_permutation_is_refused(tmp_path: Path, dynamic: bool) -> None:
    path = _export(_StridedView("window"), tmp_path / "window.onnx", dynamic)
    with pytest.raises(UserError, match=NOT_A_PERMUTATION + r".*sizes \[\d, 6, 2, 2\], strides \[120, 20, 5, 1\]"):
        import_onnx(path)


def test_view_follows_the_strides_of_the_indices() -> None:
    sample = [2, 3, 4]
    swapped = np.arange(2 * 24).reshape(2, 6, 4).transpose(0, 2, 1)  # (N, 6, 4) from (N, 2, 3, 4)
    view = permuted_view(sample, swapped)
    assert view == ([6, 4], [0, 2, 1])
    assert np.array_equal(apply_view(view, sample, 2), swapped)
    identity = np.arange(24).reshape(1, 2, 1, 3, 4)  # a size-one axis keeps its place
    assert permuted_view(sample, identity) == ([2, 1, 3, 4], [0, 1, 2, 3, 4])
    assert permuted_view(sample, identity + 1) is None  # an offset
    assert permuted_view(sample, np.zeros((1, 2, 3, 4), dtype=np.int64)) is None  # a value read 24 times
