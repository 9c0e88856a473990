"""One rule for GANs: which nodes and Outputs are the generator's, which the discriminator's."""

from __future__ import annotations

from engine.graph.fileformat import load_project
from engine.graph.gan import gan_parts, is_gan
from engine.settings import auto_task
from tests.conftest import ROOT
from tests.training.helpers import mlp_project


def test_the_dcgan_template_splits_into_its_two_networks() -> None:
    graph = load_project(ROOT / "templates" / "dcgan_digits.json").graph
    parts = gan_parts(graph)
    assert is_gan(graph) and len(parts.generator_outputs) == 1 and len(parts.discriminator_outputs) == 1
    assert not set(parts.generator) & set(parts.discriminator)
    assert set(parts.generator) | set(parts.discriminator) == set(graph.nodes)
    assert any(graph.nodes[n].type_id == "noise_input" for n in parts.generator)
    assert auto_task("auto", graph, "classes") == "gan"


def test_a_graph_without_noise_is_no_gan() -> None:
    graph = mlp_project().graph
    parts = gan_parts(graph)
    assert not is_gan(graph) and parts.generator == parts.discriminator == parts.generator_outputs == []
    assert auto_task("auto", graph, "classes") == "classification"
    assert auto_task("auto", graph, "values", ordered=True) == "forecasting"
    assert auto_task("regression", graph, "classes") == "regression"
