"""The template gallery: every template loads, validates, compiles, is laid out cleanly, is
listed with the contract fields, and trains to its target with its stored seed.

The training tests run each template exactly as ``python main.py train`` does (the same
Trainer, the stored settings and seed), on the CPU so the figures are reproducible, and
check what the template promises a learner: a metric past its target and the prediction
view it describes.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from engine.cli import run_cli
from engine.compile import compile_graph
from engine.graph.fileformat import load_project, sibling_weights
from engine.graph.project import Project
from engine.graph.layout import COLUMN_SPACING, ROW_SPACING
from engine.shapes import analyze
from engine.templates import FAMILIES, TEMPLATES_DIR, list_templates
from engine.training.events import Finished, PredictionSnapshot
from engine.training.trainer import Trainer, TrainOptions

TEMPLATE_FILES = sorted(TEMPLATES_DIR.glob("*.json"))
NAMES = [path.stem for path in TEMPLATE_FILES]


def _load(name: str) -> Project:
    return load_project(TEMPLATES_DIR / f"{name}.json")


# --------------------------------------------------------------- the catalogue
def test_every_family_has_a_template() -> None:
    templates, problems = list_templates()
    assert problems == []
    assert {t.family for t in templates} == set(FAMILIES)
    assert len(templates) == len(TEMPLATE_FILES)


def test_templates_json_lists_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["templates", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert sorted(Path(e["path"]).stem for e in entries) == NAMES
    for entry in entries:
        assert {"name", "path", "family", "task", "dataset", "description"} <= set(entry)
        project = load_project(entry["path"])
        assert entry["family"] in FAMILIES
        assert entry["name"] == project.meta["name"] and entry["name"]
        assert entry["dataset"] == project.dataset["name"]
        assert entry["task"] == project.meta["task"]
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", entry["description"]) if s]
        assert 3 <= len(sentences) <= 5, (entry["name"], len(sentences))


@pytest.mark.parametrize("name", NAMES)
def test_template_validates_and_compiles(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = TEMPLATES_DIR / f"{name}.json"
    assert run_cli(["validate", str(path)]) == 0
    assert capsys.readouterr().out.startswith("valid:")
    project = load_project(path)
    assert analyze(project.graph).diagnostics == []
    compiled = compile_graph(project.graph)
    assert len(compiled.output_ids) == sum(1 for n in project.graph if n.type_id == "output")


@pytest.mark.parametrize("name", NAMES)
def test_template_layout_is_clean(name: str) -> None:
    """Layered left-to-right on the layout grid; no overlaps; no edge hidden behind a node."""
    graph = _load(name).graph
    positions = {node.id: node.position for node in graph}
    for x, y in positions.values():
        assert x % COLUMN_SPACING == 0 and y % (ROW_SPACING / 2) == 0, (x, y)
    points = list(positions.values())
    assert len(set(points)) == len(points), "two nodes share a position"
    for edge in graph.edges:
        (x1, y1), (x2, y2) = positions[edge.source], positions[edge.target]
        assert x2 > x1 or y2 > y1, f"edge {edge.source} -> {edge.target} runs backwards"
        if y1 == y2:
            between = [n for n, (x, y) in positions.items() if y == y1 and x1 < x < x2]
            assert between == [], f"edge {edge.source} -> {edge.target} passes behind {between}"


# ------------------------------------------------------------------- training
def _train(name: str) -> tuple[Trainer, Finished, list[Any]]:
    """Train a template as the CLI does (stored settings and seed), on the CPU."""
    events: list[Any] = []
    weights = sibling_weights(TEMPLATES_DIR / f"{name}.json")  # a fine-tuning template's pretrained weights
    trainer = Trainer(TrainOptions(_load(name), None, TEMPLATES_DIR, {"device": "cpu"}, weights_file=weights),
                      events.append)
    result = trainer.run()
    assert isinstance(result, Finished) and result.reason == "completed", getattr(result, "message", result)
    return trainer, result, events


def _snapshot(events: list[Any]) -> PredictionSnapshot:
    return [e for e in events if isinstance(e, PredictionSnapshot)][-1]


def _accuracy(target: float, view: str) -> Callable[[Trainer, Finished, list[Any]], None]:
    def check(trainer: Trainer, result: Finished, events: list[Any]) -> None:
        assert result.metrics["val_accuracy"] >= target
        assert _snapshot(events).view == view

    return check


def _forecast(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    assert result.metrics["val_loss"] <= 0.02  # MSE on normalized values
    snapshot = _snapshot(events)
    assert snapshot.view == "forecast" and len(snapshot.payload["predicted"]) == len(snapshot.payload["target"])


def _language_model(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    data = trainer.task.data
    seq_len, stride = data.dataset.x.shape[1], trainer.options.project.dataset["stride"]
    text = data.dataset.extras["text"]
    # the characters the training windows cover (inputs and next-character targets)
    seen = {i for start in data.train_index * stride for i in range(start, start + seq_len + 1)}
    counts = Counter(text[i] for i in seen)
    total = sum(counts.values())
    unigram_entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    assert unigram_entropy > 2.5
    assert result.metrics["val_loss"] <= 0.7 * unigram_entropy
    snapshot = _snapshot(events)
    assert snapshot.view == "text" and len(snapshot.payload["generated"]) == 200
    words = [w.strip(".,;:!?'\"()*-") for w in snapshot.payload["generated"].split()]
    words = [w for w in words if len(w) >= 3]
    corpus_words = {w.strip(".,;:!?'\"()*-") for w in text.split()}
    # a model that knew only character frequencies would spell almost no real word
    assert len(words) >= 10 and sum(w in corpus_words for w in words) >= 0.25 * len(words)


def _dense_autoencoder(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    x = trainer.task.data.val_x  # pixels in [0, 1]: the template trains without normalization
    mean_image_mse = float(((x - trainer.task.data.train_x.mean(0)) ** 2).mean())
    assert result.metrics["val_loss"] <= 0.7 * mean_image_mse
    snapshot = _snapshot(events)
    latent = np.asarray(snapshot.payload["latent"])
    labels = np.asarray(snapshot.payload["latent_labels"])
    assert snapshot.view == "reconstruction" and latent.shape == (len(labels), 2) and len(labels) >= 300
    # the 2-D codes group by digit although labels were never used: nearest class centre beats chance
    centres = np.stack([latent[labels == c].mean(0) for c in range(10)])
    nearest = np.argmin(((latent[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() >= 0.5


def _denoising_autoencoder(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    noise = trainer.state.config.input_noise
    assert noise > 0
    assert result.metrics["val_mse_vs_noise"] <= 0.5
    # measured again from the trained weights with fresh noise
    clean = torch.as_tensor(trainer.task.data.val_x)
    noisy = clean + noise * torch.randn(clean.shape, generator=torch.Generator().manual_seed(123))
    model = trainer.task.model.eval()
    with torch.no_grad():
        restored = model(noisy)
    assert float(((restored - clean) ** 2).mean()) <= 0.5 * float(((noisy - clean) ** 2).mean())
    snapshot = _snapshot(events)
    assert snapshot.view == "reconstruction" and "noisy" in snapshot.payload


def _gan_ring(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    assert result.metrics["val_modes_covered"] >= 6
    task = trainer.task
    centres = np.asarray(task.data.dataset.extras["centers"])
    points = task.generate(task._noise(2000, torch.Generator().manual_seed(7)))
    distance = np.sqrt(((points[:, None] - centres[None]) ** 2).sum(-1))
    nearest, gap = distance.argmin(1), distance.min(1)
    shares = np.bincount(nearest[gap < 0.25], minlength=len(centres)) / len(points)  # 5 std of a mode
    assert (shares >= 0.02).sum() >= 6, shares
    assert _snapshot(events).view == "gan_points"


def _dcgan_digits(trainer: Trainer, result: Finished, events: list[Any]) -> None:
    from sklearn.linear_model import LogisticRegression

    task = trainer.task
    real = task.data.dataset.x.reshape(len(task.data.dataset.x), -1)
    samples = task.generate(task._noise(500, torch.Generator().manual_seed(7))).reshape(500, -1)
    # a plain classifier trained on real digits recognizes varied digits among the samples
    classifier = LogisticRegression(max_iter=5000).fit(real, task.data.dataset.y)
    shares = np.bincount(classifier.predict(samples), minlength=10) / len(samples)
    assert (shares >= 0.02).sum() >= 7, shares
    # samples lie near real digits: much nearer than real digits with their pixels shuffled
    shuffled = np.random.default_rng(0).permuted(real[:300], axis=1)

    def nearest_real(images: np.ndarray) -> float:
        return float(np.sqrt(((images[:, None] - real[None]) ** 2).sum(-1)).min(1).mean())

    assert nearest_real(samples[:300]) <= 0.7 * nearest_real(shuffled)
    snapshot = _snapshot(events)
    assert snapshot.view == "gan_images" and np.asarray(snapshot.payload["samples"]).shape == (16, 1, 8, 8)


TARGETS: dict[str, Callable[[Trainer, Finished, list[Any]], None]] = {
    "fnn_spirals": _accuracy(0.95, "decision_boundary"),
    "fnn_breast_cancer": _accuracy(0.95, "classification"),
    "cnn_digits": _accuracy(0.97, "classification"),
    "finetune_digits": _accuracy(0.95, "classification"),  # from its pretrained weights, 5 epochs
    "resnet_digits": _accuracy(0.97, "classification"),
    "rnn_digits_rows": _accuracy(0.90, "classification"),
    "gru_digits_rows": _accuracy(0.90, "classification"),
    "lstm_sine_forecast": _forecast,
    "transformer_digits_rows": _accuracy(0.90, "classification"),
    "transformer_char_lm": _language_model,
    "autoencoder_digits_2d": _dense_autoencoder,
    "denoising_conv_autoencoder": _denoising_autoencoder,
    "gan_ring": _gan_ring,
    "dcgan_digits": _dcgan_digits,
}


def test_every_template_has_a_training_target() -> None:
    assert sorted(TARGETS) == NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_template_trains_to_its_target(name: str) -> None:
    trainer, result, events = _train(name)
    TARGETS[name](trainer, result, events)
