"""Small PyTorch modules that layers build: recurrent and attention wrappers, learned tensors
(LayerScale, PositionEmbedding, ClassToken), StochasticDepth, LayerNorm2d, and the Swin Transformer's
ShiftedWindowAttention and PatchMerging.

They appear as they are in exported model source, so they are plain PyTorch. Unlike the
layer declarations, this module imports torch; the declarations import it lazily from
``build``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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


class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows of a channels-last image, the windows
    cyclically shifted by ``shift_size`` with a mask that keeps the wrapped-around regions apart, and a
    learned bias for each relative position inside a window (Swin Transformer; torchvision's
    ``ShiftedWindowAttention``, with the same state-dict names).

    The map is zero-padded at the bottom and right to a multiple of the window; a window as large as
    the padded map gets no shift. Padding, mask and position index are fixed for ``input_size``.

    Args:
        dim: Channels C; ``num_heads`` must divide it.
        window_size: Window height and width (Mh, Mw).
        shift_size: Cyclic shift (Sh, Sw) before partitioning; (0, 0) for a plain window block.
        num_heads: Attention heads.
        input_size: Height and width (H, W) of the input.
        qkv_bias: Learn a bias in the joint query / key / value projection.
        proj_bias: Learn a bias in the output projection.
        attention_dropout: Dropout on the attention weights while training.
        dropout: Dropout on the output while training.

    Shape:
        - Input: ``(N, H, W, C)``
        - Output: ``(N, H, W, C)``
    """

    def __init__(self, dim: int, window_size: tuple[int, int], shift_size: tuple[int, int], num_heads: int,
                 input_size: tuple[int, int], qkv_bias: bool = True, proj_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.window_size, self.shift_size = tuple(window_size), tuple(shift_size)
        self.num_heads, self.input_size = num_heads, tuple(input_size)
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        (mh, mw), (h, w) = self.window_size, self.input_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * mh - 1) * (2 * mw - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # row of the table for every pair of positions (i, j) in a window: their offset in rows and columns
        coords = torch.stack(torch.meshgrid(torch.arange(mh), torch.arange(mw), indexing="ij")).flatten(1)
        offset = coords[:, :, None] - coords[:, None, :]
        index = (offset[0] + mh - 1) * (2 * mw - 1) + offset[1] + mw - 1
        self.register_buffer("relative_position_index", index.flatten(), persistent=False)
        self.padded = (h + (-h) % mh, w + (-w) % mw)
        self.shifts = tuple(0 if m >= p else s for m, p, s in zip(self.window_size, self.padded, self.shift_size))
        mask = None
        if sum(self.shifts) > 0:
            # number the regions the roll brings together; tokens of different regions may not attend
            (ph, pw), (sh, sw) = self.padded, self.shifts
            regions = torch.zeros(ph, pw)
            count = 0
            for rows in ((0, -mh), (-mh, -sh), (-sh, None)):
                for cols in ((0, -mw), (-mw, -sw), (-sw, None)):
                    regions[rows[0]:rows[1], cols[0]:cols[1]] = count
                    count += 1
            regions = regions.view(ph // mh, mh, pw // mw, mw).permute(0, 2, 1, 3).reshape(-1, mh * mw)
            mask = regions.unsqueeze(1) - regions.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer("attention_mask", mask, persistent=False)  # (windows, Mh * Mw, Mh * Mw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, h, w, c = x.shape
        if (h, w) != self.input_size:
            raise ValueError(f"expected an input of height and width {self.input_size}, got {(h, w)}")
        (mh, mw), (ph, pw), heads = self.window_size, self.padded, self.num_heads
        n, windows = mh * mw, (ph // mh) * (pw // mw)
        x = F.pad(x, (0, 0, 0, pw - w, 0, ph - h))
        if self.attention_mask is not None:
            x = torch.roll(x, shifts=(-self.shifts[0], -self.shifts[1]), dims=(1, 2))
        # partition into windows: (N * windows, Mh * Mw, C)
        x = x.view(batch, ph // mh, mh, pw // mw, mw, c).permute(0, 1, 3, 2, 4, 5).reshape(batch * windows, n, c)
        qkv = self.qkv(x).reshape(batch * windows, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (c // heads) ** -0.5).matmul(k.transpose(-2, -1))
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if self.attention_mask is not None:
            attn = attn.view(batch, windows, heads, n, n) + self.attention_mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, heads, n, n)
        attn = F.dropout(F.softmax(attn, dim=-1), p=self.attention_dropout, training=self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(batch * windows, n, c)
        x = F.dropout(self.proj(x), p=self.dropout, training=self.training)
        # merge the windows, undo the shift and the padding
        x = x.view(batch, ph // mh, pw // mw, mh, mw, c).permute(0, 1, 3, 2, 4, 5).reshape(batch, ph, pw, c)
        if self.attention_mask is not None:
            x = torch.roll(x, shifts=self.shifts, dims=(1, 2))
        return x[:, :h, :w, :].contiguous()

    def extra_repr(self) -> str:
        return (f"window_size={self.window_size}, shift_size={self.shift_size}, num_heads={self.num_heads}, "
                f"input_size={self.input_size}, attention_dropout={self.attention_dropout}, dropout={self.dropout}")


class PatchMerging(nn.Module):
    """Halves a channels-last image's height and width and doubles its channels (Swin Transformer;
    torchvision's ``PatchMerging``): each 2 x 2 neighbourhood's four C-vectors are concatenated
    (4C), normalized, and projected to 2C. Odd sizes are zero-padded at the bottom and right.

    Args:
        dim: Input channels C.
        eps: LayerNorm's epsilon.

    Shape:
        - Input: ``(N, H, W, dim)``
        - Output: ``(N, ceil(H / 2), ceil(W / 2), 2 * dim)``
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-3], x.shape[-2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]],
                      -1)
        return self.reduction(self.norm(x))


#: Every module class defined here, by name: layer declarations name them as ModuleCall targets
#: and exported model.py files define them. Adding a class here is all it takes.
CUSTOM_MODULES: tuple[str, ...] = tuple(
    name for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ == __name__)
