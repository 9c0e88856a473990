"""A project: the graph plus its dataset, training settings and descriptive metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.graph.model import Graph


@dataclass
class Project:
    """Everything a project file holds.

    Args:
        graph: The network.
        dataset: Dataset settings (schema owned by engine.data).
        training: Training settings (schema owned by engine.training).
        meta: Descriptive fields: ``name``, ``family``, ``task``, ``description``.
    """

    graph: Graph = field(default_factory=Graph)
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Display name (``meta.name``), empty when unset."""
        return self.meta.get("name", "")
