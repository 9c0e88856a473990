"""Attention between two sequences: Multi-Head Attention with query, key and value inputs, and the
Transformer Decoder Layer (self-attention on the target, attention to the memory, feed-forward).

Both work on batch-first sequences (N, T, E) and build ``nn.MultiheadAttention`` inside.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.layers.attention import _attention_flops, _attention_params, _require_heads, mha_options
from engine.layers.base import (Example, Inference, LayerType, ModuleCall, Params, ShapeError, TensorSpec, register,
                                require_float, require_sequence)
from engine.layers.params import bool_param, choice_param, float_param, int_param
from engine.layers.recognize import (FromModule, Imported, ModuleSources, call_options, is_causal_mask, is_traced,
                                     module_state, traced_dtype, traced_shape)


# ------------------------------------------------------------- recognizers
def _mha_options(attention: Any) -> dict[str, Any] | None:
    """The layer's options of a batch-first ``nn.MultiheadAttention`` without extra key/value biases."""
    if not attention.batch_first or attention.bias_k is not None or attention.add_zero_attn:
        return None
    return {"num_heads": attention.num_heads, "dropout": float(attention.dropout),
            "bias": attention.in_proj_bias is not None, "key_padding_mask": False}


def _qkv_call(args: list[Any], kwargs: dict[str, Any]) -> list[Any] | None:
    """``self.attend(q, k, v)`` (``QKVAttention``) or ``self.attend(q, k, v, mask)`` (``MaskedQKVAttention``)."""
    return list(args) if len(args) in (3, 4) and not kwargs and all(is_traced(a) for a in args) else None


def _mha_call(args: list[Any], kwargs: dict[str, Any]) -> ModuleSources | str | None:
    """``out, _ = self.attn(q, k, v)`` of a bare ``nn.MultiheadAttention``, with a float key-padding mask
    (the mask input) or none."""
    o = mha_options(args, kwargs)
    if o is None:
        return None
    if o["attn_mask"] is not None or o["is_causal"]:
        return ("an attn_mask or is_causal: Multi-Head Attention takes only a key-padding mask; self-attention "
                "(query, key and value one tensor) with exactly the causal mask maps to a causal "
                "Multi-Head Self-Attention")
    sources = [args[0], o["key"], o["value"]]
    mask = o["key_padding_mask"]
    if mask is None:
        return sources
    if not is_traced(mask):
        return "a key_padding_mask that is a constant: the layer's mask is an input (N, S) of the graph"
    dtype = traced_dtype(mask)
    if dtype is None or not dtype.is_floating_point:
        return ("a boolean key_padding_mask (True hides a key): the layer's mask input adds its values to the "
                "scores, so pass a float mask (0 keeps a key, -inf hides it)")
    return [*sources, mask], {"key_padding_mask": True}


def _decoder_call(args: list[Any], kwargs: dict[str, Any]) -> ModuleSources | str | None:
    """``self.decoder(tgt, memory)``, with exactly the causal ``tgt_mask`` (then causal) or no mask."""
    o = call_options(args, kwargs, ("memory", "tgt_mask", "memory_mask", "tgt_key_padding_mask",
                                    "memory_key_padding_mask", "tgt_is_causal", "memory_is_causal"),
                     {"tgt_mask": None, "memory_mask": None, "tgt_key_padding_mask": None,
                      "memory_key_padding_mask": None, "tgt_is_causal": False, "memory_is_causal": False})
    if o is None or not args or not is_traced(args[0]) or not is_traced(o.get("memory")):
        return None
    others = [name for name in ("memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask")
              if o[name] is not None] + ["memory_is_causal"] * bool(o["memory_is_causal"])
    if others:
        return f"{' and '.join(others)}, which the canvas Transformer Decoder Layer does not take"
    sources = [args[0], o["memory"]]
    if o["tgt_mask"] is None:
        return sources
    shape = traced_shape(args[0])
    if not is_causal_mask(o["tgt_mask"], shape[1] if shape and len(shape) == 3 else None):
        return ("a tgt_mask that is not exactly the causal mask of the target's steps (-inf above the diagonal, "
                "0 elsewhere, as nn.Transformer.generate_square_subsequent_mask makes it): the layer's only mask "
                "is causal")
    return sources, {"causal": True}


