"""Map one PyTorch module to a canvas layer: type id, parameter values and its tensors.

Only exact equivalents map: a module whose options the canvas layer cannot express (a
``padding_mode`` other than zeros, ``ceil_mode``, a batch-second RNN, ...) stays unmapped
and is named in the import error.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Class names kept whole while tracing: the app's modules, as in exported model.py files.
CUSTOM_LEAVES = frozenset({"RecurrentBlock", "LearnedPositionalEncoding", "SinusoidalPositionalEncoding",
                           "SelfAttention", "CausalSelfAttention", "CausalTransformerEncoderLayer"})

Mapped = tuple[str, dict[str, Any], dict[str, torch.Tensor]]
_ACTIVATIONS = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.GELU: "gelu", nn.SiLU: "silu",
                nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softmax: "softmax", nn.LogSoftmax: "log_softmax"}


def _pair(value: Any) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _state(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + key: value for key, value in module.state_dict().items()}


def _conv(m: nn.Module) -> Mapped | None:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):  # type: ignore[union-attr]
        return None
    one = isinstance(m, nn.Conv1d)
    size = (lambda v: v[0]) if one else list
    params: dict[str, Any] = {"out_channels": m.out_channels, "kernel_size": size(m.kernel_size),
                              "stride": size(m.stride), "padding": size(m.padding), "dilation": size(m.dilation),
                              "groups": m.groups, "bias": m.bias is not None}
    if isinstance(m, nn.ConvTranspose2d):
        params["output_padding"] = list(m.output_padding)  # type: ignore[arg-type]
        return "conv_transpose2d", params, _state(m)
    return ("conv1d" if one else "conv2d"), params, _state(m)


def _pool(m: nn.Module, type_id: str) -> Mapped | None:
    if m.ceil_mode or getattr(m, "dilation", 1) not in (1, (1, 1)) or getattr(m, "return_indices", False):
        return None
    if isinstance(m, nn.AvgPool2d) and (not m.count_include_pad or m.divisor_override is not None):
        return None
    wrap = (lambda v: v if isinstance(v, int) else v[0]) if type_id == "maxpool1d" else _pair
    stride = m.stride if m.stride is not None else 0
    return type_id, {"kernel_size": wrap(m.kernel_size), "stride": wrap(stride), "padding": wrap(m.padding)}, {}


def _recurrent(rnn: nn.RNNBase, return_sequence: bool, prefix: str) -> Mapped | None:
    if not rnn.batch_first or rnn.proj_size or not rnn.bias:
        return None
    type_id = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}.get(type(rnn))  # type: ignore[call-overload]
    if type_id is None:
        return None
    params: dict[str, Any] = {"hidden_size": rnn.hidden_size, "num_layers": rnn.num_layers,
                              "bidirectional": rnn.bidirectional, "dropout": float(rnn.dropout),
                              "output": "sequence" if return_sequence else "last"}
    if type_id == "rnn":
        params["nonlinearity"] = rnn.nonlinearity
    return type_id, params, _state(rnn, prefix)


def _transformer(m: nn.TransformerEncoderLayer, causal: bool) -> Mapped | None:
    activation = getattr(m, "activation_relu_or_gelu", 0)
    if not m.self_attn.batch_first or activation not in (1, 2) or m.norm1.eps != 1e-5:
        return None
    params = {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
              "dropout": float(m.dropout.p), "activation": "relu" if activation == 1 else "gelu",
              "norm_first": bool(m.norm_first), "causal": causal}
    return "transformer_encoder_layer", params, _state(m)


def _custom(m: nn.Module, name: str) -> Mapped | None:
    if name == "RecurrentBlock":
        return _recurrent(m.rnn, bool(m.return_sequence), "rnn.")  # type: ignore[arg-type]
    if name in ("SelfAttention", "CausalSelfAttention"):
        attention = m.attention
        return "self_attention", {"num_heads": attention.num_heads, "dropout": float(attention.dropout),
                                  "bias": attention.in_proj_bias is not None,
                                  "causal": name == "CausalSelfAttention"}, _state(m)
    if name == "LearnedPositionalEncoding":
        return "positional_encoding", {"kind": "learned", "max_len": m.position_embedding.shape[0]}, _state(m)
    if name == "SinusoidalPositionalEncoding":
        return "positional_encoding", {"kind": "sinusoidal", "max_len": m.encoding.shape[0]}, {}
    if name == "CausalTransformerEncoderLayer":
        return _transformer(m, causal=True)  # type: ignore[arg-type]
    return None


def map_module(m: nn.Module) -> Mapped | None:
    """``(type_id, params, tensors)`` for a module, or ``None`` when no layer matches exactly."""
    name = type(m).__name__
    if name in CUSTOM_LEAVES:
        return _custom(m, name)
    if isinstance(m, nn.Linear):
        return "linear", {"out_features": m.out_features, "bias": m.bias is not None}, _state(m)
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)) and type(m) in (nn.Conv1d, nn.Conv2d,
                                                                                   nn.ConvTranspose2d):
        return _conv(m)
    if type(m) in _ACTIVATIONS:
        type_id = _ACTIVATIONS[type(m)]  # type: ignore[index]
        params = {"negative_slope": m.negative_slope} if type_id == "leaky_relu" else \
            {"alpha": m.alpha} if type_id == "elu" else {"approximate": m.approximate} if type_id == "gelu" else \
            {"dim": m.dim if m.dim is not None else -1} if type_id in ("softmax", "log_softmax") else {}
        return type_id, params, {}
    if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) and m.track_running_stats:
        params = {"eps": m.eps, "momentum": m.momentum if m.momentum is not None else 0.1, "affine": m.affine}
        return type(m).__name__.lower(), params, _state(m)
    if type(m) is nn.LayerNorm and (not m.elementwise_affine or getattr(m, "bias", None) is not None):
        return "layernorm", {"normalized_dims": len(m.normalized_shape), "eps": m.eps,
                             "elementwise_affine": m.elementwise_affine}, _state(m)
    if type(m) is nn.Dropout:
        return "dropout", {"p": m.p}, {}
    if type(m) is nn.Identity:
        return "identity", {}, {}
    if type(m) is nn.Flatten and m.start_dim >= 1:
        return "flatten", {"start_dim": m.start_dim, "end_dim": m.end_dim}, {}
    if type(m) in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool2d):
        return _pool(m, type(m).__name__.lower())
    if type(m) is nn.AdaptiveAvgPool2d:
        size = _pair(m.output_size)
        return ("adaptive_avgpool2d", {"output_size": size, "flatten": False}, {}) if None not in size else None
    if type(m) is nn.Embedding and m.padding_idx is None and m.max_norm is None:
        return "embedding", {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}, _state(m)
    if type(m) is nn.Upsample and m.size is None and m.mode in ("nearest", "bilinear"):
        factor = m.scale_factor
        factor = factor[0] if isinstance(factor, tuple) and len(set(factor)) == 1 else factor
        if isinstance(factor, (int, float)) and float(factor).is_integer() and not m.align_corners:
            return "upsample", {"scale_factor": int(factor), "mode": m.mode}, {}
        return None
    if type(m) in (nn.LSTM, nn.GRU, nn.RNN):
        return _recurrent(m, True, "rnn.")  # type: ignore[arg-type]
    if type(m) is nn.TransformerEncoderLayer:
        return _transformer(m, causal=False)
    return None
