"""Menus, toolbar and keyboard shortcuts of the main window, declared in one table.

:func:`build_actions` makes the actions, menus and toolbar and returns them; it connects
nothing. The window connects each action to its handler itself (``MainWindow.handlers``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QToolButton

from gui.icons import icon

Std = QKeySequence.StandardKey
#: Where the Open Recent and Panels submenus go in the table.
RECENT, PANELS = "recent", "panels"


@dataclass(frozen=True)
class ActionSpec:
    """One command of the window: its text, keys, icon and whether the toolbar shows it.

    ``labelled`` toolbar buttons show their text beside the icon (the run controls). Actions
    with the same ``group`` are checkable and exclusive (the checked one is the current choice).
    """

    key: str
    text: str
    shortcut: QKeySequence.StandardKey | str | None = None
    icon: str | None = None
    toolbar: bool = False
    tip: str = ""
    labelled: bool = False
    group: str = ""


MENUS: dict[str, list[ActionSpec | str | None]] = {
    "&File": [
        ActionSpec("new", "&New", Std.New, "new", True, "Start an empty project"),
        ActionSpec("template", "New from &Template…", "Ctrl+Shift+N", tip="Start from a template"),
        ActionSpec("open", "&Open…", Std.Open, "open", True, "Open a project file"),
        RECENT,
        None,
        ActionSpec("save", "&Save", Std.Save, "save", True, "Save the project"),
        ActionSpec("save_as", "Save &As…", Std.SaveAs),
        None,
        ActionSpec("import_model", "&Import Model…", "Ctrl+I",
                   tip="Put a PyTorch module or an ONNX file on the canvas"),
        ActionSpec("export_model", "&Export Model…", "Ctrl+E",
                   tip="Write the model as ONNX, torch.export, safetensors or PyTorch source"),
        None,
        ActionSpec("export_png", "Export Canvas as &PNG…"),
        ActionSpec("export_svg", "Export Canvas as S&VG…"),
        None,
        ActionSpec("quit", "&Quit", Std.Quit),
    ],
    "&Edit": [
        ActionSpec("undo", "&Undo", Std.Undo, "undo", True),
        ActionSpec("redo", "&Redo", "Ctrl+Shift+Z", "redo", True),
        None,
        ActionSpec("cut", "Cu&t", Std.Cut),
        ActionSpec("copy", "&Copy", Std.Copy),
        ActionSpec("paste", "&Paste", Std.Paste),
        ActionSpec("duplicate", "D&uplicate", "Ctrl+D"),
        ActionSpec("delete", "&Delete", None, "delete"),
        None,
        ActionSpec("freeze", "Fr&eeze Layers",
                   tip="Keep the selected layers' parameters as they are while training (fine-tuning)"),
        ActionSpec("unfreeze", "Unfreeze La&yers", tip="Let training update the selected layers again"),
        None,
        ActionSpec("select_all", "Select &All", Std.SelectAll),
        None,
        ActionSpec("add_comment", "Add &Comment", "Ctrl+Shift+C",
                   tip="Put a note on the canvas, or a frame around the selected layers"),
    ],
    "&Blocks": [
        ActionSpec("group", "&Group into Block", "Ctrl+G",
                   tip="Make the selected layers one block node (its ports are the connections that cross the selection)"),
        ActionSpec("ungroup", "&Ungroup Block", "Ctrl+Shift+G", tip="Put the selected block's layers back in its place"),
        None,
        ActionSpec("open_block", "&Open Block", tip="Edit the selected block's inside (double-click or Enter)"),
        ActionSpec("level_up", "Up One &Level", "Alt+Up", tip="Back to the graph that holds this block"),
        ActionSpec("expand_block", "E&xpand or Collapse", "E",
                   tip="Show the selected block's layers in place (read-only), or fold them back"),
        None,
        ActionSpec("make_unique", "Make Uni&que",
                   tip="Give the selected block its own copy of its definition, so edits change it alone"),
        ActionSpec("save_block", "&Save Block to Library…",
                   tip="Keep the selected block's definition in your library, for other projects"),
    ],
    "&View": [
        ActionSpec("fit", "&Fit All", "F", "fit", True, "Show the whole graph (F)"),
        ActionSpec("zoom_in", "Zoom &In", "Ctrl+=", "zoom-in", True),
        ActionSpec("zoom_out", "Zoom &Out", "Ctrl+-", "zoom-out", True),
        ActionSpec("zoom_reset", "&Actual Size", "Ctrl+0"),
        None,
        ActionSpec("theme_light", "&Light Theme", group="theme"),
        ActionSpec("theme_dark", "&Dark Theme", group="theme"),
        None,
        PANELS,
    ],
    "&Train": [
        ActionSpec("train", "&Train", "F5", "train", True, "Train the model in a new run", labelled=True),
        ActionSpec("pause", "&Pause", "F6", "pause", True, "Pause or resume the run", labelled=True),
        ActionSpec("stop", "&Stop", "Shift+F5", "stop", True, "Stop the run (it is saved and can be resumed)",
                   labelled=True),
        None,
        ActionSpec("resume_run", "&Resume Last Run", "Ctrl+F5",
                   tip="Continue the newest stopped run from its checkpoint"),
        ActionSpec("evaluate_run", "&Evaluate Last Run…", "Ctrl+Shift+E",
                   tip="Test metrics, per-class scores, confusion matrix and every test sample of the newest run"),
        ActionSpec("runs_folder", "Open Runs &Folder"),
        None,
        ActionSpec("find_lr", "Find &Learning Rate…",
                   tip="Train a throwaway copy with a rising learning rate and suggest the rate to use"),
        ActionSpec("overfit_batch", "&Overfit One Batch…",
                   tip="Train a throwaway copy on one batch: a network that cannot memorize it has a wiring problem"),
        None,
        ActionSpec("run_search", "Run Sear&ch", "Ctrl+Shift+F5",
                   tip="Run the project's search: one trial run per set of values (Experiments panel)"),
        ActionSpec("stop_search", "Stop Searc&h",
                   tip="Stop the search after the running trials' epoch; again: at once (they can be continued)"),
    ],
    "&Arrange": [
        ActionSpec("layout", "&Auto Layout", "Ctrl+L", "layout", True,
                   "Lay the graph out: top to bottom for deep stacks, left to right otherwise"),
        ActionSpec("layout_right", "Layout &Left to Right", "Ctrl+Shift+L", tip="Lay the graph out in columns"),
        ActionSpec("layout_down", "Layout Top to &Bottom", "Ctrl+Alt+L", tip="Lay the graph out in rows"),
        ActionSpec("align_left", "Align &Left"),
        ActionSpec("align_top", "Align &Top"),
        ActionSpec("align_middle", "Align &Middle"),
    ],
}

#: Extra keys of some actions (the table holds the main one).
MORE_SHORTCUTS: dict[str, list[QKeySequence.StandardKey | str]] = {
    "redo": ["Ctrl+Shift+Z", "Ctrl+Y"],
    "delete": [Std.Delete, "Backspace"],
}

#: Icon name of each action that has one (recoloured for the dark theme).
ICON_OF_ACTION = {spec.key: spec.icon for specs in MENUS.values() for spec in specs
                  if isinstance(spec, ActionSpec) and spec.icon}
#: Every action key, in table order.
ACTION_KEYS = [spec.key for specs in MENUS.values() for spec in specs if isinstance(spec, ActionSpec)]


@dataclass
class WindowActions:
    """What :func:`build_actions` made: the actions by key, the two submenus the window fills, the toolbar."""

    actions: dict[str, QAction]
    recent_menu: QMenu
    panels_menu: QMenu
    toolbar: QToolBar


def build_actions(window: QMainWindow) -> WindowActions:
    """Create every action, its menu entry and toolbar button (connected to nothing)."""
    actions: dict[str, QAction] = {}
    submenus: dict[str, QMenu] = {}
    groups: dict[str, QActionGroup] = {}
    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main_toolbar")
    window.addToolBar(toolbar)
    bar = window.menuBar()
    for title, specs in MENUS.items():
        menu: QMenu = bar.addMenu(title)
        on_toolbar = False
        for spec in specs:
            if spec is None:
                menu.addSeparator()
            elif isinstance(spec, str):
                submenus[spec] = menu.addMenu("Open &Recent" if spec == RECENT else "&Panels")
            else:
                action = _action(spec, window)
                if spec.group:
                    action.setCheckable(True)
                    groups.setdefault(spec.group, QActionGroup(window)).addAction(action)  # exclusive
                menu.addAction(action)
                actions[spec.key] = action
                if spec.toolbar:
                    if not on_toolbar and toolbar.actions():
                        toolbar.addSeparator()  # one group per menu
                    on_toolbar = True
                    toolbar.addAction(action)
                    if spec.labelled:
                        button = toolbar.widgetForAction(action)
                        if isinstance(button, QToolButton):
                            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return WindowActions(actions, submenus[RECENT], submenus[PANELS], toolbar)


def _action(spec: ActionSpec, parent: QMainWindow) -> QAction:
    action = QAction(spec.text, parent)
    if spec.icon:
        action.setIcon(icon(spec.icon))
    if spec.key in MORE_SHORTCUTS:
        action.setShortcuts([QKeySequence(keys) for keys in MORE_SHORTCUTS[spec.key]])
    elif spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
    if spec.tip:
        action.setStatusTip(spec.tip)
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{spec.tip} ({keys})" if keys and f"({keys})" not in spec.tip else spec.tip)
    return action
