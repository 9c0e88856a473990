"""Out-of-memory failures, on a GPU or the CPU, as one sentence with a way out.

PyTorch reports a GPU running out as ``torch.OutOfMemoryError`` but the CPU allocator as a
plain ``RuntimeError`` ("DefaultCPUAllocator: can't allocate memory: you tried to allocate
N bytes"). Both become the same message: what was being allocated, the estimate of what
training needs (:mod:`engine.memory`), and a batch size that fits (found by trying halved
batches once the model exists; from the estimate when the model itself did not fit).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

import torch

from engine.graph.project import Project
from engine.memory import advice, available_memory, breakdown, estimate_training_memory, human_bytes

if TYPE_CHECKING:  # pragma: no cover
    from engine.training.run_options import RunState

_CPU_PATTERNS = ("DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory")
_TRIED_BYTES = re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE)
_TRIED_UNITS = re.compile(r"tried to allocate ([\d.]+ ?[KMGT]i?B)", re.IGNORECASE)


def is_cpu_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the CPU allocator giving up."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(pattern in text for pattern in _CPU_PATTERNS)


def _allocation(exc: BaseException) -> str:
    """``" while allocating 37.3 GB"`` from the allocator's message, or ``""``."""
    text = str(exc)
    found = _TRIED_BYTES.search(text)
    if found:
        return f" while allocating {human_bytes(int(found.group(1)))}"
    found = _TRIED_UNITS.search(text)
    return f" while allocating {found.group(1)}" if found else ""


def out_of_memory_message(exc: BaseException, project: Project, state: RunState | None, batch_size: int,
                          overrides: Mapping[str, Any]) -> str:
    """The sentence for an out-of-memory failure during setup or training.

    When the model was built, halved batches are tried for real (the measured answer);
    otherwise (the model itself did not fit) the estimate gives the advice.

    Args:
        exc: The allocator's exception.
        project: The project being trained.
        state: The run's state when setup got that far (its task can try smaller batches).
        batch_size: The configured batch size (0 when the settings were not read yet).
        overrides: The command line's settings (device, batch size).
    """
    from engine.shapes import analyze

    training = {**project.training, **{k: v for k, v in overrides.items() if v is not None}}
    device = state.device if state is not None else None
    tried = f" with batch size {batch_size}" if batch_size else ""
    head = f"out of memory on {_device_words(device)}{_allocation(exc)}{tried}"
    graph = project.graph
    try:
        analysis = analyze(graph)
        estimate = estimate_training_memory(graph, analysis, training)
        memory = available_memory(str(device) if device is not None else str(training.get("device", "auto")))
        available, name = memory.free, memory.name
    except Exception:  # noqa: BLE001 - the estimate is a courtesy; never hide the failure behind it
        estimate, available, name = None, None, ""
    fits = probe_batch_size(state, batch_size) if state is not None and batch_size > 1 else None
    if fits:
        advice_text = f"use batch size {fits}"
    elif estimate is not None and available is not None and estimate.total > available:
        advice_text = advice(estimate, available, graph)
    else:
        advice_text = "use a smaller batch size or a smaller model"
    context = ""
    if estimate is not None:
        free = f"; {name} has {human_bytes(available)} free" if available is not None else ""
        context = f" (estimated need {human_bytes(estimate.total)}: {breakdown(estimate)}{free})"
    return f"{head}: {advice_text}{context}"


class ModelTooLarge(Exception):
    """The model's weights alone exceed the device's free memory (found before allocating them)."""


def refuse_impossible_model(project: Project, device: torch.device) -> None:
    """Refuse a model whose weights alone (an exact count, not an estimate) exceed the free memory.

    Allocating them would fail at best, and at worst succeed lazily and wake the kernel's
    out-of-memory killer when the weights are first written.

    Raises:
        ModelTooLarge: With the weights' size, the free memory and the largest node.
    """
    from engine.shapes import analyze

    graph = project.graph
    estimate = estimate_training_memory(graph, analyze(graph), project.training)
    memory = available_memory(str(device))
    if memory.free is None or estimate.weights <= memory.free:
        return
    largest = ""
    if estimate.largest_node is not None:
        node = graph.nodes.get(estimate.largest_node)
        title = f" ({node.layer.title})" if node is not None else ""
        largest = f"; node {estimate.largest_node}{title} alone holds {human_bytes(estimate.largest_node_bytes)}"
    raise ModelTooLarge(f"out of memory on {_device_words(device)}: the model's weights alone need "
                        f"{human_bytes(estimate.weights)} and {memory.name} has {human_bytes(memory.free)} free: "
                        f"make the model smaller{largest}")


def _device_words(device: torch.device | None) -> str:
    if device is None:
        return "this machine"
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "the CPU" if device.type == "cpu" else str(device)


def probe_batch_size(state: RunState, tried: int) -> int | None:
    """The largest halving of ``tried`` whose training step fits in memory (tried for real)."""
    size = tried // 2
    while size >= 1:
        if state.device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            x, y = state.batches.sample_batch(size)
            state.task.train_step(x, y)
            return size
        except torch.OutOfMemoryError:
            size //= 2
        except RuntimeError as exc:
            if not is_cpu_out_of_memory(exc):
                return None
            size //= 2
    return None
