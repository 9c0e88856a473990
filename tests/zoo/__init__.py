"""The test suite's reference implementations of the classic image-classification zoo.

Plain PyTorch ``nn.Module`` s written from the papers, with torchvision's public structure,
submodule names, forward idioms, default hyper-parameters and therefore parameter counts.
Tests import them onto the canvas (``torch.fx`` tracing, ``torch.onnx.export(dynamo=True)``).

:data:`ZOO` lists one :class:`ZooEntry` per model: its builder, the keyword arguments of the
published model and of a reduced model with the same structure (same layer types and
connectivity; narrower, sometimes fewer repeats, fewer classes), the input shapes (C, H, W)
for each, the published parameter count, the smallest spatial input the reduced model
accepts, and what makes its training-mode forward differ from evaluation mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from tests.zoo.alexnet import alexnet
from tests.zoo.convnext import convnext_tiny
from tests.zoo.densenet import densenet121
from tests.zoo.efficientnet import efficientnet_b0
from tests.zoo.googlenet import googlenet
from tests.zoo.inception import inception_v3
from tests.zoo.mnasnet import mnasnet
from tests.zoo.mobilenetv2 import mobilenet_v2
from tests.zoo.mobilenetv3 import mobilenet_v3_large, mobilenet_v3_small
from tests.zoo.regnet import regnet_y_400mf
from tests.zoo.resnet import resnet18, resnet50, resnext50_32x4d, wide_resnet50_2
from tests.zoo.shufflenetv2 import shufflenet_v2_x0_5, shufflenet_v2_x1_0
from tests.zoo.squeezenet import squeezenet1_0, squeezenet1_1
from tests.zoo.swin_transformer import swin_t
from tests.zoo.vgg import vgg11, vgg11_bn
from tests.zoo.vision_transformer import vit_b_16

DROPOUT = "dropout"
BATCH_NORM = "batch_norm"
STOCHASTIC_DEPTH = "stochastic_depth"


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes:
        name: torchvision's builder name.
        builder: returns the module; called with ``full_kwargs`` or ``reduced_kwargs``.
        full_kwargs: the published model (builder defaults, or what selects the variant).
        reduced_kwargs: the same structure, small enough for a fast test.
        input_shape: (C, H, W) the published model is evaluated at.
        reduced_input_shape: (C, H, W) for the reduced model.
        params: the published parameter count of the full model (None when not published).
        min_hw: the smallest square input the reduced model accepts (same for the full model,
            except where ``fixed_size``).
        fixed_size: only ``reduced_input_shape`` (resp. ``input_shape``) is accepted.
        train_differs: why a training-mode forward differs from eval mode: any of
            :data:`DROPOUT`, :data:`BATCH_NORM`, :data:`STOCHASTIC_DEPTH`; empty if it does not.
    """

    name: str
    builder: Callable[..., nn.Module]
    full_kwargs: dict[str, Any]
    reduced_kwargs: dict[str, Any]
    input_shape: tuple[int, int, int]
    reduced_input_shape: tuple[int, int, int]
    params: int | None
    min_hw: int
    fixed_size: bool = False
    train_differs: tuple[str, ...] = field(default_factory=tuple)

    def build_full(self) -> nn.Module:
        return self.builder(**self.full_kwargs)

    def build_reduced(self) -> nn.Module:
        return self.builder(**self.reduced_kwargs)

    @property
    def num_classes(self) -> int:
        return int(self.full_kwargs.get("num_classes", 1000))

    @property
    def reduced_num_classes(self) -> int:
        return int(self.reduced_kwargs.get("num_classes", 1000))


_FULL = (3, 224, 224)
_D, _B, _S = DROPOUT, BATCH_NORM, STOCHASTIC_DEPTH

