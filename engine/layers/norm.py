"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm."""

from __future__ import annotations

import math
from typing import Any

from engine.layers.base import (Example, ModuleCall, Inference, LayerType, Params, ShapeError, TensorSpec, register,
                                require_float, require_rank)
from engine.layers.params import bool_param, float_param, int_param
from engine.layers.recognize import FromModule, FromOnnx, Imported, module_state


# ------------------------------------------------------------- recognizers
def _batchnorm_from_module(m: Any) -> Imported | None:
    if not m.track_running_stats:
        return None
    return {"eps": m.eps, "momentum": m.momentum if m.momentum is not None else 0.1, "affine": m.affine}, \
        module_state(m)


def _batchnorm_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    """ONNX ``BatchNormalization`` in inference mode: constant statistics become the running ones."""
    import numpy as np

    x, scale, bias, mean, var = node.input[:5]
    if any(n not in ctx.consts for n in (scale, bias, mean, var)) or a.get("training_mode", 0):
        return "statistics that are not constants"
    type_id = "batchnorm2d" if ctx.rank(x) == 4 else "batchnorm1d"
    tensors = {"weight": ctx.consts[scale], "bias": ctx.consts[bias], "running_mean": ctx.consts[mean],
               "running_var": ctx.consts[var], "num_batches_tracked": np.asarray(0, dtype=np.int64)}
    params = {"eps": float(a.get("epsilon", 1e-5)), "momentum": round(1.0 - float(a.get("momentum", 0.9)), 6),
              "affine": True}
    ctx.add(node, type_id, params, [x], tensors, scale)
    return None


def _layernorm_from_module(m: Any) -> Imported | None:
    if m.elementwise_affine and getattr(m, "bias", None) is None:
        return None  # a scale without a shift (bias=False): no canvas equivalent
    return {"normalized_dims": len(m.normalized_shape), "eps": m.eps,
            "elementwise_affine": m.elementwise_affine}, module_state(m)


def _layernorm_from_onnx(ctx: Any, node: Any, a: dict[str, Any]) -> str | None:
    import numpy as np

    x, scale = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    rank = ctx.rank(x)
    axis = int(a.get("axis", -1))
    dims = rank - axis if axis >= 0 else -axis
    if scale not in ctx.consts or bias is not None and bias not in ctx.consts or not 1 <= dims < max(rank, 2):
        return "a scale that is not constant, or normalizing the batch axis"
    weight = ctx.consts[scale]
    tensors = {"weight": weight, "bias": ctx.consts[bias] if bias else np.zeros_like(weight)}
    ctx.add(node, "layernorm", {"normalized_dims": dims, "eps": float(a.get("epsilon", 1e-5)),
                                "elementwise_affine": True}, [x], tensors, scale)
    return None

_EPS = float_param("eps", 1e-5, "Small number added to the variance to avoid dividing by zero.",
                   min=1e-12, max=1.0)


class _BatchNorm(LayerType):
    """Shared rule: per-channel statistics over the batch, channels in dimension 1."""

    ranks: tuple[int, ...] = ()
    layout: str = ""
    category = "Normalization"
    id_prefix = "bn"
    params = (
        _EPS,
        float_param("momentum", 0.1, "Weight of the newest batch in the running mean and variance.",
                    min=0.0, max=1.0),
        bool_param("affine", True, "Learn a scale and shift per channel."),
    )

    def _hint(self, x: TensorSpec) -> str:
        """What to do when ``x`` has the wrong rank."""
        raise NotImplementedError

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        require_rank(x, self.ranks, self.layout, self._hint(x))
        return Inference(x, 2 * x.dims[0] if p.affine else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of(f"nn.{self.title}", inputs[0].dims[0], eps=p.eps, momentum=p.momentum, affine=p.affine)


@register
class BatchNorm1d(_BatchNorm):
    """Batch normalization of features or of sequences laid out (N, C, L)."""

    type_id = "batchnorm1d"
    imports = (FromModule(("nn.BatchNorm1d",), _batchnorm_from_module),
               FromOnnx(("BatchNormalization",), _batchnorm_from_onnx))
    title = "BatchNorm1d"
    doc = ("Normalizes each feature (N, C) or channel (N, C, L) over the batch, then scales and shifts; "
           "on (N, C) training needs batches of more than one sample.")
    ranks = (2, 3)
    layout = "(N, C) or (N, C, L)"
    examples = (Example(((8, 10),)), Example(((5, 3),), {"eps": 1e-3, "momentum": 0.2, "affine": False}),
                Example(((12,),)))

    def _hint(self, x: TensorSpec) -> str:
        return "use BatchNorm2d for images" if x.rank == 4 else "insert a Flatten or Reshape to (C, L) before it"


@register
class BatchNorm2d(_BatchNorm):
    """Batch normalization of image channels."""

    type_id = "batchnorm2d"
    imports = (FromModule(("nn.BatchNorm2d",), _batchnorm_from_module),)  # ONNX: BatchNorm1d's reader builds both
    title = "BatchNorm2d"
    doc = "Normalizes each channel of an image (N, C, H, W) over the batch and pixels, then scales and shifts."
    ranks = (4,)
    layout = "(N, C, H, W)"
    examples = (Example(((3, 8, 8),)), Example(((6, 5, 7),), {"eps": 1e-4, "momentum": 0.05, "affine": False}))

    def _hint(self, x: TensorSpec) -> str:
        if x.rank < 4:
            return "use BatchNorm1d for features and sequences"
        return "insert a Reshape to (C, H, W) before it"


@register
class LayerNorm(LayerType):
    """Layer normalization over the trailing dimensions of each sample."""

    type_id = "layernorm"
    imports = (FromModule(("nn.LayerNorm",), _layernorm_from_module),
               FromOnnx(("LayerNormalization",), _layernorm_from_onnx))
    title = "LayerNorm"
    category = "Normalization"
    doc = ("Normalizes each sample over its last dimension (e.g. the features of each token), "
           "independent of the batch; common in transformers.")
    id_prefix = "ln"
    key_params = ("normalized_dims",)
    params = (
        int_param("normalized_dims", 1, "How many trailing dimensions to normalize together; 1 is the last only.",
                  min=1, max=4),
        _EPS,
        bool_param("elementwise_affine", True, "Learn a scale and shift per normalized value."),
    )
    examples = (
        Example(((10,),)),
        Example(((4, 6, 5),), {"normalized_dims": 2, "elementwise_affine": False}),
        Example(((7, 3),), {"eps": 1e-6}),
    )

    def _shape(self, p: Params, x: TensorSpec) -> tuple[int, ...]:
        if p.normalized_dims > len(x.dims):
            raise ShapeError(f"normalized_dims {p.normalized_dims} exceeds the {len(x.dims)} dimensions of {x} "
                             f"after the batch: use at most {len(x.dims)}", field="normalized_dims")
        return x.dims[len(x.dims) - p.normalized_dims:]

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        (x,) = inputs
        require_float(x, self.title)
        shape = self._shape(p, x)
        return Inference(x, 2 * math.prod(shape) if p.elementwise_affine else 0)

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        return ModuleCall.of("nn.LayerNorm", self._shape(p, inputs[0]), eps=p.eps,
                             elementwise_affine=p.elementwise_affine)
