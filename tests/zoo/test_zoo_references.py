"""The zoo's reference models: published parameter counts, torchvision's submodule names,
reduced variants that run in eval and train mode, smallest inputs, and torch.fx tracing.

Full-size models are only instantiated (about 5 s for all of them on two cores); every
forward pass uses the reduced variants.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import torch.fx
from torch import nn

from tests.zoo import STOCHASTIC_DEPTH, ZOO, ZooEntry
from tests.zoo.convnext import convnext_tiny
from tests.zoo.googlenet import googlenet
from tests.zoo.inception import inception_v3
from tests.zoo.ops import StochasticDepth, stochastic_depth
from tests.zoo.resnet import resnet34
from tests.zoo.swin_transformer import swin_t
from tests.zoo.vgg import vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from tests.zoo.vision_transformer import vit_b_16

IDS = [entry.name for entry in ZOO]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reduced_batch(entry: ZooEntry, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *entry.reduced_input_shape, generator=generator)


def build_reduced(entry: ZooEntry, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return entry.build_reduced()


# ----------------------------------------------------------------------------- full sizes
@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_published_parameter_count(entry: ZooEntry) -> None:
    assert entry.params is not None
    model = entry.build_full()
    assert count_parameters(model) == entry.params


# Figures torchvision publishes for variants outside ZOO, and the auxiliary heads
# (GoogLeNet's 13,004,888 is not published: it is 6,624,904 plus the two heads, 3,188,968
# after inception4a and 3,191,016 after inception4d). Built on the meta device: these only
# exercise the configuration machinery, and VGG's 140 M weights would cost seconds to fill.
EXTRA_COUNTS: list[tuple[str, Callable[[], nn.Module], int]] = [
    ("vgg13", vgg13, 133_047_848),
    ("vgg13_bn", vgg13_bn, 133_053_736),
    ("vgg16", vgg16, 138_357_544),
    ("vgg16_bn", vgg16_bn, 138_365_992),
    ("vgg19", vgg19, 143_667_240),
    ("vgg19_bn", vgg19_bn, 143_678_248),
    ("resnet34", resnet34, 21_797_672),
    ("googlenet_aux", lambda: googlenet(aux_logits=True), 13_004_888),
    ("inception_v3_aux", lambda: inception_v3(aux_logits=True), 27_161_264),
]


@pytest.mark.parametrize(("name", "builder", "expected"), EXTRA_COUNTS, ids=[e[0] for e in EXTRA_COUNTS])
def test_other_published_parameter_counts(name: str, builder: Callable[[], nn.Module], expected: int) -> None:
    with torch.device("meta"):
        model = builder()
    assert count_parameters(model) == expected


# A few state-dict keys per model, as torchvision names them (checkpoints load by these).
TORCHVISION_KEYS: dict[str, list[str]] = {
    "alexnet": ["features.0.weight", "features.10.bias", "classifier.1.weight", "classifier.6.bias"],
    "vgg11": ["features.0.weight", "features.18.weight", "classifier.0.weight", "classifier.6.bias"],
    "vgg11_bn": ["features.1.running_mean", "features.26.weight", "classifier.3.weight"],
    "resnet18": ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                 "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"],
    "resnet50": ["layer1.0.downsample.0.weight", "layer3.5.conv3.weight", "layer4.2.bn3.weight"],
    "resnext50_32x4d": ["layer1.0.conv2.weight", "layer4.2.conv3.weight"],
    "wide_resnet50_2": ["layer1.0.conv2.weight", "layer4.2.conv3.weight"],
    "squeezenet1_0": ["features.0.weight", "features.3.squeeze.weight", "features.12.expand3x3.bias",
                      "classifier.1.weight"],
    "squeezenet1_1": ["features.0.weight", "features.3.expand1x1.weight", "features.12.expand3x3.bias"],
    "densenet121": ["features.conv0.weight", "features.norm0.running_mean",
                    "features.denseblock1.denselayer1.norm1.weight", "features.denseblock4.denselayer16.conv2.weight",
                    "features.transition3.conv.weight", "features.norm5.bias", "classifier.weight"],
    "googlenet": ["conv1.conv.weight", "conv1.bn.running_mean", "conv3.conv.weight",
                  "inception3a.branch2.1.conv.weight", "inception5b.branch4.1.bn.weight", "fc.weight"],
    "inception_v3": ["Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch5x5_2.conv.weight",
                     "Mixed_6e.branch7x7dbl_5.conv.weight", "Mixed_7c.branch3x3dbl_3b.bn.weight", "fc.weight"],
    "mobilenet_v2": ["features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight",
                     "features.1.conv.1.weight", "features.2.conv.0.0.weight", "features.17.conv.3.bias",
                     "features.18.0.weight", "classifier.1.weight"],
    "mobilenet_v3_large": ["features.0.0.weight", "features.1.block.0.0.weight", "features.4.block.2.fc1.weight",
                           "features.15.block.3.1.weight", "features.16.0.weight", "classifier.0.weight",
                           "classifier.3.bias"],
    "mobilenet_v3_small": ["features.1.block.1.fc1.weight", "features.1.block.1.fc2.bias",
                           "features.12.0.weight", "classifier.3.weight"],
    "shufflenet_v2_x0_5": ["conv1.0.weight", "stage2.0.branch1.0.weight", "stage2.0.branch2.6.running_var",
                           "stage3.7.branch2.5.weight", "conv5.1.weight", "fc.weight"],
    "shufflenet_v2_x1_0": ["stage4.3.branch2.0.weight", "conv5.0.weight"],
    "mnasnet0_5": ["layers.0.weight", "layers.7.running_mean", "layers.8.0.layers.0.weight",
                   "layers.13.0.layers.7.bias", "layers.14.weight", "layers.15.weight", "classifier.1.weight"],
    "mnasnet1_0": ["layers.12.3.layers.3.weight"],
    "efficientnet_b0": ["features.0.0.weight", "features.1.0.block.0.0.weight", "features.1.0.block.1.fc1.weight",
                        "features.2.0.block.0.0.weight", "features.6.3.block.2.fc2.bias",
                        "features.7.0.block.3.1.weight", "features.8.0.weight", "classifier.1.weight"],
    "regnet_y_400mf": ["stem.0.weight", "stem.1.running_mean", "trunk_output.block1.block1-0.proj.0.weight",
                       "trunk_output.block1.block1-0.f.a.0.weight", "trunk_output.block1.block1-0.f.se.fc1.weight",
                       "trunk_output.block4.block4-5.f.c.1.weight", "fc.weight"],
    "convnext_tiny": ["features.0.0.weight", "features.0.1.weight", "features.1.0.layer_scale",
                      "features.1.0.block.0.weight", "features.1.0.block.2.weight", "features.1.0.block.3.weight",
                      "features.2.0.weight", "features.2.1.weight", "features.5.8.block.5.bias",
                      "features.7.2.layer_scale", "classifier.0.weight", "classifier.2.weight"],
    "vit_b_16": ["class_token", "conv_proj.weight", "encoder.pos_embedding",
                 "encoder.layers.encoder_layer_0.ln_1.weight",
                 "encoder.layers.encoder_layer_0.self_attention.in_proj_weight",
                 "encoder.layers.encoder_layer_0.self_attention.out_proj.weight",
                 "encoder.layers.encoder_layer_0.mlp.0.weight", "encoder.layers.encoder_layer_0.mlp.3.bias",
                 "encoder.layers.encoder_layer_11.ln_2.bias", "encoder.ln.weight", "heads.head.weight"],
    "swin_t": ["features.0.0.weight", "features.0.2.weight", "features.1.0.norm1.weight",
               "features.1.0.attn.qkv.weight", "features.1.0.attn.relative_position_bias_table",
               "features.1.0.attn.relative_position_index", "features.1.0.mlp.0.weight",
               "features.1.1.mlp.3.bias", "features.2.reduction.weight", "features.2.norm.weight",
               "features.5.5.attn.proj.weight", "features.7.1.norm2.bias", "norm.weight", "head.weight"],
}


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_torchvision_state_dict_names(entry: ZooEntry) -> None:
    with torch.device("meta"):
        model = entry.build_full()
    keys = set(model.state_dict())
    missing = [k for k in TORCHVISION_KEYS[entry.name] if k not in keys]
    assert not missing


def test_every_model_has_name_checks() -> None:
    assert set(TORCHVISION_KEYS) == set(IDS)


# ----------------------------------------------------------------------------- reduced forward
@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_reduced_forward_eval(entry: ZooEntry) -> None:
    model = build_reduced(entry).eval()
    assert count_parameters(model) < 3_000_000
    with torch.no_grad():
        out = model(reduced_batch(entry))
    assert out.shape == (2, entry.reduced_num_classes)
    assert torch.isfinite(out).all()
    # Not degenerate: the logits vary over classes and with the input, relative to their size.
    scale = out.abs().max().item()
    assert scale > 1e-6
    assert out.std(dim=1).min().item() > 1e-3 * scale
    assert (out[0] - out[1]).abs().max().item() > 1e-2 * scale


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_reduced_forward_train(entry: ZooEntry) -> None:
    model = build_reduced(entry).train()
    x = reduced_batch(entry)
    out = model(x)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, entry.reduced_num_classes)
    assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_train_mode_differs_as_declared(entry: ZooEntry) -> None:
    model = build_reduced(entry)
    x = reduced_batch(entry)
    with torch.no_grad():
        expected = model.eval()(x)
        torch.manual_seed(1)
        got = copy.deepcopy(model).train()(x)
    if entry.train_differs:
        assert not torch.equal(got, expected)
    else:
        # Same function; only the attention kernel may differ (fast path in eval mode).
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_smallest_input(entry: ZooEntry) -> None:
    model = build_reduced(entry).eval()
    c = entry.reduced_input_shape[0]
    with torch.no_grad():
        out = model(torch.randn(2, c, entry.min_hw, entry.min_hw))
        assert out.shape == (2, entry.reduced_num_classes)
        too_small = [entry.min_hw - 1] if entry.min_hw > 1 else []
        too_big = [entry.min_hw + 1] if entry.fixed_size else []
        for hw in too_small + too_big:
            with pytest.raises((RuntimeError, AssertionError)):
                model(torch.randn(2, c, hw, hw))


def test_reduced_input_matches_min_for_fixed_size() -> None:
    for entry in ZOO:
        if entry.fixed_size:
            assert entry.reduced_input_shape[1:] == (entry.min_hw, entry.min_hw)


# ----------------------------------------------------------------------------- torch.fx
@pytest.mark.parametrize("entry", ZOO, ids=IDS)
def test_fx_symbolic_trace(entry: ZooEntry) -> None:
    model = build_reduced(entry).eval()
    traced = torch.fx.symbolic_trace(model)
    x = reduced_batch(entry)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def test_fx_trace_keeps_vit_size_assert() -> None:
    model = vit_b_16(num_classes=10, image_size=32, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32).eval()
    traced = torch.fx.symbolic_trace(model)
    asserts = [n for n in traced.graph.nodes if n.op == "call_function" and n.target is torch._assert]
    assert len(asserts) == 4  # image height, image width, and the 3-D checks of encoder and block
    with pytest.raises(AssertionError, match="Wrong image height"):
        traced(torch.randn(1, 3, 48, 48))


def test_fx_trace_bakes_the_training_flag_of_wrapped_functions() -> None:
    """``stochastic_depth`` and ``shifted_window_attention`` are leaves of the trace whose
    ``training`` argument is a constant from trace time: a graph traced in eval mode stays
    deterministic after ``.train()`` (nn.Dropout / BatchNorm modules still follow the mode)."""
    for model in (convnext_tiny(num_classes=3, dims=(8, 16, 32, 64), depths=(1, 1, 2, 1)),
                  swin_t(num_classes=3, embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2],
                         window_size=[2, 2])):
        traced = torch.fx.symbolic_trace(model.eval())
        flags = [n.args[3] if len(n.args) > 3 else n.kwargs.get("training")
                 for n in traced.graph.nodes if n.op == "call_function" and n.target is stochastic_depth]
        assert flags and set(flags) == {False}


# ----------------------------------------------------------------------------- stochastic depth
def test_stochastic_depth_row_mode() -> None:
    torch.manual_seed(0)
    x = torch.ones(1000, 3, 2, 2)
    layer = StochasticDepth(0.25, "row")
    out = layer.train()(x)
    per_row = out.flatten(1)
    kept = torch.tensor(1.0 / 0.75)
    assert all(v == 0.0 or v == kept for v in per_row.unique())
    assert torch.equal(per_row.min(dim=1).values, per_row.max(dim=1).values)  # whole rows drop
    dropped = (per_row[:, 0] == 0).float().mean().item()
    assert 0.2 < dropped < 0.3
    assert torch.equal(layer.eval()(x), x)


@pytest.mark.parametrize("entry", [e for e in ZOO if STOCHASTIC_DEPTH in e.train_differs],
                         ids=[e.name for e in ZOO if STOCHASTIC_DEPTH in e.train_differs])
def test_stochastic_depth_rises_linearly(entry: ZooEntry) -> None:
    with torch.device("meta"):
        model = entry.build_full()
    probs = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    last = {"efficientnet_b0": 0.2 * 15 / 16, "convnext_tiny": 0.1, "swin_t": 0.2}[entry.name]
    assert probs[0] == 0.0
    assert probs == sorted(probs)
    assert probs[-1] == pytest.approx(last)
