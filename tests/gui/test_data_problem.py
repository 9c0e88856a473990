"""Data that does not fit the Input node (or cannot be loaded) is a problem of the project: the
Problems panel lists it with the Data panel as its fix, the status bar does not say "valid", and
the Train action names it; fixing the data takes it away."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine.templates import TEMPLATES_DIR
from gui.main_window import MainWindow


def test_data_that_does_not_fit_is_listed_as_a_problem(qtbot, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.open_project(TEMPLATES_DIR / "fnn_spirals.json", untitled=True)
    panel = window.training.data_panel
    assert panel.wait_loaded()
    qtbot.waitUntil(lambda: not panel.loading)
    assert not window.problems.project_problems() and window.totals.text().endswith("· valid")
    panel.source.activated.emit(panel.source.findData("digits"))  # what choosing it in the list does
    assert panel.wait_loaded()
    qtbot.waitUntil(lambda: bool(panel.fit_message))
    problems = window.problems.project_problems()
    assert len(problems) == 1 and problems[0].panel == "data"
    assert problems[0].text.startswith("The data does not fit the graph: ") and panel.fit_message in problems[0].text
    assert not window.totals.text().endswith("· valid") and "cannot train yet" in window.totals.text()
    assert "The data does not fit the graph" in window.actions["train"].toolTip()
    panel.document.undo()  # back to the spirals: the problem goes
    assert panel.wait_loaded()
    qtbot.waitUntil(lambda: not window.problems.project_problems())
    assert window.totals.text().endswith("· valid")
