"""Trainable and frozen parameter counts of a graph (fine-tuning).

A node whose ``trainable`` option is off keeps its parameters (and batch-norm statistics) as
loaded; its parameters count as *frozen*. The counts come from shape inference, so the
summary, the memory estimate and the app show them without torch.
"""

from __future__ import annotations

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
