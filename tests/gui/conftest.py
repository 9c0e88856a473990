"""GUI tests run offscreen (set before Qt starts, in tests/conftest.py).

Modal dialogs would block an offscreen test run forever, so every GUI test starts with
message boxes answered automatically ("discard" for unsaved-changes prompts). A test that
checks a dialog patches it again itself. Recovery files go to a temporary folder.
Garbage is collected on the GUI thread during each GUI test, as in the app.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox


@pytest.fixture(autouse=True)
def _no_blocking_dialogs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    answer = QMessageBox.StandardButton
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: answer.Discard)
    monkeypatch.setattr(QMessageBox, "warning", lambda *args, **kwargs: answer.Ok)
    monkeypatch.setattr(QMessageBox, "critical", lambda *args, **kwargs: answer.Ok)
    monkeypatch.setattr(QMessageBox, "information", lambda *args, **kwargs: answer.Ok)
    monkeypatch.setenv("NEURAL_CANVAS_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("NEURAL_CANVAS_BLOCKS_DIR", str(tmp_path / "blocks"))


@pytest.fixture(autouse=True)
def _garbage_collected_on_gui_thread(qapp):  # noqa: ANN001, ANN202
    from gui.background import collect_garbage_anywhere, collect_garbage_on_gui_thread

    collect_garbage_on_gui_thread()
    yield
    collect_garbage_anywhere()


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A main window with the default template open as an untitled document (runs go to the test's folder).

    Test modules that need another set-up define their own ``window``.
    """
    from PySide6.QtCore import QSettings

    from engine.templates import default_template
    from gui.main_window import MainWindow

    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.open_project(default_template(), untitled=True)
    return w
