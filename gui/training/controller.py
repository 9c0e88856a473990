"""Training inside the main window: docks, the Train menu's commands, and their guards.

The controller owns the :class:`~gui.training.session.TrainingSession` and the panels that
show it (dashboard, data, settings, look inside) and keeps the window's actions in step
with the run's state. The window stays a thin host: it forwards menu commands here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDockWidget, QMessageBox

from engine.training.events import Failed, RunStarted
from gui.document import Document
from gui.project_checks import ProjectProblem, project_problems
from gui.training.dashboard import TrainingDashboard
from gui.training.diagnostic_dialogs import DiagnosticDialog, LrFinderDialog, OverfitBatchDialog
from gui.training.evaluation_dialog import EvaluationDialog
from gui.training.data_panel import DataPanel
from gui.training.inside_panel import InsidePanel
from gui.training.session import REAP_AFTER_MS, TrainingSession, adopt_runs, earlier_runs, runs_root
from gui.training.settings_panel import SettingsPanel
from gui.training.search_panel import SearchPanel
from gui.training.try_panel import TryPanel

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow

#: Seconds a closing window waits for a stopping run to write its checkpoint.
STOP_WAIT_S = 5.0
DASHBOARD_HEIGHT = 330


class TrainingController(QObject):
    """Runs training for the window's document and shows it."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.session = TrainingSession(self)
        self.dashboard = TrainingDashboard(self.session, window.actions)
        self.data_panel = DataPanel()
        self.settings_panel = SettingsPanel()
        self.inside = InsidePanel()
        self.try_panel = TryPanel()
        self.search_panel = SearchPanel()
        self.failure_box: QMessageBox | None = None
        self.session.state_changed.connect(self._update_actions)
        self.session.run_added.connect(self._on_run_added)
        self.session.run_ended.connect(self._on_run_ended)
        self.session.checkpoint_written.connect(lambda run_dir: self.inside.refresh())
        self.session.events_received.connect(self._on_events)
        self.dashboard.resume_requested.connect(lambda run_dir: self.resume(Path(run_dir)))
        self.dashboard.evaluate_requested.connect(lambda run_dir: self.evaluate(Path(run_dir)))
        self.evaluations: list[EvaluationDialog] = []
        self.diagnostics: list[DiagnosticDialog] = []
        self.dashboard.run_warnings_changed.connect(window.problems.set_run_warnings)
        self.data_panel.fit_changed.connect(self._on_data_fit)
        window.problems.run_warning_activated.connect(lambda kind: self.show_gradients())
        self._update_actions("idle")

    def add_docks(self) -> dict[str, QDockWidget]:
        """Add the training docks to the window; returns them by key."""
        window = self.window
        bottom, right = Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        docks = {
            "training": window.add_dock("training", "Training", self.dashboard, bottom),
            "data": window.add_dock("data", "Data", self.data_panel, right),
            "settings": window.add_dock("settings", "Settings", self.settings_panel, right),
            "inside": window.add_dock("inside", "Look Inside", self.inside, right),
            "try": window.add_dock("try", "Try It", self.try_panel, right),
            "search": window.add_dock("search", "Search", self.search_panel, bottom),
        }
        docks["try"].visibilityChanged.connect(lambda seen: seen and self._offer_newest_run())
        # Tabbed docks behind another tab still count as visible in Qt: the panels that do
        # heavy work (torch) follow their dock's visibility instead.
        docks["inside"].visibilityChanged.connect(self.inside.set_seen)
        docks["settings"].visibilityChanged.connect(lambda seen: seen and self.settings_panel.probe_devices())
        return docks

    def set_document(self, document: Document) -> None:
        """Follow a newly opened document."""
        self.data_panel.set_document(document)
        self.settings_panel.set_document(document)
        self.dashboard.set_document(document)
        runs = earlier_runs(document)
        self.inside.set_run(runs[-1] if runs else None, self._base_dir(document))
        self.try_panel.set_run(None, None)
        self.search_panel.set_document(document)
        if self.window.docks.get("try") is not None and self.window.docks["try"].isVisible():
            self._offer_newest_run()

    def adopt_runs(self, old_root: Path) -> list[Path]:
        """After the document's file moved (first save, Save As elsewhere): bring its runs from
        ``old_root`` into its runs folder and show them from there. Returns their new folders.

        The active run stays where it is until it has ended (it is moved then).
        """
        document = self.window.document
        if document is None:
            return []
        active = [Path(self.session.history.run_dir)] if self.session.active and self.session.history else []
        moved = adopt_runs(document, old_root, skip=active)
        if moved:
            self.dashboard.reload_runs()
            if not self.session.active:
                runs = earlier_runs(document)
                self.inside.set_run(runs[-1] if runs else None, self._base_dir(document))
        return moved

    def set_theme(self, theme: object) -> None:
        """Recolour the plots and views for the light or dark theme."""
        self.dashboard.set_theme(theme)
        self.dashboard.predictions.set_theme(theme)
        self.inside.set_theme(theme)
        self.try_panel.set_theme(theme)

    @staticmethod
    def _base_dir(document: Document) -> Path:
        return document.path.parent if document.path is not None else Path.cwd()

    # -------------------------------------------------------------- commands
    def start(self) -> bool:
        """Train the document's current graph and settings in a new run."""
        return self._start(None)

    def resume(self, run_dir: Path) -> bool:
        """Continue a stopped run from its last checkpoint."""
        if not (run_dir / "checkpoint.pt").is_file():
            self.window.statusBar().showMessage(f"{run_dir.name} has no checkpoint to resume from", 6000)
            return False
        return self._start(run_dir)

    def _finished_runs(self) -> list[Path]:
        """The document's runs that have weights, oldest first, without the one training now."""
        document = self.window.document
        if document is None:
            return []
        running = Path(self.session.history.run_dir) if self.session.active and self.session.history else None
        return [r for r in earlier_runs(document) if r != running
                and ((r / "model.safetensors").is_file() or (r / "checkpoint.pt").is_file())]

    def _offer_newest_run(self) -> None:
        """Try It uses the newest finished run."""
        runs = self._finished_runs()
        document = self.window.document
        self.try_panel.set_run(runs[-1] if runs else None, self._base_dir(document) if document is not None else None)

    def evaluate(self, run_dir: Path | None = None) -> EvaluationDialog | None:
        """Open the evaluation of ``run_dir`` (default: the newest finished run with weights)."""
        document = self.window.document
        if run_dir is None:
            finished = self._finished_runs()
            if not finished:
                self.window.statusBar().showMessage("No finished run to evaluate yet: train first (F5)", 6000)
                return None
            run_dir = finished[-1]
        dialog = EvaluationDialog(run_dir, self._base_dir(document) if document is not None else None, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _=None, d=dialog: d in self.evaluations and self.evaluations.remove(d))
        self.evaluations.append(dialog)
        dialog.show()
        return dialog

    def show_gradients(self) -> None:
        """Show the dashboard's Gradients tab (a run warning in the Problems panel was chosen)."""
        dock = self.window.docks["training"]
        dock.show()
        dock.raise_()
        self.dashboard.show_gradients()

    def find_learning_rate(self, **options: object) -> LrFinderDialog | None:
        """Train > Find Learning Rate: the range test on a copy of the project, in a dialog."""
        return self._diagnostic(LrFinderDialog, options)  # type: ignore[return-value]

    def overfit_batch(self, **options: object) -> OverfitBatchDialog | None:
        """Train > Overfit One Batch: a copy of the model trained on one batch, in a dialog."""
        return self._diagnostic(OverfitBatchDialog, options)  # type: ignore[return-value]

    def _diagnostic(self, kind: type[DiagnosticDialog], options: dict) -> DiagnosticDialog | None:
        document = self.window.document
        if document is None:
            return None
        dialog = kind(document, self._base_dir(document), self.window, **options)
        dialog.set_theme(getattr(self.window, "theme", None))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _=None, d=dialog: d in self.diagnostics and self.diagnostics.remove(d))
        self.diagnostics.append(dialog)
        dialog.show()
        dialog.start()
        return dialog

    def resume_last(self) -> bool:
        """Continue the newest stopped or interrupted run of this project."""
        document = self.window.document
        if document is None:
            return False
        for run_dir in reversed(earlier_runs(document)):
            if (run_dir / "checkpoint.pt").is_file():
                return self.resume(run_dir)
        self.window.statusBar().showMessage("No earlier run of this project can be resumed", 6000)
        return False

    def data_problem(self) -> ProjectProblem | None:
        """Why the chosen data cannot be used, as the Data panel's last check found (``None``: it can)."""
        panel = self.data_panel
        if not panel.fit_message:
            return None
        title = "The data cannot be loaded" if panel.load_error else "The data does not fit the graph"
        return ProjectProblem(title, panel.fit_message, "data")

    def _on_data_fit(self, _message: str) -> None:
        self.window.problems.set_data_problem(self.data_problem())
        self.window.show_totals()

    def blocker(self) -> str:
        """Why the document cannot train now, in one line (``""``: it can)."""
        document = self.window.document
        if document is None:
            return "No project is open"
        analysis = document.model_analysis
        if not analysis.valid:
            first = analysis.errors[0].format(document.project.graph) if analysis.errors else "the graph is invalid"
            return f"The graph has {len(analysis.errors)} problem(s): {first}"
        problems = project_problems(document)
        data = self.data_problem()
        return problems[0].text if problems else data.text if data is not None else ""

    def update_train_tip(self, blocker: str) -> None:
        """The Train action says why it cannot start (or what it does)."""
        action = self.window.actions["train"]
        tip = f"Cannot train yet — {blocker}" if blocker else "Train the model in a new run"
        action.setToolTip(f"{tip} (F5)")
        action.setStatusTip(tip)

    def _start(self, resume_dir: Path | None) -> bool:
        window, document = self.window, self.window.document
        if document is None or self.session.active:
            return False
        document.refresh_analysis()
        analysis = document.model_analysis
        if not analysis.valid:
            first = analysis.errors[0].format(document.project.graph) if analysis.errors else "the graph is invalid"
            QMessageBox.warning(window, "Cannot train yet",
                                f"The graph has {len(analysis.errors)} problem(s); fix them first.\n\n{first}")
            window.docks["problems"].raise_()
            return False
        for problem in project_problems(document):
            QMessageBox.warning(window, "Cannot train yet", f"{problem.message}.\n\nTo fix it: {problem.fix}.")
            window.docks[problem.panel].show()
            window.docks[problem.panel].raise_()
            return False
        # Never wait for a preview still loading: the worker checks the data again and names
        # the Input node and both shapes if they do not fit.
        if not self.data_panel.loading and self.data_panel.fit_message:
            title = "The data cannot be loaded" if self.data_panel.load_error else "The data does not fit the graph"
            QMessageBox.warning(window, title, self.data_panel.fit_message)
            window.docks["data"].raise_()
            return False
        self.session.start(document, resume_dir)
        return True

    def toggle_pause(self) -> None:
        """Pause a running run, or resume a paused one."""
        if self.session.state == "paused":
            self.session.resume()
        else:
            self.session.pause()

    def stop(self) -> None:
        """Stop the run (it checkpoints first, so it can be resumed)."""
        self.session.stop()

    def open_runs_folder(self) -> None:
        """Show the project's runs folder in the file manager."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        if self.window.document is not None:
            root = runs_root(self.window.document)
            root.mkdir(parents=True, exist_ok=True)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    # ------------------------------------------------------------- reactions
    def _on_run_added(self, history: object) -> None:
        window = self.window
        dock = window.docks["training"]
        dock.show()
        dock.raise_()
        if dock.height() < DASHBOARD_HEIGHT and not dock.isFloating():
            window.resizeDocks([dock], [DASHBOARD_HEIGHT], Qt.Orientation.Vertical)
        document = window.document
        if document is not None and self.session.history is not None:
            self.inside.set_run(Path(self.session.history.run_dir), self._base_dir(document))
        window.statusBar().showMessage("Training started: the graph is locked until the run ends", 5000)

    def _on_events(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, RunStarted) and event.initial_weights:  # imported or exported weights are used
                self.window.statusBar().showMessage(f"Training {event.initial_weights}", 10000)

    def _on_run_ended(self, event: object) -> None:
        window = self.window
        if isinstance(event, Failed):
            window.statusBar().showMessage(f"Training failed: {event.message}", 15000)
            box = QMessageBox(QMessageBox.Icon.Warning, "Training failed", event.message,
                              QMessageBox.StandardButton.Ok, window)
            if event.details:
                box.setDetailedText(event.details)
            box.setWindowModality(Qt.WindowModality.WindowModal)
            box.open()  # not exec(): the app keeps running behind it
            self.failure_box = box
        else:
            reason = str(getattr(event, "reason", "completed")).replace("_", " ")
            window.statusBar().showMessage(f"Training {reason}", 8000)
        self.inside.refresh()
        if window.docks["try"].isVisible():
            self._offer_newest_run()
        history, document = self.session.history, window.document
        if history is not None and document is not None and history.run_dir:
            # saved elsewhere while it ran: the run joins the others once its process is gone
            parent = Path(history.run_dir).parent
            if parent != runs_root(document):
                QTimer.singleShot(REAP_AFTER_MS + 500, lambda: self._adopt_later(document, parent))

    def _adopt_later(self, document: Document, old_root: Path) -> None:
        if document is self.window.document and not self.session.active:
            self.adopt_runs(old_root)

    def _update_actions(self, state: str) -> None:
        actions = self.window.actions
        active = state != "idle"
        actions["train"].setEnabled(not active)
        actions["resume_run"].setEnabled(not active)
        actions["pause"].setEnabled(state in ("running", "paused"))
        actions["pause"].setText("Resume" if state == "paused" else "Pause")
        actions["pause"].setIconText("Resume" if state == "paused" else "Pause")
        actions["stop"].setEnabled(state in ("starting", "running", "paused"))
        # the edit commands follow the document's read-only state (MainWindow.refresh_edit_actions)

    # ------------------------------------------------------------- lifecycle
    def confirm_leave(self) -> bool:
        """Before the document closes: stop an active run (asking first). True means go ahead."""
        if not self.session.active:
            return True
        answer = QMessageBox.question(self.window, "Training is running",
                                      "A training run is in progress. Stop it (it is saved and can be resumed) "
                                      "and continue?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.shutdown()
        return True

    def shutdown(self) -> None:
        """Stop the run and wait briefly for its checkpoint; kill it if it does not end."""
        if not self.session.active:
            return
        self.session.stop()
        deadline = time.monotonic() + STOP_WAIT_S
        while self.session.active and time.monotonic() < deadline:
            QApplication.processEvents()
            self.session.poll()
            time.sleep(0.02)
        if self.session.active:
            self.session.kill()
