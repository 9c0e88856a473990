"""ONNX import of layers that torch.onnx.export writes as several operators, back onto one canvas layer each."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from engine.compile.export.common import quiet_export
from engine.compile.importers import import_onnx
from engine.errors import UserError

_IO = {"input", "output"}


def _export(model: nn.Module, x: torch.Tensor, path: Path, dynamic: bool, opset: int | None = None) -> Path:
    extra: dict[str, Any] = {"dynamic_shapes": ({0: torch.export.Dim("batch", min=1, max=1024)},)} if dynamic else {}
    if opset is not None:
        extra["opset_version"] = opset
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=True, **extra)
    return path


def _layers(result: Any) -> list[Any]:
    return [node for node in result.project.graph.nodes.values() if node.type_id not in _IO]


class _ChannelShuffle(nn.Module):
    """torchvision ShuffleNet's ``channel_shuffle``: view, transpose, view."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.size()
        x = x.view(batch, 3, channels // 3, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batch, -1, height, width)


class _LayerNorm2d(nn.Module):
    """ConvNeXt's LayerNorm2d as written out: channels last, LayerNorm, channels first."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ClassToken(nn.Module):
    """ViT's ``torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.randn(1, 1, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)


def _randomized(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.copy_(torch.randn(tensor.shape) * 0.5 + (1.0 if tensor.dim() == 1 else 0.0))
    return model


#: (id, model, input shape, opset, the one layer, its expected params).
CASES = [
    ("softplus", nn.Softplus(), (2, 5), None, "softplus", {"beta": 1.0, "threshold": 20.0}),
    ("softplus_beta", nn.Softplus(beta=2.0, threshold=10.0), (2, 5), None, "softplus",
     {"beta": 2.0, "threshold": 10.0}),
    ("gelu_tanh", nn.GELU(approximate="tanh"), (2, 5), 18, "gelu", {"approximate": "tanh"}),
    ("groupnorm", _randomized(nn.GroupNorm(2, 4, eps=1e-3)), (2, 4, 3, 3), None, "groupnorm",
     {"num_groups": 2, "affine": True}),
    ("groupnorm_1d", nn.GroupNorm(3, 6, affine=False), (2, 6, 5), None, "groupnorm",
     {"num_groups": 3, "affine": False}),
    ("channel_shuffle", nn.ChannelShuffle(2), (2, 4, 3, 3), None, "channel_shuffle", {"groups": 2}),
    ("shufflenet_function", _ChannelShuffle(), (2, 6, 2, 3), None, "channel_shuffle", {"groups": 3}),
    ("layernorm2d", _randomized(_LayerNorm2d(4)), (2, 4, 3, 3), None, "layernorm2d", {"elementwise_affine": True}),
    ("adaptive_avgpool1d", nn.AdaptiveAvgPool1d(3), (2, 4, 9), None, "adaptive_avgpool1d",
     {"output_size": 3, "flatten": False}),
    ("adaptive_avgpool1d_windows", nn.AdaptiveAvgPool1d(3), (2, 4, 10), None, "adaptive_avgpool1d",
     {"output_size": 3, "flatten": False}),
    ("adaptive_maxpool1d", nn.AdaptiveMaxPool1d(2), (2, 4, 8), None, "adaptive_maxpool1d",
     {"output_size": 2, "flatten": False}),
    ("global_maxpool1d_flatten", nn.Sequential(nn.AdaptiveMaxPool1d(1), nn.Flatten()), (2, 4, 9), None,
     "adaptive_maxpool1d", {"output_size": 1, "flatten": True}),
    ("global_avgpool1d", nn.AdaptiveAvgPool1d(1), (2, 4, 9), None, "adaptive_avgpool1d",
     {"output_size": 1, "flatten": False}),
    ("global_maxpool2d_flatten", nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()), (2, 4, 5, 5), None,
     "adaptive_maxpool2d", {"output_size": (1, 1), "flatten": True}),
    ("class_token", _ClassToken(8), (2, 4, 8), None, "class_token", {}),
]


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed_batch", "dynamic_batch"])
@pytest.mark.parametrize(("model", "shape", "opset", "type_id", "params"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_exported_pattern_imports_as_one_layer(tmp_path: Path, model: nn.Module, shape: tuple[int, ...],
                                               opset: int | None, type_id: str, params: dict[str, Any],
                                               dynamic: bool) -> None:
    result = import_onnx(_export(model, torch.randn(*shape), tmp_path / "m.onnx", dynamic, opset))
    (layer,) = _layers(result)
    assert layer.type_id == type_id
    for name, value in params.items():
        found = layer.params[name]
        assert (tuple(found) if isinstance(found, (list, tuple)) else found) == value, name
    assert result.max_abs_diff < 1e-5


def test_read_parameters_and_tensors(tmp_path: Path) -> None:
    norm = _randomized(nn.GroupNorm(2, 4, eps=1e-3))
    result = import_onnx(_export(norm, torch.randn(2, 4, 3, 3), tmp_path / "gn.onnx", True))
    (layer,) = _layers(result)
    assert math.isclose(layer.params["eps"], 1e-3, rel_tol=1e-6)
    assert torch.equal(result.weights[f"{layer.id}.weight"], norm.weight.detach())
    assert torch.equal(result.weights[f"{layer.id}.bias"], norm.bias.detach())
    token = _ClassToken(8)
    result = import_onnx(_export(token, torch.randn(2, 4, 8), tmp_path / "cls.onnx", True))
    (layer,) = _layers(result)
    assert torch.equal(result.weights[f"{layer.id}.token"], token.class_token.detach())


def test_vit_embedding_imports_with_its_class_token_and_position_embedding(tmp_path: Path) -> None:
    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Conv2d(3, 8, 2, 2)
            self.token = _ClassToken(8)
            self.position = nn.Parameter(torch.randn(1, 5, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.token(self.proj(x).flatten(2).transpose(1, 2)) + self.position

    for dynamic in (False, True):
        result = import_onnx(_export(Embed(), torch.randn(2, 3, 4, 4), tmp_path / "vit.onnx", dynamic))
        types = [layer.type_id for layer in _layers(result)]
        assert types.count("class_token") == 1 and types.count("position_embedding") == 1
        assert result.max_abs_diff < 1e-5


def test_channels_last_value_read_elsewhere_stays_three_layers(tmp_path: Path) -> None:
    class Reused(_LayerNorm2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            last = x.permute(0, 2, 3, 1)
            return self.norm(last).permute(0, 3, 1, 2) + last.permute(0, 3, 1, 2)

    result = import_onnx(_export(Reused(4), torch.randn(2, 4, 3, 3), tmp_path / "ln.onnx", True))
    types = [layer.type_id for layer in _layers(result)]
    assert "layernorm2d" not in types and "layernorm" in types
    assert result.max_abs_diff < 1e-5


def test_a_formula_with_another_constant_is_reported_with_it(tmp_path: Path) -> None:
    class NotGelu(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.05 * torch.pow(x, 3))))

    with pytest.raises(UserError, match=r"constant 0\.05, where the formula has 0\.044715"):
        import_onnx(_export(NotGelu(), torch.randn(2, 5), tmp_path / "f.onnx", True, 18))


def test_a_constant_whose_samples_differ_is_no_class_token(tmp_path: Path) -> None:
    class Prefix(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = nn.Parameter(torch.randn(2, 1, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.prefix, x], dim=1)

    with pytest.raises(UserError, match="whose samples differ"):
        import_onnx(_export(Prefix(), torch.randn(2, 4, 8), tmp_path / "p.onnx", False))


def test_the_apps_own_onnx_export_of_these_layers_imports_back(tmp_path: Path) -> None:
    from engine.compile.export import export_model
    from engine.graph.fileformat import load_project, save_project
    from tests.export.test_layer_additions_export import image_blocks

    save_project(image_blocks(), tmp_path / "blocks.json")
    exported = export_model(load_project(tmp_path / "blocks.json"), "onnx", tmp_path / "blocks.onnx",
                            base_dir=tmp_path)
    result = import_onnx(exported.paths[0])
    layers = {layer.type_id: layer for layer in _layers(result)}
    assert {"groupnorm", "layernorm2d", "channel_shuffle", "softplus"} <= set(layers)
    assert layers["groupnorm"].params["num_groups"] == 2 and layers["channel_shuffle"].params["groups"] == 2
    assert layers["softplus"].params["beta"] == 2.0
    assert result.max_abs_diff < 1e-5
