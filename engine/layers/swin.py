"""The Swin Transformer's layers on channels-last images (N, H, W, C): Shifted Window Attention and
Patch Merging.

Both build modules of :mod:`engine.layers.modules` with torchvision's state-dict names, and import
modules of the same class names (torchvision's, a copy of its code, the app's own in exported
``model.py`` files), kept whole while tracing. A module of that name counts as the layer only when
it computes what the layer computes: the recognizer runs both on a small random sample, once per
class and options (timm's ``PatchMerging``, for one, orders the four neighbours differently).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

from engine.layers.attention import _require_heads
from engine.layers.base import (Example, Inference, LayerType, ModuleCall, Params, TensorSpec, register,
                                require_float, require_rank)
from engine.layers.params import bool_param, float_param, int_param, int_tuple_param
from engine.layers.recognize import FromModule, Imported, module_state

_CHANNELS_LAST = "(N, H, W, C) with the channels last"
_PERMUTE_HINT = "insert a Permute with dims [0, 2, 3, 1] to move the channels of an (N, C, H, W) image last"


# ------------------------------------------------------------- recognizers
#: Module class -> options -> whether its modules compute what the layer does (probed once each).
_VERDICTS: weakref.WeakKeyDictionary[type, dict[tuple[Any, ...], bool]] = weakref.WeakKeyDictionary()


def _computes_the_same(reference: Any, make: Callable[[], Any], tensors: dict[str, Any], dims: tuple[int, ...],
                       options: tuple[Any, ...] = ()) -> bool:
    """Whether the layer's module (``make()``), given ``tensors``, computes what ``reference`` does on a
    random sample (evaluation mode; the global random state and the reference's mode are left as they
    were). The answer is kept for the reference's class and ``options``: the other blocks ask again."""
    verdicts = _VERDICTS.setdefault(type(reference), {})
    if options not in verdicts:
        verdicts[options] = _probe(reference, make, tensors, dims)
    return verdicts[options]


def _probe(reference: Any, make: Callable[[], Any], tensors: dict[str, Any], dims: tuple[int, ...]) -> bool:
    import torch

    modes = [(module, module.training) for module in reference.modules()]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            ours = make()
            ours.load_state_dict(tensors, strict=True)
            device = next((t.device for t in tensors.values()), torch.device("cpu"))
            x = torch.randn(1, *dims, generator=torch.Generator().manual_seed(0)).to(device)
            expected, actual = reference.eval()(x), ours.to(device).eval()(x)
        except Exception:  # noqa: BLE001 - a module of another kind can fail in any way
            return False
        finally:
            for module, training in modes:
                module.training = training
    return isinstance(expected, torch.Tensor) and expected.shape == actual.shape \
        and bool(torch.allclose(actual, expected, rtol=1e-4, atol=1e-5))


def _window_attention_from_module(m: Any) -> Imported | None:
    """torchvision's ``ShiftedWindowAttention`` (or the app's): ``qkv`` and ``proj`` Linears, the
    relative position bias table, window and shift sizes, heads, dropouts."""
    from torch import nn

    from engine.layers.modules import ShiftedWindowAttention as Module

    try:
        window, shift = tuple(int(v) for v in m.window_size), tuple(int(v) for v in m.shift_size)
        heads, qkv, proj = int(m.num_heads), m.qkv, m.proj
        params = {"num_heads": heads, "window_size": window, "shift_size": shift,
                  "qkv_bias": qkv.bias is not None, "proj_bias": proj.bias is not None,
                  "attention_dropout": float(m.attention_dropout), "dropout": float(m.dropout)}
    except (AttributeError, TypeError, ValueError):
        return None
    if not isinstance(qkv, nn.Linear) or not isinstance(proj, nn.Linear) \
            or WindowAttention().check_params(params):
        return None
    tensors = {k: v for k, v in module_state(m).items() if k != "relative_position_index"}
    size = getattr(m, "input_size", None)  # the app's own module is built for one input size
    if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        size = (2 * window[0], 2 * window[1])  # room for a shift: windows smaller than the map
    dim, biases = proj.in_features, (qkv.bias is not None, proj.bias is not None)
    same = _computes_the_same(m, lambda: Module(dim, window, shift, heads, size, *biases), tensors, (*size, dim),
                              (window, shift, *biases, size))
    return (params, tensors) if same else None


def _patch_merging_from_module(m: Any) -> Imported | None:
    """torchvision's ``PatchMerging`` (or the app's): ``norm`` (a LayerNorm of 4C) and ``reduction``
    (Linear 4C -> 2C without bias)."""
    from torch import nn

    from engine.layers.modules import PatchMerging as Module

    norm, reduction = getattr(m, "norm", None), getattr(m, "reduction", None)
    if not isinstance(norm, nn.LayerNorm) or not isinstance(reduction, nn.Linear) or reduction.bias is not None \
            or not norm.elementwise_affine or getattr(norm, "bias", None) is None \
            or reduction.in_features % 4 or reduction.out_features * 2 != reduction.in_features \
            or tuple(norm.normalized_shape) != (reduction.in_features,):
        return None
    dim = reduction.in_features // 4
    params = {"eps": float(norm.eps)}
    if PatchMergingLayer().check_params(params):
        return None
    tensors = module_state(m)
    same = _computes_the_same(m, lambda: Module(dim, norm.eps), tensors, (3, 5, dim))
    return (params, tensors) if same else None


