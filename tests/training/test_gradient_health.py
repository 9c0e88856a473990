"""Gradient health during training: per-layer gradient norms, update sizes, dead ReLU units and
plain-language warnings (vanishing, exploding, dead)."""

from __future__ import annotations

import torch

from engine.compile.fx_builder import compile_graph
from engine.training.events import GradientHealth, event_from_json
from engine.training.gradient_health import GradientProbe, LayerHealth, gradient_warnings
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project


def deep_mlp(activation: str, batch_norm: bool, depth: int = 10, training: dict | None = None):  # noqa: ANN201
    """The README's recipe: ``depth`` Linear(32) layers on spirals, each followed by ``activation``."""
    nodes = [("x", "input", {"shape": [2]})]
    for i in range(1, depth + 1):
        nodes.append((f"fc{i}", "linear", {"out_features": 32}))
        if batch_norm:
            nodes.append((f"bn{i}", "batchnorm1d", {}))
        nodes.append((f"act{i}", activation, {}))
    nodes += [("head", "linear", {"out_features": 2}), ("logits", "output", {})]
    return chain_project(nodes, {"name": "spirals", "samples": 400},
                         {"epochs": 2, "optimizer": "sgd", "lr": 0.003, "device": "cpu", "gradient_every": 5,
                          **(training or {})})


def _samples(project) -> list[GradientHealth]:  # noqa: ANN001
    events: list = []
    Trainer(TrainOptions(project, None), events.append).run()
    return [e for e in events if isinstance(e, GradientHealth)]


def test_a_deep_sigmoid_stack_starves_its_first_layers_and_its_relu_batchnorm_twin_does_not() -> None:
    sigmoid = _samples(deep_mlp("sigmoid", False))
    assert [s.global_step for s in sigmoid] == [1, 6]  # 5 steps an epoch (320 samples, batch 64), every 5
    first = sigmoid[0]
    assert [layer["node"] for layer in first.layers][:2] == ["fc1", "fc2"] and first.layers[-1]["node"] == "head"
    assert first.layers[0]["grad_norm"] < 1e-5 * first.layers[-1]["grad_norm"]
    assert [w["kind"] for w in first.warnings] == ["vanishing"]
    assert "vanishing gradients: fc1, fc2" in first.warnings[0]["message"]
    assert "ReLU activations and Batch Norm" in first.warnings[0]["message"]
    healthy = _samples(deep_mlp("relu", True))
    assert all(not s.warnings for s in healthy)
    assert set(healthy[0].dead) == {f"act{i}" for i in range(1, 11)}  # each ReLU's units read through its batch norm


def test_dead_units_are_the_rows_whose_gradient_is_zero() -> None:
    project = chain_project([("x", "input", {"shape": [4]}), ("fc1", "linear", {"out_features": 8}),
                             ("act", "relu", {}), ("fc2", "linear", {"out_features": 2}), ("y", "output", {})], {})
    model = compile_graph(project.graph).module
    with torch.no_grad():
        model.fc1.bias[:6] = -1e3  # 6 of 8 units can never be positive
    probe = GradientProbe([model], project.graph, every=1)
    probe.before_step()
    model(torch.randn(16, 4)).sum().backward()
    layers, dead = probe.after_step()
    assert dead == {"act": 0.75}
    assert [layer.node for layer in layers] == ["fc1", "fc2"]
    assert ("dead", "75% of the units of act are dead (0 for every sample): lower the learning rate, or use Leaky "
                    "ReLU or Batch Norm before it") in gradient_warnings(layers, dead)


def test_exploding_gradients_point_to_clipping() -> None:
    layers = [LayerHealth("fc1", 3e4, 0.5), LayerHealth("fc2", float("inf"), 0.5), LayerHealth("fc3", 1.0, 0.1)]
    ((kind, message),) = gradient_warnings(layers, {})
    assert kind == "exploding" and "fc1, fc2" in message and "training.grad_clip" in message


def test_sampling_can_be_switched_off_and_events_round_trip() -> None:
    assert _samples(deep_mlp("relu", False, depth=2, training={"gradient_every": 0})) == []
    event = _samples(deep_mlp("relu", False, depth=2, training={"epochs": 1}))[0]
    assert event_from_json(event.to_json()) == event
