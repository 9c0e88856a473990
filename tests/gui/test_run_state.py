"""The run list and the progress line tell the run's state truthfully: state icons (not font
glyphs), whole run names, results with their metric's name, "paused" instead of an ETA, and a
note when the prediction snapshot is behind the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from engine.training.events import BatchMetrics, EpochEnd, RunStarted
from engine.training.history import RunHistory
from gui.icons import icon
from gui.main_window import MainWindow
from gui.training.predictions import PredictionView
from gui.training.run_list import RunList
from tests.gui.test_predictions import classification_payload


def _history(name: str, task: str, state: str, train: dict, val: dict) -> RunHistory:
    history = RunHistory(name=name, run_dir=f"/runs/{name}")
    history.add(RunStarted(0.0, f"/runs/{name}", "cpu", "cpu", task, 10, 5, 100, 40, 10, 0))
    history.add(EpochEnd(1.0, 1, 5, train, val, 0.01, 1.0, 40.0))
    history.state = state
    return history


def test_run_rows_show_state_icons_whole_names_and_named_results(qtbot) -> None:  # noqa: ANN001
    runs = RunList()
    qtbot.addWidget(runs)
    runs.resize(runs.minimumWidth(), 200)
    runs.show()
    qtbot.waitExposed(runs)
    paused = _history("cnn-20261206-204501", "classification", "paused", {"loss": 0.5},
                      {"loss": 0.4, "accuracy": 0.912})
    gan = _history("gan-20261206-204502-2", "gan", "finished", {"loss": 1.2, "g_loss": 0.8417, "d_loss": 1.3}, {})
    runs.add("a", paused, "#2F81F7")
    runs.add("b", gan, "#E8590C")
    row = runs.items["a"]
    assert row.text(0) == "12-06 20:45:01" and row.text(1) == "acc 91.2%"
    assert row.icon(1).pixmap(16, 16).toImage() == icon("pause").pixmap(16, 16).toImage()
    assert "⏸" not in row.text(1) and "Paused" in row.toolTip(1)
    assert runs.items["b"].text(1) == "G loss 0.8417" and runs.items["b"].text(0) == "12-06 20:45:02 (2)"
    metrics = runs.fontMetrics()
    for item in runs.items.values():
        assert runs.header().sectionSize(0) >= metrics.horizontalAdvance(item.text(0)) + 40  # not elided
        assert runs.header().sectionSize(1) >= metrics.horizontalAdvance(item.text(1)) + 16


def test_a_paused_run_says_paused_instead_of_an_eta(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    dashboard, session = window.training.dashboard, window.training.session
    history = RunHistory(name="x", run_dir=str(tmp_path / "x"))
    session.history = history
    started = RunStarted(0.0, str(tmp_path / "x"), "cpu", "cpu", "classification", 10, 100, 1, 1, 1, 0)
    dashboard._started = started
    for event in (started, BatchMetrics(1.0, 0, 50, 50, {"loss": 1.0}, 0.01, 100.0)):
        history.add(event)
    dashboard._steps_per_s = 50.0
    session._set_state("running")
    dashboard._update_progress(history)
    assert "ETA" in dashboard.progress.format()
    dashboard._add_history(history, current=True)
    history.state = "paused"  # as the worker's StateChanged event sets it
    session._set_state("paused")  # the state change alone updates the line and the run's row
    text = dashboard.progress.format()
    assert "paused" in text and "ETA" not in text and "steps/s" not in text
    assert dashboard.lr_editor.current_value() == 0.01  # the run's current rate, ready to be changed
    row = dashboard.runs.items[history.run_dir]
    assert row.icon(1).pixmap(16, 16).toImage() == icon("pause").pixmap(16, 16).toImage()
    session._set_state("idle")


@pytest.mark.parametrize("done, note", [(9, "(2 epochs behind the run)"), (8, "(1 epoch behind the run)"), (7, "")])
def test_the_prediction_header_says_when_the_snapshot_is_behind(qtbot, done: int, note: str) -> None:  # noqa: ANN001
    view = PredictionView()
    qtbot.addWidget(view)
    view.set_run_epoch(done)
    view.show_snapshot("classification", classification_payload(), 7)
    assert view.header_text.startswith("After epoch 7")
    assert (note in view.header_text) if note else "behind" not in view.header_text
    view.set_run_epoch(7)
    assert "behind" not in view.header_text


def test_the_progress_line_names_a_training_metric_as_such(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    dashboard = window.training.dashboard
    gan = _history("gan-20261206-204502", "gan", "running", {"loss": 1.2, "g_loss": 0.8417, "d_loss": 1.3}, {})
    dashboard._started = RunStarted(0.0, "/runs/gan", "cpu", "cpu", "gan", 10, 5, 100, 40, 10, 0)
    dashboard._update_progress(gan)
    assert "G loss 0.8417" in dashboard.progress.format() and "val g_loss" not in dashboard.progress.format()
    classifier = _history("c-20261206-204502", "classification", "running", {"loss": 0.5},
                          {"loss": 0.4, "accuracy": 0.912})
    dashboard._update_progress(classifier)
    assert "val accuracy 91.2%" in dashboard.progress.format()