# ------------------------------------------------------------------ layers
@register
class WindowAttention(LayerType):
    """Multi-head self-attention inside (shifted) windows of a channels-last image."""

    type_id = "shifted_window_attention"
    imports = (FromModule(("ShiftedWindowAttention",), _window_attention_from_module),)
    title = "Shifted Window Attention"
    category = "Attention"
    doc = ("Self-attention of a channels-last image (N, H, W, C) inside windows, as in the Swin Transformer: each "
           "position attends to the positions of its window, with a learned bias for each relative position. With "
           "a shift_size the windows move by that much (cyclically, masked so wrapped-around regions stay apart), "
           "so alternating plain and shifted blocks connect neighbouring windows. Maps are zero-padded to whole "
           "windows; a window as large as the map is not shifted.")
    id_prefix = "wattn"
    key_params = ("num_heads", "window_size", "shift_size")
    params = (
        int_param("num_heads", 4, "Number of attention heads; must divide the channels.", min=1, max=1024),
        int_tuple_param("window_size", (7, 7), "Height and width of each window, e.g. 7 x 7 (Swin-T).",
                        min=1, max=64),
        int_tuple_param("shift_size", (0, 0), "Cyclic shift of the windows: 0 for a plain window block, half "
                                              "the window for a shifted one.", min=0, max=63),
        bool_param("qkv_bias", True, "Learn a bias in the query, key and value projection."),
        bool_param("proj_bias", True, "Learn a bias in the output projection."),
        float_param("attention_dropout", 0.0, "Dropout on the attention weights while training.", min=0.0, max=0.99),
        float_param("dropout", 0.0, "Dropout on the output while training.", min=0.0, max=0.99),
    )
    examples = (
        Example(((8, 8, 8),), {"num_heads": 2, "window_size": (4, 4), "shift_size": (2, 2)}),
        Example(((5, 7, 6),), {"num_heads": 3, "window_size": (3, 2), "shift_size": (1, 1), "qkv_bias": False,
                               "proj_bias": False, "attention_dropout": 0.1, "dropout": 0.1}),
        Example(((7, 7, 4),), {"shift_size": (3, 3)}),  # one window covers the map: no shift
        Example(((6, 4, 4),), {"num_heads": 1, "window_size": (3, 4), "shift_size": (1, 0)}),
    )

    def check_combination(self, p: Params) -> list[tuple[str, str]]:
        if any(s >= w for s, w in zip(p.shift_size, p.window_size)):
            problem = f"must be smaller than window_size {tuple(p.window_size)} on each axis, got {tuple(p.shift_size)}"
            return [("shift_size", problem)]
        return []

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        require_rank(x, (4,), _CHANNELS_LAST, _PERMUTE_HINT)
        _require_heads(x, p.num_heads, "num_heads")
        (h, w, c), (mh, mw) = x.dims, p.window_size
        tokens = (h + (-h) % mh) * (w + (-w) % mw)  # padded to whole windows
        parameters = 4 * c * c + (3 * c if p.qkv_bias else 0) + (c if p.proj_bias else 0) \
            + (2 * mh - 1) * (2 * mw - 1) * p.num_heads
        # projections (query, key, value and output), then scores and mix inside each window
        return Inference(x, parameters, 2 * tokens * c * 4 * c + 2 * 2 * tokens * mh * mw * c)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        h, w, c = inputs[0].dims
        return ModuleCall.of("ShiftedWindowAttention", c, tuple(p.window_size), tuple(p.shift_size), p.num_heads,
                             (h, w), qkv_bias=p.qkv_bias, proj_bias=p.proj_bias,
                             attention_dropout=p.attention_dropout, dropout=p.dropout)


@register
class PatchMergingLayer(LayerType):
    """2 x 2 neighbourhoods concatenated, normalized and projected: half the size, twice the channels."""

    type_id = "patch_merging"
    imports = (FromModule(("PatchMerging",), _patch_merging_from_module),)
    title = "Patch Merging"
    category = "Attention"
    doc = ("Halves the height and width of a channels-last image (N, H, W, C) and doubles its channels, as between "
           "the stages of the Swin Transformer: the four C-vectors of each 2 x 2 neighbourhood are concatenated "
           "(4C), normalized with a LayerNorm and projected to 2C by a Linear without bias. Odd sizes are "
           "zero-padded at the bottom and right.")
    id_prefix = "patchmerge"
    key_params = ()
    params = (float_param("eps", 1e-5, "Small number added to the variance in the LayerNorm.", min=1e-12, max=1.0),)
    examples = (Example(((8, 8, 6),)), Example(((5, 7, 4),), {"eps": 1e-6}), Example(((1, 1, 2),)))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        require_rank(x, (4,), _CHANNELS_LAST, _PERMUTE_HINT)
        h, w, c = x.dims
        out = ((h + 1) // 2, (w + 1) // 2, 2 * c)
        # LayerNorm of 4C (weight and bias), Linear 4C -> 2C
        return Inference(x.with_dims(out), 8 * c + 8 * c * c, 2 * out[0] * out[1] * 4 * c * 2 * c)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("PatchMerging", inputs[0].dims[-1], eps=p.eps)
