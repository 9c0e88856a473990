"""The layer catalogue: one registered declaration per layer type.

Importing this package registers every layer. Torch is not imported here; layers import
it inside ``build`` / ``emit``.
"""

from engine.layers import (activation, activation_more, attention, conv, core, cross_attention,  # noqa: F401
                           io, merge, norm, norm_sample, pooling, recurrent, resize, split, tensor_ops,
                           block_parts, swin, block)
from engine.layers.base import (CATEGORIES, Example, Inference, LayerType, Params, ShapeError,
                                TensorSpec, all_layers, get_layer, register)
from engine.layers.calls import ModuleCall
from engine.layers.params import Param, ParamKindError

__all__ = [
    "CATEGORIES", "Example", "Inference", "LayerType", "ModuleCall", "Param", "ParamKindError", "Params",
    "ShapeError", "TensorSpec", "all_layers", "get_layer", "register",
]
