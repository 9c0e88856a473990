"""The five reference models, drawn as graphs and written by hand as ordinary PyTorch.

One definition serves the compiler-equivalence tests (same outputs within 1e-6) and the
compile-overhead benchmark (same speed): an MLP, LeNet-5 from the PyTorch tutorial, a
residual block with BatchNorm and a skip Add, an LSTM classifier and a Transformer encoder
classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.graph import Graph
from tests.graph_builders import chain, connect, node


# --------------------------------------------------------------- hand-written
class MLP(nn.Module):
    """20 -> 64 -> 32 -> 3 with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet(nn.Module):
    """LeNet-5 as in the PyTorch "Neural Networks" tutorial (61,706 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class ResidualNet(nn.Module):
    """conv-BN-ReLU-conv-BN, a skip Add, ReLU, global average pool, linear head."""

    def __init__(self, channels: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = F.relu(out + x)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.head(out)


class LSTMClassifier(nn.Module):
    """An LSTM read to its last hidden state, then a linear head."""

    def __init__(self, features: int = 8, hidden: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[-1])


class TransformerClassifier(nn.Module):
    """Projection, learned positions, two encoder layers, flatten, linear head."""

    def __init__(self, steps: int = 8, features: int = 8, d_model: int = 32, max_len: int = 16,
                 classes: int = 10) -> None:
        super().__init__()
        self.input_proj = nn.Linear(features, d_model)
        self.pos_embedding = nn.Parameter(torch.zeros(max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(steps * d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_proj(x)
        x = x + self.pos_embedding[: x.size(1)]
        x = self.encoder(x)
        return self.head(x.flatten(1))


# ----------------------------------------------------------------- as graphs
def mlp_graph() -> Graph:
    """The MLP on the canvas."""
    graph = Graph()
    chain(graph, node("input", "x", shape=[20]), node("linear", "fc1", out_features=64), node("relu", "relu1"),
          node("linear", "fc2", out_features=32), node("relu", "relu2"), node("linear", "fc3", out_features=3),
          node("output", "out"))
    return graph


def lenet_graph() -> Graph:
    """LeNet-5 on the canvas."""
    graph = Graph()
    chain(graph,
          node("input", "image", shape=[1, 32, 32]),
          node("conv2d", "conv1", out_channels=6, kernel_size=[5, 5]), node("relu", "relu1"),
          node("maxpool2d", "pool1", kernel_size=[2, 2]),
          node("conv2d", "conv2", out_channels=16, kernel_size=[5, 5]), node("relu", "relu2"),
          node("maxpool2d", "pool2", kernel_size=[2, 2]),
          node("flatten", "flatten"),
          node("linear", "fc1", out_features=120), node("relu", "relu3"),
          node("linear", "fc2", out_features=84), node("relu", "relu4"),
          node("linear", "fc3", out_features=10),
          node("output", "logits"))
    return graph


def residual_graph(channels: int = 8) -> Graph:
    """The residual block on the canvas, with its skip connection into the Add."""
    graph = Graph()
    conv = {"out_channels": channels, "kernel_size": [3, 3], "padding": [1, 1]}
    chain(graph, node("input", "x", shape=[channels, 6, 6]), node("conv2d", "conv1", **conv),
          node("batchnorm2d", "bn1"), node("relu", "relu1"), node("conv2d", "conv2", **conv),
          node("batchnorm2d", "bn2"), node("add", "add"), node("relu", "relu2"),
          node("adaptive_avgpool2d", "gap", output_size=[1, 1], flatten=True),
          node("linear", "head", out_features=10), node("output", "out"))
    connect(graph, "x", "add", "in2")  # the skip connection
    return graph


def lstm_graph() -> Graph:
    """The LSTM classifier on the canvas."""
    graph = Graph()
    chain(graph, node("input", "x", shape=[8, 8]), node("lstm", "lstm", hidden_size=32, output="last"),
          node("linear", "fc", out_features=10), node("output", "out"))
    return graph


def transformer_graph() -> Graph:
    """The Transformer encoder classifier on the canvas."""
    graph = Graph()
    encoder = {"nhead": 4, "dim_feedforward": 64, "dropout": 0.0}
    chain(graph, node("input", "x", shape=[8, 8]), node("linear", "proj", out_features=32),
          node("positional_encoding", "pos", kind="learned", max_len=16),
          node("transformer_encoder_layer", "enc1", **encoder),
          node("transformer_encoder_layer", "enc2", **encoder),
          node("flatten", "flat"), node("linear", "head", out_features=10), node("output", "out"))
    return graph


def transformer_names(reference: TransformerClassifier) -> dict[str, str]:
    """Compiled state-dict key -> hand-written key (their orders differ)."""
    layer_keys = list(reference.encoder.layers[0].state_dict())
    names = {"proj.weight": "input_proj.weight", "proj.bias": "input_proj.bias",
             "pos.position_embedding": "pos_embedding", "head.weight": "head.weight", "head.bias": "head.bias"}
    names.update({f"enc{i + 1}.{key}": f"encoder.layers.{i}.{key}" for i in range(2) for key in layer_keys})
    return names


@dataclass
class ModelCase:
    """One reference model: its graph, the hand-written module and its input.

    Args:
        name: Display name.
        graph: The canvas graph.
        make_reference: Builds the hand-written ``nn.Module``.
        input_shape: Per-sample input shape (float input).
        classes: Number of output classes.
        name_map: compiled state-dict key -> reference key, when the orders differ.
    """

    name: str
    graph: Graph
    make_reference: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    classes: int
    name_map: Callable[[nn.Module], dict[str, str]] | None = None


def models() -> list[ModelCase]:
    """All five models, freshly built."""
    return [
        ModelCase("MLP", mlp_graph(), MLP, (20,), 3),
        ModelCase("LeNet-5", lenet_graph(), LeNet, (1, 32, 32), 10),
        ModelCase("Residual block", residual_graph(), ResidualNet, (8, 6, 6), 10),
        ModelCase("LSTM classifier", lstm_graph(), LSTMClassifier, (8, 8), 10),
        ModelCase("Transformer classifier", transformer_graph(), TransformerClassifier, (8, 8), 10,
                  name_map=transformer_names),  # type: ignore[arg-type]
    ]
