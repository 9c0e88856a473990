"""The fine-tuning template (templates/finetune_digits.json) and the digits' ``classes`` option.

The template is a CNN whose convolutions start from weights learned on the digits 0-4 (the
sibling finetune_digits.safetensors, written by bench/make_finetune_weights.py) and stay
frozen, with a new classifier for the digits 5-9. These tests train it through the engine's
Python API as ``python main.py train`` does (the Trainer, the sibling weights file, the CPU).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.cli import run_cli
from engine.compile import compile_graph
from engine.compile.weights import apply_weights, load_weights
from engine.data import DataError, load_dataset
from engine.graph.fileformat import load_project, sibling_weights
from engine.templates import TEMPLATES_DIR, list_templates
from engine.training.events import Finished
from engine.training.trainer import Trainer, TrainOptions

TEMPLATE = TEMPLATES_DIR / "finetune_digits.json"
WEIGHTS = TEMPLATES_DIR / "finetune_digits.safetensors"
FROZEN = ("conv1", "conv2")
NEW = ("new_fc1", "new_fc2")


def _trainer(epochs: int | None = None, pretrained: bool = True) -> Trainer:
    overrides: dict[str, object] = {"device": "cpu"}
    if epochs is not None:
        overrides["epochs"] = epochs
    options = TrainOptions(load_project(TEMPLATE), None, TEMPLATES_DIR, overrides,
                           weights_file=sibling_weights(TEMPLATE) if pretrained else None)
    return Trainer(options, lambda event: None)


def _run(trainer: Trainer) -> Finished:
    result = trainer.run()
    assert isinstance(result, Finished) and result.reason == "completed", getattr(result, "message", result)
    return result


# ------------------------------------------------------------------ the template
def test_the_template_is_listed_opens_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    (info,) = [t for t in list_templates()[0] if t.path == str(TEMPLATE)]
    assert (info.family, info.task, info.dataset) == ("cnn", "classification", "digits")
    assert "0-4" in info.description and "5-9" in info.description and "frozen" in info.description
    assert run_cli(["validate", str(TEMPLATE)]) == 0
    assert capsys.readouterr().out.startswith("valid:")
    project = load_project(TEMPLATE)
    assert project.dataset == {"name": "digits", "classes": [5, 6, 7, 8, 9]}
    frozen = sorted(node.id for node in project.graph if not node.trainable)
    assert frozen == sorted(FROZEN)
    assert project.graph.nodes["new_fc2"].params["out_features"] == 5
    assert run_cli(["summary", str(TEMPLATE), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frozen_parameters"] == 160 + 4640 and summary["trainable_parameters"] > 0


def test_the_shipped_weights_are_small_and_hold_the_original_model() -> None:
    assert sibling_weights(TEMPLATE) == WEIGHTS and WEIGHTS.stat().st_size < 200_000
    weights = load_weights(WEIGHTS)
    assert sorted({key.split(".")[0] for key in weights}) == ["conv1", "conv2", "fc1", "fc2"]
    assert tuple(weights["fc2.weight"].shape) == (5, 64)  # the original head: five digits, 0-4


def test_the_weights_classify_the_digits_0_to_4_they_were_trained_on() -> None:
    from bench.make_finetune_weights import pretraining_project

    project = pretraining_project(epochs=1, seed=0)
    assert project.dataset["classes"] == [0, 1, 2, 3, 4]
    module = compile_graph(project.graph).module
    apply_weights(module, load_weights(WEIGHTS), WEIGHTS.name)  # every tensor fits the original graph
    data = load_dataset(project.dataset)
    x = torch.as_tensor(data.x)
    x = (x - x.mean()) / x.std()  # normalized as training does (one statistic per channel)
    with torch.no_grad():
        accuracy = float((module.eval()(x).argmax(1).numpy() == data.y).mean())
    assert accuracy >= 0.97


# --------------------------------------------------------------- training from them
def test_the_convolutions_load_the_pretrained_weights_and_the_new_classifier_starts_fresh() -> None:
    trainer = _trainer(epochs=1)
    _run(trainer)
    assert trainer.state is not None
    line = trainer.state.initial_weights
    assert line.startswith("started from finetune_digits.safetensors: 4 of 8 tensors")
    assert all(f"{node}.weight (not in the file)" in line for node in NEW)
    stored, state = load_weights(WEIGHTS), trainer.task.weights()
    for node in FROZEN:
        for tensor in ("weight", "bias"):
            assert torch.equal(state[f"{node}.{tensor}"], stored[f"{node}.{tensor}"])


def test_frozen_layers_stay_out_of_the_optimizer_and_do_not_change_in_a_step() -> None:
    trainer = _trainer(epochs=1)
    _run(trainer)
    task = trainer.task
    model = task.modules["model"]
    optimized = {id(p) for group in task.optimizers["model"].param_groups for p in group["params"]}
    for name, parameter in model.named_parameters():
        frozen = name.split(".")[0] in FROZEN
        assert parameter.requires_grad is not frozen, name
        assert (id(parameter) in optimized) is not frozen, name
    before = {key: tensor.clone() for key, tensor in task.weights().items()}
    x = torch.as_tensor(task.data.train_x[:64])
    y = torch.as_tensor(task.data.train_y[:64])
    task.train_step(x, y)
    after = task.weights()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        assert changed is (key.split(".")[0] in NEW), key


def test_a_short_run_passes_its_target_and_beats_scratch_with_the_same_budget() -> None:
    result = _run(_trainer())  # the template's own settings: 5 epochs, seed 0
    assert result.metrics["val_accuracy"] >= 0.95
    one_epoch = _run(_trainer(epochs=1)).metrics["val_accuracy"]
    scratch = _run(_trainer(epochs=1, pretrained=False)).metrics["val_accuracy"]
    assert one_epoch >= scratch + 0.05, (one_epoch, scratch)


def test_export_of_the_template_starts_from_the_weights_where_they_fit() -> None:
    from engine.compile.export.source import initial_weights, load_source

    source = load_source(TEMPLATE)
    assert source.origin.startswith("weights from finetune_digits.safetensors where they fit (4 of 8 tensors")
    stored, fresh = load_weights(WEIGHTS), initial_weights(load_project(TEMPLATE))
    for key, tensor in source.weights.items():
        expected = stored[key] if key.split(".")[0] in FROZEN else fresh[key]
        assert torch.equal(tensor, expected), key


# ---------------------------------------------------------------- digits' classes
def test_digits_classes_keeps_the_digits_given_relabelled_in_order() -> None:
    full = load_dataset({"name": "digits"})
    some = load_dataset({"name": "digits", "classes": [5, 6, 7, 8, 9]})
    keep = full.y >= 5
    np.testing.assert_array_equal(some.x, full.x[keep])
    np.testing.assert_array_equal(some.y, full.y[keep] - 5)
    assert some.class_names == ["5", "6", "7", "8", "9"] and some.num_classes == 5
    assert "digits 5-9" in some.description
    reordered = load_dataset({"name": "digits", "classes": "9, 3", "layout": "flat"})  # text, as typed in a field
    kept = (full.y == 9) | (full.y == 3)
    assert reordered.class_names == ["9", "3"] and reordered.x.shape == (int(kept.sum()), 64)
    np.testing.assert_array_equal(reordered.y, np.where(full.y[kept] == 9, 0, 1))
    assert load_dataset({"name": "digits", "classes": None}).num_classes == 10


@pytest.mark.parametrize(("classes", "message"), [
    ([5], "keep at least two digits, got [5]"),
    ([5, 6, 5], "lists 5 more than once"),
    ([5, 10], "must be at most 9, got 10"),
    ([-1, 2], "must be at least 0, got -1"),
    ([5, 6.5], "must be a whole number, got 6.5"),
    ([True, 2], "must be a whole number, got True"),
    ([], "must be a non-empty list of whole numbers, got []"),
    (5, "must be a non-empty list of whole numbers, got 5"),
    ("five, six", "must be whole numbers separated by commas, got 'five, six'"),
])
def test_bad_classes_are_refused_in_one_line_naming_the_field(classes: object, message: str) -> None:
    with pytest.raises(DataError) as info:
        load_dataset({"name": "digits", "classes": classes})
    assert str(info.value) == f"dataset.classes: {message}"
