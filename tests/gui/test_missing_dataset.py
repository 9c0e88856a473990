"""A project without a dataset says so everywhere, with the fix, instead of "ready to train"."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel, QMessageBox

from engine.templates import default_template
from gui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path: Path) -> MainWindow:  # noqa: ANN001
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.open_project(default_template(), untitled=True)
    doc = w.document
    doc.push(doc.settings_command("dataset", {key: None for key in doc.project.dataset}, "No dataset"))
    return w


def test_problems_status_bar_and_train_action_name_the_missing_dataset(qtbot, window: MainWindow) -> None:
    window.show()
    qtbot.waitExposed(window)
    problems = window.problems
    assert [p.message for p in problems.project_problems()] == ["No dataset chosen"]
    assert problems.list.count() == 1 and problems._pages.currentWidget() is problems.list  # not "ready to train"
    assert problems.list.item(0).text().startswith("No dataset chosen: choose one in the Data panel")
    assert problems.header.text() == "1 error"
    assert "· valid" not in window.totals.text() and window.totals.text().endswith("cannot train yet")
    assert window.actions["train"].toolTip().startswith("Cannot train yet — No dataset chosen")
    assert window.training.data_panel.visibleRegion().isEmpty()  # behind the Inspector tab
    problems.list.itemClicked.emit(problems.list.item(0))
    assert not window.training.data_panel.visibleRegion().isEmpty()


def test_f5_explains_the_missing_dataset_and_opens_the_data_panel(window: MainWindow,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append((title, text)))
    raised: list[str] = []
    monkeypatch.setattr(window.docks["data"], "raise_", lambda: raised.append("data"))
    window.actions["train"].trigger()
    assert not window.training.session.active
    assert shown and shown[0][0] == "Cannot train yet" and shown[0][1].startswith("No dataset chosen.")
    assert "dataset.name" not in shown[0][1] and raised == ["data"]


def test_the_data_panel_says_it_once(window: MainWindow) -> None:
    panel = window.training.data_panel
    assert panel.wait_loaded()
    texts = [label.text() for label in panel.findChildren(QLabel) if label.text()]
    mentions = [t for t in texts if "dataset" in t.lower()]
    assert len(mentions) == 1 and mentions[0].startswith("No dataset yet: choose a built-in one")
    assert panel.source.currentIndex() == -1 and panel.source.placeholderText() == "Choose a dataset…"
    window.document.undo()  # the dataset is back: its summary, no message
    assert panel.wait_loaded()
    assert "1,797" in panel.summary.text() and window.problems.project_problems() == []
    assert window.totals.text().endswith("· valid")


def test_the_status_bar_counts_the_missing_dataset_with_the_graph_errors(window: MainWindow) -> None:
    doc = window.document
    doc.graph.remove_edge(doc.graph.edges[-1])  # the Output loses its input: a graph error
    doc.refresh_analysis()
    count = int(window.problems.header.text().split()[0])  # "2 errors, 1 warning"
    assert count >= 2 and window.totals.text().endswith(f"· {count} error(s)")
