"""The live prediction views: every payload kind the tasks produce draws on its page, updates in
place, and a malformed payload shows a message instead of raising."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from gui.style import DARK
from gui.training.predictions import PAGES, PredictionView

DIGITS = [str(i) for i in range(10)]
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _samples(rng: np.random.Generator, count: int, classes: int, accuracy: float = 0.75) -> list[dict[str, Any]]:
    samples = []
    for _ in range(count):
        true = int(rng.integers(classes))
        predicted = true if rng.random() < accuracy else int((true + rng.integers(1, classes)) % classes)
        others = [c for c in range(classes) if c != predicted][:2]
        samples.append({"true": true, "predicted": predicted,
                        "top": [[predicted, 0.7], *[[c, round(0.3 / (i + 2), 4)] for i, c in enumerate(others)]]})
    return samples


def _confusion(rng: np.random.Generator, classes: int, total: int = 360) -> list[list[int]]:
    matrix = rng.integers(0, 4, (classes, classes))
    matrix[np.diag_indices(classes)] = total // classes
    return matrix.tolist()


def classification_payload(seed: int = 0, images: str = "digits") -> dict[str, Any]:
    """Like ClassificationTask.snapshot: digits (1x8x8, 0..16), cifar (3x32x32, 0..1) or tabular."""
    rng = np.random.default_rng(seed)
    names = {"cifar": CIFAR, "tabular": ["setosa", "versicolor", "virginica"]}.get(images, DIGITS)
    payload: dict[str, Any] = {"class_names": names, "samples": _samples(rng, 16, len(names)),
                               "confusion": _confusion(rng, len(names))}
    if images == "digits":
        payload["images"] = np.round(rng.integers(0, 17, (16, 1, 8, 8)).astype(float), 3).tolist()
    elif images == "cifar":
        payload["images"] = np.round(rng.random((16, 3, 32, 32)), 3).tolist()
    return payload


def boundary_payload(seed: int = 0, size: int = 60) -> dict[str, Any]:
    """Like ClassificationTask._decision_grid on two moons: 400 training and 200 validation points."""
    rng = np.random.default_rng(seed)
    xs, ys = np.linspace(-1.5, 2.5, size), np.linspace(-1.0, 1.5, size)
    gx, gy = np.meshgrid(xs, ys)
    score = gy - 0.5 * np.sin(2 * gx) - 0.2 + 0.1 * seed
    points = np.stack([rng.uniform(-1.2, 2.2, 600), rng.uniform(-0.7, 1.2, 600)], axis=1)
    labels = (points[:, 1] - 0.5 * np.sin(2 * points[:, 0]) - 0.2 < 0).astype(int)
    return {"x_range": [float(xs[0]), float(xs[-1])], "y_range": [float(ys[0]), float(ys[-1])], "size": size,
            "predicted": (score < 0).astype(int).tolist(),
            "confidence": np.round(0.5 + 0.5 * np.tanh(3 * np.abs(score)), 3).tolist(),
            "points": np.round(points, 3).tolist(), "labels": labels.tolist(),
            "validation": [False] * 400 + [True] * 200, "class_names": ["upper moon", "lower moon"],
            "confusion": [[95, 5], [8, 92]]}


def regression_payload(seed: int = 0, count: int = 300) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    target = rng.uniform(25, 346, count)
    return {"target": np.round(target, 4).tolist(),
            "predicted": np.round(target + rng.normal(0, 40, count), 4).tolist(), "unit": "target"}


def forecast_payload(seed: int = 0, count: int = 200) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    position = rng.permutation(np.arange(800, 800 + count))
    target = np.sin(position / 12.0) * 10 + 20
    return {"position": position.tolist(), "target": np.round(target, 4).tolist(),
            "predicted": np.round(target + rng.normal(0, 1.5, count), 4).tolist()}


def reconstruction_payload(seed: int = 0, noisy: bool = False, image: bool = True) -> dict[str, Any]:
    """Like AutoencoderTask.snapshot on digits (8 samples, 600 latent points) or wine (13 features)."""
    rng = np.random.default_rng(seed)
    shape = (8, 1, 8, 8) if image else (8, 13)
    clean = rng.integers(0, 17, shape).astype(float)
    payload: dict[str, Any] = {"inputs": clean.tolist(),
                               "reconstructions": np.round(clean + rng.normal(0, 2, shape), 3).tolist(),
                               "is_image": image}
    if noisy:
        payload["noisy"] = np.round(clean + rng.normal(0, 4, shape), 3).tolist()
    if image:
        labels = rng.integers(0, 10, 600)
        centres = rng.normal(0, 3, (10, 2))
        payload["latent"] = np.round(centres[labels] + rng.normal(0, 0.7, (600, 2)), 3).tolist()
        payload["latent_labels"] = labels.tolist()
        payload["class_names"] = DIGITS
    return payload


def gan_points_payload(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    angles = rng.integers(0, 8, 500) * np.pi / 4
    real = np.stack([2 * np.cos(angles), 2 * np.sin(angles)], axis=1) + rng.normal(0, 0.05, (500, 2))
    return {"generated": np.round(rng.normal(0, 1.2, (500, 2)), 3).tolist(), "real": np.round(real, 3).tolist()}


def gan_images_payload(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {"samples": np.round(rng.uniform(-1, 1, (16, 1, 8, 8)), 3).tolist(), "is_image": True}


def text_payload(seed: int = 0) -> dict[str, Any]:
    return {"prompt": "To be, or not to be, that is the question:\n",
            "generated": f"Whether 'tis nobler{seed} in the mind to suffer\nThe slings and arrows " * 3,
            "temperature": 0.8}


PAYLOADS = {"classification": classification_payload, "decision_boundary": boundary_payload,
            "regression": regression_payload, "forecast": forecast_payload,
            "reconstruction": reconstruction_payload, "gan_points": gan_points_payload,
            "gan_images": gan_images_payload, "text": text_payload}


@pytest.fixture
def view(qtbot: QtBot) -> PredictionView:
    widget = PredictionView()
    qtbot.addWidget(widget)
    widget.resize(700, 380)
    widget.show()
    return widget


def test_every_view_kind_has_a_payload_here() -> None:
    assert set(PAYLOADS) == set(PAGES)


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_each_kind_shows_on_its_page_and_updates_in_place(view: PredictionView, kind: str) -> None:
    view.show_snapshot(kind, PAYLOADS[kind](0), 3)
    page = view.page(kind)
    assert view.current_view == kind and view.stack.currentWidget() is page
    assert view.header_text.startswith(f"After epoch 3 · {page.title}")
    view.grab()  # paints without error
    view.show_snapshot(kind, PAYLOADS[kind](1), 4)
    assert view.page(kind) is page and view.stack.count() == 2  # the message page and this one
    assert view.header_text.startswith("After epoch 4")


def test_classification_marks_the_wrong_samples(view: PredictionView) -> None:
    payload = classification_payload()
    view.show_snapshot("classification", payload, 1)
    page = view.page("classification")
    wrong = sum(s["true"] != s["predicted"] for s in payload["samples"])
    assert 0 < wrong < 16
    assert page.samples.currentWidget() is page.grid and len(page.grid.tiles) == 16
    assert page.grid.wrong_count == wrong
    assert page.grid.tiles[0].image.size().toTuple() == (8, 8)
    assert page.confusion.image.image.shape[:2] == (10, 10)
    assert page.confusion.counts.tolist() == payload["confusion"]
    assert page.confusion.cells.texts == [str(c) for row in payload["confusion"] for c in row]
    assert page.confusion.cells.fits(30) and not page.confusion.cells.fits(5)


def test_classification_of_rgb_images_and_of_tabular_data(view: PredictionView) -> None:
    view.show_snapshot("classification", classification_payload(2, images="cifar"), 1)
    page = view.page("classification")
    assert page.grid.tiles[0].image.size().toTuple() == (32, 32)
    assert page.grid.tiles[0].image.allGray() is False
    payload = classification_payload(3, images="tabular")
    view.show_snapshot("classification", payload, 2)
    assert page.samples.currentWidget() is page.table and page.table.rowCount() == 16
    assert page.wrong_rows == [i for i, s in enumerate(payload["samples"]) if s["true"] != s["predicted"]]
    assert page.confusion.image.image.shape[:2] == (3, 3)


def test_decision_boundary_draws_the_grid_and_the_points(view: PredictionView) -> None:
    payload = boundary_payload(size=60)
    view.show_snapshot("decision_boundary", payload, 5)
    page = view.page("decision_boundary")
    assert page.image.image.shape == (60, 60, 3)
    rect = page.image.mapRectToParent(page.image.boundingRect())
    assert rect.left() < payload["x_range"][0] and rect.right() > payload["x_range"][1]
    assert len(page.points.data) == 600
    pens = {page.points.data["pen"][i].widthF() for i in (0, 599)}
    assert len(pens) == 2  # validation points have their own outline
    assert page.confusion.counts.shape == (2, 2)
    view.show_snapshot("decision_boundary", boundary_payload(1, size=40), 6)
    assert page.image.image.shape == (40, 40, 3)


def test_plots_hold_the_points(view: PredictionView) -> None:
    view.show_snapshot("regression", regression_payload(count=300), 1)
    assert len(view.page("regression").points.data) == 300
    payload = forecast_payload(count=200)
    view.show_snapshot("forecast", payload, 1)
    x, y = view.page("forecast").target.getData()
    assert len(x) == 200 and np.all(np.diff(x) > 0)
    assert y[0] == payload["target"][int(np.argmin(payload["position"]))]
    view.show_snapshot("gan_points", gan_points_payload(), 1)
    page = view.page("gan_points")
    assert len(page.real.data) == 500 and len(page.generated.data) == 500


def test_reconstruction_shows_pairs_triples_and_the_latent_space(view: PredictionView) -> None:
    view.show_snapshot("reconstruction", reconstruction_payload(), 1)
    page = view.page("reconstruction")
    assert len(page.grid.tiles) == 16 and page.grid.group == 2 and page.grid.headers == ("input", "output")
    assert len(page.latent.data) == 600 and not page.latent_box.isHidden()
    view.show_snapshot("reconstruction", reconstruction_payload(1, noisy=True), 2)
    assert len(page.grid.tiles) == 24 and page.grid.headers == ("noisy", "output", "clean")
    view.show_snapshot("reconstruction", reconstruction_payload(2, image=False), 3)
    assert len(page.grid.tiles) == 8 and page.grid.tiles[0].image is None
    assert len(page.grid.tiles[0].series) == 2 and page.latent_box.isHidden()


def test_gan_images_and_text(view: PredictionView) -> None:
    view.show_snapshot("gan_images", gan_images_payload(), 1)
    assert len(view.page("gan_images").grid.tiles) == 16
    payload = text_payload()
    view.show_snapshot("text", payload, 7)
    page = view.page("text")
    assert page.text.toPlainText() == payload["prompt"] + payload["generated"]
    assert page.text.isReadOnly() and "temperature 0.8" in view.header_text


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_a_malformed_payload_shows_a_message(view: PredictionView, kind: str) -> None:
    payload = PAYLOADS[kind](0)
    key = next(iter(k for k in payload if k not in ("class_names", "unit", "temperature", "is_image")))
    del payload[key]
    view.show_snapshot(kind, payload, 2)
    assert view.current_view is None
    assert "Cannot show" in view.message_text and key in view.message_text
    view.show_snapshot(kind, PAYLOADS[kind](1), 3)  # recovers with the next good one
    assert view.current_view == kind


@pytest.mark.parametrize("payload", [None, [], {"samples": "nonsense", "confusion": [[1, 2]]},
                                     {"samples": [{"true": 0}], "confusion": [[1]]},
                                     {"samples": [], "confusion": [[1]], "images": [[[]]]}])
def test_garbage_never_raises(view: PredictionView, payload: Any) -> None:
    view.show_snapshot("classification", payload, 1)
    assert view.current_view is None and view.message_text


def test_unknown_kind_clear_theme_and_export(view: PredictionView, tmp_path: Path) -> None:
    view.show_snapshot("hologram", {}, 1)
    assert "hologram" in view.message_text
    view.show_snapshot("decision_boundary", boundary_payload(), 2)
    before = view.page("decision_boundary").image.image.copy()
    view.set_theme(DARK)
    assert view.current_view == "decision_boundary"
    assert not np.array_equal(before, view.page("decision_boundary").image.image)
    assert view.export_png(tmp_path / "predictions.png") and (tmp_path / "predictions.png").stat().st_size > 0
    view.clear()
    assert view.current_view is None and "appear here" in view.message_text
    assert view.page("decision_boundary").image.image is None


def test_a_diverged_model_still_draws(view: PredictionView) -> None:
    """NaN and infinite outputs are drawn as zeros rather than refused."""
    payload = regression_payload(count=5)
    payload["predicted"] = [float("nan"), float("inf"), 1.0, 2.0, 3.0]
    view.show_snapshot("regression", payload, 1)
    assert view.current_view == "regression"
    images = gan_images_payload()
    images["samples"][0][0][0][0] = float("nan")
    view.show_snapshot("gan_images", images, 1)
    assert view.current_view == "gan_images"
    view.grab()


@pytest.mark.parametrize("size", [(180, 160), (520, 150), (700, 600)])
def test_confusion_matrix_names_each_class_once_with_ticks_outside(qtbot: QtBot, size: tuple[int, int]) -> None:
    """Digit classes read "0: 0", "1: 1" … down the left, and the tick marks ran into the cells."""
    from gui.training.prediction_common import ConfusionMatrix

    matrix = ConfusionMatrix()
    qtbot.addWidget(matrix)
    matrix.resize(*size)
    matrix.show()
    qtbot.waitExposed(matrix)
    matrix.set_matrix(_confusion(np.random.default_rng(0), 10), DIGITS)
    qtbot.wait(20)
    item = matrix.getPlotItem()
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        assert [text for _, text in axis._tickLevels[0]] == DIGITS, side
        assert axis.style["tickLength"] > 0, side  # pointing out of the plot, toward the labels
    if size == (520, 150):  # wide and short: names that do not fit below are listed with their index
        matrix.set_matrix(_confusion(np.random.default_rng(0), 10), CIFAR)
        qtbot.wait(20)
        left = [text for _, text in item.getAxis("left")._tickLevels[0]]
        assert left[0] == "0: airplane" and left[9] == "9: truck"
