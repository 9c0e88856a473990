"""Attributions: every method's result is Captum's own call on the same model and input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    LayerIntegratedGradients,
    Occlusion,
    Saliency,
)

from engine.compile import CompiledModel, compile_graph
from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.training.attribution_cache import (
    AttributionCache,
    sample_key,
    weights_version,
)
from engine.training.attributions import (
    METHODS,
    ModelFacts,
    attribute,
    available_methods,
    method_problem,
    model_facts,
    occlusion_window,
)
from engine.training.events import Finished
from engine.training.insight import ModelInsight, explain
from engine.training.predict import open_predictor
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project

ROOT = Path(__file__).resolve().parents[2]


def _compiled(graph, seed: int = 0) -> CompiledModel:  # noqa: ANN001
    torch.manual_seed(seed)
    compiled = compile_graph(graph)
    compiled.module.eval()
    return compiled


@pytest.fixture(scope="module")
def cnn() -> tuple[CompiledModel, ModelFacts, torch.Tensor]:
    """The digits CNN template with random weights, and one random image."""
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    compiled = _compiled(project.graph)
    facts = model_facts(compiled, project.graph, "classification", image_data=True)
    x = torch.randn(1, *facts.input_dims, generator=torch.Generator().manual_seed(1))
    return compiled, facts, x


def _predicted(module: torch.nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(module(x)[0].argmax())


def _grad(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_(True)


def test_an_image_classifier_is_offered_every_method(cnn) -> None:  # noqa: ANN001
    compiled, facts, _ = cnn
    assert facts.input_kind == "image" and len(facts.conv_layers) >= 1
    assert [m.key for m in available_methods(facts)] == list(METHODS)
    assert all(m.title and m.explanation.endswith(".") for m in METHODS.values())


def test_integrated_gradients_saliency_and_occlusion_are_captums(cnn) -> None:  # noqa: ANN001
    compiled, facts, x = cnn
    module = compiled.module
    target = _predicted(module, x)
    expected = {
        "integrated_gradients": IntegratedGradients(module).attribute(
            _grad(x), baselines=torch.zeros_like(x), target=target, n_steps=50),
        "saliency": Saliency(module).attribute(_grad(x), target=target),
        "occlusion": Occlusion(module).attribute(_grad(x), sliding_window_shapes=occlusion_window(facts.input_dims)[0],
                                                 strides=occlusion_window(facts.input_dims)[1], baselines=0,
                                                 target=target),
    }
    for method, reference in expected.items():
        result = attribute(module, [x], facts, method)
        assert result.target == target and result.target_name == f"class {target}"
        assert result.values.shape == tuple(x.shape[1:]), method
        assert np.allclose(result.values, reference.detach()[0].numpy(), atol=1e-5), method
        assert result.heat is not None and result.heat.shape == tuple(x.shape[2:])
    saliency = attribute(module, [x], facts, "saliency")
    assert np.allclose(saliency.heat, saliency.values.max(0))  # a size: the largest channel's


def test_occlusion_window_is_an_eighth_of_the_side() -> None:
    assert occlusion_window((3, 32, 32)) == ((3, 4, 4), (3, 2, 2))
    assert occlusion_window((1, 224, 224)) == ((1, 28, 28), (1, 14, 14))
    assert occlusion_window((8, 8)) == ((1, 1), (1, 1))


def test_grad_cam_on_each_convolution_is_captums_upsampled(cnn) -> None:  # noqa: ANN001
    compiled, facts, x = cnn
    module = compiled.module
    target = _predicted(module, x)
    for layer in facts.conv_layers:
        cam = LayerGradCam(module, getattr(module, layer)).attribute(_grad(x), target=target,
                                                                    relu_attributions=True)
        reference = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), "bilinear")
        result = attribute(module, [x], facts, "grad_cam", layer=layer)
        assert result.layer == layer and result.values.shape == (1, *x.shape[2:])
        assert np.allclose(result.values, reference.detach()[0].numpy(), atol=1e-6), layer
    assert attribute(module, [x], facts, "grad_cam").layer == facts.conv_layers[-1]
    with pytest.raises(UserError, match="not a 2-D convolution"):
        attribute(module, [x], facts, "grad_cam", layer="nope")


def test_look_inside_saliency_is_captums(cnn) -> None:  # noqa: ANN001
    compiled, _, x = cnn
    module = compiled.module
    saliency, predicted, _ = explain(module, [x], True)
    reference = Saliency(module).attribute(_grad(x), target=predicted).detach()[0].numpy().max(0)
    assert np.allclose(saliency, reference)


def _mlp(outputs: int, task: str, dataset_features: int = 10) -> tuple[CompiledModel, ModelFacts]:
    project = chain_project([
        ("x", "input", {"shape": [dataset_features]}),
        ("fc1", "linear", {"out_features": 12}),
        ("act", "tanh", {}),
        ("fc2", "linear", {"out_features": outputs}),
        ("y", "output", {}),
    ], {"name": "diabetes"})
    compiled = _compiled(project.graph, seed=3)
    return compiled, model_facts(compiled, project.graph, task, image_data=False)


def test_no_grad_cam_or_occlusion_without_a_convolution_and_an_image() -> None:
    _, facts = _mlp(3, "classification")
    assert facts.input_kind == "features" and facts.conv_layers == ()
    assert [m.key for m in available_methods(facts)] == ["integrated_gradients", "saliency"]
    assert "2-D convolution" in str(method_problem(facts, "grad_cam"))
    assert "image" in str(method_problem(facts, "occlusion")) and "table row" in str(method_problem(facts, "occlusion"))
    compiled, _ = _mlp(3, "classification")
    with pytest.raises(UserError, match="convolution"):
        attribute(compiled.module, [torch.zeros(1, 10)], facts, "grad_cam")
    assert method_problem(facts, "saliency") is None and method_problem(facts, "integrated_gradients") is None
    autoencoder = ModelFacts("autoencoder", "image", (1, 8, 8), (1, 8, 8), ("conv",))
    assert available_methods(autoencoder) == [] and "autoencoder" in str(method_problem(autoencoder, "saliency"))


def test_regression_gives_a_feature_vector_for_the_chosen_output() -> None:
    compiled, facts = _mlp(2, "regression")
    module = compiled.module
    x = torch.randn(1, 10, generator=torch.Generator().manual_seed(2))
    names = [f"f{i}" for i in range(10)]
    for method, reference in (
            ("integrated_gradients", IntegratedGradients(module).attribute(
                _grad(x), baselines=torch.zeros_like(x), target=1, n_steps=50)),
            ("saliency", Saliency(module).attribute(_grad(x), target=1))):
        result = attribute(module, [x], facts, method, output=1, labels=names)
        assert result.values.shape == (10,) and result.heat is None and result.labels == names
        assert result.target == 1 and result.target_name == "output 1"
        assert np.allclose(result.values, reference.detach()[0].numpy(), atol=1e-6), method
    with pytest.raises(UserError, match="output 2 does not exist"):
        attribute(module, [x], facts, "saliency", output=2)


def _token_model(embedding: bool = True) -> tuple[CompiledModel, ModelFacts]:
    nodes = [("tokens", "token_input", {"vocab_size": 12, "seq_len": 6}),
             ("embed", "embedding", {"num_embeddings": 12, "embedding_dim": 5}),
             ("flat", "flatten", {}),
             ("fc", "linear", {"out_features": 3}),
             ("logits", "output", {})]
    project = chain_project(nodes, {"name": "text"})
    compiled = _compiled(project.graph, seed=4)
    return compiled, model_facts(compiled, project.graph, "classification", image_data=False)


def test_a_sequence_classifier_gets_per_token_integrated_gradients() -> None:
    compiled, facts = _token_model()
    module = compiled.module
    assert facts.input_kind == "tokens" and facts.embedding == "embed"
    assert [m.key for m in available_methods(facts)] == ["integrated_gradients"]
    assert "token ids" in str(method_problem(facts, "saliency"))
    ids = torch.tensor([[3, 1, 4, 1, 5, 9]])
    target = _predicted(module, ids)
    reference = LayerIntegratedGradients(module, module.embed).attribute(
        ids, baselines=torch.zeros_like(ids), target=target, n_steps=50).detach()[0].sum(-1)
    result = attribute(module, [ids], facts, "integrated_gradients", labels=list("abcdef"))
    assert result.values.shape == (6,) and result.labels == list("abcdef")
    assert np.allclose(result.values, reference.numpy(), atol=1e-6)
    no_embedding = ModelFacts("classification", "tokens", (6,), (3,))
    assert available_methods(no_embedding) == []
    assert "Embedding" in str(method_problem(no_embedding, "integrated_gradients"))


def test_the_language_model_explains_its_next_token() -> None:
    project = load_project(ROOT / "templates" / "transformer_char_lm.json")
    compiled = _compiled(project.graph, seed=5)
    module = compiled.module
    facts = model_facts(compiled, project.graph, "language_model", image_data=False)
    assert facts.embedding == "embed" and facts.output_dims == (64, 96)
    ids = torch.randint(0, 96, (1, 16), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        token = int(module(ids)[0, -1].argmax())
    reference = LayerIntegratedGradients(module, module.embed).attribute(
        ids, baselines=torch.zeros_like(ids), target=(15, token), n_steps=50).detach()[0].sum(-1)
    vocabulary = [chr(32 + i) for i in range(96)]
    result = attribute(module, [ids], facts, "integrated_gradients", names=vocabulary)
    assert result.target == (15, token) and result.target_name == f"next token {vocabulary[token]!r}"
    assert result.labels == [vocabulary[i] for i in ids[0].tolist()]
    assert np.allclose(result.values, reference.numpy(), atol=1e-5)


def test_the_cache_returns_the_same_object_per_key(cnn) -> None:  # noqa: ANN001
    compiled, facts, x = cnn
    cache, calls = AttributionCache(size=2), []

    def compute():  # noqa: ANN202
        calls.append(1)
        return attribute(compiled.module, [x], facts, "saliency")

    key = (weights_version(compiled.module), sample_key(x.numpy()), "saliency", None, 0)
    first = cache.get(key, compute)
    assert cache.get(key, compute) is first and len(calls) == 1
    assert sample_key(x.numpy()) != sample_key(x.numpy() + 1)
    before = weights_version(compiled.module)
    with torch.no_grad():
        compiled.module.fc2.weight.add_(0.0)  # an in-place write: new weights
    assert weights_version(compiled.module) != before
    cache.get("a", compute)
    cache.get("b", compute)
    assert len(cache) == 2 and cache.get(key, compute) is not first  # the oldest was dropped


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("act1", "relu", {}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 2})
    run = tmp_path_factory.mktemp("attributions") / "run"
    assert isinstance(Trainer(TrainOptions(project, run), lambda event: None).run(), Finished)
    return run


def test_look_inside_and_try_it_attribute_a_run_alike(digits_run: Path) -> None:
    insight = ModelInsight.from_run(digits_run)
    first = insight.attribution(3, "integrated_gradients")
    assert insight.attribution(3, "integrated_gradients") is first  # cached per sample and method
    assert insight.attribution(3, "grad_cam") is insight.attribution(3, "grad_cam", "conv1")
    with pytest.raises(UserError, match="sample"):
        insight.attribution(insight.sample_count(), "saliency")
    predictor = open_predictor(digits_run)
    raw = insight.data.dataset.x[int(insight.data.val_index[3])]  # un-normalized: the predictor normalizes it
    tried = predictor.attribution(raw, "integrated_gradients")
    assert predictor.attribution(raw, "integrated_gradients") is tried
    assert tried.target == first.target and np.allclose(tried.values, first.values, atol=1e-4)
    assert [m.key for m in available_methods(predictor.attribution_facts)] == list(METHODS)
