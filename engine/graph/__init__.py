"""The document model: graph, events, project, file format."""

from engine.graph.events import (EdgeAdded, EdgeRemoved, GraphEvent, NodeAdded, NodeRemoved, NodesMoved,
                                 ParamChanged, TrainingChanged)
from engine.graph.model import Edge, Graph, GraphError, Node
from engine.graph.project import Project

__all__ = [
    "Edge", "EdgeAdded", "EdgeRemoved", "Graph", "GraphError", "GraphEvent", "Node", "NodeAdded",
    "NodeRemoved", "NodesMoved", "ParamChanged", "Project",
    "TrainingChanged",
]
