"""Small projects that cover every layer type, a GAN and a language model, for the export tests."""

from __future__ import annotations

from pathlib import Path

from engine.graph import Graph, Project
from engine.graph.fileformat import save_project
from engine.graph.layout import layered_layout
from tests.graph_builders import chain, connect, node


def _project(graph: Graph, name: str, dataset: dict, **training: object) -> Project:
    graph.move_nodes(layered_layout(graph))
    return Project(graph=graph, dataset=dataset, training={"epochs": 1, "batch_size": 64, **training},
                   meta={"name": name, "family": "fnn", "task": "", "description": ""})


def mlp_iris() -> Project:
    """Input(4) -> Linear -> ReLU -> Linear(3): the smallest classifier."""
    graph = Graph()
    chain(graph, node("input", "features", shape=[4]), node("linear", "fc1", out_features=16), node("relu", "relu1"),
          node("linear", "fc2", out_features=3), node("output", "logits"))
    return _project(graph, "MLP on iris", {"name": "iris"})


def image_zoo() -> Project:
    """Images through every image layer: two branches joined by Concatenate, Multiply and Add."""
    graph = Graph()
    chain(graph, node("input", "image", shape=[1, 8, 8]), node("conv2d", "conv", out_channels=4, kernel_size=[3, 3],
                                                                padding=[1, 1]),
          node("batchnorm2d", "bn"), node("leaky_relu", "act", negative_slope=0.2),
          node("maxpool2d", "pool", kernel_size=[2, 2]),
          node("conv_transpose2d", "up", out_channels=4), node("elu", "elu"))
    chain(graph, "image", node("upsample", "zoom", scale_factor=2, mode="bilinear"),
          node("avgpool2d", "avg", kernel_size=[2, 2]), node("conv2d", "mix", out_channels=4, kernel_size=[1, 1]),
          node("sigmoid", "gate"))
    chain(graph, node("multiply", "gated"))
    connect(graph, "elu", "gated", "in1")
    connect(graph, "gate", "gated", "in2")
    chain(graph, node("concat", "cat", dim=1))
    connect(graph, "gated", "cat", "in1")
    connect(graph, "elu", "cat", "in2")
    chain(graph, "cat", node("adaptive_avgpool2d", "gap", output_size=[2, 2], flatten=True),
          node("dropout", "drop", p=0.1), node("linear", "fc", out_features=8), node("gelu", "gelu"),
          node("identity", "same"), node("layernorm", "ln"), node("linear", "head", out_features=10),
          node("log_softmax", "logp"), node("output", "out"))
    return _project(graph, "Image zoo", {"name": "digits"})


def sequence_zoo() -> Project:
    """Digit rows as sequences through recurrent, convolutional and attention layers."""
    graph = Graph()
    chain(graph, node("input", "rows", shape=[8, 8]), node("gru", "gru", hidden_size=6, bidirectional=True),
          node("self_attention", "attn", num_heads=2, causal=True), node("silu", "silu"),
          node("permute", "channels_first", dims=[0, 2, 1]), node("conv1d", "conv", out_channels=6, kernel_size=3),
          node("maxpool1d", "pool", kernel_size=2), node("batchnorm1d", "bn"), node("tanh", "tanh"),
          node("reshape", "steps", shape=[3, 6]), node("rnn", "rnn", hidden_size=5, num_layers=2, dropout=0.1),
          node("lstm", "lstm", hidden_size=7, output="last"), node("linear", "head", out_features=10),
          node("softmax", "probs"), node("output", "out"))
    return _project(graph, "Sequence zoo", {"name": "digits", "layout": "rows"})


def gan_ring() -> Project:
    """A GAN on 2-D points: Noise -> generator -> Output; Input -> discriminator -> Output."""
    graph = Graph()
    chain(graph, node("noise_input", "z", latent_dim=4), node("linear", "g1", out_features=16), node("relu", "g_act"),
          node("linear", "g2", out_features=2), node("output", "fake"))
    chain(graph, node("input", "points", shape=[2]), node("linear", "d1", out_features=16),
          node("leaky_relu", "d_act", negative_slope=0.2), node("linear", "d2", out_features=1),
          node("output", "realness"))
    project = _project(graph, "GAN ring", {"name": "gaussian_ring", "samples": 256})
    project.meta["family"] = "gan"
    return project


def language_model(vocab: int, seq_len: int = 16) -> Project:
    """A one-block causal transformer over the shipped text corpus."""
    graph = Graph()
    chain(graph, node("token_input", "tokens", vocab_size=vocab, seq_len=seq_len),
          node("embedding", "embed", num_embeddings=vocab, embedding_dim=16),
          node("positional_encoding", "pos", max_len=seq_len),
          node("transformer_encoder_layer", "block", nhead=2, dim_feedforward=32, causal=True),
          node("linear", "lm_head", out_features=vocab), node("output", "next_token"))
    project = _project(graph, "Tiny GPT", {"name": "text", "seq_len": seq_len, "stride": 64})
    project.meta["family"] = "transformer"
    return project


def all_projects() -> dict[str, Project]:
    """Every test project by name."""
    from engine.data import load_dataset

    vocab = len(load_dataset({"name": "text", "seq_len": 16}).vocabulary or [])
    return {"mlp_iris": mlp_iris(), "image_zoo": image_zoo(), "sequence_zoo": sequence_zoo(),
            "gan_ring": gan_ring(), "language_model": language_model(vocab)}


def write_all(folder: Path) -> dict[str, Path]:
    """Save every test project into ``folder``; returns name -> file."""
    paths = {}
    for name, project in all_projects().items():
        paths[name] = folder / f"{name}.json"
        save_project(project, paths[name])
    return paths
