"""Vision Transformer: Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale" (ICLR 2021), Eq. 1-4 and Table 1 (ViT-Base: 12 layers, hidden
768, MLP 3072, 12 heads), patch size 16: a strided convolution embeds patches, a learned class
token is prepended (``torch.cat`` of ``class_token.expand``), learned position embeddings are
added (``x + self.pos_embedding``), then pre-norm encoder blocks (LayerNorm, multi-head
self-attention, residual; LayerNorm, GELU MLP, residual), a final LayerNorm and a linear head
on the class token.

The input must be exactly ``image_size`` x ``image_size``: ``_process_input`` asserts it with
``torch._assert`` (as torchvision does), and the position embedding has one row per patch.

Deviation: torchvision zero-initialises ``heads.head`` (right for fine-tuning, but every logit
of a fresh model is then 0); here ``zero_head=False`` by default gives it a truncated normal
(std 0.02) so untrained outputs are not degenerate.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from tests.zoo.ops import MLP

ModuleFactory = Callable[..., nn.Module]

# LayerNorm with the eps of the reference (JAX) implementation.
LAYER_NORM: ModuleFactory = partial(nn.LayerNorm, eps=1e-6)


class MLPBlock(MLP):
    """The transformer MLP: Linear, GELU, Dropout, Linear, Dropout (``mlp.0``, ``mlp.3``).

    Weights: Xavier-uniform, biases N(0, 1e-6).
    """

    def __init__(self, in_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__(in_dim, [mlp_dim, in_dim], activation_layer=nn.GELU, inplace=None, dropout=dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.normal_(m.bias, std=1e-6)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block (Eq. 2-3).

    Args:
        num_heads: attention heads.
        hidden_dim: token width D.
        mlp_dim: MLP hidden width.
        dropout: dropout after attention and in the MLP.
        attention_dropout: dropout on the attention weights.
        norm_layer: norm factory.

    Shape:
        (N, S, hidden_dim) -> (N, S, hidden_dim).
    """

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float, attention_dropout: float,
                 norm_layer: ModuleFactory = LAYER_NORM) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = norm_layer(hidden_dim)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, dropout=attention_dropout,
                                                    batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = norm_layer(hidden_dim)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, input: Tensor) -> Tensor:
        torch._assert(input.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {input.shape}")
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y


class Encoder(nn.Module):
    """Position embedding, dropout, ``num_layers`` blocks (``encoder_layer_{i}``), LayerNorm.

    Shape:
        (N, seq_length, hidden_dim) -> (N, seq_length, hidden_dim).
    """

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int,
                 dropout: float, attention_dropout: float,
                 norm_layer: ModuleFactory = LAYER_NORM) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(num_layers):
            layers[f"encoder_layer_{i}"] = EncoderBlock(num_heads, hidden_dim, mlp_dim, dropout,
                                                        attention_dropout, norm_layer)
        self.layers = nn.Sequential(layers)
        self.ln = norm_layer(hidden_dim)

    def forward(self, input: Tensor) -> Tensor:
        torch._assert(input.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {input.shape}")
        input = input + self.pos_embedding
        return self.ln(self.layers(self.dropout(input)))


class VisionTransformer(nn.Module):
    """``conv_proj``, ``class_token``, ``encoder``, ``heads`` (``heads.head``).

    Weights: ``conv_proj`` truncated normal with std sqrt(1 / fan_in), bias 0; class token 0;
    position embedding N(0, 0.02); ``heads.head`` see the module docstring.

    Args:
        image_size: the (only) input height and width.
        patch_size: patch side; must divide ``image_size``.
        num_layers, num_heads, hidden_dim, mlp_dim: Table 1.
        dropout: dropout on embeddings, after attention and in the MLP.
        attention_dropout: dropout on attention weights.
        num_classes: output classes.
        representation_size: width of an extra tanh pre-logits layer (None: none).
        norm_layer: norm factory.
        zero_head: zero-initialise ``heads.head`` as torchvision does.

    Shape:
        (N, 3, image_size, image_size) -> (N, num_classes).
    """

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                 mlp_dim: int, dropout: float = 0.0, attention_dropout: float = 0.0, num_classes: int = 1000,
                 representation_size: int | None = None,
                 norm_layer: ModuleFactory = LAYER_NORM, zero_head: bool = False) -> None:
        super().__init__()
        torch._assert(image_size % patch_size == 0, "Input shape indivisible by patch size!")
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.num_classes = num_classes
        self.representation_size = representation_size
        self.norm_layer = norm_layer

        self.conv_proj = nn.Conv2d(in_channels=3, out_channels=hidden_dim, kernel_size=patch_size,
                                   stride=patch_size)
        seq_length = (image_size // patch_size) ** 2
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length += 1
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout,
                               attention_dropout, norm_layer)
        self.seq_length = seq_length

        heads_layers: OrderedDict[str, nn.Module] = OrderedDict()
        if representation_size is None:
            heads_layers["head"] = nn.Linear(hidden_dim, num_classes)
        else:
            heads_layers["pre_logits"] = nn.Linear(hidden_dim, representation_size)
            heads_layers["act"] = nn.Tanh()
            heads_layers["head"] = nn.Linear(representation_size, num_classes)
        self.heads = nn.Sequential(heads_layers)

        fan_in = self.conv_proj.in_channels * self.conv_proj.kernel_size[0] * self.conv_proj.kernel_size[1]
        nn.init.trunc_normal_(self.conv_proj.weight, std=math.sqrt(1 / fan_in))
        if self.conv_proj.bias is not None:
            nn.init.zeros_(self.conv_proj.bias)
        pre_logits = heads_layers.get("pre_logits")
        if isinstance(pre_logits, nn.Linear):
            nn.init.trunc_normal_(pre_logits.weight, std=math.sqrt(1 / pre_logits.in_features))
            nn.init.zeros_(pre_logits.bias)
        head = heads_layers["head"]
        assert isinstance(head, nn.Linear)
        if zero_head:
            nn.init.zeros_(head.weight)
        else:
            nn.init.trunc_normal_(head.weight, std=0.02)
        nn.init.zeros_(head.bias)

    def _process_input(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        p = self.patch_size
        torch._assert(h == self.image_size, f"Wrong image height! Expected {self.image_size} but got {h}!")
        torch._assert(w == self.image_size, f"Wrong image width! Expected {self.image_size} but got {w}!")
        n_h = h // p
        n_w = w // p
        # (n, c, h, w) -> (n, hidden_dim, n_h, n_w) -> (n, hidden_dim, n_h * n_w) -> (n, S, hidden_dim)
        x = self.conv_proj(x)
        x = x.reshape(n, self.hidden_dim, n_h * n_w)
        x = x.permute(0, 2, 1)
        return x

    def forward(self, x: Tensor) -> Tensor:
        x = self._process_input(x)
        n = x.shape[0]
        batch_class_token = self.class_token.expand(n, -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        x = self.encoder(x)
        x = x[:, 0]
        return self.heads(x)


def vit_b_16(num_classes: int = 1000, image_size: int = 224, patch_size: int = 16, num_layers: int = 12,
             num_heads: int = 12, hidden_dim: int = 768, mlp_dim: int = 3072, dropout: float = 0.0,
             zero_head: bool = False) -> VisionTransformer:
    """ViT-B/16 at 224 x 224 (86,567,656 parameters)."""
    return VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                             num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout,
                             num_classes=num_classes, zero_head=zero_head)
