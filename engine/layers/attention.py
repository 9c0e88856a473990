"""Attention layers: Embedding, Positional Encoding, Self-Attention, Transformer Encoder Layer.

They work on batch-first sequences of vectors (N, T, E); an Embedding turns token ids into one.
"""

from __future__ import annotations

from typing import Any

from engine.layers.base import (Example, ModuleCall, Inference, LayerType, Params, ShapeError, TensorSpec, register,
                                require_sequence)
from engine.layers.params import bool_param, choice_param, float_param, int_param
from engine.layers.recognize import (FromModule, FromOnnx, Imported, ModuleSources, call_options, constant_operand,
                                     is_causal_mask, is_traced, module_state, traced_shape)


def _require_heads(x: TensorSpec, heads: int, field: str) -> None:
    """Raise :class:`ShapeError` unless the embedding size of ``x`` splits evenly into ``heads``."""
    size = x.dims[-1]
    if size % heads == 0:
        return
    divisors = [d for d in range(1, min(size, 2 * heads + 8) + 1) if size % d == 0]
    nearest = sorted(sorted(divisors, key=lambda d: abs(d - heads))[:2])
    options = " or ".join(map(str, nearest))
    raise ShapeError(f"embedding size {size} is not divisible by {field}={heads}: each head takes an equal "
                     f"share of it; set {field} to {options}, or make the embedding size "
                     f"{-(-size // heads) * heads}", field=field)


def _attention_flops(steps: int, size: int) -> int:
    """FLOPs of self-attention on (T, E): Q, K, V and output projections, then scores and mix."""
    return 2 * steps * size * 4 * size + 2 * 2 * steps * steps * size


# ------------------------------------------------------------- recognizers
def _embedding_from_module(m: Any) -> Imported | None:
    if m.padding_idx is not None or m.max_norm is not None:
        return None
    return {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}, module_state(m)


def _embedding_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Gather`` of rows of a constant 2-D table by computed ids."""
    table, ids = node.input
    if table not in ctx.consts or ctx.consts[table].ndim != 2 or int(a.get("axis", 0)) != 0 or ids in ctx.consts:
        return "only a lookup in a constant embedding table maps"
    rows, size = ctx.consts[table].shape
    ctx.add(node, "embedding", {"num_embeddings": int(rows), "embedding_dim": int(size)}, [ids],
            {"weight": ctx.consts[table]}, table)
    return None


def _positional_from_module(m: Any) -> Imported:
    if type(m).__name__ == "LearnedPositionalEncoding":
        return {"kind": "learned", "max_len": m.position_embedding.shape[0]}, module_state(m)
    return {"kind": "sinusoidal", "max_len": m.encoding.shape[0]}, {}


def _positional_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``Add`` of a sequence (N, T, E) and a constant table of its steps, as the exporter writes
    ``x + self.encoding[: x.size(1)]`` (the slice folded into a (T, E) constant).

    Decided by value: a table equal to the layer's own sinusoidal one for (T, E) (within float32
    rounding) is ``kind`` sinusoidal, shaped (T, E) or (1, T, E); any other (T, E) table is a learned
    one (``kind`` learned, its rows the weights). A (1, T, E) constant that is not the sinusoidal table
    is left to Position Embedding, a one-row table (T = 1) to a Linear's bias. ``max_len`` is T: the
    rows past T are not in the file.
    """
    found = constant_operand(ctx, node)
    shape = ctx.shapes.get(found[0], []) if found else []
    if found is None or len(shape) != 3 or not all(isinstance(d, int) and d > 1 for d in shape[1:]):
        return "not a sequence plus a constant table of its steps"
    source, table = found
    steps, size = shape[1:]
    if tuple(table.shape) not in ((steps, size), (1, steps, size)):
        return "not a sequence plus a constant table of its steps"
    if _is_sinusoidal(table.reshape(steps, size)):
        ctx.add(node, "positional_encoding", {"kind": "sinusoidal", "max_len": steps}, [source])
    elif table.ndim == 2:
        ctx.add(node, "positional_encoding", {"kind": "learned", "max_len": steps}, [source],
                {"position_embedding": table})
    else:
        return "a constant of the sequence's own shape that is no sinusoidal table"
    return None