def _qkv_from_module(m: Any) -> Imported | None:
    """The app's ``QKVAttention`` / ``MaskedQKVAttention``, or a bare ``nn.MultiheadAttention`` (whose
    output element 0 it is)."""
    attention = m.attention if type(m).__name__.endswith("QKVAttention") else m
    options = _mha_options(attention)
    if options is None:
        return None
    return {**options, "key_padding_mask": type(m).__name__ == "MaskedQKVAttention"}, \
        module_state(attention, "attention.")


def _decoder_from_module(m: Any) -> Imported | None:
    """``nn.TransformerDecoderLayer`` (batch first, ReLU or GELU, biases, eps 1e-5), or the app's causal one."""
    import torch.nn.functional as F

    activation = {F.relu: "relu", F.gelu: "gelu"}.get(m.activation)  # type: ignore[call-overload]
    if not m.self_attn.batch_first or activation is None or m.norm1.eps != 1e-5 or m.linear1.bias is None:
        return None
    return {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
            "dropout": float(m.dropout.p), "activation": activation, "norm_first": bool(m.norm_first),
            "causal": type(m).__name__ == "CausalTransformerDecoderLayer"}, module_state(m)


def _cross_flops(steps: int, memory_steps: int, size: int, kdim: int, vdim: int) -> int:
    """FLOPs of attention from ``steps`` queries to ``memory_steps`` keys: projections, scores and mix."""
    projections = 2 * steps * size * size * 2 + 2 * memory_steps * size * (kdim + vdim)
    return projections + 2 * 2 * steps * memory_steps * size


# ------------------------------------------------------------------ layers
@register
class MultiheadAttention(LayerType):
    """Multi-head attention with separate query, key and value inputs."""

    type_id = "multihead_attention"
    imports = (FromModule(("QKVAttention", "MaskedQKVAttention"), _qkv_from_module, call=_qkv_call),
               FromModule(("nn.MultiheadAttention",), _qkv_from_module, call=_mha_call, tuple_output=0))
    title = "Multi-Head Attention"
    category = "Attention"
    doc = ("Each query step gathers information from the value steps, weighted by how well its query matches "
           "their keys; with keys and values from another sequence it is cross-attention.")
    id_prefix = "mha"
    key_params = ("num_heads", "key_padding_mask")
    params = (
        int_param("num_heads", 4, "Number of attention heads; must divide the query's embedding size.",
                  min=1, max=1024),
        float_param("dropout", 0.0, "Dropout on the attention weights while training.", min=0.0, max=0.99),
        bool_param("bias", True, "Learn additive biases in the projections."),
        bool_param("key_padding_mask", False, "Add a mask input (N, S): values added to the scores of each key; "
                                              "0 keeps a key, -inf (or a large negative number) hides it, e.g. "
                                              "padding."),
    )
    examples = (
        Example(((6, 8), (6, 8), (6, 8)), {"num_heads": 2}),
        Example(((5, 12), (7, 6), (7, 10)), {"num_heads": 3, "dropout": 0.1, "bias": False}),
        Example(((4, 8), (9, 8), (9, 8), (9,)), {"num_heads": 4, "key_padding_mask": True}),
    )

    def input_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        return ("query", "key", "value", "mask") if p.get("key_padding_mask") is True else ("query", "key", "value")

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        query, key, value = inputs[:3]
        for spec in (query, key, value):
            require_sequence(spec, self.title, "embedding")
        _require_heads(query, p.num_heads, "num_heads")
        if key.dims[0] != value.dims[0]:
            raise ShapeError(f"key {key} has {key.dims[0]} steps but value {value} has {value.dims[0]}: each key "
                             "needs its value, so both must have the same number of steps")
        steps, size = query.dims
        memory_steps, kdim, vdim = key.dims[0], key.dims[1], value.dims[1]
        if p.key_padding_mask:
            mask = inputs[3]
            require_float(mask, "the mask")
            if mask.dims != (memory_steps,):
                raise ShapeError(f"mask is {mask} but the key has {memory_steps} steps: the mask needs one value "
                                 f"per key, (N, {memory_steps})")
        parameters = size * (2 * size + kdim + vdim) + (4 * size if p.bias else 0)
        return Inference(query, parameters, _cross_flops(steps, memory_steps, size, kdim, vdim))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        size, kdim, vdim = (spec.dims[-1] for spec in inputs[:3])
        return ModuleCall.of("MaskedQKVAttention" if p.key_padding_mask else "QKVAttention", size, p.num_heads,
                             dropout=p.dropout, bias=p.bias, kdim=kdim if kdim != size else 0,
                             vdim=vdim if vdim != size else 0)


