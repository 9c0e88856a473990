"""The main window: canvas in the centre, dockable panels, menus, files, status bar.

The window owns one :class:`~gui.document.Document` at a time and hands it to the views;
every edit goes through the document's undo stack (the Edit and Arrange commands live in
:class:`~gui.edit_controller.EditController`, blocks in :class:`~gui.block_actions.BlockController`,
training in :class:`~gui.training.controller.TrainingController`). Window geometry, dock layout,
theme and recent files (:mod:`gui.window_files`) persist in QSettings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent
from shiboken6 import isValid
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QUndoView,
                               QWidget)

from engine.graph.fileformat import ProjectFileError, load_project, sibling_weights
from engine.graph.gan import is_gan
from engine.graph.project import Project
from engine.shapes import Analysis
from gui.actions import ICON_OF_ACTION, build_actions
from gui.autosave import Autosaver, pending_recoveries
from gui.block_actions import BlockController, canvas_with_breadcrumb
from gui.block_palette import BlockCatalogue
from gui.canvas.view import CanvasView
from gui.document import Document, display_name
from gui.gallery import TemplateGallery
from gui.icons import icon
from gui.inspector import InspectorWidget
from gui.observers import DocumentLink
from gui.palette import PaletteWidget
from gui.problems import ProblemsWidget
from gui.project_checks import project_problems
from gui.style import THEMES, application_palette
from gui.summary_panel import SummaryWidget
from gui.training.controller import TrainingController
from gui.training.experiments import ExperimentsController
from gui.training.session import runs_root
from gui.edit_controller import EditController
from gui.window_files import (export_canvas, refresh_recent_menu, remember_folder, remember_project, save_guard,
                               start_folder)

PROJECT_FILTER = "Neural Canvas projects (*.json);;All files (*)"


class MainWindow(QMainWindow):
    """One window editing one project."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.document: Document | None = None
        self.autosaver: Autosaver | None = None
        self.setWindowIcon(icon("app"))
        self.canvas = CanvasView()
        self.edits = EditController(self)
        self.blocks = BlockController(self)
        self.block_catalogue = BlockCatalogue()
        self.canvas.block_catalogue = self.block_catalogue
        self.setCentralWidget(canvas_with_breadcrumb(self.canvas, self.blocks.breadcrumb))
        self.palette_panel = PaletteWidget()
        self.inspector = InspectorWidget()
        self.problems = ProblemsWidget()
        self.summary = SummaryWidget()
        self.history = QUndoView()
        self.history.setEmptyLabel("<original>")
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.docks: dict[str, QDockWidget] = {}
        self.add_dock("palette", "Layers", self.palette_panel, left)
        self.add_dock("inspector", "Inspector", self.inspector, right)
        self.add_dock("history", "History", self.history, right)
        self.add_dock("problems", "Problems", self.problems, bottom)
        self.add_dock("summary", "Model Summary", self.summary, bottom)
        built = build_actions(self)
        self.actions, self.recent_menu, self.panels_menu = built.actions, built.recent_menu, built.panels_menu
        self.main_toolbar = built.toolbar
        for key, handler in self.handlers().items():
            self.actions[key].triggered.connect(lambda checked=False, h=handler: h())
        self.training = TrainingController(self)
        self.training.add_docks()
        self.experiments = ExperimentsController(self)
        self.experiments.add_dock()
        self._link = DocumentLink(clean_changed=lambda clean: self._update_title(),
                                  path_changed=lambda path: self._update_title(),
                                  analysis_changed=self.show_totals, read_only_changed=self._on_read_only,
                                  settings_changed=lambda: self.show_totals(),
                                  level_changed=self.blocks.on_level_changed,
                                  blocks_changed=self._show_blocks,
                                  edit_refused=lambda reason: self.statusBar().showMessage(
                                      f"Cannot edit: {reason}", 5000))
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.docks["history"])
        for key in ("search", "problems", "summary", "history"):
            self.tabifyDockWidget(self.docks["training"], self.docks[key])
        for key in ("data", "settings", "inside", "try"):
            self.tabifyDockWidget(self.docks["inspector"], self.docks[key])
        self.docks["problems"].raise_()
        self.docks["inspector"].raise_()
        for dock in self.docks.values():
            self.panels_menu.addAction(dock.toggleViewAction())
        self.totals = QLabel()
        self.statusBar().addPermanentWidget(self.totals)
        self.palette_panel.layer_activated.connect(
            lambda type_id: self._show_new_node(self.canvas.add_node_at(type_id)))
        self.canvas.layer_dropped.connect(self._on_layer_dropped)
        self.canvas.selection_changed.connect(self._on_selection)
        self.canvas.selection_changed.connect(
            lambda ids: self.training.inside.show_node(
                self.document.flat_id(ids[0]) if len(ids) == 1 and self.document is not None else None))
        self.canvas.node_activated.connect(self.blocks.open_node)
        self.inspector.block_open_requested.connect(self.blocks.open_node)
        self.inspector.block_rename_requested.connect(self.blocks.rename)
        self.blocks.library_saved.connect(lambda name: self.block_catalogue.reload() or self._show_blocks())
        self.inspector.block_unique_requested.connect(
            lambda node_id: self.canvas.select_nodes([node_id], center=False) or self.blocks.make_unique())
        self.canvas.selection_changed.connect(lambda ids: self.blocks.refresh_actions())
        self.canvas.selection_changed.connect(lambda ids: self.refresh_edit_actions())
        self.problems.node_activated.connect(self._show_model_node)
        self.problems.panel_requested.connect(lambda key: self.docks[key].show() or self.docks[key].raise_())
        self.summary.node_activated.connect(lambda node_id: self.canvas.select_nodes([node_id], center=True))
        self._apply_theme(str(self.settings.value("theme", "light")))
        self._restore_layout()
        refresh_recent_menu(self)

    def add_dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Put ``widget`` in a new dock panel (listed in View > Panels, layout saved); ``docks[key]`` holds it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def handlers(self) -> dict[str, Callable[[], object]]:
        """What each action of :mod:`gui.actions` does."""
        edits = self.edits
        return {
            "new": self.new_document, "template": self.new_from_template, "open": self.open_dialog,
            "save": self.save, "save_as": self.save_as, "import_model": self.import_model_dialog,
            "export_model": self.export_model_dialog, "export_png": self.export_png, "export_svg": self.export_svg,
            "quit": self.close, "undo": edits.undo, "redo": edits.redo, "cut": edits.cut, "copy": edits.copy,
            "paste": edits.paste, "duplicate": edits.duplicate, "delete": edits.delete_selection,
            "freeze": edits.freeze_selection, "unfreeze": lambda: edits.freeze_selection(trainable=True),
            "select_all": edits.select_all, "add_comment": edits.add_comment, "fit": self.canvas.fit_all,
            "zoom_in": self.zoom_in, "zoom_out": self.zoom_out, "zoom_reset": self.zoom_reset,
            "theme_light": self.use_light_theme, "theme_dark": self.use_dark_theme,
            "train": self.start_training, "pause": lambda: self.training.toggle_pause(), "stop": self.stop_training,
            "resume_run": lambda: self.training.resume_last(), "evaluate_run": lambda: self.training.evaluate(),
            "runs_folder": lambda: self.training.open_runs_folder(), "layout": edits.auto_layout,
            "layout_right": lambda: edits.auto_layout("right"), "layout_down": lambda: edits.auto_layout("down"),
            "align_left": lambda: edits.align(0, "min"), "align_top": lambda: edits.align(1, "min"),
            "align_middle": lambda: edits.align(1, "mean"),
            "group": self.blocks.group_selection, "ungroup": self.blocks.ungroup_selection,
            "open_block": self.blocks.open_selected, "level_up": self.blocks.go_up,
            "expand_block": self.blocks.toggle_expanded, "make_unique": self.blocks.make_unique,
            "save_block": self.blocks.save_to_library,
            "run_search": lambda: self.experiments.start(), "stop_search": lambda: self.experiments.stop(),
            "find_lr": lambda: self.training.find_learning_rate(),
            "overfit_batch": lambda: self.training.overfit_batch(),
        }

    # ------------------------------------------------------------ documents
    def set_document(self, document: Document) -> None:
        """Show ``document`` in every view (the previous one is closed)."""
        if self.autosaver is not None:
            self.autosaver.stop()
        if self.document is not None:
            self.document.close()
            self.document.deleteLater()
        self.document = document
        document.setParent(self)
        self.canvas.set_document(document)
        self.blocks.breadcrumb.show_level((), ())
        self.inspector.set_document(document)
        self.problems.set_document(document)
        self.summary.set_document(document)
        self.history.setStack(document.undo_stack)
        document.undo_stack.canUndoChanged.connect(lambda can: self.refresh_edit_actions())
        document.undo_stack.canRedoChanged.connect(lambda can: self.refresh_edit_actions())
        self.refresh_edit_actions()
        self._link.follow(document)
        self.training.set_document(document)
        self.experiments.set_document(document)
        self.autosaver = Autosaver(document, parent=self)
        self._update_title()
        self.show_totals()
        self._show_blocks()
        self.canvas.request_fit()  # the whole graph, or its start where the whole would be unreadably small

    def open_project(self, path: Path, untitled: bool = False) -> bool:
        """Open ``path`` (as an untitled copy when ``untitled``); show the loader's message on failure."""
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        if untitled:  # a copy (a template) is a new project: it gets its own id
            project.id = ""
        document = Document(project, None if untitled else Path(path))
        if untitled:  # a template's pretrained weights stay its copy's starting point
            document.weights_origin = sibling_weights(path)
        self.set_document(document)
        if not untitled:
            remember_project(self, self.document.path)  # type: ignore[union-attr, arg-type]
        return True

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            return
        self.setWindowTitle(f"{doc.title}[*] — Neural Canvas")
        self.setWindowModified(doc.dirty)

    def show_totals(self, _level_analysis: Analysis | None = None) -> None:
        """The whole model's parameters, FLOPs and whether the project can train (the Train action says why not)."""
        if self.document is None:
            return
        analysis = self.document.model_analysis
        blocker = self.training.blocker() if self.document is not None else ""
        errors = len(analysis.errors) + len(project_problems(self.document)) + (self.training.data_problem() is not None)
        state = "valid" if not errors else "graph valid · cannot train yet" if analysis.valid else \
            f"{errors} error(s)"  # counted as the Problems panel counts them
        self.totals.setText(f"{analysis.parameters:,} parameters · {analysis.flops:,} FLOPs/sample · {state}")
        self.totals.setToolTip(blocker or ("Ready to train (F5)" if analysis.valid else "See the Problems panel"))
        self.training.update_train_tip(blocker)

    def _show_blocks(self) -> None:
        """The palette's Blocks: this project's definitions, the personal library's, the built-ins."""
        if self.document is not None:
            self.palette_panel.set_blocks(self.block_catalogue.entries(self.document.project.blocks))

    def _show_model_node(self, node_id: str) -> None:
        """Select a node of the top-level graph (a problem's node), leaving any open block."""
        if self.document is not None and self.document.level:
            self.blocks.enter(())
        self.canvas.select_nodes([node_id], center=True)

    def _on_selection(self, node_ids: list[str]) -> None:
        self.inspector.show_nodes(node_ids)

    def _on_layer_dropped(self, node_id: str) -> None:
        """A layer dragged from the palette landed: the palette lets go of it, the Inspector shows it."""
        self.palette_panel.tree.clearSelection()
        self._show_new_node(node_id)

    def _show_new_node(self, node_id: str | None) -> None:
        """Bring the Inspector (showing the new, selected node) in front of the panels tabbed with it."""
        if node_id is not None:
            self.docks["inspector"].raise_()

    def _on_read_only(self, reason: str | None) -> None:
        """Training locked or unlocked the graph: editors, history and edit commands follow."""
        self.inspector.update_read_only()
        self.history.setEnabled(reason is None)
        self.refresh_edit_actions()

    def refresh_edit_actions(self) -> None:
        """Enable the edit commands that can act now."""
        doc = self.document
        if doc is not None and not isValid(doc.undo_stack):
            return  # the document is being destroyed (closing window)
        editable = doc is not None and doc.edit_lock is None
        self.actions["undo"].setEnabled(editable and doc.undo_stack.canUndo())  # type: ignore[union-attr]
        self.actions["redo"].setEnabled(editable and doc.undo_stack.canRedo())  # type: ignore[union-attr]
        for key in ("paste", "layout", "layout_right", "layout_down"):
            self.actions[key].setEnabled(editable)
        nodes = bool(self.canvas.selected_node_ids())  # the commands that act on the selection need one
        self.actions["copy"].setEnabled(nodes)
        for key in ("cut", "duplicate", "freeze", "unfreeze"):
            self.actions[key].setEnabled(editable and nodes)
        scene = self.canvas.scene()
        self.actions["delete"].setEnabled(editable and scene is not None and bool(scene.selectedItems()))

    # ------------------------------------------------------------ training
    def start_training(self) -> None:
        """Train the current graph in a new run (F5)."""
        self.training.start()

    def stop_training(self) -> None:
        """Stop the run; it checkpoints and can be resumed (Shift+F5)."""
        self.training.stop()

    # --------------------------------------------------------------- files
    def new_document(self) -> None:
        """An empty untitled project."""
        if self.training.confirm_leave() and save_guard(self):
            self.set_document(Document(Project()))

    def new_from_template(self) -> None:
        """Pick a template in the gallery and open it as a new untitled document."""
        gallery = TemplateGallery(self, self.theme)
        if gallery.exec() and gallery.chosen is not None and self.training.confirm_leave() and save_guard(self):
            self.open_project(gallery.chosen, untitled=True)

    def open_dialog(self) -> None:
        """Ask for a project file and open it."""
        if not (self.training.confirm_leave() and save_guard(self)):
            return
        name, _ = QFileDialog.getOpenFileName(self, "Open Project", str(start_folder(self)), PROJECT_FILTER)
        if name:
            self.open_project(Path(name))

    def save(self) -> bool:
        """Save to the current file, asking for one when untitled."""
        doc = self.document
        if doc is None:
            return False
        if doc.path is None:
            return self.save_as()
        return self._save_to(doc.path)

    def save_as(self) -> bool:
        """Ask for a file name and save there."""
        doc = self.document
        if doc is None:
            return False
        suggested = str(doc.path or start_folder(self) / f"{(doc.project.name or 'untitled').replace(' ', '_')}.json")
        name, _ = QFileDialog.getSaveFileName(self, "Save Project As", suggested, PROJECT_FILTER)
        return self._save_to(Path(name)) if name else False

    def _save_to(self, path: Path) -> bool:
        doc = self.document
        if doc is None:
            return False
        old_runs = runs_root(doc)
        try:
            doc.save(path)
        except OSError as exc:
            QMessageBox.critical(self, "Cannot save", f"{path}: {exc.strerror or exc}. Nothing was lost: the "
                                 "project is still open; save it somewhere else.")
            return False
        remember_project(self, doc.path or path)
        moved = self.training.adopt_runs(old_runs)
        note = f"; its {len(moved)} run(s) moved to {runs_root(doc)}" if moved else ""
        self.statusBar().showMessage(f"Saved {doc.path}{note}", 6000)
        return True

    def export_model_dialog(self) -> None:
        """Export the current graph or a trained run (ONNX, pt2, safetensors, PyTorch source)."""
        from gui.model_io.export_dialog import ExportDialog

        doc = self.document
        if doc is None:
            return
        runs = [curves.history for curves in self.training.dashboard.plots.runs.values()]
        dialog = ExportDialog(doc.project, doc.path, runs, is_gan(doc.graph), self, folder=start_folder(self))
        dialog.exec()
        if dialog.exported_to is not None:
            remember_folder(self, dialog.exported_to)

    def import_model_dialog(self) -> None:
        """Import a PyTorch module or an ONNX file as a new project and open it."""
        from gui.model_io.import_dialog import ImportDialog

        if not (self.training.confirm_leave() and save_guard(self)):
            return
        dialog = ImportDialog(start_folder(self), self)
        if dialog.exec() and dialog.imported is not None and self.open_project(dialog.imported):
            self.statusBar().showMessage(dialog.status.text(), 8000)

    def export_png(self) -> None:
        """Export the canvas as a PNG image."""
        export_canvas(self, "png")

    def export_svg(self) -> None:
        """Export the canvas as an SVG drawing."""
        export_canvas(self, "svg")

    def offer_recovery(self) -> None:
        """After a crash, offer to reopen the projects that were being edited.

        A restored document keeps its recovery file (rewritten under this process) until it
        is saved or closed, so a second crash loses nothing. The window holds one document:
        after one is restored, any others stay on disk and are offered at the next start.
        """
        for recovery in pending_recoveries():
            try:  # read first: the prompt names the document as the unsaved-changes prompt did
                project: Project | None = recovery.load()
                damaged = ""
            except ProjectFileError as exc:
                project, damaged = None, str(exc)
            name = display_name(recovery.original, project if project is not None else Project())
            answer = QMessageBox.question(self, "Recover unsaved work",
                                          f"Neural Canvas closed unexpectedly while you were editing {name}. "
                                          "Recover the unsaved changes? (No discards them.)")
            if answer != QMessageBox.StandardButton.Yes:
                recovery.discard()
                continue
            if project is None:
                QMessageBox.warning(self, "Cannot recover", damaged)
                continue
            document = Document(project, recovery.original)
            document.undo_stack.resetClean()
            self.set_document(document)
            self._update_title()
            if self.autosaver is not None:
                self.autosaver.adopt(recovery)
            return

    # ---------------------------------------------------------------- view
    def zoom_in(self) -> None:
        """Zoom in around the centre."""
        self.canvas.zoom_in()

    def zoom_out(self) -> None:
        """Zoom out around the centre."""
        self.canvas.zoom_out()

    def zoom_reset(self) -> None:
        """Back to 100%."""
        self.canvas.zoom_reset()

    def use_light_theme(self) -> None:
        """Light canvas colours."""
        self._apply_theme("light")

    def use_dark_theme(self) -> None:
        """Dark canvas colours."""
        self._apply_theme("dark")

    def _apply_theme(self, name: str) -> None:
        theme = self.theme = THEMES.get(name, THEMES["light"])
        QApplication.setPalette(application_palette(theme))
        self.canvas.set_theme(theme)
        self.training.set_theme(theme)
        self.experiments.set_theme(theme)
        tint = theme.node_subtle if theme.name == "dark" else None
        for key, action in self.actions.items():
            spec_icon = ICON_OF_ACTION.get(key)
            if spec_icon:
                action.setIcon(icon(spec_icon, tint))
        self.actions[f"theme_{theme.name}"].setChecked(True)  # View shows the active theme
        self.settings.setValue("theme", theme.name)

    # ---------------------------------------------------------- lifecycle
    def _restore_layout(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:  # first start: generous; on a screen with no room for that (and its frame), maximized
            screen = self.screen().availableGeometry() if self.screen() is not None else None
            small = screen is not None and (screen.width() < 1400 + 40 or screen.height() < 860 + 60)
            self.resize(min(1400, screen.width()), min(860, screen.height())) if small else self.resize(1400, 860)
            if small:
                self.setWindowState(Qt.WindowState.WindowMaximized)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        else:  # first start: a generous canvas, slim panels
            self.resizeDocks([self.docks["problems"]], [150], Qt.Orientation.Vertical)
            self.resizeDocks([self.docks["palette"], self.docks["inspector"]], [230, 360],
                             Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not (self.training.confirm_leave() and save_guard(self)):
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        if self.autosaver is not None:
            self.autosaver.stop()
        self.experiments.shutdown()  # its trials stop (a next search continues them)
        event.accept()
