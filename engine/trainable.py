"""Trainable and frozen parameter counts of a graph (fine-tuning).

A node whose ``trainable`` option is off keeps its parameters (and batch-norm statistics) as
loaded; its parameters count as *frozen*. The counts come from shape inference, so the
summary, the memory estimate and the app show them without torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.graph.model import Graph
from engine.shapes import Analysis


@dataclass(frozen=True)
class ParameterSplit:
    """Parameters of the model that training updates and those it keeps.

    Args:
        trainable: Parameters of trainable nodes that lead to an Output.
        frozen: Parameters of frozen nodes that lead to an Output.
        frozen_nodes: Ids of frozen nodes with parameters, in document order.
        scaled_nodes: Node id -> learning-rate multiplier, for trainable nodes with parameters
            whose multiplier is not 1.
    """

    trainable: int = 0
    frozen: int = 0
    frozen_nodes: tuple[str, ...] = ()
    scaled_nodes: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All parameters of the model."""
        return self.trainable + self.frozen


def parameter_split(graph: Graph, analysis: Analysis) -> ParameterSplit:
    """Split the model's parameters into trainable and frozen ones.

    Args:
        graph: The graph (whose nodes carry ``trainable`` and ``lr_scale``).
        analysis: Its shape inference (per-node parameter counts).

    Returns:
        The split; nodes that do not lead to an Output are left out, as in
        :attr:`Analysis.parameters`.
    """
    trainable = frozen = 0
    frozen_nodes: list[str] = []
    scaled: dict[str, float] = {}
    for node in graph:
        info = analysis.nodes.get(node.id)
        if info is None or node.id not in analysis.in_model or info.parameters <= 0:
            continue
        if node.trainable:
            trainable += info.parameters
            if node.lr_scale != 1.0:
                scaled[node.id] = node.lr_scale
        else:
            frozen += info.parameters
            frozen_nodes.append(node.id)
    return ParameterSplit(trainable, frozen, tuple(frozen_nodes), scaled)


def node_parameters(graph: Graph, analysis: Analysis) -> dict[str, tuple[int, int]]:
    """Node id -> ``(trainable, frozen)`` parameters, for every node of ``graph`` (both 0 for nodes
    that do not lead to an Output, whose parameters the model does not hold)."""
    counts = {}
    for node in graph:
        info = analysis.nodes.get(node.id)
        count = info.parameters if info is not None and node.id in analysis.in_model else 0
        counts[node.id] = (count, 0) if node.trainable else (0, count)
    return counts


def instance_parameters(flat_counts: dict[str, tuple[int, int]], paths: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Per top-level node, the ``(trainable, frozen)`` parameters of the flat layers under it.

    Args:
        flat_counts: :func:`node_parameters` of a flattened graph.
        paths: Flat node id -> path (``layer1.0/conv1``; a top-level node's path is its id).
    """
    totals: dict[str, tuple[int, int]] = {}
    for flat_id, (trainable, frozen) in flat_counts.items():
        top = re.split(r"[/.]", paths.get(flat_id, flat_id), maxsplit=1)[0]
        before = totals.get(top, (0, 0))
        totals[top] = (before[0] + trainable, before[1] + frozen)
    return totals