@register
class TransformerDecoderLayer(LayerType):
    """One Transformer decoder block: self-attention, attention to the memory, feed-forward."""

    type_id = "transformer_decoder_layer"
    imports = (FromModule(("nn.TransformerDecoderLayer", "CausalTransformerDecoderLayer"), _decoder_from_module,
                          call=_decoder_call),)
    title = "Transformer Decoder Layer"
    category = "Attention"
    doc = ("A Transformer decoder block: self-attention over the target sequence, attention to the memory "
           "(e.g. an encoder's output), then a feed-forward network, each with a residual and LayerNorm.")
    id_prefix = "decoder"
    inputs = ("tgt", "memory")
    key_params = ("nhead", "dim_feedforward", "causal")
    params = (
        int_param("nhead", 4, "Number of attention heads; must divide the embedding size.", min=1, max=1024),
        int_param("dim_feedforward", 256, "Hidden size of the feed-forward network.", min=1, max=1_000_000),
        float_param("dropout", 0.1, "Dropout on attention weights and after each sub-block while training.",
                    min=0.0, max=0.99),
        choice_param("activation", "relu", ("relu", "gelu"), "Activation inside the feed-forward network."),
        bool_param("norm_first", False, "Apply LayerNorm before each sub-block (pre-norm, trains more stably)."),
        bool_param("causal", False, "Each target step sees only itself and earlier target steps (all of the "
                                    "memory), as when generating a sequence step by step."),
    )
    examples = (
        Example(((6, 8), (9, 8)), {"nhead": 2, "dim_feedforward": 16}),
        Example(((5, 12), (4, 12)), {"nhead": 3, "dim_feedforward": 24, "activation": "gelu", "norm_first": True,
                                     "causal": True}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        tgt, memory = inputs
        require_sequence(tgt, self.title, "embedding")
        require_sequence(memory, self.title, "embedding")
        _require_heads(tgt, p.nhead, "nhead")
        steps, size = tgt.dims
        if memory.dims[1] != size:
            raise ShapeError(f"memory {memory} has embedding size {memory.dims[1]} but tgt {tgt} has {size}: both "
                             "must have the same size; add a Linear to project the memory")
        hidden, memory_steps = p.dim_feedforward, memory.dims[0]
        # two attentions, two feed-forward Linears with biases, three LayerNorms with weight and bias
        parameters = 2 * _attention_params(size, True) + 2 * size * hidden + hidden + size + 6 * size
        flops = _attention_flops(steps, size) + _cross_flops(steps, memory_steps, size, size, size) \
            + 2 * steps * 2 * size * hidden
        return Inference(tgt, parameters, flops)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        steps, size = inputs[0].dims
        options = {"dim_feedforward": p.dim_feedforward, "dropout": p.dropout, "activation": p.activation,
                   "norm_first": p.norm_first}
        if p.causal:
            return ModuleCall.of("CausalTransformerDecoderLayer", size, p.nhead, steps, **options)
        return ModuleCall.of("nn.TransformerDecoderLayer", size, p.nhead, batch_first=True, **options)
