"""Tile headers read whole: above each tile when they fit, else once as one line ("input | output")."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage, QPainter

from gui.training.prediction_tiles import Tile, TileGrid


def _drawn(qtbot, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> list[str]:  # noqa: ANN001
    grid = TileGrid()
    qtbot.addWidget(grid)
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    image.fill(0)
    grid.set_tiles([Tile(image=image) for _ in range(16)], group=2, headers=("input", "output"))
    grid.resize(*size)
    texts: list[str] = []
    original = QPainter.drawText
    monkeypatch.setattr(QPainter, "drawText", lambda self, *args: (texts.append(str(args[-1])),
                                                                   original(self, *args)))
    grid.grab()
    return texts


def test_small_tiles_name_their_order_once_instead_of_cut_words(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    texts = _drawn(qtbot, (110, 220), monkeypatch)
    assert "input | output" in texts and not any(t.endswith("…") for t in texts)


def test_large_tiles_carry_a_header_each(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    texts = _drawn(qtbot, (700, 500), monkeypatch)
    assert texts.count("input") >= 1 and texts.count("output") >= 1 and "input | output" not in texts


def test_one_line_captions_fit_the_tiles_as_drawn(qtbot) -> None:  # noqa: ANN001
    """Tiles shrink to whole screen pixels per image pixel: captions are judged on that width (they ran
    together as "0 (0)4 (4)5 (5)" when judged on the width before)."""
    from PySide6.QtGui import QFontMetricsF

    from gui.training.prediction_tiles import GAP

    grid = TileGrid()
    qtbot.addWidget(grid)
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    image.fill(0)
    grid.set_tiles([Tile(image=image, caption=(str(i % 10), str((i + 3) % 10))) for i in range(16)])
    metrics = QFontMetricsF(grid._font)
    widest = max(metrics.horizontalAdvance(f"{t.caption[0]} ({t.caption[1]})") for t in grid.tiles)
    for width in range(100, 720, 13):
        for height in range(100, 500, 20):
            grid.resize(width, height)
            layout = grid._layout(metrics)
            if layout.caption_lines == 1:
                assert widest <= layout.tile_w + GAP - 2, (width, height)
