"""Speed settings the trainer applies by itself: memory layout and fused optimizer kernels.

Both are what an expert adds to a hand-written loop; neither changes the computation beyond
floating-point rounding:

* Convolution networks train in the channels-last layout on CPU and CUDA. oneDNN (CPU)
  and cuDNN (CUDA, above all with mixed precision) have their fastest kernels for it, and
  pooling on CPU avoids a slow channels-first path. Only 4-D tensors change layout;
  saved weights are written contiguous.
* SGD, Adam and AdamW use one fused kernel for all parameters instead of a dozen
  operations per tensor; it matters most on small models, where the optimizer is a large
  share of the step.

Together they make every template's training step 1.03-1.52x faster on CPU (1.2-1.3x for
the convolution templates; ``bench/speed_settings.py``, figures in bench/RESULTS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

#: Device types whose convolutions are fastest in the channels-last layout.
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


def wants_channels_last(module: "nn.Module", device: "torch.device") -> bool:
    """Whether ``module`` has 2-D convolution weights (4-D tensors) and ``device`` prefers channels-last."""
    return device.type in CHANNELS_LAST_DEVICES and any(p.dim() == 4 for p in module.parameters())


def use_fast_layout(module: "nn.Module", device: "torch.device") -> "nn.Module":
    """Move a convolution network's 4-D weights to the channels-last layout (in place) where it is faster."""
    import torch

    if wants_channels_last(module, device):
        module.to(memory_format=torch.channels_last)
    return module


#: Device types on which the fused SGD / Adam / AdamW kernels are used.
FUSED_DEVICES = ("cpu", "cuda")


def fused_optimizer(optimizer_class: type["torch.optim.Optimizer"], params: list[Any],
                    **settings: Any) -> "torch.optim.Optimizer":
    """``optimizer_class(params, fused=True, **settings)`` where the fused kernel applies, else the default.

    ``optimizer_class`` is SGD, Adam or AdamW; ``params`` are tensors or parameter groups. The fused kernel is used when every parameter
    is a floating-point tensor on a CPU or CUDA device; elsewhere (MPS, other accelerators,
    mixed devices) the default ``foreach`` implementation is built. PyTorch itself would
    only refuse an unsupported parameter at the first step.
    """
    tensors = [p for group in params for p in group["params"]] if params and isinstance(params[0], dict) else params
    devices = {p.device.type for p in tensors}
    fusable = len(devices) == 1 and devices <= set(FUSED_DEVICES) and all(p.is_floating_point() for p in tensors)
    return optimizer_class(params, fused=True, **settings) if fusable else optimizer_class(params, **settings)


def match_state_layout(optimizer: "torch.optim.Optimizer") -> None:
    """Give every per-parameter state tensor its parameter's memory layout (after loading a checkpoint).

    A checkpoint written in another layout (before channels-last training, or on a device
    that trains channels-first) holds moments shaped like the parameter but strided
    differently; the fused kernels read both as flat arrays and would pair the wrong
    elements, silently. Values are kept, only their layout changes.
    """
    import torch

    for param, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
