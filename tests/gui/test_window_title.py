"""The window title shows the project file's own name, after Save As and after reopening."""

from __future__ import annotations

from pathlib import Path

import pytest

from gui import document as document_module
from gui.main_window import MainWindow


def test_save_as_and_reopen_show_the_same_name(window: MainWindow, tmp_path: Path) -> None:
    assert window._save_to(tmp_path / "my.json")
    assert window.windowTitle() == "my.json[*] — Neural Canvas"
    assert window.open_project(tmp_path / "my.json")
    assert window.windowTitle() == "my.json[*] — Neural Canvas"


def test_a_name_typed_in_another_case_shows_as_the_folder_spells_it(window: MainWindow, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """On a case-insensitive file system "My.json" opens and saves the file "my.json"."""
    (tmp_path / "my.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(document_module, "save_project", lambda project, path: None)  # the file system keeps my.json
    assert window._save_to(tmp_path / "My.json")
    assert window.document.path == tmp_path / "my.json"
    assert window.windowTitle() == "my.json[*] — Neural Canvas"


def test_a_relative_path_is_kept_absolute(window: MainWindow, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``python main.py my.json`` from a shell: exports and runs still go beside the file later."""
    monkeypatch.chdir(tmp_path)
    assert window._save_to(Path("my.json"))
    assert window.document.path == tmp_path / "my.json" and window.document.path.is_absolute()
    assert window.open_project(Path("my.json"))
    assert window.document.path == tmp_path / "my.json"


def test_save_as_and_exports_start_in_the_folder_used_last(window: MainWindow, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Save As and the export dialogs of an untitled project opened in the process's working folder
    or the home folder, whichever folder the last project was saved in or opened from."""
    from PySide6.QtWidgets import QFileDialog

    from engine.templates import default_template
    from gui.model_io.export_dialog import ExportDialog
    from gui.window_files import export_canvas

    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda parent, title, start, *a, **k: (asked.append(start)
                                                                                              or ("", "")))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    projects = tmp_path / "projects"
    projects.mkdir()
    assert window._save_to(projects / "first.json")
    window.open_project(default_template(), untitled=True)  # a new untitled project
    window.save_as()
    export_canvas(window, "png")
    assert [Path(start).parent for start in asked] == [projects, projects]
    shown: list[str] = []
    monkeypatch.setattr(ExportDialog, "exec", lambda dialog: shown.append(dialog.out.text()) or 0)
    window.export_model_dialog()
    assert Path(shown[0]).parent == projects
    # a new window (the next session) remembers the folder too
    again = MainWindow(window.settings)
    again.open_project(default_template(), untitled=True)
    again.save_as()
    assert Path(asked[-1]).parent == projects
    again.close()
