"""Resumable checkpoints: models, optimizers, schedule, scaler, RNG states, position in the run.

Checkpoints are written atomically with ``torch.save`` and read with
``torch.load(weights_only=True)``: only tensors and plain containers, never code. RNG
states are stored as tensors and lists so the safe loader accepts them.
"""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import UserError
from engine.fileio import atomic_write_bytes

CHECKPOINT_VERSION = 1


def rng_state(data_generator: torch.Generator, augment_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state a run depends on (the augmentation generator's when the run augments)."""
    state = np.random.get_state()
    extra = {"augment": augment_generator.get_state()} if augment_generator is not None else {}
    return {**extra,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]),
                  "has_gauss": int(state[3]), "cached_gaussian": float(state[4])},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "data": data_generator.get_state(),
    }


def restore_rng_state(state: dict[str, Any], data_generator: torch.Generator,
                      augment_generator: torch.Generator | None = None) -> None:
    """Undo :func:`rng_state` (an augmentation generator without a saved state keeps its seed)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    data_generator.set_state(state["data"])
    if augment_generator is not None and "augment" in state:
        augment_generator.set_state(state["augment"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temp file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save({"version": CHECKPOINT_VERSION, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely (no code runs).

    Raises:
        UserError: Missing, corrupt or newer checkpoint; a run folder whose run stopped
            before its first checkpoint says that it can only be restarted.
    """
    if not path.is_file():
        folder = path.parent
        if (folder / "run.json").is_file():
            raise UserError(f"{folder}: the run stopped before its first checkpoint, so there is nothing to resume; "
                            f"start it again: python main.py train {folder / 'project.json'}")
        raise UserError(f"{path}: no checkpoint here; was the run started with this folder as --out?")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol 4...": the refusal below says enough
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise UserError(f"{path}: not a readable checkpoint ({safe_load_error(exc)})") from None
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise UserError(f"{path}: unknown checkpoint format (expected version {CHECKPOINT_VERSION})")
    return payload


def safe_load_error(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without PyTorch's advice to load it unsafely.

    PyTorch suggests re-running with ``weights_only=False``, which would run whatever code the
    file carries; that is never the fix here, so only the refusal's reason is kept.
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = next((line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()), "")
        return (f"it holds Python objects a safe load refuses ({reason[:160]}); "
                "Neural Canvas never runs code from a file")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if "weights_only" in first:
        first = "the file holds Python objects a safe load refuses"
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
