"""Fine-tuning in the trainer: frozen nodes keep their weights and batch-norm statistics, lr_scale makes
per-node learning rates under the schedule, and a stopped run with both resumes exactly."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.compile import compile_graph
from engine.training.events import Event, Failed, Finished, RunStarted
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project
from tests.training.test_trainer import assert_stopped_run_resumes_to_the_same_weights, train


def _project(training: dict | None = None):  # noqa: ANN202
    project = chain_project([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("bn1", "batchnorm2d", {}),
        ("act1", "relu", {}),
        ("pool", "maxpool2d", {"kernel_size": [2, 2]}),
        ("flat", "flatten", {}),
        ("fc1", "linear", {"out_features": 16}),
        ("act2", "relu", {}),
        ("fc2", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, {"batch_size": 64, "epochs": 3, "lr": 0.01, "seed": 5, "schedule": "cosine",
                            **(training or {})})
    for node_id in ("conv1", "bn1"):
        project.graph.set_training(node_id, "trainable", False)
    return project


def _initial(project) -> dict[str, torch.Tensor]:  # noqa: ANN001
    torch.manual_seed(project.training["seed"])  # as the trainer does before building the model
    return {k: v.clone() for k, v in compile_graph(project.graph).module.state_dict().items()}


def test_a_frozen_backbone_keeps_its_weights_and_statistics_and_only_the_head_trains(tmp_path: Path) -> None:
    project = _project()
    initial = _initial(project)
    result, events = train(project, tmp_path / "run")
    assert isinstance(result, Finished) and result.reason == "completed"
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    for key in ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked"):
        assert torch.equal(trained[key], initial[key]), key
    for key in ("fc1.weight", "fc2.weight"):
        assert not torch.equal(trained[key], initial[key]), key
    started = next(e for e in events if isinstance(e, RunStarted))
    head = sum(initial[k].numel() for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"))
    assert started.parameters == head  # what the optimizer trains


def test_lr_scale_makes_per_node_learning_rates_that_follow_the_schedule() -> None:
    project = _project()
    project.graph.set_training("fc2", "lr_scale", 10.0)
    project.graph.set_training("fc1", "lr_scale", 0.0)
    initial = _initial(project)
    events: list[Event] = []
    trainer = Trainer(TrainOptions(project, None, None, {}, False), events.append)
    assert isinstance(trainer.run(), Finished)
    assert trainer.state is not None
    (optimizer,) = trainer.state.task.optimizers.values()
    scales = [group["lr_scale"] for group in optimizer.param_groups]
    assert scales == [0.0, 10.0]  # in the order of the model's parameters; frozen ones left out
    current = trainer.state.schedule.current
    assert [group["lr"] for group in optimizer.param_groups] == [0.0, 10.0 * current]
    weights = trainer.state.task.weights()
    assert torch.equal(weights["fc1.weight"], initial["fc1.weight"])  # multiplier 0: never moves
    assert not torch.equal(weights["fc2.weight"], initial["fc2.weight"])


def test_a_stopped_run_with_frozen_and_scaled_layers_resumes_to_the_same_weights(tmp_path: Path) -> None:
    # one CPU thread: batch-norm reductions on CPU depend on the thread count, which the automatic
    # governor changes with the machine's load (two identical runs differ without it, frozen or not)
    project = _project({"epochs": 3, "optimizer": "sgd", "momentum": 0.9, "cpu_threads": 1})
    project.graph.set_training("fc2", "lr_scale", 3.0)
    assert_stopped_run_resumes_to_the_same_weights(project, tmp_path)


def test_freezing_every_layer_fails_with_a_one_line_message() -> None:
    project = _project()
    for node_id in ("fc1", "fc2"):
        project.graph.set_training(node_id, "trainable", False)
    result, _ = train(project)
    assert isinstance(result, Failed) and result.reason == "config"
    assert "every layer of the model is frozen" in result.message and "\n" not in result.message
