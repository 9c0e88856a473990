"""Gradient health, sampled during training: per layer, the gradient norm, the size of the
update relative to the weights, and the share of dead units behind ReLU activations.

Sampling costs one copy of the weights and a few norms, once every ``gradient_every`` steps.
Dead units are read from the gradients rather than from the activations (which the compiled
model computes as plain function calls, with nothing to hook): a unit whose ReLU output is 0
for every sample of the batch passes no gradient back, so the rows of the weights that feed it
(a Linear's output row, a convolution's output channel, through batch norm and dropout) get a
gradient of exactly 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import networkx as nx
import torch
from torch import nn

from engine.compile.fx_builder import attribute_name
from engine.graph.model import Graph

#: Activations whose zero outputs make a unit dead.
RELU_TYPES = ("relu", "relu6")
#: Layers that act on each unit alone: a dead unit behind them is still the weight row's unit.
PER_UNIT_TYPES = ("batchnorm1d", "batchnorm2d", "batchnorm3d", "dropout", "dropout2d", "identity")


@dataclass(frozen=True)
class LayerHealth:
    """One layer's figures at a sampled step."""

    node: str
    grad_norm: float
    update_ratio: float


class GradientProbe:
    """Samples gradient health of ``modules`` (the task's networks) every ``every`` steps.

    Args:
        modules: The networks being trained (their parameter names start with node ids).
        graph: The flat project graph (layer order and what feeds each ReLU).
        every: Steps between samples.
    """

    def __init__(self, modules: Iterable[nn.Module], graph: Graph, every: int) -> None:
        self.every = every
        names = {attribute_name(node.id): node.id for node in graph}
        order = {node_id: i for i, node_id in enumerate(nx.topological_sort(graph.nx_graph()))} \
            if nx.is_directed_acyclic_graph(graph.nx_graph()) else {}
        params: dict[str, list[nn.Parameter]] = {}
        for module in modules:
            for name, parameter in _unwrapped(module).named_parameters():
                node = names.get(name.split(".", 1)[0])
                if node is not None and parameter.requires_grad:
                    params.setdefault(node, []).append(parameter)
        self.layers = sorted(params.items(), key=lambda item: order.get(item[0], len(order)))
        self.dead_sources = [(relu, source) for relu, source in _relu_sources(graph) if source in params]
        self._before: dict[str, list[torch.Tensor]] = {}

    def due(self, step: int) -> bool:
        """Whether step ``step`` (counted from 0) is sampled."""
        return step % self.every == 0

    def before_step(self) -> None:
        """Remember the weights, to measure the step's update."""
        self._before = {node: [p.detach().clone() for p in ps] for node, ps in self.layers}

    def after_step(self) -> tuple[list[LayerHealth], dict[str, float]]:
        """The step's per-layer figures (in layer order) and the dead share behind each ReLU."""
        layers, params = [], dict(self.layers)
        with torch.no_grad():
            for node, parameters in self.layers:
                grads = [p.grad for p in parameters if p.grad is not None]
                grad_norm = _norm(grads)
                before = self._before.get(node, [])
                weight = _norm(before)
                update = _norm([p.detach() - b for p, b in zip(parameters, before)])
                layers.append(LayerHealth(node, grad_norm, update / weight if weight > 0 else 0.0))
            dead = {relu: _dead_share(params[source]) for relu, source in self.dead_sources}
        self._before = {}
        return layers, {k: v for k, v in dead.items() if v is not None}


def _unwrapped(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)  # DistributedDataParallel


def _norm(tensors: list[torch.Tensor]) -> float:
    """The norm of all ``tensors`` together (one device sync)."""
    if not tensors:
        return 0.0
    total = float(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]).norm())
    return total if math.isfinite(total) else float("inf")


def _dead_share(parameters: list[nn.Parameter]) -> float | None:
    """Share of output units (rows of the first weight) whose gradient is exactly 0."""
    weight = next((p for p in parameters if p.dim() >= 2), None)
    if weight is None or weight.grad is None:
        return None
    rows = weight.grad.detach().flatten(1)
    return float((rows == 0).all(dim=1).float().mean())


def _relu_sources(graph: Graph) -> list[tuple[str, str]]:
    """``(relu node, layer whose weight rows are its units)`` for each ReLU fed through per-unit layers."""
    result = []
    for node in graph:
        if node.type_id not in RELU_TYPES:
            continue
        source = graph.incoming(node.id).get("in")
        while source is not None and graph.nodes[source.source].type_id in PER_UNIT_TYPES:
            source = graph.incoming(source.source).get("in")
        if source is not None:  # a layer that also feeds a skip connection may hide dead units, never invent them
            result.append((node.id, source.source))
    return result


#: A layer whose gradient is below this share of the largest layer's is starved (vanishing).
VANISHING_RATIO = 1e-3
#: A gradient norm above this is exploding.
EXPLODING_NORM = 1e3
#: A ReLU with more than this share of dead units is reported.
DEAD_SHARE = 0.5


def gradient_warnings(layers: list[LayerHealth], dead: dict[str, float]) -> list[tuple[str, str]]:
    """Plain-language problems in one sample: ``(kind, message)`` with kind ``vanishing``,
    ``exploding`` or ``dead``."""
    result = []
    norms = [layer.grad_norm for layer in layers]
    bad = [layer.node for layer in layers if not math.isfinite(layer.grad_norm) or layer.grad_norm > EXPLODING_NORM]
    if bad:
        worst = max(norms)
        result.append(("exploding", f"exploding gradients at {_names(bad)} (norm {worst:.3g}): clip them "
                                    f"(training.grad_clip, e.g. 1.0) or lower the learning rate"))
    elif len(layers) >= 3 and max(norms) > 0:
        top = max(layers, key=lambda layer: layer.grad_norm)
        starved = [layer.node for layer in layers if layer.grad_norm < VANISHING_RATIO * top.grad_norm]
        if starved:
            result.append(("vanishing", f"vanishing gradients: {_names(starved)} get less than 1/"
                                        f"{round(1 / VANISHING_RATIO):,} of the gradient of {top.node}, so they "
                                        f"barely learn; deep sigmoid or tanh stacks and missing normalization cause "
                                        f"this: try ReLU activations and Batch Norm, or fewer layers"))
    dying = {relu: share for relu, share in dead.items() if share > DEAD_SHARE}
    if dying:
        relu, share = max(dying.items(), key=lambda item: item[1])
        result.append(("dead", f"{share:.0%} of the units of {relu} are dead (0 for every sample)"
                               f"{' and more in ' + _names([r for r in dying if r != relu]) if len(dying) > 1 else ''}"
                               f": lower the learning rate, or use Leaky ReLU or Batch Norm before it"))
    return result


def _names(nodes: list[str]) -> str:
    return ", ".join(nodes[:4]) + (f" and {len(nodes) - 4} more" if len(nodes) > 4 else "")