def _is_sinusoidal(table: Any) -> bool:
    """Whether ``table`` (T, E) equals the Sinusoidal Positional Encoding's own table for (T, E)."""
    import numpy as np

    from engine.layers.modules import SinusoidalPositionalEncoding

    expected = SinusoidalPositionalEncoding(*table.shape).encoding.numpy()
    return bool(np.abs(np.asarray(table, dtype=np.float32) - expected).max() <= 1e-6)


def _self_attention_from_module(m: Any) -> Imported:
    attention = m.attention
    return {"num_heads": attention.num_heads, "dropout": float(attention.dropout),
            "bias": attention.in_proj_bias is not None,
            "causal": type(m).__name__ == "CausalSelfAttention"}, module_state(m)


#: ``nn.MultiheadAttention.forward``'s options after the query, and their defaults.
_MHA_OPTIONS = (("key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal"),
                {"key_padding_mask": None, "need_weights": True, "attn_mask": None, "average_attn_weights": True,
                 "is_causal": False})


def mha_options(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The options of a call of ``nn.MultiheadAttention`` by name (``key``, ``attn_mask``, ...), or ``None``
    when the query, key or value is no traced tensor."""
    o = call_options(args, kwargs, *_MHA_OPTIONS)
    if o is None or not args or not all(is_traced(t) for t in (args[0], o.get("key"), o.get("value"))):
        return None
    return o


def _steps(x: Any) -> int | None:
    """The number of steps T of a traced sequence (N, T, E)."""
    shape = traced_shape(x)
    return shape[1] if shape is not None and len(shape) == 3 else None


def _bare_self_attention_from_module(m: Any) -> Imported | None:
    """A batch-first ``nn.MultiheadAttention`` with one embedding size and no extra key/value biases, as
    :class:`SelfAttention` holds it."""
    if not m.batch_first or m.bias_k is not None or m.add_zero_attn or not m._qkv_same_embed_dim:
        return None
    return {"num_heads": m.num_heads, "dropout": float(m.dropout), "bias": m.in_proj_bias is not None,
            "causal": True}, module_state(m, "attention.")


def _causal_self_call(args: list[Any], kwargs: dict[str, Any]) -> ModuleSources | None:
    """``out, _ = self.attn(x, x, x, attn_mask=causal_mask)`` (``is_causal=True`` too): one sequence attends
    to itself through exactly the causal mask, without a key-padding mask."""
    o = mha_options(args, kwargs)
    if o is None or not (args[0] is o["key"] is o["value"]) or o["key_padding_mask"] is not None \
            or not is_causal_mask(o["attn_mask"], _steps(args[0])):
        return None
    return [args[0]]


def _encoder_layer_call(args: list[Any], kwargs: dict[str, Any]) -> ModuleSources | str | None:
    """``self.encoder(x)``, or ``self.encoder(x, src_mask=causal_mask)`` (``is_causal=True`` too): causal."""
    o = call_options(args, kwargs, ("src_mask", "src_key_padding_mask", "is_causal"),
                     {"src_mask": None, "src_key_padding_mask": None, "is_causal": False})
    if o is None or len(args) != 1 or not is_traced(args[0]):
        return None
    if o["src_key_padding_mask"] is not None:
        return "a src_key_padding_mask, which the canvas Transformer Encoder Layer does not take"
    if o["src_mask"] is None:
        return [args[0]]
    if not is_causal_mask(o["src_mask"], _steps(args[0])):
        return ("a src_mask that is not exactly the causal mask of the sequence's steps (-inf above the diagonal, "
                "0 elsewhere, as nn.Transformer.generate_square_subsequent_mask makes it): the layer's only mask "
                "is causal")
    return [args[0]], {"causal": True}


def _encoder_layer_from_module(m: Any) -> Imported | None:
    """``nn.TransformerEncoderLayer`` (batch first, ReLU or GELU, eps 1e-5), or the app's causal one."""
    activation = getattr(m, "activation_relu_or_gelu", 0)
    if not m.self_attn.batch_first or activation not in (1, 2) or m.norm1.eps != 1e-5:
        return None
    return {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
            "dropout": float(m.dropout.p), "activation": "relu" if activation == 1 else "gelu",
            "norm_first": bool(m.norm_first), "causal": type(m).__name__ == "CausalTransformerEncoderLayer"}, \
        module_state(m)


def _attention_params(size: int, bias: bool) -> int:
    """Parameters of nn.MultiheadAttention: Q, K, V and output projections."""
    return 4 * size * size + (4 * size if bias else 0)


@register
class Embedding(LayerType):
    """Lookup table from token ids to learned vectors."""

    type_id = "embedding"
    imports = (FromModule(("nn.Embedding",), _embedding_from_module), FromOnnx(("Gather",), _embedding_from_onnx))
    title = "Embedding"
    category = "Attention"
    doc = "Looks up a learned vector for each integer token id: (N, T) ids become (N, T, embedding_dim)."
    id_prefix = "embed"
    key_params = ("num_embeddings", "embedding_dim")
    params = (
        int_param("num_embeddings", 64, "Vocabulary size: token ids must be below it.", min=1, max=10_000_000),
        int_param("embedding_dim", 32, "Size of each token's vector.", min=1, max=1_000_000),
    )
    examples = (
        Example((TensorSpec((10,), "long"),)),
        Example((TensorSpec((4, 6), "long", vocab=5),), {"num_embeddings": 5, "embedding_dim": 3}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        if x.dtype != "long":
            raise ShapeError(f"receives real values {x}: Embedding needs integer token ids from a Token Input; "
                             "to project real-valued features use a Linear instead")
        if x.vocab is not None and x.vocab > p.num_embeddings:
            raise ShapeError(f"receives token ids below {x.vocab} but has only {p.num_embeddings} embeddings: set "
                             f"num_embeddings to at least {x.vocab}", field="num_embeddings")
        return Inference(TensorSpec((*x.dims, p.embedding_dim)), p.num_embeddings * p.embedding_dim)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.Embedding", p.num_embeddings, p.embedding_dim)


@register
class PositionalEncoding(LayerType):
    """Adds position information to a sequence of vectors."""

    type_id = "positional_encoding"
    imports = (FromModule(("LearnedPositionalEncoding", "SinusoidalPositionalEncoding"), _positional_from_module),
               FromOnnx(("Add",), _positional_from_onnx))  # asked before Position Embedding's Add
    title = "Positional Encoding"
    category = "Attention"
    doc = "Adds a vector that tells attention layers where each step is in the sequence (they cannot see order)."
    id_prefix = "posenc"
    key_params = ("kind",)
    params = (
        choice_param("kind", "sinusoidal", ("sinusoidal", "learned"),
                     "sinusoidal: fixed sine/cosine waves (no weights); learned: one trained vector per position."),
        int_param("max_len", 512, "Longest sequence it can encode.", min=1, max=1_000_000),
    )
    examples = (
        Example(((6, 8),)),
        Example(((5, 7),), {"kind": "learned", "max_len": 16}),
        Example(((4, 5),), {"max_len": 4}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_sequence(x, self.title, "embedding")
        steps, size = x.dims
        if steps > p.max_len:
            raise ShapeError(f"receives {x} with {steps} steps but max_len is {p.max_len}: "
                             f"raise max_len to at least {steps}", field="max_len")
        return Inference(x, p.max_len * size if p.kind == "learned" else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        encoding = "LearnedPositionalEncoding" if p.kind == "learned" else "SinusoidalPositionalEncoding"
        return ModuleCall.of(encoding, p.max_len, inputs[0].dims[-1])


@register
class SelfAttention(LayerType):
    """Multi-head self-attention over a sequence."""

    type_id = "self_attention"
    imports = (FromModule(("SelfAttention", "CausalSelfAttention"), _self_attention_from_module),
               FromModule(("nn.MultiheadAttention",), _bare_self_attention_from_module, call=_causal_self_call,
                          tuple_output=0, priority=-1))  # after Multi-Head Attention's, which refuses the mask
    title = "Multi-Head Self-Attention"
    category = "Attention"
    doc = "Each step of the sequence gathers information from the other steps, weighted by learned relevance."
    id_prefix = "attn"
    key_params = ("num_heads", "causal")
    params = (
        int_param("num_heads", 4, "Number of attention heads; must divide the embedding size.", min=1, max=1024),
        float_param("dropout", 0.0, "Dropout on the attention weights while training.", min=0.0, max=0.99),
        bool_param("bias", True, "Learn additive biases in the projections."),
        bool_param("causal", False, "Each step sees only itself and earlier steps, as in a GPT-style model."),
    )
    examples = (
        Example(((6, 8),), {"num_heads": 2, "dropout": 0.1}),
        Example(((7, 8),), {"num_heads": 4}),
        Example(((7, 8),), {"num_heads": 2, "causal": True}),
        Example(((5, 12),), {"num_heads": 3, "dropout": 0.1, "bias": False, "causal": True}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_sequence(x, self.title, "embedding")
        _require_heads(x, p.num_heads, "num_heads")
        steps, size = x.dims
        return Inference(x, _attention_params(size, p.bias), _attention_flops(steps, size))

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        steps, size = inputs[0].dims
        if p.causal:
            return ModuleCall.of("CausalSelfAttention", size, p.num_heads, steps, dropout=p.dropout, bias=p.bias)
        return ModuleCall.of("SelfAttention", size, p.num_heads, dropout=p.dropout, bias=p.bias)


@register
class TransformerEncoderLayer(LayerType):
    """One Transformer block: self-attention and a feed-forward network, each with a residual."""

    type_id = "transformer_encoder_layer"
    imports = (FromModule(("nn.TransformerEncoderLayer", "CausalTransformerEncoderLayer"),
                          _encoder_layer_from_module, call=_encoder_layer_call),)
    title = "Transformer Encoder Layer"
    category = "Attention"
    doc = ("A Transformer block: self-attention, then a two-layer feed-forward network, each with a "
           "residual connection and LayerNorm.")
    id_prefix = "encoder"
    key_params = ("nhead", "dim_feedforward", "causal")
    params = (
        int_param("nhead", 4, "Number of attention heads; must divide the embedding size.", min=1, max=1024),
        int_param("dim_feedforward", 256, "Hidden size of the feed-forward network.", min=1, max=1_000_000),
        float_param("dropout", 0.1, "Dropout on attention weights and after each sub-block while training.",
                    min=0.0, max=0.99),
        choice_param("activation", "relu", ("relu", "gelu"), "Activation inside the feed-forward network."),
        bool_param("norm_first", False, "Apply LayerNorm before each sub-block (pre-norm, trains more stably)."),
        bool_param("causal", False, "Each step sees only itself and earlier steps: a GPT-style decoder block."),
    )
    examples = (
        Example(((6, 8),), {"nhead": 2, "dim_feedforward": 16}),
        Example(((5, 12),), {"nhead": 3, "dim_feedforward": 24, "activation": "gelu", "norm_first": True,
                             "causal": True}),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_sequence(x, self.title, "embedding")
        _require_heads(x, p.nhead, "nhead")
        steps, size = x.dims
        hidden = p.dim_feedforward
        # attention, two feed-forward Linears with biases, two LayerNorms with weight and bias
        parameters = _attention_params(size, True) + 2 * size * hidden + hidden + size + 4 * size
        flops = _attention_flops(steps, size) + 2 * steps * 2 * size * hidden
        return Inference(x, parameters, flops)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        steps, size = inputs[0].dims
        options = {"dim_feedforward": p.dim_feedforward, "dropout": p.dropout, "activation": p.activation,
                   "norm_first": p.norm_first}
        if p.causal:
            return ModuleCall.of("CausalTransformerEncoderLayer", size, p.nhead, steps, **options)
        return ModuleCall.of("nn.TransformerEncoderLayer", size, p.nhead, batch_first=True, **options)
