"""Attributions in Look Inside and Try It: choosing a method shows its result, name and explanation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from engine.training.attributions import METHODS, Attribution, ModelFacts
from gui.style import DARK
from gui.training.attribution_view import MAX_BARS, AttributionView
from gui.training.inside_panel import InsidePanel
from gui.training.try_panel import TryPanel
from tests.training.helpers import train_chain_run

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_chain_run([
        ("image", "input", {"shape": [1, 8, 8]}),
        ("conv1", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("relu1", "relu", {}),
        ("conv2", "conv2d", {"out_channels": 4, "kernel_size": [3, 3], "padding": [1, 1]}),
        ("flat", "flatten", {}),
        ("fc", "linear", {"out_features": 10}),
        ("logits", "output", {}),
    ], {"name": "digits"}, tmp_path_factory.mktemp("attr") / "cnn")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_chain_run([
        ("x", "input", {"shape": [30]}),
        ("fc1", "linear", {"out_features": 8}),
        ("act", "relu", {}),
        ("fc2", "linear", {"out_features": 2}),
        ("logits", "output", {}),
    ], {"name": "breast_cancer"}, tmp_path_factory.mktemp("attr") / "table")


@pytest.fixture
def inside(qtbot: QtBot) -> Iterator[InsidePanel]:
    panel = InsidePanel()
    qtbot.addWidget(panel)
    panel.resize(360, 900)
    panel.show()
    yield panel
    assert panel.wait_idle()


def _choose(qtbot: QtBot, view: AttributionView, key: str, wait=None) -> None:  # noqa: ANN001
    view.method_combo.setCurrentIndex(view.method_combo.findData(key))
    if wait is not None:
        assert wait()
    qtbot.waitUntil(lambda: view.result is not None and view.result.method == key
                    and not view.busy.isVisibleTo(view), timeout=WAIT_MS)


def _offered(view: AttributionView) -> list[str]:
    model = view.method_combo.model()
    return [view.method_combo.itemData(i) for i in range(view.method_combo.count()) if model.item(i).isEnabled()]


def test_look_inside_shows_each_method_with_its_name_and_explanation(qtbot: QtBot, inside: InsidePanel,
                                                                     cnn_run: Path) -> None:
    inside.set_run(cnn_run)
    qtbot.waitUntil(lambda: inside.state == "ready", timeout=WAIT_MS)
    inside.show_node("conv1")
    view = inside.attribution_box
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT_MS)
    assert _offered(view) == list(METHODS) and view.not_offered.text() == ""
    for key, info in METHODS.items():
        _choose(qtbot, view, key)
        assert info.title in view.title.text() and "explaining class" in view.title.text()
        assert view.explanation.text() == info.explanation
        assert view.heat_image.pixmap().width() > 0 and view.input_image.isVisibleTo(view)
        assert view.layer_combo.isVisibleTo(view) == (key == "grad_cam")
        assert ("red" in view.legend.text()) == info.signed
    assert [view.layer_combo.itemText(i) for i in range(view.layer_combo.count())] == ["conv1", "conv2"]
    assert view.layer_combo.currentText() == "conv2"  # the last convolution by default
    _choose(qtbot, view, "grad_cam")
    assert view.result.layer == "conv2"
    view.layer_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: view.result.layer == "conv1", timeout=WAIT_MS)
    assert "on conv1" in view.title.text()
    inside.sample_spin.setValue(5)  # another sample: computed again for it
    qtbot.waitUntil(lambda: inside._attribution_key is not None and inside._attribution_key[0] == 5,
                    timeout=WAIT_MS)
    assert inside.wait_idle()


def test_a_table_model_offers_two_methods_and_draws_bars(qtbot: QtBot, inside: InsidePanel, table_run: Path) -> None:
    inside.set_run(table_run)
    qtbot.waitUntil(lambda: inside.state == "ready", timeout=WAIT_MS)
    inside.show_node("fc1")
    view = inside.attribution_box
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT_MS)
    assert _offered(view) == ["integrated_gradients", "saliency"]
    grad_cam = view.method_combo.model().item(view.method_combo.findData("grad_cam"))
    assert "convolution" in grad_cam.toolTip()
    assert "Not offered" in view.not_offered.text() and "Grad-CAM" in view.not_offered.text()
    _choose(qtbot, view, "saliency")
    assert view.plot.isVisibleTo(view) and not view.pair.isVisibleTo(view)
    widths = view.bars.opts["width"]
    assert len(widths) == MAX_BARS and (np.asarray(widths) >= 0).all()
    assert f"{MAX_BARS} largest of 30" in view.legend.text()
    assert view.explanation.text() == METHODS["saliency"].explanation
    names = [name for _, name in view.plot.getPlotItem().getAxis("left")._tickLevels[0]]
    assert "worst radius" in names or any("mean" in n or "worst" in n for n in names)


def _digit_files(folder: Path, count: int = 2) -> list[str]:
    from sklearn.datasets import load_digits

    paths = []
    for i, image in enumerate(load_digits().images[:count]):
        path = folder / f"digit{i}.png"
        Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(path)
        paths.append(str(path))
    return paths


def test_try_it_explains_the_chosen_prediction(qtbot: QtBot, cnn_run: Path, tmp_path: Path) -> None:
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 800)
    panel.show()
    panel.set_run(cnn_run, None)
    assert panel.wait() and panel.predictor is not None
    panel.predict(_digit_files(tmp_path))
    assert panel.wait() and len(panel.rows) == 2
    assert panel.wait() and panel.attribution.result is not None and panel.attribution.isVisibleTo(panel)
    assert panel.attribution.result.method == "integrated_gradients"
    _choose(qtbot, panel.attribution, "occlusion", panel.wait)
    assert panel.attribution.explanation.text() == METHODS["occlusion"].explanation
    assert panel.saliency.pixmap().width() > 0 and panel.picture.pixmap().width() > 0
    panel.results.setCurrentRow(1)  # another row: explained with the same method
    assert panel.wait() and panel.attribution.result.method == "occlusion"
    panel.set_theme(DARK)
    assert panel.attribution.result is not None and panel.attribution.title.text()


def test_try_it_colours_the_tokens_of_a_language_models_prompt(qtbot: QtBot, tmp_path: Path) -> None:
    from engine.data.builtin import PYTHON_DOCS_ALPHABET

    size = len(PYTHON_DOCS_ALPHABET)
    run = train_chain_run([
        ("tokens", "token_input", {"vocab_size": size, "seq_len": 16}),
        ("embed", "embedding", {"num_embeddings": size, "embedding_dim": 8}),
        ("head", "linear", {"out_features": size}),
        ("next", "output", {}),
    ], {"name": "text", "corpus": "python_docs", "max_chars": 4000, "seq_len": 16, "stride": 16}, tmp_path / "lm")
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(run, None)
    assert panel.wait() and panel.predictor is not None
    view = panel.attribution
    assert _offered(view) == ["integrated_gradients"]
    assert "token ids" in view.method_combo.model().item(view.method_combo.findData("saliency")).toolTip()
    panel.predict(["def main"])
    assert panel.wait() and panel.wait() and view.result is not None
    assert view.tokens.isVisibleTo(view) and view.tokens.text().count("<span") == len("def main")
    assert view.explanation.text().startswith("How much each token") and "next token" in view.title.text()


def test_the_view_draws_sequences_and_says_why_nothing_applies(qtbot: QtBot) -> None:
    view = AttributionView()
    qtbot.addWidget(view)
    view.show()
    facts = ModelFacts("forecasting", "sequence", (12, 3), (4,))
    view.set_facts(facts)
    assert _offered(view) == ["integrated_gradients", "saliency"] and view.output_spin.isVisibleTo(view)
    assert view.output_spin.maximum() == 3
    values = np.linspace(-1, 1, 36, dtype=np.float32).reshape(12, 3)
    view.show_attribution(Attribution("integrated_gradients", None, values, None, 2, "output 2"))
    assert view.heat_image.pixmap().height() > 0 and not view.input_image.isVisibleTo(view)
    assert "output 2" in view.title.text()
    steps = np.linspace(-1, 1, 12, dtype=np.float32)[:, None]  # one value per step: a bar per step, in order
    view.set_facts(ModelFacts("forecasting", "sequence", (12, 1), (1,)))
    view.show_attribution(Attribution("saliency", None, np.abs(steps), None, 0, "output 0"))
    assert view.plot.isVisibleTo(view) and list(view.bars.opts["x"]) == list(range(12))
    assert np.allclose(view.bars.opts["height"], np.abs(steps).ravel()) and not view.output_spin.isVisibleTo(view)
    view.set_facts(ModelFacts("autoencoder", "image", (1, 8, 8), (1, 8, 8)))
    assert not view.offered() and not view.method_combo.isEnabled()
    assert "autoencoder" in view.not_offered.text()
