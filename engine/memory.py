"""Training memory, estimated from the graph before anything is allocated.

A training step holds the weights, the gradients of the trainable ones and the optimizer's
state for those (Adam keeps two moments per weight, SGD with momentum one; frozen layers have
neither), and the activations of the batch that the backward pass needs: roughly every
layer's output, plus the gradient of the largest one while it flows back. :func:`estimate_training_memory` adds these up from shape inference
(no torch); :func:`available_memory` says what the chosen device has free (psutil for RAM);
:func:`memory_diagnostic` turns "does not fit" into a warning that names the largest layer
and a batch size that would fit. The same figures explain an out-of-memory failure after
the fact (:mod:`engine.training.out_of_memory`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from engine.graph.model import Graph
from engine.shapes import Analysis, Diagnostic
from engine.trainable import parameter_split

#: Bytes of one weight, gradient and optimizer-state value (float32).
WEIGHT_BYTES = 4
#: Extra bytes a training process needs beyond its tensors (interpreter, torch, kernels' workspace).
RUNTIME_BYTES = 600 * 1024**2
#: Optimizer state values per weight.
_STATE_PER_WEIGHT = {"adam": 2, "adamw": 2, "rmsprop": 1, "sgd": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step needs.

    Args:
        batch_size: Samples per step the estimate is for.
        weights: All weights, frozen ones included.
        gradients: The gradients of the trainable weights (frozen layers have none).
        optimizer: The optimizer's state (for the trainable weights only).
        activations_per_sample: Activations kept for the backward pass, per sample.
        largest_node: The node holding most weights (``None`` for an empty graph).
        largest_node_bytes: Its weights' bytes.
    """

    batch_size: int
    weights: int
    gradients: int
    optimizer: int
    activations_per_sample: int
    largest_node: str | None = None
    largest_node_bytes: int = 0

    @property
    def fixed(self) -> int:
        """Bytes that do not depend on the batch size (weights, gradients, optimizer state, runtime)."""
        return self.weights + self.gradients + self.optimizer + RUNTIME_BYTES

    @property
    def activations(self) -> int:
        """Activation bytes at :attr:`batch_size`."""
        return self.activations_per_sample * self.batch_size

    @property
    def total(self) -> int:
        """Everything at :attr:`batch_size`."""
        return self.fixed + self.activations

    def largest_batch(self, available: int) -> int:
        """The largest batch size (a power of two, at most the configured one) that fits ``available`` bytes;
        0 when the model alone does not fit."""
        room = available - self.fixed
        if room <= 0:
            return 0
        if self.activations_per_sample <= 0:
            return self.batch_size
        fits = room // self.activations_per_sample
        size = 1
        while size * 2 <= min(fits, self.batch_size):
            size *= 2
        return size if fits >= 1 else 0

    def to_json(self, device: str = "", available: int | None = None) -> dict[str, Any]:
        """The ``memory`` object of ``summary --json``."""
        return {
            "batch_size": self.batch_size, "weights": self.weights, "gradients": self.gradients,
            "optimizer": self.optimizer, "activations": self.activations, "runtime": RUNTIME_BYTES,
            "total": self.total, "device": device, "available": available,
            "fits": None if available is None else self.total <= available,
            "largest_batch_that_fits": None if available is None else self.largest_batch(available),
        }


def estimate_training_memory(graph: Graph, analysis: Analysis, training: Mapping[str, Any]) -> MemoryEstimate:
    """Estimate the bytes of one training step of ``graph``'s model with the ``training`` settings.

    Args:
        graph: The graph (for node ids).
        analysis: Its shape inference.
        training: The project's ``training`` section (batch size, optimizer, momentum, precision).
    """
    from engine.settings import training_config

    try:
        config = training_config(training)
        batch, optimizer, momentum, precision = config.batch_size, config.optimizer, config.momentum, config.precision
    except Exception:  # noqa: BLE001 - a bad setting is reported elsewhere; estimate with the defaults
        batch, optimizer, momentum, precision = 64, "adam", 0.9, "auto"
    weights = analysis.parameters * WEIGHT_BYTES
    learned = parameter_split(graph, analysis).trainable * WEIGHT_BYTES  # frozen layers: no gradient, no state
    per_weight = _STATE_PER_WEIGHT.get(optimizer, 2)
    if optimizer == "sgd" and momentum == 0:
        per_weight = 0
    activation_bytes = 2 if precision in ("bf16", "fp16") else 4
    outputs = [analysis.nodes[n].output for n in analysis.in_model if n in analysis.nodes]
    sizes = [spec.numel for spec in outputs if spec is not None]
    per_sample = (sum(sizes) + max(sizes, default=0)) * activation_bytes
    largest = max((n for n in analysis.in_model if n in analysis.nodes),
                  key=lambda n: analysis.nodes[n].parameters, default=None)
    largest_bytes = analysis.nodes[largest].parameters * WEIGHT_BYTES if largest is not None else 0
    return MemoryEstimate(batch, weights, learned, learned * per_weight, per_sample, largest, largest_bytes)


