"""Menus, toolbar and keyboard shortcuts of the main window, declared in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from gui.icons import icon

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow

Std = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    """One command of the window: where it appears and what it does."""

    key: str
    text: str
    handler: str
    shortcut: QKeySequence.StandardKey | str | None = None
    icon: str | None = None
    toolbar: bool = False
    tip: str = ""


MENUS: dict[str, list[ActionSpec | None]] = {
    "&File": [
        ActionSpec("new", "&New", "new_document", Std.New, "new", True, "Start an empty project"),
        ActionSpec("template", "New from &Template…", "new_from_template", "Ctrl+Shift+N", tip="Start from a template"),
        ActionSpec("open", "&Open…", "open_dialog", Std.Open, "open", True, "Open a project file"),
        ActionSpec("recent", "Open &Recent", "", None),
        None,
        ActionSpec("save", "&Save", "save", Std.Save, "save", True, "Save the project"),
        ActionSpec("save_as", "Save &As…", "save_as", Std.SaveAs),
        None,
        ActionSpec("import_model", "&Import Model…", "import_model_dialog", "Ctrl+I",
                   tip="Put a PyTorch module or an ONNX file on the canvas"),
        ActionSpec("export_model", "&Export Model…", "export_model_dialog", "Ctrl+E",
                   tip="Write the model as ONNX, torch.export, safetensors or PyTorch source"),
        None,
        ActionSpec("export_png", "Export Canvas as &PNG…", "export_png"),
        ActionSpec("export_svg", "Export Canvas as S&VG…", "export_svg"),
        None,
        ActionSpec("quit", "&Quit", "close", Std.Quit),
    ],
    "&Edit": [
        ActionSpec("undo", "&Undo", "undo", Std.Undo, "undo", True),
        ActionSpec("redo", "&Redo", "redo", "Ctrl+Shift+Z", "redo", True),
        None,
        ActionSpec("cut", "Cu&t", "cut", Std.Cut),
        ActionSpec("copy", "&Copy", "copy", Std.Copy),
        ActionSpec("paste", "&Paste", "paste", Std.Paste),
        ActionSpec("duplicate", "D&uplicate", "duplicate", "Ctrl+D"),
        ActionSpec("delete", "&Delete", "delete_selection", None, "delete"),
        None,
        ActionSpec("select_all", "Select &All", "select_all", Std.SelectAll),
    ],
    "&View": [
        ActionSpec("fit", "&Fit All", "fit_all", "F", "fit", True, "Show the whole graph (F)"),
        ActionSpec("zoom_in", "Zoom &In", "zoom_in", "Ctrl+=", "zoom-in", True),
        ActionSpec("zoom_out", "Zoom &Out", "zoom_out", "Ctrl+-", "zoom-out", True),
        ActionSpec("zoom_reset", "&Actual Size", "zoom_reset", "Ctrl+0"),
        None,
        ActionSpec("theme_light", "&Light Theme", "use_light_theme"),
        ActionSpec("theme_dark", "&Dark Theme", "use_dark_theme"),
        None,
    ],
    "&Train": [
        ActionSpec("train", "&Train", "start_training", "F5", "train", True, "Train the model in a new run"),
        ActionSpec("pause", "&Pause", "toggle_pause", "F6", "pause", True, "Pause or resume the run"),
        ActionSpec("stop", "&Stop", "stop_training", "Shift+F5", "stop", True,
                   "Stop the run (it is saved and can be resumed)"),
        None,
        ActionSpec("resume_run", "&Resume Last Run", "resume_last_run", "Ctrl+F5",
                   tip="Continue the newest stopped run from its checkpoint"),
        ActionSpec("runs_folder", "Open Runs &Folder", "open_runs_folder"),
    ],
    "&Arrange": [
        ActionSpec("layout", "&Auto Layout", "auto_layout", "Ctrl+L", "layout", True, "Lay the graph out left to right"),
        ActionSpec("align_left", "Align &Left", "align_left"),
        ActionSpec("align_top", "Align &Top", "align_top"),
        ActionSpec("align_middle", "Align &Middle", "align_middle"),
    ],
}


#: Icon name of each action that has one (recoloured for the dark theme).
ICON_OF_ACTION = {spec.key: spec.icon for specs in MENUS.values() for spec in specs if spec and spec.icon}


def build_actions(window: "MainWindow") -> dict[str, QAction]:
    """Create every action, its menu entry and toolbar button; returns them by key."""
    actions: dict[str, QAction] = {}
    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main_toolbar")
    window.addToolBar(toolbar)
    bar = window.menuBar()
    for title, specs in MENUS.items():
        menu: QMenu = bar.addMenu(title)
        for spec in specs:
            if spec is None:
                menu.addSeparator()
                continue
            if spec.key == "recent":
                window.recent_menu = menu.addMenu(spec.text)
                continue
            action = QAction(spec.text, window)
            if spec.icon:
                action.setIcon(icon(spec.icon))
            if spec.shortcut is not None:
                action.setShortcut(QKeySequence(spec.shortcut))
            if spec.key == "redo":
                action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
            if spec.key == "delete":
                action.setShortcuts([QKeySequence.StandardKey.Delete, QKeySequence("Backspace")])
            if spec.tip:
                action.setStatusTip(spec.tip)
                action.setToolTip(f"{spec.tip} ({action.shortcut().toString()})" if action.shortcut() else spec.tip)
            handler: Callable[[], object] = getattr(window, spec.handler)
            action.triggered.connect(lambda checked=False, h=handler: h())
            menu.addAction(action)
            if spec.toolbar:
                toolbar.addAction(action)
            actions[spec.key] = action
        if title == "&View":
            window.panels_menu = menu.addMenu("&Panels")
    window.main_toolbar = toolbar
    return actions
