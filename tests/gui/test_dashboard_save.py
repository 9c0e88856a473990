"""The dashboard's Save menu: the dialogs start in the project's folder, Plots as PNG saves the tab
on show, a save that fails says why in one line, a save that works says where in the status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.templates import TEMPLATES_DIR
from gui.main_window import MainWindow
from tests.gui.test_plot_layout import _history


def test_the_save_menu_saves_the_shown_plots_and_the_metrics(qtbot, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    project = tmp_path / "project" / "cnn.json"
    project.parent.mkdir()
    project.write_text((TEMPLATES_DIR / "cnn_digits.json").read_text())
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.open_project(project)
    dashboard = window.training.dashboard
    dashboard.plots.add_run(_history("classification"))
    asked: list[str] = []
    answer = [""]
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda parent, title, start, *a, **k: (asked.append(start) or answer[0], ""))
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a, **k: warnings.append(text))

    answer[0] = str(tmp_path / "curves.png")
    dashboard.export_png_dialog()
    assert Path(asked[-1]).parent == project.parent and asked[-1].endswith("cnn-curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert "Saved the plots to" in window.statusBar().currentMessage()

    dashboard.tabs.setCurrentWidget(dashboard.gradients)
    answer[0] = str(tmp_path / "gradients.png")
    dashboard.export_png_dialog()
    assert asked[-1].endswith("cnn-gradients.png") and (tmp_path / "gradients.png").is_file()

    answer[0] = str(tmp_path / "no such folder" / "metrics.csv")
    dashboard.export_csv_dialog()
    assert Path(asked[-1]).parent == project.parent
    assert len(warnings) == 1 and "no such folder" in warnings[0] and "\n" not in warnings[0]
    answer[0] = str(tmp_path / "metrics.csv")
    dashboard.export_csv_dialog()
    assert (tmp_path / "metrics.csv").read_text().count("\n") >= 6
