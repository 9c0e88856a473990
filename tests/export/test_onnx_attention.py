"""import-onnx of self-attention that torch.onnx.export(dynamo=True) writes out as matrix products."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx
from engine.layers.modules import CausalSelfAttention


class Attend(nn.Module):
    """x + attention(x, x, x) then a Linear head: batch-first nn.MultiheadAttention."""

    def __init__(self, heads: int, bias: bool) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(32, heads, bias=bias, batch_first=True)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attention(x, x, x, need_weights=False)
        return self.head(y + x)


class EncoderBlock(nn.Module):
    """ViT's pre-norm encoder block: LayerNorm, attention, residual, LayerNorm, GELU MLP, residual."""

    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(32, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(32, 4, batch_first=True)
        self.ln_2 = nn.LayerNorm(32, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class Causal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = CausalSelfAttention(32, 2, max_len=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)


def _import(model: nn.Module, path: Path, dynamic: bool) -> object:
    torch.manual_seed(0)
    shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if dynamic else None
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model.eval(), (torch.randn(2, 6, 32),), str(path), dynamo=True, dynamic_shapes=shapes)
    return import_onnx(path)


@pytest.mark.parametrize(("heads", "bias", "dynamic"), [(1, True, True), (4, False, True), (8, True, False)])
def test_multihead_self_attention_imports_as_one_layer(tmp_path: Path, heads: int, bias: bool,
                                                       dynamic: bool) -> None:
    torch.manual_seed(1)
    result = _import(Attend(heads, bias), tmp_path / "attend.onnx", dynamic)
    (attention,) = [n for n in result.project.graph if n.type_id == "self_attention"]
    assert attention.params == {"num_heads": heads, "dropout": 0.0, "bias": bias, "causal": False}
    assert attention.id == "attention" and result.max_abs_diff < 1e-5
    assert len(result.project.graph) == 5  # input, attention, add, head, output


def test_a_vit_encoder_block_imports_with_its_names(tmp_path: Path) -> None:
    result = _import(EncoderBlock(), tmp_path / "block.onnx", dynamic=True)
    types = sorted(n.type_id for n in result.project.graph)
    assert types.count("self_attention") == 1 and types.count("layernorm") == 2 and "gelu" in types
    assert "self_attention" in result.project.graph.nodes and result.max_abs_diff < 1e-5


def test_causal_self_attention_is_recognized_by_its_result(tmp_path: Path) -> None:
    result = _import(Causal(), tmp_path / "causal.onnx", dynamic=True)
    (attention,) = [n for n in result.project.graph if n.type_id == "self_attention"]
    assert attention.params["causal"] is True and result.max_abs_diff < 1e-5
