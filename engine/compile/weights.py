"""Weights that travel with a project: safetensors files keyed like the compiled module.

Keys are those of the whole graph's compiled module's ``state_dict()``: the submodule name
of a node (:func:`~engine.compile.fx_builder.attribute_name` of its id), a dot, and the
tensor's name inside it, e.g. ``conv1.weight``. A run directory's ``model.safetensors`` uses
the same keys.

A project file may carry weights in a sibling file with the same stem: ``lenet.json`` and
``lenet.safetensors``. Importers write that pair, and ``export --format safetensors``
writes it too; :func:`~engine.graph.fileformat.sibling_weights` (torch-free, for the app)
finds it. Weights are never pickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from engine.errors import UserError
from engine.fileio import atomic_write_bytes
from engine.graph.fileformat import WEIGHTS_SUFFIX, sibling_weights


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
    from safetensors.torch import save

    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}
    # through the atomic writer: a crash never leaves half a file, and the file follows the
    # umask like every other output (safetensors' own save_file creates it 0600)
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def non_finite(weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors that hold NaN or infinite values."""
    return [key for key, tensor in weights.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def require_finite(weights: Mapping[str, torch.Tensor], source: str, fix: str) -> None:
    """Refuse weights with NaN or infinite values, naming the tensors.

    Raises:
        UserError: ``<source>: fc1.weight holds NaN or infinite values ...: <fix>``.
    """
    bad = non_finite(weights)
    if bad:
        raise UserError(f"{source}: {_listed(bad, 4)} hold{'s' if len(bad) == 1 else ''} NaN or infinite values, "
                        f"so every output would be NaN: {fix}")


def state_dict_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """What differs between a module's state dict and a weights file ("" when they fit):
    missing tensors, unexpected ones, and shape differences, each named."""
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    shapes = [f"{key} ({_shape(found[key])} in the file, {_shape(tensor)} in the module)"
              for key, tensor in expected.items() if key in found and tuple(found[key].shape) != tuple(tensor.shape)]
    parts = [f"{label}: {_listed(names, 4)}" for label, names in
             (("missing", missing), ("not in the module", unexpected), ("other shape", shapes)) if names]
    return "; ".join(parts)


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
        raise UserError(f"{source}: no weights for {_listed(missing, 5)}: the file belongs to another graph")
    for key, tensor in state.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise UserError(f"{source}: {key} has shape {tuple(weights[key].shape)} but the graph needs "
                            f"{tuple(tensor.shape)}: the file belongs to another version of the graph")
    module.load_state_dict({key: weights[key] for key in state}, strict=True)


@dataclass(frozen=True)
class PartialLoad:
    """What :func:`load_matching` took from a weights file.

    Args:
        loaded: Keys copied from the file.
        fresh: Keys left as they were, each with the reason (``"fc.weight (not in the file)"``).
    """

    loaded: list[str]
    fresh: list[str]

    def summary(self, source: str) -> str:
        """One line for people: which file, how many tensors, which start fresh."""
        total = len(self.loaded) + len(self.fresh)
        line = f"started from {source}: {len(self.loaded)} of {total} tensors"
        if self.fresh:
            line += f"; new: {_listed(self.fresh, 4)}"
        return line


def load_matching(module: nn.Module, weights: Mapping[str, torch.Tensor]) -> PartialLoad:
    """Copy every tensor of ``weights`` whose name and shape ``module`` has; leave the rest.

    This is how a project starts from the weights saved beside it after its graph was
    edited (a new last layer for other classes, an extra block): what still fits is
    reused, the changed layers keep their fresh initialization. Parameters stay the same
    objects, so optimizers built on them are unaffected.
    """
    state = module.state_dict()
    loaded, fresh = [], []
    for key, tensor in state.items():
        stored = weights.get(key)
        if stored is None:
            fresh.append(f"{key} (not in the file)")
        elif tuple(stored.shape) != tuple(tensor.shape):
            fresh.append(f"{key} (shape {_shape(stored)} in the file, {_shape(tensor)} in the graph)")
        else:
            loaded.append(key)
    module.load_state_dict({key: weights[key] for key in loaded}, strict=False)
    return PartialLoad(loaded, fresh)


def _listed(names: list[str], most: int) -> str:
    """``names`` joined with commas, at most ``most`` of them and a count of the rest."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _shape(tensor: torch.Tensor) -> str:
    return "x".join(str(size) for size in tensor.shape) or "scalar"


__all__ = ["WEIGHTS_SUFFIX", "PartialLoad", "apply_weights", "load_matching", "load_weights", "non_finite",
           "require_finite", "save_weights", "sibling_weights", "state_dict_mismatch"]
