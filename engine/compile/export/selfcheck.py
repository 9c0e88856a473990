"""The self-check every export runs: same batch through the original and the reloaded model.

The figure is the largest absolute difference over every output element. The bound is
:data:`TOLERANCE` = 1e-4 plus :data:`RELATIVE` = 1e-5 times the largest output: it allows for
the reordered float32 arithmetic of another runtime (ONNX Runtime fuses and reorders
operations; typical differences are 1e-7 to 1e-6 of the outputs, so outputs of size 4e3, as
MNASNet's, move by 4e-3) while catching any real mismatch (a wrong weight or operator moves
outputs by far more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from engine.errors import UserError

#: Largest allowed absolute difference between original and reloaded outputs.
TOLERANCE = 1e-4
#: Allowed difference per unit of the largest output, on top of the absolute tolerance.
RELATIVE = 1e-5


@dataclass(frozen=True)
class SelfCheck:
    """What a self-check measured: the largest difference and the largest original output."""

    diff: float
    largest: float

    def allowed(self, tolerance: float = TOLERANCE) -> float:
        """The bound ``diff`` is held to: ``tolerance`` plus :data:`RELATIVE` of the largest output."""
        return tolerance + RELATIVE * self.largest


class ExportError(UserError):
    """An export failed or its self-check found a difference above tolerance (exit 1)."""


def run_module(module: nn.Module | Any, inputs: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Outputs of ``module(*inputs)`` without gradients, as a list of float64 arrays."""
    with torch.no_grad():
        result = module(*inputs)
    return as_arrays(result)


def as_arrays(result: Any) -> list[np.ndarray]:
    """One tensor, array or a (nested) tuple/list of them as a flat list of float64 arrays."""
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in as_arrays(item)]
    if isinstance(result, torch.Tensor):
        return [result.detach().cpu().double().numpy()]
    return [np.asarray(result, dtype=np.float64)]


def max_abs_diff(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray], fmt: str) -> float:
    """Largest absolute difference between two output lists (see :func:`compare`)."""
    return compare(expected, actual, fmt).diff


def compare(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray], fmt: str) -> SelfCheck:
    """Largest absolute difference between two output lists, and the largest expected output.

    Raises:
        ExportError: Different numbers or shapes of outputs, non-finite original outputs (nothing
            to compare), or non-finite differences.
    """
    if len(expected) != len(actual):
        raise ExportError(f"{fmt}: self-check failed: the reloaded model returns {len(actual)} output(s), "
                          f"the original {len(expected)}")
    worst = largest = 0.0
    for index, (a, b) in enumerate(zip(expected, actual)):
        if a.shape != b.shape:
            raise ExportError(f"{fmt}: self-check failed: output {index} has shape {b.shape} after reloading, "
                              f"{a.shape} before")
        if a.size and not np.all(np.isfinite(a)):
            raise ExportError(f"{fmt}: self-check failed: the original model's output {index} holds NaN or "
                              "infinite values for the check's sample, so nothing can be compared; look at the "
                              "weights (a diverged run) or at layers that can overflow")
        if a.size:
            diff = float(np.max(np.abs(a - b)))
            if not np.isfinite(diff):
                raise ExportError(f"{fmt}: self-check failed: the reloaded model's output {index} holds non-finite "
                                  "values where the original's are finite")
            worst = max(worst, diff)
            largest = max(largest, float(np.max(np.abs(a))))
    return SelfCheck(worst, largest)


def require_within(fmt: str, check: SelfCheck, tolerance: float = TOLERANCE) -> float:
    """The bound ``check`` was held to; raise when its difference exceeds it.

    Raises:
        ExportError: ``<fmt>: self-check failed: max |diff| <d> ... above the tolerance <t>``.
    """
    allowed = check.allowed(tolerance)
    if not check.diff <= allowed:
        raise ExportError(f"{fmt}: self-check failed: max |diff| {check.diff:.2e} between the original and the "
                          f"reloaded model is above the tolerance {allowed:.2g} ({tolerance:g} plus {RELATIVE:g} "
                          f"of the largest output, {check.largest:.3g})")
    return allowed
