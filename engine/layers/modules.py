"""Small PyTorch modules that layers build: recurrent and attention wrappers, learned tensors
(LayerScale, PositionEmbedding, ClassToken), StochasticDepth and LayerNorm2d.

They appear as they are in exported model source, so they are plain PyTorch. Unlike the
layer declarations, this module imports torch; the declarations import it lazily from
``build``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RecurrentBlock(nn.Module):
    """A batch-first ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` that returns either its output
    at every step or its final hidden state.

    Args:
        rnn: The recurrent layer, built with ``batch_first=True``.
        return_sequence: True for the top layer's output at every step; False for the top
            layer's final hidden state, forward and backward directions concatenated.

    Shape:
        - Input: ``(N, T, input_size)``
        - Output: ``(N, T, D * hidden_size)`` when ``return_sequence``, else
          ``(N, D * hidden_size)``, where D is 2 for a bidirectional layer and 1 otherwise.
    """

    def __init__(self, rnn: nn.RNNBase, return_sequence: bool = True) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequence = return_sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, state = self.rnn(x)
        if self.return_sequence:
            return outputs
        hidden = state[0] if isinstance(self.rnn, nn.LSTM) else state  # an LSTM returns (h, c)
        # hidden is (num_layers * D, N, hidden_size); the top layer's directions come last
        if self.rnn.bidirectional:
            return torch.cat([hidden[-2], hidden[-1]], dim=1)
        return hidden[-1]


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned vector to each position of a sequence (as in GPT and BERT).

    Args:
        max_len: Longest sequence it can encode.
        embed_dim: Size of each position's vector.

    Shape:
        - Input: ``(N, T, embed_dim)`` with ``T <= max_len``
        - Output: ``(N, T, embed_dim)``
    """

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__()
        self.position_embedding = nn.Parameter(0.02 * torch.randn(max_len, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.position_embedding[: x.size(1)]


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sine and cosine position signal of "Attention Is All You Need".

    Even features hold ``sin(pos / 10000^(i / embed_dim))``, odd features the cosine.

    Args:
        max_len: Longest sequence it can encode.
        embed_dim: Size of each position's vector.

    Shape:
        - Input: ``(N, T, embed_dim)`` with ``T <= max_len``
        - Output: ``(N, T, embed_dim)``
    """

    def __init__(self, max_len: int, embed_dim: int) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)  # (max_len, 1)
        frequency = torch.exp(torch.arange(0, embed_dim, 2) * (-math.log(10000.0) / embed_dim))
        angle = position * frequency  # (max_len, ceil(embed_dim / 2))
        encoding = torch.zeros(max_len, embed_dim)
        encoding[:, 0::2] = torch.sin(angle)
        encoding[:, 1::2] = torch.cos(angle[:, : embed_dim // 2])  # one fewer when embed_dim is odd
        self.register_buffer("encoding", encoding, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.encoding[: x.size(1)]


class SelfAttention(nn.Module):
    """Multi-head self-attention: each position of a sequence attends to every position.

    Args:
        embed_dim: Size E of each position's vector.
        num_heads: Number of attention heads; must divide ``embed_dim``.
        dropout: Dropout probability on the attention weights while training.
        bias: Learn additive biases in the input and output projections.

    Shape:
        - Input: ``(N, T, embed_dim)``
        - Output: ``(N, T, embed_dim)``
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, bias=bias,
                                               batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(x, x, x, need_weights=False)
        return out


class CausalSelfAttention(SelfAttention):
    """Self-attention in which each position attends only to itself and earlier positions,
    as in decoder-only (GPT-style) language models.

    Args:
        embed_dim: Size E of each position's vector.
        num_heads: Number of attention heads; must divide ``embed_dim``.
        max_len: Longest sequence the causal mask covers.
        dropout: Dropout probability on the attention weights while training.
        bias: Learn additive biases in the input and output projections.

    Shape:
        - Input: ``(N, T, embed_dim)`` with ``T <= max_len``
        - Output: ``(N, T, embed_dim)``
    """

    def __init__(self, embed_dim: int, num_heads: int, max_len: int, dropout: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__(embed_dim, num_heads, dropout, bias)
        # -inf above the diagonal: no position may attend to a later one
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(max_len),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.size(1)
        out, _ = self.attention(x, x, x, attn_mask=self.mask[:length, :length], is_causal=True,
                                need_weights=False)
        return out


class CausalTransformerEncoderLayer(nn.TransformerEncoderLayer):
    """A batch-first ``nn.TransformerEncoderLayer`` whose positions attend only to themselves
    and earlier positions: the block of decoder-only (GPT-style) language models.

    Args:
        d_model: Size of each position's vector.
        nhead: Number of attention heads; must divide ``d_model``.
        max_len: Longest sequence the causal mask covers.
        **kwargs: Further ``nn.TransformerEncoderLayer`` arguments (dim_feedforward, ...).

    Shape:
        - Input: ``(N, T, d_model)`` with ``T <= max_len``
        - Output: ``(N, T, d_model)``
    """

    def __init__(self, d_model: int, nhead: int, max_len: int, **kwargs: object) -> None:
        super().__init__(d_model, nhead, batch_first=True, **kwargs)  # type: ignore[arg-type]
        # -inf above the diagonal: no position may attend to a later one
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(max_len),
                             persistent=False)

    def forward(self, src: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        length = src.size(1)
        return super().forward(src, src_mask=self.mask[:length, :length], is_causal=True)


class CausalTransformerDecoderLayer(nn.TransformerDecoderLayer):
    """A batch-first ``nn.TransformerDecoderLayer`` whose target positions attend only to themselves
    and earlier positions (as when a decoder generates a sequence step by step); every target
    position still sees the whole memory.

    Args:
        d_model: Size of each position's vector.
        nhead: Number of attention heads; must divide ``d_model``.
        max_len: Longest target sequence the causal mask covers.
        **kwargs: Further ``nn.TransformerDecoderLayer`` arguments (dim_feedforward, ...).

    Shape:
        - Input: tgt ``(N, T, d_model)`` with ``T <= max_len``, memory ``(N, S, d_model)``
        - Output: ``(N, T, d_model)``
    """

    def __init__(self, d_model: int, nhead: int, max_len: int, **kwargs: object) -> None:
        super().__init__(d_model, nhead, batch_first=True, **kwargs)  # type: ignore[arg-type]
        # -inf above the diagonal: no position may attend to a later one
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(max_len),
                             persistent=False)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        length = tgt.size(1)
        return super().forward(tgt, memory, tgt_mask=self.mask[:length, :length], tgt_is_causal=True)


class QKVAttention(nn.Module):
    """Multi-head attention with separate query, key and value inputs: cross-attention when the
    keys and values come from another sequence (a decoder reading an encoder's output).

    Args:
        embed_dim: Size E of each query vector (and of the output).
        num_heads: Number of attention heads; must divide ``embed_dim``.
        dropout: Dropout probability on the attention weights while training.
        bias: Learn additive biases in the input and output projections.
        kdim: Size of each key vector; 0 means ``embed_dim``.
        vdim: Size of each value vector; 0 means ``embed_dim``.

    Shape:
        - Input: query ``(N, L, E)``, key ``(N, S, kdim)``, value ``(N, S, vdim)``
        - Output: ``(N, L, E)``
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, kdim: int = 0,
                 vdim: int = 0) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim or None,
                                               vdim=vdim or None, batch_first=True)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(query, key, value, need_weights=False)
        return out


class MaskedQKVAttention(QKVAttention):
    """:class:`QKVAttention` with a fourth input, ``key_padding_mask`` ``(N, S)``: values added to
    the scores of each key (0 keeps a key, ``-inf`` hides it, e.g. padding)."""

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,  # type: ignore[override]
                key_padding_mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.attention(query, key, value, key_padding_mask=key_padding_mask, need_weights=False)
        return out


class LayerNorm2d(nn.LayerNorm):
    """Layer normalization of the C channels at each position of an image, with a learned scale
    and shift per channel (the ``LayerNorm2d`` of ConvNeXt): channels last, normalize, channels first.

    Args:
        num_channels: Number of channels C.
        eps: Added to the variance to avoid dividing by zero.
        elementwise_affine: Learn ``weight`` and ``bias`` of shape (C,).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class StochasticDepth(nn.Module):
    """Randomly skips a residual branch while training ("stochastic depth", timm's DropPath).

    While training, each sample's values (mode ``"row"``) or the whole batch's (``"batch"``) are
    zeroed with probability ``p`` and the rest scaled by ``1 / (1 - p)``, so the expected value is
    unchanged; in evaluation the input passes through. Placed on a residual branch before the
    Add, it drops the whole block for those samples.

    Args:
        p: Probability of dropping.
        mode: ``"row"`` drops single samples, ``"batch"`` the whole batch at once.

    Shape:
        - Input: any ``(N, *)``
        - Output: the same
    """

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


class LayerScale(nn.Module):
    """Multiplies each channel by a learned scale that starts small, so a new residual branch
    starts close to the identity (CaiT, ConvNeXt, DINOv2).

    Args:
        shape: Shape of the learned ``gamma``: ``(C, 1, 1)`` for images (N, C, H, W), ``(D,)``
            for features (N, D) and token sequences (N, T, D).
        init_value: Initial value of every scale.

    Shape:
        - Input: ``(N, *)`` that ``gamma`` broadcasts over
        - Output: the same
    """

    def __init__(self, shape: tuple[int, ...], init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full(shape, init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class PositionEmbedding(nn.Module):
    """Adds a learned tensor of the input's own per-sample shape: one learned vector for each
    position of a token sequence (as in ViT), or a learned map for each channel of an image.

    Args:
        shape: The per-sample shape, e.g. ``(T, D)``; ``embedding`` is ``(1, *shape)``.
        init: ``"normal"`` (standard deviation 0.02) or ``"zeros"``.

    Shape:
        - Input: ``(N, *shape)``
        - Output: the same
    """

    def __init__(self, shape: tuple[int, ...], init: str = "normal") -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(1, *shape))
        if init == "normal":
            nn.init.normal_(self.embedding, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.embedding


class ClassToken(nn.Module):
    """Prepends one learned token to a sequence, as ViT's [class] token: after the encoder, its
    output summarizes the sequence for a classifier head.

    Args:
        embed_dim: Size D of each token.
        init: ``"zeros"`` or ``"normal"`` (standard deviation 0.02).

    Shape:
        - Input: ``(N, T, D)``
        - Output: ``(N, T + 1, D)``, the learned ``token`` first
    """

    def __init__(self, embed_dim: int, init: str = "zeros") -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if init == "normal":
            nn.init.normal_(self.token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(x.size(0), -1, -1), x], dim=1)


#: Every module class defined here, by name: layer declarations name them as ModuleCall targets
#: and exported model.py files define them. Adding a class here is all it takes.
CUSTOM_MODULES: tuple[str, ...] = tuple(
    name for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == __name__)
