"""Look inside a trained run: weight histograms, activations, saliency, attention maps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.compile import compile_graph
from engine.data import load_dataset, prepare_data
from engine.errors import UserError
from engine.graph.project import Project
from engine.training.events import Finished
from engine.training.insight import ModelInsight
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project

ROOT = Path(__file__).resolve().parents[2]
SEED = 5


def cnn_project() -> Project:
    return chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 6, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("relu1", "relu", {}),
        ("pool", "maxpool2d", {"kernel_size": [2, 2]}),
        ("flat", "flatten", {}),
        ("drop", "dropout", {"p": 0.2}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, {"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": SEED})


def transformer_project() -> Project:
    return chain_project([
        ("rows", "input", {"shape": [8, 8]}),
        ("proj", "linear", {"out_features": 16}),
        ("attn", "self_attention", {"num_heads": 2}),
        ("causal", "self_attention", {"num_heads": 4, "causal": True}),
        ("block", "transformer_encoder_layer", {"nhead": 2, "dim_feedforward": 32, "norm_first": True,
                                                "dropout": 0.0}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits", "layout": "rows"}, {"epochs": 1, "batch_size": 64, "lr": 0.005, "seed": SEED})


def train(project: Project, run_dir: Path) -> Path:
    result = Trainer(TrainOptions(project, run_dir), lambda event: None).run()
    assert isinstance(result, Finished), result
    return run_dir


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(cnn_project(), tmp_path_factory.mktemp("insight") / "cnn")


@pytest.fixture(scope="module")
def cnn(cnn_run: Path) -> ModelInsight:
    return ModelInsight.from_run(cnn_run)


def reference(run_dir: Path, project: Project) -> tuple[torch.nn.Module, np.ndarray]:
    """The compiled model with the run's final weights, and the validation inputs, made by hand."""
    module = compile_graph(project.graph).module
    module.load_state_dict(load_file(str(run_dir / "model.safetensors")))
    data = prepare_data(load_dataset(project.dataset), 0.2, SEED, True)
    return module.eval(), data.val_x


def test_weight_histograms_count_every_weight(cnn: ModelInsight) -> None:
    report = cnn.node_report("conv1", 0)
    assert [w.name for w in report.weights] == ["weight", "bias"]
    weight = report.weights[0]
    assert weight.shape == (6, 1, 3, 3) and int(weight.counts.sum()) == 54
    assert len(weight.edges) == len(weight.counts) + 1 and weight.min <= weight.mean <= weight.max
    fc = cnn.node_report("fc", 3).weights
    assert [int(w.counts.sum()) for w in fc] == [10 * 96, 10]


def test_activations_match_a_manual_forward(cnn: ModelInsight, cnn_run: Path) -> None:
    module, val_x = reference(cnn_run, cnn_project())
    index = 7
    x = torch.from_numpy(val_x[index:index + 1])
    with torch.no_grad():
        conv = module.conv1(x)[0].numpy()
        relu = torch.relu(module.conv1(x))[0].numpy()
        logits = module(x)[0].numpy()
    report = cnn.node_report("conv1", index).activation
    assert report.shape == (6, 8, 8)
    assert report.mean == pytest.approx(float(conv.mean()), abs=1e-5)
    assert report.std == pytest.approx(float(conv.std()), abs=1e-5)
    assert (report.min, report.max) == pytest.approx((float(conv.min()), float(conv.max())), abs=1e-5)
    assert len(report.feature_maps) == 6 and np.allclose(report.feature_maps[2], conv[2], atol=1e-5)
    relu_stats = cnn.node_report("relu1", index).activation
    assert relu_stats.zero_fraction == pytest.approx(float(np.mean(relu == 0)))
    assert int(relu_stats.counts.sum()) == relu.size
    for node_id in ("fc", "logits"):  # the Output node shows what feeds it
        stats = cnn.node_report(node_id, index).activation
        assert stats.shape == (10,) and stats.mean == pytest.approx(float(logits.mean()), abs=1e-5)
        assert stats.feature_maps == []
        assert stats.values is not None and np.allclose(stats.values, logits, atol=1e-5)
    assert cnn.node_report("conv1", index).activation.values is None  # 384 values: too many to list


