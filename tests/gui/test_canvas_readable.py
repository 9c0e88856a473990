"""Every template opens at a zoom where each layer title reads in full and the ports show, and a
GAN's two networks are framed and named."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QRectF, QSettings
from PySide6.QtGui import QImage, QPainter

from engine.templates import TEMPLATES_DIR
from gui.canvas.navigation import OPEN_MIN_ZOOM
from gui.canvas.node_item import NodeItem
from gui.canvas.node_paint import compact_title
from gui.canvas.paint_kit import LOD_COMPACT, LOD_TEXT
from gui.main_window import MainWindow

TEMPLATES = sorted(path.stem for path in TEMPLATES_DIR.glob("*.json"))


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # noqa: ANN001
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1280, 800)  # the default window size the titles must read at
    w.show()
    qtbot.waitExposed(w)
    return w


def _shown_title(item: NodeItem, zoom: float) -> str:
    if zoom >= LOD_TEXT:
        return " ".join(item._title)
    _, lines = compact_title(item.kit, item.node.layer.title, item.layout.rect.adjusted(5, 4, -5, -4), zoom)
    return " ".join(lines)


@pytest.mark.parametrize("name", TEMPLATES)
def test_titles_read_in_full_at_the_zoom_a_template_opens_at(qtbot, window: MainWindow, name: str) -> None:  # noqa: ANN001
    assert window.open_project(TEMPLATES_DIR / f"{name}.json", untitled=True)
    qtbot.wait(20)
    zoom = window.canvas.zoom_factor()
    assert zoom >= OPEN_MIN_ZOOM - 1e-6
    for item in window.canvas.scene().nodes.values():
        shown = _shown_title(item, zoom)
        title = item.node.layer.title
        assert "…" not in shown and shown.replace(" ", "") == title.replace(" ", ""), (item.node_id, shown)


def test_ports_are_drawn_on_zoomed_out_cards(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    assert window.open_project(TEMPLATES_DIR / "transformer_char_lm.json", untitled=True)
    window.canvas.set_zoom(0.5)
    assert LOD_COMPACT <= window.canvas.zoom_factor() < LOD_TEXT
    painted: list[tuple[str, float]] = []
    original = NodeItem._paint_ports
    monkeypatch.setattr(NodeItem, "_paint_ports", lambda self, painter, radius=5.0: (
        painted.append((self.node_id, radius)), original(self, painter, radius)))
    scene = window.canvas.scene()
    image = QImage(400, 200, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    source = scene.nodes_rect()
    scale = min(400 / source.width(), 200 / source.height())
    assert LOD_COMPACT <= scale < LOD_TEXT  # compact cards, which used to show no ports at all
    scene.render(painter, QRectF(0, 0, 400, 200), source)
    painter.end()
    assert {node_id for node_id, _ in painted} == set(scene.nodes)
    assert all(radius * scale >= 2.9 for _, radius in painted)  # at least a 3-pixel dot on screen


def test_the_two_networks_of_a_gan_are_framed_and_named(window: MainWindow) -> None:
    assert window.open_project(TEMPLATES_DIR / "dcgan_digits.json", untitled=True)
    scene = window.canvas.scene()
    assert set(scene.frames) == {"Generator", "Discriminator"}
    graph = window.document.graph
    generator = scene.frames["Generator"]
    assert "noise" in " ".join(generator.node_ids) or any(graph.nodes[n].type_id == "noise_input"
                                                        for n in generator.node_ids)
    for frame in scene.frames.values():
        area = frame.sceneBoundingRect()
        for node_id in frame.node_ids:
            assert area.contains(scene.nodes[node_id].sceneBoundingRect())
    other = scene.frames["Discriminator"].sceneBoundingRect()
    assert not generator.sceneBoundingRect().intersects(other)
    assert any(graph.nodes[n].type_id == "input" for n in scene.frames["Discriminator"].node_ids)
    assert window.open_project(TEMPLATES_DIR / "cnn_digits.json", untitled=True)
    assert window.canvas.scene().frames == {}
