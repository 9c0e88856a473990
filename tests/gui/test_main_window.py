"""The main window: files, clipboard, autosave recovery, arrange, export, screenshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.graph.fileformat import dumps, load_project
from engine.templates import default_template
from gui.autosave import pending_recoveries
from gui.main_window import MainWindow
from gui.window_files import recent_projects
from gui import commands
from tests.conftest import ROOT

LENET = ROOT / "tests" / "data" / "lenet5.json"


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:  # noqa: ANN001
    monkeypatch.setenv("NEURAL_CANVAS_RECOVERY_DIR", str(tmp_path / "recovery"))
    # pytest-qt closes windows before fixtures end: answer "discard" to the unsaved-changes prompt
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.open_project(default_template(), untitled=True)
    return w


def test_default_template_opens_untitled_with_totals(window: MainWindow) -> None:
    assert window.document is not None and window.document.path is None
    assert "valid" in window.totals.text() and "38,282 parameters" in window.totals.text()
    assert window.windowTitle().startswith("CNN on digits")


def test_bad_file_shows_the_loader_message_and_keeps_the_document(window: MainWindow, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    before = window.document
    assert not window.open_project(bad)
    assert shown and "bad.json: line 1" in shown[0]
    assert window.document is before


def test_save_and_reopen_keeps_everything(window: MainWindow, tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 48))
    assert window.isWindowModified()
    path = tmp_path / "mine.json"
    assert window._save_to(path)
    assert not window.isWindowModified() and window.windowTitle().startswith("mine.json")
    text = dumps(doc.project)
    assert window.open_project(path)
    assert dumps(window.document.project) == text == path.read_text()
    assert str(path.resolve()) in recent_projects(window)


def test_copy_paste_keeps_inner_edges_and_offsets(window: MainWindow) -> None:
    doc = window.document
    window.canvas.select_nodes(["conv1", "relu1"], center=False)
    assert window.edits.copy()
    count, edges = len(doc.graph), len(doc.graph.edges)
    window.edits.paste()
    assert len(doc.graph) == count + 2 and len(doc.graph.edges) == edges + 1
    new = [n for n in doc.graph if n.id not in ("conv1", "relu1")][-2:]
    assert new[0].position[0] == doc.graph.nodes["conv1"].position[0] + 40
    doc.undo_stack.undo()
    assert len(doc.graph) == count


def test_autosave_recovery_after_a_crash(window: MainWindow, tmp_path: Path, monkeypatch, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 50))
    assert window.autosaver.save_now()
    recovery = window.autosaver.path
    assert recovery.is_file()
    # a crashed process: its recovery file stays, with a pid that no longer runs
    data = json.loads(recovery.read_text())
    data["pid"] = 2 ** 22 + 12345
    recovery.write_text(json.dumps(data))
    (found,) = pending_recoveries(tmp_path / "recovery")
    assert found.load().graph.nodes["fc1"].params["out_features"] == 50
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    fresh = MainWindow(QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(fresh)
    fresh.offer_recovery()
    assert fresh.document.graph.nodes["fc1"].params["out_features"] == 50
    assert fresh.document.dirty
    # the restored edit stays protected: the file now names this process, so it is not offered twice
    assert recovery.is_file() and json.loads(recovery.read_text())["pid"] == os.getpid()
    assert pending_recoveries(tmp_path / "recovery") == []


def _crash(recovery: Path) -> None:
    """What a crash leaves: the recovery file, naming a process that no longer runs."""
    data = json.loads(recovery.read_text())
    data["pid"] = 2 ** 22 + 12345
    recovery.write_text(json.dumps(data))


def test_a_second_crash_after_recovery_loses_nothing(window: MainWindow, tmp_path: Path, monkeypatch,  # noqa: ANN001
                                                     qtbot) -> None:
    doc = window.document
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 50))
    assert window.autosaver.save_now()
    _crash(window.autosaver.path)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    second = MainWindow(QSettings(str(tmp_path / "second.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.offer_recovery()
    assert second.document.graph.nodes["fc1"].params["out_features"] == 50
    _crash(second.autosaver.path)  # it crashes again before the next autosave
    third = MainWindow(QSettings(str(tmp_path / "third.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(third)
    third.offer_recovery()
    assert third.document.graph.nodes["fc1"].params["out_features"] == 50
    third._save_to(tmp_path / "saved.json")
    assert pending_recoveries(tmp_path / "recovery") == [] and not third.autosaver.path.exists()


def test_saving_removes_the_recovery_file(window: MainWindow, tmp_path: Path) -> None:
    doc = window.document
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 51))
    assert window.autosaver.save_now()
    window._save_to(tmp_path / "saved.json")
    assert not window.autosaver.path.exists()


def test_auto_layout_is_one_undo_step(window: MainWindow) -> None:
    doc = window.document
    doc.push(commands.move_nodes(doc.graph, {"conv1": doc.graph.nodes["conv1"].position}, {"conv1": (999, 999)}))
    window.edits.auto_layout()
    assert doc.graph.nodes["conv1"].position != (999.0, 999.0)
    doc.undo_stack.undo()
    assert doc.graph.nodes["conv1"].position == (999.0, 999.0)


def test_export_png_and_svg(window: MainWindow, tmp_path: Path) -> None:
    from gui.window_files import render_png, render_svg

    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    assert render_png(window.canvas.scene(), png) and png.read_bytes()[:4] == b"\x89PNG"
    assert render_svg(window.canvas.scene(), svg) and "<svg" in svg.read_text()
    assert "conv1" in svg.read_text()


def test_screenshot_contract(tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NEURAL_CANVAS_RECOVERY_DIR": str(tmp_path / "r")}
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), str(LENET), "--screenshot", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    assert load_project(LENET)  # untouched


def test_the_window_opens_without_importing_torch() -> None:
    """torch takes seconds to import: the editor must not need it until training or export."""
    code = "import sys, gui.app, gui.main_window; print('torch' in sys.modules)"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_palette_drop_lets_go_of_the_palette_entry_and_shows_the_inspector(window: MainWindow, qtbot) -> None:  # noqa: ANN001
    """After a drop the palette entry stayed selected, and the Inspector stayed behind Look Inside."""
    from PySide6.QtCore import QMimeData, QPointF, Qt
    from PySide6.QtGui import QDropEvent

    from gui.style import LAYER_MIME

    window.show()
    qtbot.waitExposed(window)
    tree = window.palette_panel.tree
    tree.setCurrentItem(window.palette_panel.item_for("conv2d"))
    assert tree.selectedItems()
    window.docks["inside"].raise_()
    on_top = lambda key: not window.docks[key].visibleRegion().isEmpty()  # noqa: E731 - tabbed behind: empty
    qtbot.waitUntil(lambda: on_top("inside") and not on_top("inspector"))
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"conv2d")
    event = QDropEvent(QPointF(window.canvas.viewport().rect().center()), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.canvas.dropEvent(event)
    new = window.canvas.selected_node_ids()
    assert len(new) == 1 and window.document.graph.nodes[new[0]].type_id == "conv2d"
    assert not tree.selectedItems()
    qtbot.waitUntil(lambda: on_top("inspector") and not on_top("inside"))


def test_the_unsaved_changes_and_recovery_prompts_name_the_document_alike(window: MainWindow, tmp_path: Path,  # noqa: ANN001
                                                                        monkeypatch, qtbot) -> None:
    """One rule names the document in every prompt (and the title bar): its file's name, else its project's
    name. The crash-recovery prompt said "an untitled project" where the other prompt said the project's name."""
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a, **k: asked.append(text)
                        or QMessageBox.StandardButton.Cancel)
    window.document.project.meta["name"] = "CNN on digits"
    doc = window.document
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 50))
    window.new_document()  # Cancel: the document stays
    assert "CNN on digits" in asked[-1] and window.windowTitle().startswith("CNN on digits")
    assert window.autosaver.save_now()
    _crash(window.autosaver.path)
    fresh = MainWindow(QSettings(str(tmp_path / "fresh.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(fresh)
    fresh.offer_recovery()  # not recovered (the answer is not Yes): the file is discarded
    assert "CNN on digits" in asked[-1] and "untitled" not in asked[-1]
    assert window._save_to(tmp_path / "digits.json")
    doc.push(commands.set_param(doc.graph, "fc1", "out_features", 51))
    window.new_document()
    assert "digits.json" in asked[-1] and "CNN on digits" not in asked[-1]
    assert window.autosaver.save_now()
    _crash(window.autosaver.path)
    fresh.offer_recovery()
    assert "digits.json" in asked[-1] and "CNN on digits" not in asked[-1]


def test_terminating_keeps_the_edits_of_every_window_the_app_opened(window: MainWindow, tmp_path: Path,
                                                                     qtbot) -> None:  # noqa: ANN001
    """SIGTERM: the main window and a window it opened (a search trial's project) both write their
    unsaved edits to recovery files that outlive the process."""
    from engine.templates import default_template
    from gui.app import keep_everything

    other = MainWindow(window.settings)
    qtbot.addWidget(other)
    other.open_project(default_template(), untitled=True)
    other.show()
    for each, width in ((window, 50), (other, 70)):
        each.document.push(commands.set_param(each.document.graph, "fc1", "out_features", width))
    keep_everything(QApplication.instance(), window)
    assert window.autosaver is None and other.autosaver is None
    from engine.graph.fileformat import from_json

    widths = sorted(from_json(json.loads(p.read_text())["project"]).graph.nodes["fc1"].params["out_features"]
                    for p in (tmp_path / "recovery").glob("*.json"))
    assert widths == [50, 70]


def test_the_commands_on_the_selection_wait_for_one(window: MainWindow) -> None:
    """Cut, Copy, Duplicate, Delete and Freeze are greyed out with nothing selected, as in other editors."""
    keys = ("cut", "copy", "duplicate", "delete", "freeze", "unfreeze")
    window.canvas.select_nodes([], center=False)
    assert not any(window.actions[key].isEnabled() for key in keys)
    assert window.actions["paste"].isEnabled() and window.actions["select_all"].isEnabled()
    window.canvas.select_nodes([next(iter(window.document.graph.nodes))], center=False)
    assert all(window.actions[key].isEnabled() for key in keys)
