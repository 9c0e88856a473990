"""Shifted Window Attention and Patch Merging compute exactly what the Swin Transformer's modules
compute (tests/zoo/swin_transformer.py, torchvision's structure), and Swin-T imports onto the canvas
exactly: same outputs in evaluation and training mode, same parameter count.

The declarations' shape, parameter and FLOP rules are checked by the conformance tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from engine.compile import compile_graph
from engine.compile.importers import import_torch_module
from engine.compile.importers.torch_modules import map_module
from engine.compile.weights import apply_weights
from engine.layers import Params, ShapeError, TensorSpec, get_layer
from engine.shapes import analyze
from tests.zoo import ZOO_BY_NAME
from tests.zoo import swin_transformer as reference

SWIN = ZOO_BY_NAME["swin_t"]
SPEC = "tests.zoo.swin_transformer:swin_t"


def _ours(module: nn.Module, dims: tuple[int, ...]) -> tuple[str, nn.Module]:
    """The canvas layer a reference module maps to, built for ``dims`` and holding its tensors."""
    mapped = map_module(module)
    assert mapped is not None, type(module).__name__
    type_id, params, tensors, _ = mapped
    layer = get_layer(type_id)
    built = layer.build(Params({**layer.defaults(), **params}), [TensorSpec(dims)])
    built.load_state_dict(tensors, strict=True)
    return type_id, built


def _same_in_both_modes(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    for train in (False, True):
        ours.train(train), theirs.train(train)
        torch.manual_seed(3)
        expected = theirs(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("dims", "heads", "window", "shift", "dropouts"), [
    ((8, 8, 8), 2, [4, 4], [2, 2], (0.0, 0.0)),   # shifted windows with the mask
    ((5, 7, 6), 3, [3, 2], [1, 1], (0.2, 0.1)),   # padded to whole windows; dropout while training
    ((6, 4, 4), 1, [3, 4], [1, 0], (0.0, 0.0)),   # a window as wide as the map: shifted down only
    ((2, 2, 8), 2, [2, 2], [1, 1], (0.0, 0.0)),   # one window covers the map: no shift (Swin-T's last stage)
    ((9, 9, 4), 2, [3, 3], [0, 0], (0.0, 0.0)),   # plain windows
], ids=["shifted", "padded-dropout", "one-axis", "covering", "plain"])
def test_window_attention_computes_what_the_reference_does(dims: tuple[int, int, int], heads: int,
                                                           window: list[int], shift: list[int],
                                                           dropouts: tuple[float, float]) -> None:
    torch.manual_seed(0)
    theirs = reference.ShiftedWindowAttention(dims[-1], window, shift, heads, attention_dropout=dropouts[0],
                                              dropout=dropouts[1])
    type_id, ours = _ours(theirs, dims)
    assert type_id == "shifted_window_attention"
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    _same_in_both_modes(ours, theirs, torch.randn(3, *dims))


@pytest.mark.parametrize("dims", [(8, 6, 4), (5, 7, 4), (1, 1, 4)])
def test_patch_merging_computes_what_the_reference_does(dims: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    theirs = reference.PatchMerging(dims[-1])
    nn.init.normal_(theirs.norm.weight), nn.init.normal_(theirs.norm.bias)
    type_id, ours = _ours(theirs, dims)
    assert type_id == "patch_merging"
    x = torch.randn(3, *dims)
    assert ours(x).shape == (3, (dims[0] + 1) // 2, (dims[1] + 1) // 2, 2 * dims[2])
    _same_in_both_modes(ours, theirs, x)


class PatchMerging(nn.Module):
    """timm's patch merging: the same name and tensors, the four neighbours in another order."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        x = x.reshape(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.reduction(self.norm(x))


def test_modules_of_the_same_name_that_compute_something_else_are_not_taken() -> None:
    timm_like, too_far = PatchMerging(4), reference.ShiftedWindowAttention(8, [2, 2], [2, 2], 2)
    torchvision_like = reference.ShiftedWindowAttention(8, [3, 3], [1, 1], 2)
    state = torch.get_rng_state()
    assert map_module(timm_like) is None
    assert map_module(too_far) is None  # a shift as large as the window
    assert map_module(torchvision_like) is not None
    assert torch.equal(torch.get_rng_state(), state)  # recognizing runs the modules without drawing numbers


def test_shape_errors_say_what_to_do() -> None:
    layer = get_layer("shifted_window_attention")
    p = Params({**layer.defaults(), "num_heads": 3})
    with pytest.raises(ShapeError, match="Permute with dims \\[0, 2, 3, 1\\]"):
        layer.infer(p, [TensorSpec((6, 5))])
    with pytest.raises(ShapeError, match="not divisible by num_heads=3"):
        layer.infer(p, [TensorSpec((7, 7, 8))])
    assert layer.check_params({**layer.defaults(), "window_size": (4, 4), "shift_size": (2, 4)}) == [
        ("shift_size", "must be smaller than window_size (4, 4) on each axis, got (2, 4)")]


def test_reduced_swin_t_imports_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SWIN.build_reduced()
    weights = tmp_path / "swin.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    result = import_torch_module(SPEC, dict(SWIN.reduced_kwargs), SWIN.reduced_input_shape, weights)
    graph = result.project.graph
    analysis = analyze(graph)
    assert analysis.valid and result.max_abs_diff <= 1e-5
    assert analysis.parameters == sum(p.numel() for p in model.parameters())
    types = [n.type_id for n in graph]
    assert types.count("shifted_window_attention") == 8 and types.count("patch_merging") == 3
    assert types.count("stochastic_depth") == 16
    compiled = compile_graph(graph)
    apply_weights(compiled.module, result.weights, "imported")
    _same_in_both_modes(compiled.module, model, torch.randn(2, *SWIN.reduced_input_shape))


@pytest.mark.slow  # 28 million parameters built three times: about 4 s on an idle CPU
def test_swin_t_parameter_count_on_the_canvas() -> None:
    # the count does not depend on the input size: a small one keeps the import fast
    result = import_torch_module(SPEC, dict(SWIN.full_kwargs), (3, 32, 32))
    assert analyze(result.project.graph).parameters == SWIN.params == 28_288_354
