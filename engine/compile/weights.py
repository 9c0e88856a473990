"""Weights that travel with a project: safetensors files keyed like the compiled module.

Keys are those of the whole graph's compiled module's ``state_dict()``: the submodule name
of a node (:func:`~engine.compile.fx_builder.attribute_name` of its id), a dot, and the
tensor's name inside it, e.g. ``conv1.weight``. A run directory's ``model.safetensors`` uses
the same keys.

A project file may carry weights in a sibling file with the same stem: ``lenet.json`` and
``lenet.safetensors``. Importers write that pair, and ``export --format safetensors``
writes it too; :func:`sibling_weights` finds it. Weights are never pickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from engine.errors import UserError

WEIGHTS_SUFFIX = ".safetensors"


def sibling_weights(project_path: str | os.PathLike[str]) -> Path | None:
    """The weights file that belongs to a project file (``x.json`` -> ``x.safetensors``), if any.

    Args:
        project_path: The project file.

    Returns:
        The existing sibling weights file, or ``None``.
    """
    candidate = Path(project_path).with_suffix(WEIGHTS_SUFFIX)
    return candidate if candidate.is_file() else None


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU.

    Raises:
        UserError: The file is missing or not a safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise UserError(f"{path}: no such weights file") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable safetensors file ({exc})") from None


def save_weights(state: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
                 metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors (contiguous CPU copies; shared storage is fine).

    Args:
        state: Name -> tensor.
        path: The file to write.
        metadata: Optional string metadata stored in the file header.
    """
    from safetensors.torch import save_file

    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}
    save_file(tensors, str(path), metadata=metadata)


def apply_weights(module: nn.Module, weights: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``weights`` into ``module``: every tensor of its state dict must be present.

    Extra keys (another part of the graph, e.g. a GAN's discriminator) are ignored.

    Args:
        module: The compiled module (or a part of the graph).
        weights: Tensors keyed as the whole graph's state dict.
        source: The weights file, named in messages.

    Raises:
        UserError: A tensor is missing or has another shape than the graph needs.
    """
    state = module.state_dict()
    missing = [key for key in state if key not in weights]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"{source}: no weights for {shown}: the file belongs to another graph")
    for key, tensor in state.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise UserError(f"{source}: {key} has shape {tuple(weights[key].shape)} but the graph needs "
                            f"{tuple(tensor.shape)}: the file belongs to another version of the graph")
    module.load_state_dict({key: weights[key] for key in state}, strict=True)
