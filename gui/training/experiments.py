"""Searches from the main window: Train > Run Search / Stop Search, the Experiments dock, and
what a trial can become (curves on the dashboard, a project in a new window, the document's
values).

The search runs on a thread (:class:`~gui.training.search_job.SearchJob`) from a frozen copy
of the document's project, so the document stays editable. The study is read off the GUI
thread (:class:`~gui.background.BackgroundCall`) after each trial ends, and when a saved
project with an earlier study opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMessageBox

from engine.errors import UserError
from engine.graph.fileformat import ProjectFileError, dumps, load_project, loads
from gui.background import BackgroundCall
from gui.document import Document
from gui.training.experiment_data import format_value
from gui.training.experiments_panel import NO_STUDY, ExperimentsPanel
from gui.training.search_job import SearchJob
from gui.training.session import runs_root, run_stem
from gui.training.study_reading import CurveCache, find_default_study, read_study
from gui.training.trial_apply import trial_command

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow

#: Milliseconds between a trial's end and the read of the study (ends close together read once).
REFRESH_DELAY_MS = 300
#: Height the Experiments dock takes when a search starts (room for the table and the plots).
PANEL_HEIGHT = 340


class ExperimentsController(QObject):
    """Runs the document's search and shows studies in the Experiments dock."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.panel = ExperimentsPanel(window.actions)
        self.job: SearchJob | None = None
        self._interrupted = False  # a trial of the running search was stopped before it completed
        #: Trials at a time (``None``: one per core, at most 4, as the command line).
        self.workers: int | None = None
        self.study: Any = None
        self.space: Any = None
        self.project: Any = None  # the frozen project the study's trials came from (its own values are marked)
        self.project_id = ""  # the id of the document whose study is shown
        self.windows: list[MainWindow] = []
        self.failure_box: QMessageBox | None = None
        self._curves = CurveCache()
        self._reader = BackgroundCall(self)
        self._reader.done.connect(self._on_read)
        self._read_again = False
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._loader = BackgroundCall(self)
        self._loader.done.connect(self._on_loaded)
        self.panel.overlay_requested.connect(self.overlay)
        self.panel.open_requested.connect(self.open_trial)
        self.panel.apply_requested.connect(self.apply_trial)
        self._update_actions()

    def add_dock(self) -> QDockWidget:
        """Add the Experiments dock, tabbed with the Training dashboard."""
        dock = self.window.add_dock("experiments", "Experiments", self.panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.window.tabifyDockWidget(self.window.docks["training"], dock)
        return dock

    def set_theme(self, theme: object) -> None:
        """Recolour the plots."""
        self.panel.plots.set_theme(theme)

    @property
    def active(self) -> bool:
        """Whether a search runs."""
        return self.job is not None and self.job.active

    # -------------------------------------------------------------- documents
    def set_document(self, document: Document) -> None:
        """Show the study of the newly opened document (if it was searched before); a running search stays shown."""
        if self.active:
            return  # the running search stays shown; the new document's study is read when it ends
        self.study = self.space = None
        self.project_id = document.project.id
        self._loader.cancel()
        self._reader.cancel()
        self.panel.clear(NO_STUDY)
        if document.path is None:
            return
        project, path, root = loads(dumps(document.project)), document.path, runs_root(document)
        self._loader.start(lambda: _load(project, path, root, self._curves))

    def _on_loaded(self, ticket: int, result: Any, error: str) -> None:
        if ticket != self._loader.ticket or self.active:
            return
        if error:
            self.panel.status.setText(f"The project's earlier study cannot be read: {error}")
            return
        if result is None:
            return
        self.study, self.space, self.project, view = result
        self.panel.show_view(view)
        self.panel.status.setText(f"Study '{view.name}' · {self.panel.summary()}")
        self._update_actions()

    # --------------------------------------------------------------- commands
    def start(self) -> bool:
        """Run the document's search (Train > Run Search): a study in ``runs/<name>-search``."""
        from engine.search.runner import default_workers, out_dir_for
        from engine.search.session import SearchRequest
        from engine.search.settings import study_settings
        from engine.search.space import parse_space

        window, document = self.window, self.window.document
        if document is None or self.active:
            return False
        project = loads(dumps(document.project))  # frozen: later edits do not reach the trials
        problem = window.training.blocker()
        if not problem:
            try:
                study_settings(project.search)
                parse_space(project)
            except UserError as exc:
                problem = str(exc)
            if not project.search.get("space"):
                problem = "The project has no search space yet: add one in the Search panel"
        if problem:
            self._show_problem("Cannot search yet", problem)
            return False
        path = document.path or Path.cwd() / f"{run_stem(document)}.json"  # unsaved: data paths as Train reads them
        request = SearchRequest(project, path, out_dir_for(path, runs_root(document)),
                                workers=self.workers or default_workers())
        self._loader.cancel()
        self._reader.cancel()
        self.study, self.space, self.project = None, None, project
        self.project_id = document.project.id
        self.panel.clear(f"Opening the study in {request.out_dir}…")
        self.panel.begin_search()
        self.job = SearchJob(request, document.start_weights(), self)
        self._interrupted = False
        self.job.opened.connect(self._on_opened)
        self.job.updates.connect(self._on_updates)
        self.job.ended.connect(self._on_ended)
        self.job.start()
        self._update_actions()
        dock = window.docks.get("experiments")
        if dock is not None:
            dock.show()
            dock.raise_()
            if dock.height() < PANEL_HEIGHT and not dock.isFloating():
                window.resizeDocks([dock], [PANEL_HEIGHT], Qt.Orientation.Vertical)
        window.statusBar().showMessage(f"Search started: trials run in {request.out_dir}", 6000)
        return True

    def stop(self) -> None:
        """Stop the search (Train > Stop Search): pressed again, sooner; a third time, at once."""
        if self.active and self.job is not None:
            words = self.job.stop()
            self.panel.status.setText(words)
            self.window.statusBar().showMessage(words, 6000)

    def shutdown(self) -> None:
        """Stop a running search for good (the window closes): its trials stop, are killed if they must."""
        if self.job is not None and self.job.active:
            self.job.shutdown()
            self.job.drain()

    # ----------------------------------------------------------- search news
    def _on_opened(self, opened: Any) -> None:
        self.study, self.space = opened.study, opened.space
        self.refresh()

    def _on_updates(self, updates: list) -> None:
        self._interrupted = self._interrupted or any(u.state == "interrupted" for u in updates)
        if self.panel.add_updates(updates):
            self._refresh_timer.start()
        self._show_progress()

    def _on_ended(self, error: str) -> None:
        self.panel.end_search()
        self._update_actions()
        if error:
            self.panel.status.setText(f"The search could not run: {error}")
            self._show_problem("The search could not run", error, modal=False)
            return
        stopped = self.job is not None and self.job.stops > 0
        interrupted = stopped and self._interrupted
        document = self.window.document
        if document is not None and document.project.id != self.project_id:
            self.set_document(document)  # another project was opened while it ran: show that one's study
        else:
            self.refresh()
        words = ("Search stopped: Run Search continues its stopped trials" if interrupted else
                 "Search stopped: its running trials completed" if stopped else "Search finished")
        self.window.statusBar().showMessage(words, 8000)

    def refresh(self) -> None:
        """Read the study again, off the GUI thread (once more later if a read is under way)."""
        if self.study is None:
            return
        if self._reader.busy():
            self._read_again = True
            return
        study, space, project, curves = self.study, self.space, self.project, self._curves
        self._reader.start(lambda: read_study(study, space, project, curves))

    def _on_read(self, ticket: int, view: Any, error: str) -> None:
        if ticket != self._reader.ticket:
            return
        if error:
            self.panel.status.setText(f"The study cannot be read: {error}")
        elif view is not None:
            self.panel.show_view(view)
            self._show_progress()
        if self._read_again:
            self._read_again = False
            self.refresh()

    def _show_progress(self) -> None:
        name = f"'{self.study.study_name}'" if self.study is not None else ""
        if self.active:
            stopping = self.job is not None and self.job.stops > 0
            self.panel.status.setText(f"{'Stopping' if stopping else 'Searching'} {name} · {self.panel.summary()}")
        else:
            self.panel.status.setText(f"Study {name} · {self.panel.summary()}")

    def _update_actions(self) -> None:
        actions = self.window.actions
        actions["run_search"].setEnabled(not self.active)
        actions["stop_search"].setEnabled(self.active)

    def _show_problem(self, title: str, message: str, modal: bool = True) -> None:
        self.window.statusBar().showMessage(f"{title}: {message}", 15000)
        if modal:
            QMessageBox.warning(self.window, title, message)
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self.window)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # the app keeps running behind it
        self.failure_box = box

    # ---------------------------------------------------------------- trials
    def _row(self, number: int) -> Any:
        return next((row for row in self.panel.rows() if row.number == number), None)

    def overlay(self, number: int) -> bool:
        """Add trial ``number``'s curves to the Training dashboard's plots and run list."""
        row = self._row(number)
        if row is None or not row.run or not (Path(row.run) / "metrics.jsonl").is_file():
            self.window.statusBar().showMessage(f"Trial {number} has no curves to overlay", 6000)
            return False
        self.window.training.dashboard.overlay_run(Path(row.run))
        self.window.statusBar().showMessage(f"Trial {number}'s curves are on the Training dashboard", 6000)
        return True

    def open_trial(self, number: int) -> Any:
        """Open trial ``number``'s project (its run folder's ``project.json``) in a new window."""
        from gui.main_window import MainWindow

        row = self._row(number)
        path = Path(row.run) / "project.json" if row is not None and row.run else None
        try:
            if path is None:
                raise ProjectFileError(f"trial {number} has no run folder")
            project = load_project(path)
        except ProjectFileError as exc:
            self.window.statusBar().showMessage(f"Cannot open trial {number}: {exc}", 8000)
            return None
        project.id = ""  # a new project: it gets its own id and its own runs
        base = self.study.study_name if self.study is not None else project.name
        project.meta["name"] = f"{base} · trial {number}"
        other = MainWindow(self.window.settings)
        other.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        other.set_document(Document(project))
        other.destroyed.connect(lambda _=None, w=other: w in self.windows and self.windows.remove(w))
        self.windows.append(other)
        other.show()
        return other

    def apply_trial(self, number: int) -> bool:
        """Write trial ``number``'s values into the document as one undo step."""
        document, view = self.window.document, self.panel.view
        row = view.trial(number) if view is not None else None
        if document is None or row is None or not row.params:
            return False
        if document.project.id != self.project_id:
            self.window.statusBar().showMessage("The study shown is another project's: its values are not "
                                                "applied to this one", 8000)
            return False
        try:
            command, values = trial_command(document, row.params, self.space, f"Apply trial {number}'s values")
        except UserError as exc:
            self._show_problem("Cannot apply the trial's values", str(exc))
            return False
        if command is None:
            self.window.statusBar().showMessage(f"The project already has trial {number}'s values", 6000)
            return False
        if not document.push(command):
            return False
        shown = " ".join(f"{k.split('.', 1)[-1]}={format_value(v)}" for k, v in values.items())
        self.window.statusBar().showMessage(f"Applied trial {number}'s values: {shown} (Edit > Undo takes them "
                                            "back)", 10000)
        return True


def _load(project: Any, path: Path, root: Path, curves: CurveCache) -> Any:
    """(Background) The document's earlier study as ``(study, space, project, view)``, or ``None``."""
    found = find_default_study(project, path, root)
    if found is None:
        return None
    study, space = found
    return study, space, project, read_study(study, space, project, curves)
