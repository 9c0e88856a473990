"""The "Look Inside" panel: weight histograms, activations and hints for a trained run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from gui.training.inside_panel import (
    HINT_NO_RUN,
    HINT_NO_WEIGHTS,
    HINT_SELECT,
    HINT_WEIGHTLESS,
    InsidePanel,
    image_pixmap,
)
from tests.training.helpers import train_chain_run

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_chain_run([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 6, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("relu1", "relu", {}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, tmp_path_factory.mktemp("inside") / "cnn")


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[InsidePanel]:
    widget = InsidePanel()
    qtbot.addWidget(widget)
    widget.resize(360, 700)
    widget.show()
    yield widget
    assert widget.wait_idle()


def _open(qtbot: QtBot, panel: InsidePanel, run: Path) -> None:
    panel.set_run(run)
    qtbot.waitUntil(lambda: panel.state != "loading", timeout=WAIT_MS)
    assert panel.state == "ready", panel.hint.text()


def _show(qtbot: QtBot, panel: InsidePanel, node_id: str) -> None:
    panel.show_node(node_id)
    qtbot.waitUntil(lambda: panel.report is not None and panel.report.node_id == node_id, timeout=WAIT_MS)


def test_weight_histograms_show_every_weight(qtbot: QtBot, panel: InsidePanel, cnn_run: Path) -> None:
    _open(qtbot, panel, cnn_run)
    assert panel.hint.text() == HINT_SELECT
    _show(qtbot, panel, "conv1")
    assert panel.weight_plot.isVisible() and not panel.weightless.isVisible()
    assert [panel.weight_combo.itemText(i) for i in range(panel.weight_combo.count())] == [
        "weight  (6×1×3×3)", "bias  (6)"]
    _, counts = panel.weight_curve.getData()
    assert counts.sum() == 54
    panel.weight_combo.setCurrentIndex(1)
    assert panel.weight_curve.getData()[1].sum() == 6
    assert "mean" in panel.weight_text.text()
    assert sum(label.isVisible() for label in panel.feature_labels) == 6  # conv output: feature maps
    qtbot.waitUntil(lambda: panel.attribution_box.result is not None, timeout=WAIT_MS)
    assert panel.attribution_box.isVisible() and panel.attribution_box.heat_image.pixmap().width() > 0
    assert "Predicted" in panel.sample_text.text() and "True label" in panel.sample_text.text()
    _show(qtbot, panel, "fc")
    assert panel.weight_curve.getData()[1].sum() == 10 * 384
    assert panel.activation_bars.isVisible()  # ten logits: one bar each
    assert not any(label.isVisible() for label in panel.feature_labels)


def test_weightless_node_shows_the_hint_and_its_activations(qtbot: QtBot, panel: InsidePanel,
                                                             cnn_run: Path) -> None:
    _open(qtbot, panel, cnn_run)
    _show(qtbot, panel, "relu1")
    assert panel.weightless.isVisible() and panel.weightless.text() == HINT_WEIGHTLESS
    assert not panel.weight_plot.isVisible()
    assert panel.activation_box.isVisible() and "zeros" in panel.activation_text.text()
    assert panel.activation_curve.getData()[1].sum() == 6 * 8 * 8
    assert not panel.attention_box.isVisible()


def test_the_sample_chooser_recomputes_and_drops_stale_results(qtbot: QtBot, panel: InsidePanel,
                                                               cnn_run: Path) -> None:
    _open(qtbot, panel, cnn_run)
    assert panel.sample_spin.maximum() == panel.insight.sample_count() - 1
    panel.show_node("conv1")
    panel.show_node("fc")  # before conv1's answer arrives
    panel.sample_spin.setValue(3)
    qtbot.waitUntil(lambda: panel.report is not None and panel.report.sample_index == 3, timeout=WAIT_MS)
    assert panel.wait_idle()
    qtbot.wait(50)
    assert (panel.report.node_id, panel.report.sample_index) == ("fc", 3)
    panel.show_node(None)
    assert panel.hint.text() == HINT_SELECT and not panel.weights_box.isVisible()


def test_hints_without_a_run_or_weights(qtbot: QtBot, panel: InsidePanel, cnn_run: Path, tmp_path: Path) -> None:
    assert panel.hint.text() == HINT_NO_RUN and not panel.sample_spin.isEnabled()
    panel.show_node("conv1")
    assert panel.hint.text() == HINT_NO_RUN
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("run.json", "project.json"):
        shutil.copy(cnn_run / name, fresh / name)
    panel.set_run(fresh)
    assert panel.hint.text() == "Loading…"
    qtbot.waitUntil(lambda: panel.state != "loading", timeout=WAIT_MS)
    assert panel.state == "no_weights" and panel.hint.text() == HINT_NO_WEIGHTS
    shutil.copy(cnn_run / "checkpoint.pt", fresh / "checkpoint.pt")  # the first epoch ends
    panel.refresh()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=WAIT_MS)
    assert panel.report.node_id == "conv1" and "checkpoint.pt (epoch 1)" in panel.title.text()
    panel.set_run(None)
    assert panel.hint.text() == HINT_NO_RUN and not panel.weights_box.isVisible()


def test_a_node_the_run_does_not_have(qtbot: QtBot, panel: InsidePanel, cnn_run: Path) -> None:
    _open(qtbot, panel, cnn_run)
    panel.show_node("conv9")
    qtbot.waitUntil(lambda: "conv9" in panel.hint.text(), timeout=WAIT_MS)
    assert "not in the trained project" in panel.hint.text() and not panel.weights_box.isVisible()


def test_attention_maps_with_a_head_selector(qtbot: QtBot, panel: InsidePanel, tmp_path: Path) -> None:
    run = train_chain_run([
        ("rows", "input", {"shape": [8, 8]}),
        ("proj", "linear", {"out_features": 8}),
        ("attn", "self_attention", {"num_heads": 2}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits", "layout": "rows"}, tmp_path / "run")
    _open(qtbot, panel, run)
    _show(qtbot, panel, "attn")
    assert panel.attention_box.isVisible()
    assert [panel.head_combo.itemText(i) for i in range(3)] == ["Mean over heads", "Head 1", "Head 2"]
    panel.head_combo.setCurrentIndex(2)
    pixmap = panel.attention_image.pixmap()
    assert pixmap.width() == pixmap.height() > 0


def test_image_pixmaps_keep_square_pixels() -> None:
    pixmap = image_pixmap(np.arange(8 * 5, dtype=np.float32).reshape(8, 5), 72)
    assert (pixmap.width(), pixmap.height()) == (45, 72)  # 9 x 9 pixels per value
    big = image_pixmap(np.zeros((200, 100)), 50)
    assert (big.width(), big.height()) == (25, 50)


def test_a_hidden_panel_defers_its_work_until_shown(qtbot: QtBot, cnn_run: Path) -> None:
    panel = InsidePanel()
    qtbot.addWidget(panel)
    panel.set_run(cnn_run)
    panel.show_node("conv1")
    assert panel.insight is None and not panel.busy()  # nothing loaded while hidden
    panel.show()
    qtbot.waitUntil(lambda: panel.report is not None and panel.report.node_id == "conv1", timeout=30_000)
    panel.wait_idle()
