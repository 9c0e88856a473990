"""Recurrent layers: RNN, LSTM and GRU over batch-first sequences (N, T, features)."""

from __future__ import annotations

from typing import Any, ClassVar

from engine.layers.base import (Example, ModuleCall, Inference, LayerType, Params, TensorSpec, register, require_sequence)
from engine.layers.params import bool_param, choice_param, float_param, int_param
from engine.layers.recognize import FromModule, Imported, module_state


def _recurrent_reader(kind: str) -> Any:
    """A batch-first ``nn.LSTM`` (``GRU``, ``RNN``) with biases and no projection, bare (its output
    sequence, as a traced ``out, _ = self.lstm(x)`` uses it) or in the app's ``RecurrentBlock``."""
    def read(m: Any) -> Imported | None:
        wrapped = type(m).__name__ == "RecurrentBlock"
        rnn = m.rnn if wrapped else m
        if type(rnn).__name__ != kind or not rnn.batch_first or rnn.proj_size or not rnn.bias:
            return None
        params: dict[str, Any] = {"hidden_size": rnn.hidden_size, "num_layers": rnn.num_layers,
                                  "bidirectional": rnn.bidirectional, "dropout": float(rnn.dropout),
                                  "output": "sequence" if not wrapped or m.return_sequence else "last"}
        if kind == "RNN":
            params["nonlinearity"] = rnn.nonlinearity
        return params, module_state(rnn, "rnn.")
    return read


class _Recurrent(LayerType):
    """Shared declaration and rules of RNN, LSTM and GRU (which differ in gate count)."""

    category = "Recurrent"
    key_params = ("hidden_size", "num_layers", "output")
    #: Gate blocks per weight matrix: 1 for RNN, 4 for LSTM, 3 for GRU.
    gates: ClassVar[int] = 1
    #: Name of the torch.nn class.
    module_name: ClassVar[str] = ""
    params = (
        int_param("hidden_size", 64, "Size of the hidden state per direction.", min=1, max=1_000_000),
        int_param("num_layers", 1, "Number of recurrent layers stacked on each other.", min=1, max=64),
        bool_param("bidirectional", False, "Also read the sequence backwards; doubles the output size."),
        float_param("dropout", 0.0, "Dropout between stacked layers while training (needs num_layers 2+).",
                    min=0.0, max=0.99),
        choice_param("output", "sequence", ("sequence", "last"),
                     "sequence: the output at every step (N, T, H); last: the final hidden state (N, H). "
                     "H doubles when bidirectional."),
    )

    def check_combination(self, p: Params) -> list[tuple[str, str]]:
        if p.dropout > 0 and p.num_layers == 1:
            return [("dropout", "acts only between stacked layers, so it does nothing with num_layers 1: "
                                "set num_layers to 2 or more, or set dropout to 0 and add a Dropout layer after it")]
        return []

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_sequence(x, self.title)
        steps, features = x.dims
        directions = 2 if p.bidirectional else 1
        hidden = p.hidden_size
        parameters = flops = 0
        for layer in range(p.num_layers):
            in_size = features if layer == 0 else hidden * directions
            # per direction: W_ih (gates*H, in), W_hh (gates*H, H), and two biases (gates*H)
            parameters += directions * self.gates * hidden * (in_size + hidden + 2)
            flops += directions * steps * 2 * self.gates * hidden * (in_size + hidden)
        out_dims = (steps, hidden * directions) if p.output == "sequence" else (hidden * directions,)
        return Inference(TensorSpec(out_dims), parameters, flops)

    def _extra_args(self, p: Params) -> dict[str, Any]:
        """Constructor arguments specific to one recurrent type."""
        return {}

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        rnn = ModuleCall.of(f"nn.{self.module_name}", inputs[0].dims[-1], p.hidden_size, num_layers=p.num_layers,
                            batch_first=True, dropout=p.dropout, bidirectional=p.bidirectional,
                            **self._extra_args(p))
        return ModuleCall.of("RecurrentBlock", rnn, return_sequence=p.output == "sequence")


@register
class RNN(_Recurrent):
    """Elman recurrent layer."""

    type_id = "rnn"
    imports = (FromModule(("nn.RNN",), _recurrent_reader("RNN"), tuple_output=0),
               FromModule(("RecurrentBlock",), _recurrent_reader("RNN")))
    title = "RNN"
    doc = "Simple recurrent layer: reads a sequence step by step, updating a hidden state h = tanh(Wx + Uh + b)."
    id_prefix = "rnn"
    module_name = "RNN"
    gates = 1
    params = (*_Recurrent.params,
              choice_param("nonlinearity", "tanh", ("tanh", "relu"), "Activation of the hidden state."))
    examples = (
        Example(((7, 5),), {"hidden_size": 8}),
        Example(((6, 3),), {"hidden_size": 4, "num_layers": 2, "bidirectional": True, "dropout": 0.2,
                            "nonlinearity": "relu", "output": "last"}),
    )

    def _extra_args(self, p: Params) -> dict[str, Any]:
        return {"nonlinearity": p.nonlinearity}


@register
class LSTM(_Recurrent):
    """Long short-term memory layer."""

    type_id = "lstm"
    imports = (FromModule(("nn.LSTM",), _recurrent_reader("LSTM"), tuple_output=0),
               FromModule(("RecurrentBlock",), _recurrent_reader("LSTM")))
    title = "LSTM"
    doc = "Long short-term memory: a recurrent layer whose gated memory cell keeps information over long sequences."
    id_prefix = "lstm"
    module_name = "LSTM"
    gates = 4
    examples = (
        Example(((7, 5),), {"hidden_size": 8}),
        Example(((6, 3),), {"hidden_size": 4, "num_layers": 2, "bidirectional": True, "output": "last"}),
        Example(((5, 2),), {"hidden_size": 6, "num_layers": 3, "dropout": 0.1, "output": "last"}),
    )


@register
class GRU(_Recurrent):
    """Gated recurrent unit layer."""

    type_id = "gru"
    imports = (FromModule(("nn.GRU",), _recurrent_reader("GRU"), tuple_output=0),
               FromModule(("RecurrentBlock",), _recurrent_reader("GRU")))
    title = "GRU"
    doc = "Gated recurrent unit: a lighter gated recurrent layer, often as good as an LSTM with fewer weights."
    id_prefix = "gru"
    module_name = "GRU"
    gates = 3
    examples = (
        Example(((7, 5),), {"hidden_size": 8, "bidirectional": True}),
        Example(((6, 3),), {"hidden_size": 4, "num_layers": 2, "dropout": 0.3, "output": "last"}),
    )
