"""What a trial's model costs: FLOPs and parameters from shape inference, latency measured.

These are the second and third objectives a search can minimize next to the validation
metric (Neural Network Console's "trade-off graph" of error against multiply-adds).
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass

from engine.block_shapes import model_analysis
from engine.errors import UserError
from engine.graph.flat_project import flat_project
from engine.graph.project import Project

#: Forward passes timed for the latency objective (after as many warm-up passes).
LATENCY_ROUNDS = 30
#: One measurement at a time: trials measured side by side would slow each other down.
_MEASURING = threading.Lock()


@dataclass(frozen=True)
class ModelCost:
    """A valid trial model's size: forward FLOPs per sample and trainable parameters."""

    flops: int
    parameters: int


def model_cost(project: Project) -> ModelCost:
    """Check the trial's graph and measure its size.

    Raises:
        UserError: The graph is invalid; the message lists its first problems (by node, or
            by path inside blocks), as ``validate`` prints them.
    """
    analysis, lines = model_analysis(project)
    if not analysis.valid:
        more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
        raise UserError(f"the trial's graph is invalid: {'; '.join(lines[:2])}{more}")
    return ModelCost(int(analysis.flops), int(analysis.parameters))


def latency_ms(project: Project) -> float:
    """Median milliseconds of one forward pass at batch 1 on the CPU, with one thread.

    The weights do not matter for the time, so the model is measured as built, before it trains.
    """
    import torch

    from engine.compile.fx_builder import compile_graph

    compiled = compile_graph(flat_project(project).graph)
    model = compiled.module.eval()
    inputs = compiled.example_inputs(batch=1, generator=torch.Generator().manual_seed(0))
    timings = []
    with _MEASURING, torch.inference_mode():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for round_ in range(2 * LATENCY_ROUNDS):
                start = time.perf_counter()
                model(*inputs)
                if round_ >= LATENCY_ROUNDS:
                    timings.append(time.perf_counter() - start)
        finally:
            torch.set_num_threads(threads)
    return statistics.median(timings) * 1000.0
