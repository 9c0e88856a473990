"""Plain-Python change events emitted by :class:`engine.graph.model.Graph`.

Views (the canvas, inspector, problems panel) and the incremental shape inference
subscribe to these; they never poll the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:  # pragma: no cover
    from engine.graph.model import Edge, Node


@dataclass(frozen=True)
class NodeAdded:
    """A node entered the graph (also on undo of a removal: the same object)."""

    node: "Node"


@dataclass(frozen=True)
class NodeRemoved:
    """A node left the graph; its edges were removed before, each with its own event."""

    node: "Node"


@dataclass(frozen=True)
class EdgeAdded:
    """An edge was connected."""

    edge: "Edge"


@dataclass(frozen=True)
class EdgeRemoved:
    """An edge was disconnected."""

    edge: "Edge"


@dataclass(frozen=True)
class ParamChanged:
    """One parameter of one node changed from ``old`` to ``new``."""

    node_id: str
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class TrainingChanged:
    """A node's training option changed: ``name`` is ``trainable`` or ``lr_scale`` (not a layer parameter)."""

    node_id: str
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class NodesMoved:
    """Nodes moved on the canvas: ``moves`` maps node id to ``(old, new)`` positions."""

    moves: dict[str, tuple[tuple[float, float], tuple[float, float]]]


GraphEvent = Union[NodeAdded, NodeRemoved, EdgeAdded, EdgeRemoved, ParamChanged, NodesMoved, TrainingChanged]
Listener = Callable[[GraphEvent], None]