def _nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or (sys.platform == "win32" and bool(
        os.environ.get("CUDA_PATH")))


@dataclass(frozen=True)
class DeviceMemory:
    """Free memory of the device training would use.

    Args:
        device: ``"cpu"``, ``"cuda:0"``...
        name: The device in words, for messages (``"this machine's RAM"``).
        free: Free bytes; ``None`` when it cannot be known without torch.
    """

    device: str
    name: str
    free: int | None


def available_memory(device: str = "auto", allow_torch: bool = True) -> DeviceMemory:
    """Free memory on the device the ``device`` setting chooses.

    Args:
        device: The ``device`` setting (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        allow_torch: Whether torch may be asked about a GPU (the GUI thread says no: the first
            CUDA call can take seconds); without it a GPU's free memory is unknown.
    """
    wants_gpu = device.startswith("cuda") or (device == "auto" and _nvidia_driver_present())
    if wants_gpu:
        if not allow_torch:
            return DeviceMemory("cuda", "the GPU", None)
        import torch

        if torch.cuda.is_available():
            index = int(device.split(":")[1]) if ":" in device else 0
            free, _total = torch.cuda.mem_get_info(index)
            return DeviceMemory(f"cuda:{index}", f"cuda:{index} ({torch.cuda.get_device_name(index)})", int(free))
    import psutil

    kind = "mps" if device == "mps" else "cpu"  # Apple GPUs share the machine's RAM
    return DeviceMemory(kind, "this machine's RAM", int(psutil.virtual_memory().available))


def human_bytes(count: float) -> str:
    """``1.5 GB``, ``320 MB``, ``12 KB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit in ("B", "KB") else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def breakdown(estimate: MemoryEstimate) -> str:
    """``weights 1.2 GB, gradients 1.2 GB, optimizer state 2.4 GB, activations 300 MB at batch size 64``."""
    return (f"weights {human_bytes(estimate.weights)}, gradients {human_bytes(estimate.gradients)}, "
            f"optimizer state {human_bytes(estimate.optimizer)}, activations {human_bytes(estimate.activations)} "
            f"at batch size {estimate.batch_size}")


def advice(estimate: MemoryEstimate, available: int, graph: Graph | None = None, on_node: bool = False) -> str:
    """What to change so training fits ``available`` bytes (``on_node``: the message is shown on the
    largest layer already, so it says "this layer" instead of naming it)."""
    fits = estimate.largest_batch(available)
    if fits >= 1:
        return f"use batch size {fits}"
    where = ""
    if on_node and estimate.largest_node_bytes > 0:
        where = f"; this layer alone holds {human_bytes(estimate.largest_node_bytes)}"
    elif estimate.largest_node is not None and estimate.largest_node_bytes > 0:
        node = graph.nodes.get(estimate.largest_node) if graph is not None else None
        title = f" ({node.layer.title})" if node is not None else ""
        where = f"; node {estimate.largest_node}{title} alone holds {human_bytes(estimate.largest_node_bytes)}"
    return f"the model alone does not fit: make it smaller{where}"


def memory_diagnostic(graph: Graph, estimate: MemoryEstimate, available: int | None,
                      device_name: str) -> Diagnostic | None:
    """A warning when training would need more memory than ``device_name`` has free (else ``None``)."""
    if available is None or estimate.total <= available:
        return None
    message = (f"training needs about {human_bytes(estimate.total)} ({breakdown(estimate)}) but "
               f"{device_name} has {human_bytes(available)} free: {advice(estimate, available, graph, on_node=True)}")
    return Diagnostic(estimate.largest_node, "warning", message)


@dataclass(frozen=True)
class MemoryCheck:
    """The estimate for a project, what its device has free, and the warning when it does not fit.

    Args:
        estimate: Bytes one training step needs.
        memory: The device and its free memory.
        diagnostic: The warning, or ``None`` when training fits (or nothing is known).
    """

    estimate: MemoryEstimate
    memory: DeviceMemory
    diagnostic: Diagnostic | None

    def to_json(self) -> dict[str, Any]:
        """The ``memory`` object of ``summary --json``."""
        return self.estimate.to_json(self.memory.device, self.memory.free)

    def line(self) -> str:
        """One line for the text summary."""
        free = self.memory.free
        room = f"; {self.memory.name} has {human_bytes(free)} free" if free is not None else ""
        return f"training memory: about {human_bytes(self.estimate.total)} ({breakdown(self.estimate)}){room}"


def check_training_memory(graph: Graph, analysis: Analysis, training: Mapping[str, Any],
                          allow_torch: bool = True) -> MemoryCheck:
    """Estimate training memory for ``graph`` with its project's ``training`` settings and compare it with
    the free memory of the device the settings choose (see :func:`available_memory`)."""
    estimate = estimate_training_memory(graph, analysis, training)
    device = training.get("device", "auto")
    memory = available_memory(device if isinstance(device, str) else "auto", allow_torch)
    return MemoryCheck(estimate, memory, memory_diagnostic(graph, estimate, memory.free, memory.name))
