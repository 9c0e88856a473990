"""The main window opens projects, shows shapes and problems, and survives bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from engine.templates import default_template
from gui.main_window import MainWindow
from tests.conftest import ROOT


@pytest.fixture
def window(qtbot) -> MainWindow:  # noqa: ANN001
    w = MainWindow()
    qtbot.addWidget(w)
    return w


def test_default_template_shows_shapes_and_totals(window: MainWindow) -> None:
    assert window.open_project(default_template(), untitled=True)
    assert window.table.rowCount() == len(window.project.graph)
    shapes = [window.table.item(r, 2).text() for r in range(window.table.rowCount())]
    assert "(N, 1, 8, 8)" in shapes and "(N, 10)" in shapes
    assert "valid" in window.totals.text() and "parameters" in window.totals.text()


def test_bad_file_shows_the_loader_message_and_keeps_the_app(window: MainWindow, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    assert window.open_project(ROOT / "tests" / "data" / "lenet5.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    assert not window.open_project(bad)
    assert shown and "bad.json: line 1" in shown[0]
    assert window.project is not None and window.table.rowCount() == 14


def test_screenshot_renders_a_png(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--screenshot", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
