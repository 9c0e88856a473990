"""import-onnx of LSTM and GRU models as torch.onnx.export(dynamo=True) writes them: stacked,
bidirectional, read as the output sequence, its last step or the final hidden state."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx
from engine.errors import UserError


class Recurrent(nn.Module):
    """A batch-first recurrent layer, read one of several ways, then a Linear head."""

    def __init__(self, kind: str, layers: int, bidirectional: bool, read: str) -> None:
        super().__init__()
        self.rnn = getattr(nn, kind)(6, 8, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.read = read
        self.head = nn.Linear(16 if bidirectional and read != "final_state" else 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state
        if self.read == "sequence":
            return self.head(y)
        if self.read == "last_step":
            return self.head(y[:, -1])
        if self.read == "both_directions":
            return self.head(torch.cat([h[-2], h[-1]], dim=1))
        return self.head(h[-1])  # the top layer's final hidden state


def _export(model: nn.Module, path: Path, batch: int | None = None) -> Path:
    x = torch.randn(batch or 2, 5, 6)
    dynamic = None if batch else ({0: torch.export.Dim("batch", min=1, max=1024)},)
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=True, dynamic_shapes=dynamic)
    return path


CASES = [("LSTM", 1, False, "final_state"), ("LSTM", 2, False, "sequence"), ("LSTM", 2, True, "last_step"),
         ("LSTM", 2, True, "both_directions"), ("LSTM", 1, True, "sequence"), ("GRU", 1, False, "last_step"),
         ("GRU", 3, False, "final_state"), ("GRU", 2, True, "sequence"), ("GRU", 1, True, "both_directions")]


@pytest.mark.parametrize(("kind", "layers", "bidirectional", "read"), CASES,
                         ids=[f"{k}-{n}-{'bi' if b else 'uni'}-{r}" for k, n, b, r in CASES])
def test_recurrent_stacks_import_as_one_layer(tmp_path: Path, kind: str, layers: int, bidirectional: bool,
                                              read: str) -> None:
    torch.manual_seed(0)
    module = Recurrent(kind, layers, bidirectional, read)
    result = import_onnx(_export(module, tmp_path / "rnn.onnx"))
    recurrent = [n for n in result.project.graph if n.type_id == kind.lower()]
    assert len(recurrent) == 1
    params = recurrent[0].params
    assert (params["num_layers"], params["bidirectional"]) == (layers, bidirectional)
    assert params["output"] == ("sequence" if read in ("sequence", "last_step") else "last")
    assert result.max_abs_diff < 1e-5
    assert sum(w.numel() for w in result.weights.values()) == sum(p.numel() for p in module.parameters())


def test_a_fixed_batch_export_imports_too(tmp_path: Path) -> None:
    result = import_onnx(_export(Recurrent("LSTM", 2, True, "both_directions"), tmp_path / "fixed.onnx", batch=4))
    assert result.max_abs_diff < 1e-5


def test_one_direction_of_a_bidirectional_state_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="one direction of a bidirectional layer"):
        import_onnx(_export(Recurrent("GRU", 1, True, "final_state"), tmp_path / "one_direction.onnx"))
