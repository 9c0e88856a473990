"""Every task trains a few steps and produces its prediction snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from engine.graph import Edge, Graph, Node, Project
from engine.training.events import EpochEnd, Finished, PredictionSnapshot
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project, mlp_project


def run(project: Project, **overrides: Any) -> tuple[Finished, list[Any]]:
    events: list[Any] = []
    result = Trainer(TrainOptions(project, None, None, overrides), events.append).run()
    assert isinstance(result, Finished), getattr(result, "message", result)
    return result, events


def last_snapshot(events: list[Any]) -> PredictionSnapshot:
    return [e for e in events if isinstance(e, PredictionSnapshot)][-1]


def test_classification_on_images_shows_samples_and_confusion() -> None:
    project = chain_project([("img", "input", {"shape": [1, 8, 8]}), ("flat", "flatten", {}),
                             ("fc", "linear", {"out_features": 10}), ("out", "output", {})],
                            {"name": "digits"}, {"epochs": 2})
    _, events = run(project)
    snap = last_snapshot(events)
    assert snap.view == "classification"
    assert len(snap.payload["samples"]) == 16 and len(snap.payload["images"][0][0]) == 8
    confusion = snap.payload["confusion"]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 359


def test_two_d_classification_draws_a_decision_boundary() -> None:
    _, events = run(mlp_project(), epochs=1)
    snap = last_snapshot(events)
    assert snap.view == "decision_boundary"
    assert len(snap.payload["predicted"]) == snap.payload["size"] and len(snap.payload["points"]) > 100


def test_forecasting_with_an_lstm() -> None:
    project = chain_project([("series", "input", {"shape": [16, 1]}), ("lstm", "lstm", {"hidden_size": 16,
                             "output": "last"}), ("fc", "linear", {"out_features": 1}), ("next", "output", {})],
                            {"name": "sine_mixture", "window": 16, "series_length": 600}, {"epochs": 2, "lr": 0.01})
    result, events = run(project)
    assert events[0].task == "forecasting"
    assert {"mae", "r2"} <= set(result.metrics and [k[4:] for k in result.metrics if k.startswith("val_")])
    assert last_snapshot(events).view == "forecast"


def test_denoising_autoencoder_with_a_2d_code_gives_latent_scatter() -> None:
    project = chain_project([("img", "input", {"shape": [64]}), ("enc", "linear", {"out_features": 32}),
                             ("act", "relu", {}), ("code", "linear", {"out_features": 2}),
                             ("dec", "linear", {"out_features": 64}), ("out", "output", {})],
                            {"name": "digits", "layout": "flat"},
                            {"task": "autoencoder", "epochs": 2, "input_noise": 0.3})
    result, events = run(project)
    val = [e for e in events if isinstance(e, EpochEnd)][-1].val
    assert val["noise_mse"] == pytest.approx(0.09) and "mse_vs_noise" in val
    snap = last_snapshot(events)
    assert snap.view == "reconstruction" and len(snap.payload["latent"][0]) == 2
    assert len(snap.payload["latent_labels"]) == len(snap.payload["latent"])
    assert "noisy" in snap.payload


def test_gan_on_the_gaussian_ring() -> None:
    graph = Graph()
    for node in (Node("z", "noise_input", {"latent_dim": 4}), Node("g1", "linear", {"out_features": 32}),
                 Node("g_act", "relu"), Node("g2", "linear", {"out_features": 2}), Node("fake", "output"),
                 Node("x", "input", {"shape": [2]}), Node("d1", "linear", {"out_features": 32}),
                 Node("d_act", "leaky_relu", {"negative_slope": 0.2}), Node("d2", "linear", {"out_features": 1}),
                 Node("real_or_fake", "output")):
        graph.add_node(node)
    for a, b in (("z", "g1"), ("g1", "g_act"), ("g_act", "g2"), ("g2", "fake"), ("x", "d1"), ("d1", "d_act"),
                 ("d_act", "d2"), ("d2", "real_or_fake")):
        graph.add_edge(Edge(a, b, "in"))
    project = Project(graph=graph, dataset={"name": "gaussian_ring", "samples": 512},
                      training={"epochs": 2, "lr": 0.002, "beta1": 0.5})
    result, events = run(project)
    assert events[0].task == "gan"
    val = [e for e in events if isinstance(e, EpochEnd)][-1].val
    assert {"d_loss", "g_loss", "d_real", "d_fake", "modes_covered"} <= set(val)
    snap = last_snapshot(events)
    assert snap.view == "gan_points" and len(snap.payload["generated"][0]) == 2
    assert set(result.metrics) >= {"val_d_loss", "val_g_loss"}


def test_character_language_model_generates_text() -> None:
    project = chain_project([("tokens", "token_input", {"vocab_size": 57, "seq_len": 16}),
                             ("embed", "embedding", {"num_embeddings": 57, "embedding_dim": 32}),
                             ("pos", "positional_encoding", {"max_len": 16}),
                             ("block", "transformer_encoder_layer", {"nhead": 4, "dim_feedforward": 64,
                                                                     "causal": True, "dropout": 0.0}),
                             ("head", "linear", {"out_features": 57}), ("next", "output", {})],
                            {"name": "text", "seq_len": 16, "stride": 8}, {"epochs": 1, "lr": 0.003})
    result, events = run(project)
    assert events[0].task == "language_model"
    assert "val_perplexity" in result.metrics
    snap = last_snapshot(events)
    assert snap.view == "text" and len(snap.payload["generated"]) == 200


def test_gan_modes_count_only_points_near_a_centre() -> None:
    import numpy as np
    import torch

    from engine.training.tasks.gan import GanTask

    angles = 2 * np.pi * np.arange(8) / 8
    centers = np.stack([2 * np.cos(angles), 2 * np.sin(angles)], axis=1)

    class Fake:
        fixed_noise = torch.zeros(500, 1)

        def __init__(self, points: np.ndarray) -> None:
            self.points = points

        def generate(self, noise: torch.Tensor) -> np.ndarray:
            return self.points[:len(noise)]

    rng = np.random.default_rng(0)
    clusters = centers[np.arange(500) % 8] + rng.normal(0, 0.05, (500, 2))
    assert GanTask.modes_covered(Fake(clusters), centers) == 8  # type: ignore[arg-type]
    # points smeared evenly along the ring, halfway between the modes: no mode is covered
    between = np.stack([2 * np.cos(angles + np.pi / 8), 2 * np.sin(angles + np.pi / 8)], axis=1)
    assert GanTask.modes_covered(Fake(between[np.arange(500) % 8]), centers) == 0  # type: ignore[arg-type]
    three = centers[np.arange(500) % 3] + rng.normal(0, 0.05, (500, 2))
    assert GanTask.modes_covered(Fake(three), centers) == 3  # type: ignore[arg-type]
    assert GanTask.modes_covered(Fake(clusters), centers[:1]) == 1  # type: ignore[arg-type]