def test_weightless_nodes_have_activations_only(cnn: ModelInsight) -> None:
    for node_id in ("relu1", "pool", "flat", "drop", "image"):
        report = cnn.node_report(node_id, 1)
        assert report.weights == [] and report.activation is not None
    assert cnn.node_report("pool", 1).activation.shape == (6, 4, 4)
    assert cnn.node_report("image", 1).activation.shape == (1, 8, 8)


def test_saliency_and_prediction_of_an_image_classifier(cnn: ModelInsight, cnn_run: Path) -> None:
    module, val_x = reference(cnn_run, cnn_project())
    report = cnn.node_report("conv1", 4)
    assert report.saliency is not None and report.saliency.shape == (8, 8)
    assert (report.saliency >= 0).all() and report.saliency.max() > 0
    with torch.no_grad():
        probabilities = torch.softmax(module(torch.from_numpy(val_x[4:5]))[0], 0)
    assert report.predicted_class == int(probabilities.argmax())
    assert report.predicted_name == str(report.predicted_class)
    assert report.probability == pytest.approx(float(probabilities.max()), abs=1e-5)
    assert report.attention is None


def test_sample_preview_is_the_raw_validation_image(cnn: ModelInsight) -> None:
    data = prepare_data(load_dataset({"name": "digits"}), 0.2, SEED, True)
    assert cnn.sample_count() == len(data.val_x)
    preview = cnn.sample_preview(2)
    row = data.val_index[2]
    assert preview["image"].shape == (8, 8)
    assert np.allclose(preview["image"], data.dataset.x[row, 0])
    assert preview["label"] == int(data.dataset.y[row]) and preview["class_name"] == str(preview["label"])


def test_attention_maps_are_row_stochastic(tmp_path: Path) -> None:
    insight = ModelInsight.from_run(train(transformer_project(), tmp_path / "run"))
    for node_id, heads in (("attn", 2), ("causal", 4), ("block", 2)):
        report = insight.node_report(node_id, 0)
        assert report.attention is not None and report.attention.shape == (heads, 8, 8), node_id
        assert np.allclose(report.attention.sum(-1), 1.0, atol=1e-5), node_id
        assert report.weights and report.activation.shape == (8, 16)
    causal = insight.node_report("causal", 0).attention
    assert np.allclose(np.triu(causal, 1), 0.0)  # no step attends to a later one
    assert insight.node_report("proj", 0).attention is None
    assert insight.node_report("fc", 0).saliency.shape == (8, 8)  # rows of an image: still an image


def test_errors_are_user_errors(cnn: ModelInsight, cnn_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="node nope"):
        cnn.node_report("nope", 0)
    with pytest.raises(UserError, match="sample"):
        cnn.node_report("conv1", cnn.sample_count())
    empty = tmp_path / "fresh"
    empty.mkdir()
    for name in ("run.json", "project.json"):
        shutil.copy(cnn_run / name, empty / name)
    with pytest.raises(UserError, match="no weights yet"):
        ModelInsight.from_run(empty)
    with pytest.raises(UserError, match="not a run folder"):
        ModelInsight.from_run(tmp_path)


def test_a_newer_checkpoint_is_loaded_on_reload(cnn_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(cnn_run, run)
    insight = ModelInsight.from_run(run)
    assert insight.weights_source.startswith("model.safetensors") and not insight.reload()
    stamp = (run / "model.safetensors").stat().st_mtime + 5
    os.utime(run / "checkpoint.pt", (stamp, stamp))
    assert insight.reload() and insight.weights_source == "checkpoint.pt (epoch 1)"


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, engine.training.insight; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.stdout.strip() == "False", result.stderr
