"""Small projects for training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.graph import Edge, Graph, Node, Project


def chain_project(nodes: list[tuple[str, str, dict[str, Any]]], dataset: dict[str, Any],
                  training: dict[str, Any] | None = None) -> Project:
    """A project whose graph is a chain of ``(id, type, params)`` nodes."""
    graph = Graph()
    previous = None
    for node_id, type_id, params in nodes:
        graph.add_node(Node(node_id, type_id, params))
        if previous is not None:
            graph.add_edge(Edge(previous, node_id, "in"))
        previous = node_id
    return Project(graph=graph, dataset=dataset, training=training or {})


def train_chain_run(nodes: list[tuple[str, str, dict[str, Any]]], dataset: dict[str, Any], run_dir: Path) -> Path:
    """Train :func:`chain_project` of ``nodes`` one epoch (batch 64, lr 0.01, seed 1) into ``run_dir``."""
    from engine.training.events import Finished
    from engine.training.trainer import Trainer, TrainOptions

    project = chain_project(nodes, dataset, {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 1})
    result = Trainer(TrainOptions(project, run_dir), lambda event: None).run()
    assert isinstance(result, Finished), result
    return run_dir


def mlp_project(training: dict[str, Any] | None = None, dataset: str = "moons", hidden: int = 16) -> Project:
    """A dropout MLP classifying a 2-D dataset."""
    return chain_project([
        ("x", "input", {"shape": [2]}),
        ("fc1", "linear", {"out_features": hidden}),
        ("act1", "relu", {}),
        ("drop", "dropout", {"p": 0.2}),
        ("fc2", "linear", {"out_features": 2}),
        ("logits", "output", {}),
    ], {"name": dataset, "samples": 300}, {"batch_size": 32, "epochs": 4, "lr": 0.01, "seed": 3, **(training or {})})


def cnn_project(training: dict[str, Any] | None = None) -> Project:
    """A small convolution network classifying the 8x8 digits."""
    return chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act1", "relu", {}),
        ("conv2", "conv2d", {"out_channels": 8, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act2", "relu", {}),
        ("pool", "maxpool2d", {"kernel_size": [2, 2]}),
        ("flat", "flatten", {}),
        ("drop", "dropout", {"p": 0.2}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, {"batch_size": 64, "epochs": 3, "lr": 0.01, "seed": 5, **(training or {})})