ZOO: list[ZooEntry] = [
    ZooEntry("alexnet", alexnet, {}, {"num_classes": 10, "width_mult": 0.125},
             _FULL, (3, 63, 63), 61_100_840, min_hw=63, train_differs=(_D,)),
    ZooEntry("vgg11", vgg11, {}, {"num_classes": 10, "width_mult": 0.125},
             _FULL, (3, 32, 32), 132_863_336, min_hw=32, train_differs=(_D,)),
    ZooEntry("vgg11_bn", vgg11_bn, {}, {"num_classes": 10, "width_mult": 0.125},
             _FULL, (3, 32, 32), 132_868_840, min_hw=32, train_differs=(_D, _B)),
    ZooEntry("resnet18", resnet18, {}, {"num_classes": 10, "base_planes": 8},
             _FULL, (3, 32, 32), 11_689_512, min_hw=1, train_differs=(_B,)),
    ZooEntry("resnet50", resnet50, {}, {"num_classes": 10, "base_planes": 8, "layers": [2, 2, 2, 2]},
             _FULL, (3, 32, 32), 25_557_032, min_hw=1, train_differs=(_B,)),
    ZooEntry("resnext50_32x4d", resnext50_32x4d, {},
             {"num_classes": 10, "base_planes": 16, "layers": [2, 2, 2, 2], "groups": 4, "width_per_group": 8},
             _FULL, (3, 32, 32), 25_028_904, min_hw=1, train_differs=(_B,)),
    ZooEntry("wide_resnet50_2", wide_resnet50_2, {}, {"num_classes": 10, "base_planes": 8, "layers": [2, 2, 2, 2]},
             _FULL, (3, 32, 32), 68_883_240, min_hw=1, train_differs=(_B,)),
    ZooEntry("squeezenet1_0", squeezenet1_0, {}, {"num_classes": 10, "width_mult": 0.25},
             _FULL, (3, 64, 64), 1_248_424, min_hw=21, train_differs=(_D,)),
    ZooEntry("squeezenet1_1", squeezenet1_1, {}, {"num_classes": 10, "width_mult": 0.25},
             _FULL, (3, 64, 64), 1_235_496, min_hw=17, train_differs=(_D,)),
    ZooEntry("densenet121", densenet121, {},
             {"num_classes": 10, "growth_rate": 8, "block_config": (2, 2, 2, 2), "num_init_features": 16},
             _FULL, (3, 32, 32), 7_978_856, min_hw=29, train_differs=(_B,)),
    ZooEntry("googlenet", googlenet, {}, {"num_classes": 10, "width_mult": 0.125},
             _FULL, (3, 64, 64), 6_624_904, min_hw=15, train_differs=(_D, _B)),
    ZooEntry("inception_v3", inception_v3, {}, {"num_classes": 10, "width_mult": 0.125},
             (3, 299, 299), (3, 75, 75), 23_834_568, min_hw=75, train_differs=(_D, _B)),
    ZooEntry("mobilenet_v2", mobilenet_v2, {}, {"num_classes": 10, "width_mult": 0.25},
             _FULL, (3, 32, 32), 3_504_872, min_hw=1, train_differs=(_D, _B)),
    ZooEntry("mobilenet_v3_large", mobilenet_v3_large, {}, {"num_classes": 10, "width_mult": 0.25},
             _FULL, (3, 32, 32), 5_483_032, min_hw=1, train_differs=(_D, _B)),
    ZooEntry("mobilenet_v3_small", mobilenet_v3_small, {}, {"num_classes": 10, "width_mult": 0.25},
             _FULL, (3, 32, 32), 2_542_856, min_hw=1, train_differs=(_D, _B)),
    ZooEntry("shufflenet_v2_x0_5", shufflenet_v2_x0_5, {},
             {"num_classes": 10, "stages_repeats": [2, 2, 2], "stages_out_channels": [8, 16, 32, 64, 128]},
             _FULL, (3, 32, 32), 1_366_792, min_hw=1, train_differs=(_B,)),
    ZooEntry("shufflenet_v2_x1_0", shufflenet_v2_x1_0, {},
             {"num_classes": 10, "stages_repeats": [2, 2, 2], "stages_out_channels": [8, 24, 48, 96, 128]},
             _FULL, (3, 32, 32), 2_278_604, min_hw=1, train_differs=(_B,)),
    ZooEntry("mnasnet0_5", mnasnet, {"alpha": 0.5}, {"alpha": 0.25, "num_classes": 10},
             _FULL, (3, 32, 32), 2_218_512, min_hw=1, train_differs=(_D, _B)),
    ZooEntry("mnasnet1_0", mnasnet, {"alpha": 1.0}, {"alpha": 0.25, "num_classes": 10},
             _FULL, (3, 32, 32), 4_383_312, min_hw=1, train_differs=(_D, _B)),
    ZooEntry("efficientnet_b0", efficientnet_b0, {}, {"num_classes": 10, "width_mult": 0.25, "depth_mult": 0.5},
             _FULL, (3, 32, 32), 5_288_548, min_hw=1, train_differs=(_D, _B, _S)),
    ZooEntry("regnet_y_400mf", regnet_y_400mf, {},
             {"num_classes": 10, "depth": 7, "w_0": 8, "w_a": 6.0, "w_m": 1.5, "stem_width": 8},
             _FULL, (3, 32, 32), 4_344_144, min_hw=1, train_differs=(_B,)),
    ZooEntry("convnext_tiny", convnext_tiny, {},
             {"num_classes": 10, "dims": (8, 16, 32, 64), "depths": (2, 2, 2, 2)},
             _FULL, (3, 32, 32), 28_589_128, min_hw=32, train_differs=(_S,)),
    ZooEntry("vit_b_16", vit_b_16, {},
             {"num_classes": 10, "image_size": 32, "num_layers": 2, "num_heads": 2, "hidden_dim": 32,
              "mlp_dim": 64},
             _FULL, (3, 32, 32), 86_567_656, min_hw=32, fixed_size=True),
    ZooEntry("swin_t", swin_t, {},
             {"num_classes": 10, "embed_dim": 16, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8],
              "window_size": [2, 2]},
             _FULL, (3, 64, 64), 28_288_354, min_hw=4, train_differs=(_S,)),
]

ZOO_BY_NAME: dict[str, ZooEntry] = {entry.name: entry for entry in ZOO}
