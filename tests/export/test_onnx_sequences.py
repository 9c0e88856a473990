"""import-onnx of sequence layers that torch.onnx.export writes as several operators: a Positional Encoding
(an Add of a constant table, sinusoidal or learned, decided by its values) and an RNN unrolled step by step
(one canvas RNN, or one line saying why not); and what a refusal says about a value computed from shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from engine.compile.importers import import_onnx
from engine.errors import UserError
from engine.layers.modules import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from tests.export.test_onnx_patterns import _export, _layers


class _Encoded(nn.Module):
    """A Linear to E features, then a position table added."""

    def __init__(self, encoding: nn.Module, size: int) -> None:
        super().__init__()
        self.embed = nn.Linear(4, size)
        self.position = encoding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.position(self.embed(x))


class _TableAdded(nn.Module):
    """``x + self.table`` with a (1, T, E) parameter."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table


@pytest.mark.parametrize("size", [8, 7])
def test_a_sinusoidal_table_imports_as_a_sinusoidal_positional_encoding(tmp_path: Path, size: int) -> None:
    model = _Encoded(SinusoidalPositionalEncoding(16, size), size)
    result = import_onnx(_export(model, torch.randn(2, 6, 4), tmp_path / "sin.onnx", dynamic=True))
    (encoding,) = [n for n in _layers(result) if n.type_id == "positional_encoding"]
    assert encoding.params == {"kind": "sinusoidal", "max_len": 6}
    assert not [k for k in result.weights if k.startswith(f"{encoding.id}.")]
    assert result.max_abs_diff < 1e-5


def test_a_sinusoidal_table_of_the_inputs_own_shape_is_sinusoidal_too(tmp_path: Path) -> None:
    table = SinusoidalPositionalEncoding(5, 6).encoding.unsqueeze(0)
    result = import_onnx(_export(_TableAdded(table), torch.randn(2, 5, 6), tmp_path / "own.onnx", dynamic=True))
    assert [(n.type_id, n.params) for n in _layers(result)] == [("positional_encoding",
                                                                 {"kind": "sinusoidal", "max_len": 5})]


def test_any_other_table_of_the_steps_is_a_learned_positional_encoding(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Encoded(LearnedPositionalEncoding(16, 8), 8)
    result = import_onnx(_export(model, torch.randn(2, 6, 4), tmp_path / "learned.onnx", dynamic=True))
    (encoding,) = [n for n in _layers(result) if n.type_id == "positional_encoding"]
    assert encoding.params == {"kind": "learned", "max_len": 6}
    assert torch.equal(result.weights[f"{encoding.id}.position_embedding"],
                       model.position.position_embedding.detach()[:6])
    assert result.max_abs_diff < 1e-5


class _Recurrent(nn.Module):
    """``nn.RNN`` (batch first) read as its last hidden state or its output sequence, then a Linear."""

    def __init__(self, nonlinearity: str = "tanh", layers: int = 1, sequence: bool = False) -> None:
        super().__init__()
        self.rnn = nn.RNN(6, 8, num_layers=layers, nonlinearity=nonlinearity, batch_first=True)
        self.sequence = sequence
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, h = self.rnn(x)
        return self.head(y if self.sequence else h[-1])


@pytest.mark.parametrize(("nonlinearity", "sequence", "dynamic"),
                         [("tanh", False, True), ("relu", True, True), ("tanh", True, False)])
def test_an_unrolled_rnn_imports_as_one_rnn(tmp_path: Path, nonlinearity: str, sequence: bool, dynamic: bool) -> None:
    torch.manual_seed(0)
    model = _Recurrent(nonlinearity, sequence=sequence)
    result = import_onnx(_export(model, torch.randn(2, 5, 6), tmp_path / "rnn.onnx", dynamic=dynamic))
    assert [n.type_id for n in _layers(result)] == ["rnn", "linear"]
    assert _layers(result)[0].params == {"hidden_size": 8, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
                                         "output": "sequence" if sequence else "last", "nonlinearity": nonlinearity}
    assert sum(w.numel() for w in result.weights.values()) == sum(p.numel() for p in model.parameters())
    assert result.max_abs_diff < 1e-5


def test_a_stacked_unrolled_rnn_is_refused_in_one_line(tmp_path: Path) -> None:
    path = _export(_Recurrent(layers=2), torch.randn(2, 5, 6), tmp_path / "stacked.onnx", dynamic=True)
    with pytest.raises(UserError, match=r"1 operation\(s\) of 1 kind\(s\).*an RNN unrolled step by step "
                                        r"\(10 Tanh steps over 5 time steps\): only one layer in one direction"):
        import_onnx(path)


class _ZerosUsed(nn.Module):
    """Zeros shaped from the batch size, used by an operator no layer maps."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + torch.zeros(x.size(0), 3).cos()


def test_a_refusal_says_what_the_value_is_and_lists_nothing_it_feeds(tmp_path: Path) -> None:
    path = _export(_ZerosUsed(), torch.randn(2, 6), tmp_path / "zeros.onnx", dynamic=True)
    with pytest.raises(UserError) as error:
        import_onnx(path)
    message = str(error.value)
    assert "1 operation(s) of 1 kind(s)" in message
    assert "uses zeros shaped from the batch size in a way no canvas layer does" in message
