"""The Problems panel warns before training when the model would not fit in memory."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine.graph.fileformat import save_project
from gui import commands
from gui.main_window import MainWindow
from tests.training.helpers import chain_project


def test_a_model_too_large_for_memory_is_a_warning_that_selects_its_largest_layer(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    project = chain_project([("x", "input", {"shape": [100_000]}), ("fc", "linear", {"out_features": 1_000_000}),
                             ("out", "output", {})], {"name": "digits"}, {"optimizer": "adam"})
    path = tmp_path / "giant.json"
    save_project(project, path)
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.open_project(path)
    problems = window.problems
    (warning,) = [d for d in problems.diagnostics() if "training needs about" in d.message]
    assert warning.severity == "warning" and warning.node == "fc"
    assert "the model alone does not fit" in warning.message and problems.header.text() == "1 warning"
    selected: list[str] = []
    problems.node_activated.connect(selected.append)
    item = next(problems.list.item(i) for i in range(problems.list.count())
                if "training needs" in problems.list.item(i).text())
    problems.list.itemClicked.emit(item)
    assert selected == ["fc"]
    doc = window.document
    assert doc.push(commands.set_param(doc.graph, "fc", "out_features", 10))
    qtbot.waitUntil(lambda: not [d for d in problems.diagnostics() if "training needs about" in d.message])
    assert problems.header.text() == "No problems"
