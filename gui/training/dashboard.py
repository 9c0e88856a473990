"""The training dashboard: run controls and progress, live curves and gradient health (tabs),
predictions, the run list, and the overfitting watch under them.

It draws what a :class:`~gui.training.session.TrainingSession` reports and never touches the
model. Earlier runs of the project are read from their run folders so they can be overlaid.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.layers.params import ParamKindError
from engine.settings import TRAINING_PARAMS
from engine.training.events import (
    BatchMetrics,
    EpochEnd,
    Failed,
    GradientHealth,
    LearningRateChanged,
    RunStarted,
)
from engine.training.history import RunHistory
from gui.document import Document
from gui.icons import icon
from gui.param_editors import make_editor, param_summary
from gui.progress_bar import ElidingProgressBar
from gui.training.gradient_plots import GradientPlots
from gui.training.overfit_watch import OverfitWatch
from gui.training.plot_parts import export_layout_png
from gui.training.plots import MetricPlots
from gui.training.predictions import PredictionView
from gui.training.run_list import METRIC_LABELS, RunList
from gui.training.session import TrainingSession, earlier_runs

#: Seconds between updates of the progress text and the run list while a run streams events.
TEXT_UPDATE_S = 0.5
#: The learning rate's declaration: the live editor takes its bounds from it.
LR_PARAM = next(param for param in TRAINING_PARAMS if param.name == "lr")
_STATE_TEXT = {"idle": "Ready", "starting": "Starting the training process…", "running": "Training",
               "paused": "Paused", "stopping": "Stopping after this batch…"}


class TrainingDashboard(QWidget):
    """Everything about training a document: controls, progress, curves, predictions, runs.

    Args:
        session: The session that starts runs and reports events.
        actions: The window's ``train``, ``pause`` and ``stop`` actions (shown as buttons).

    Signals:
        resume_requested(str): The person asked to continue a stopped run (its folder).
        evaluate_requested(str): The person asked to evaluate a run (its folder).
        run_warnings_changed(list, str, int): The highlighted run's latest gradient warnings
            (``{"kind", "message"}`` each; ``[]`` when none), its name and the sample's step.
    """

    resume_requested = Signal(str)
    evaluate_requested = Signal(str)
    run_warnings_changed = Signal(list, str, int)

    def __init__(self, session: TrainingSession, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.document: Document | None = None
        self._overlays: list[Path] = []  # run folders overlaid from elsewhere (search trials)
        self.plots = MetricPlots()
        self.gradients = GradientPlots()
        self.overfit = OverfitWatch(self.plots.loss)
        self.predictions = PredictionView()
        self.runs = RunList()
        self.progress = ElidingProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Press Train (F5) to start")
        self.progress.setValue(0)
        self.state_label = QLabel(_STATE_TEXT["idle"])
        self.lr_editor = make_editor(LR_PARAM, LR_PARAM.default)  # same bounds and parsing as the Settings panel
        self.lr_editor.setToolTip(f"New learning rate ({param_summary(LR_PARAM)}); applied when you press Set LR "
                                  "(while paused). Up / Down multiply or divide by 10.")
        self.lr_editor.setMaximumWidth(self.fontMetrics().horizontalAdvance("0.000000000") + 16)
        self.lr_editor.problem_changed.connect(self._on_lr_problem)
        self._lr_problem = ""
        self._paused = False
        self.lr_button = QPushButton("Set LR")
        self.lr_button.setToolTip("Apply the learning rate to the paused run (marked on the curves)")
        self.lr_button.clicked.connect(self.apply_learning_rate)
        self.log_box = QCheckBox("Log scale")
        self.log_box.toggled.connect(self.plots.set_log_scale)
        save_menu = QMenu(self)
        save_menu.addAction("Plots as PNG…", self.export_png_dialog).setToolTip("Save the plots as a PNG image")
        save_menu.addAction("Metrics as CSV…", self.export_csv_dialog).setToolTip(
            "Save the highlighted run's per-epoch metrics as CSV")
        save_menu.setToolTipsVisible(True)
        self.save_button = QToolButton()  # one button for both: the progress text keeps the room
        self.save_button.setText("Save")
        self.save_button.setToolTip("Save the plots as PNG or the highlighted run's metrics as CSV")
        self.save_button.setMenu(save_menu)
        self.save_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        bar = QHBoxLayout()
        for key in ("train", "pause", "stop"):
            button = QToolButton()
            button.setDefaultAction(actions[key])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(button)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.state_label)
        bar.addSpacing(8)
        bar.addWidget(self.lr_editor)
        bar.addWidget(self.lr_button)
        bar.addSpacing(8)
        bar.addWidget(self.log_box)
        bar.addWidget(self.save_button)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.plots, "Curves")
        self.tabs.addTab(self.gradients, "Gradients")
        self.tabs.setTabToolTip(0, "Loss, metric and learning rate of the runs")
        self.tabs.setTabToolTip(1, "Gradient health of the highlighted run: per layer gradient norm and update "
                                   "size, dead ReLU units")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self.predictions)
        split.addWidget(self.runs)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        split.setStretchFactor(2, 2)
        split.setSizes([620, 400, self.runs.minimumWidth() + 40])
        self.splitter = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.overfit)
        self._warned: tuple[object, ...] = ()

        self._rate_mark: tuple[float, int] | None = None
        self._shown_at = 0.0
        self._steps_per_s = 0.0
        self._started: RunStarted | None = None
        session.run_added.connect(self._on_run_added)
        session.events_received.connect(self._on_events)
        session.snapshot_received.connect(
            lambda event: self.predictions.show_snapshot(event.view, event.payload, event.epoch))
        session.state_changed.connect(self._on_state)
        session.run_ended.connect(self._on_run_ended)
        session.first_step.connect(self.plots.hold_redraws)
        self.runs.visibility_changed.connect(self.plots.set_visible)
        self.runs.run_chosen.connect(self._show_run)
        self.runs.resume_requested.connect(
            lambda key: self.resume_requested.emit(self.plots.runs[key].history.run_dir))
        self.runs.evaluate_requested.connect(
            lambda key: self.evaluate_requested.emit(self.plots.runs[key].history.run_dir))
        self._on_state("idle")

    # -------------------------------------------------------------- document
    def set_document(self, document: Document) -> None:
        """Show ``document``'s earlier runs (read from their folders)."""
        self.document = document
        self._overlays = []  # the previous document's trials are not this one's
        self.overfit.set_document(document)
        self.predictions.clear()
        self.reload_runs()
        self._show_lr(document.project.training.get("lr", LR_PARAM.default))

    def reload_runs(self) -> None:
        """Read the document's runs from their folders again (after they moved); the active run stays live."""
        if self.document is None:
            return
        live = self.session.history if self.session.active else None
        self.plots.clear()
        self.runs.clear_runs()
        newest = None
        for path in earlier_runs(self.document):
            if live is None or Path(live.run_dir) != path:
                newest = self._add_history(RunHistory.from_run_dir(path), current=False)
        self._overlays = [path for path in self._overlays if path.is_dir()]
        for path in self._overlays:
            self._add_history(RunHistory.from_run_dir(path), current=False)
        if live is not None:
            self._add_history(live, current=True)
        elif newest is not None:
            self._show_run(newest)  # the newest run is highlighted: its snapshot, its key on the plots
        self._follow_current()

    def overlay_run(self, run_dir: Path) -> str:
        """Overlay a run folder that is not one of the project's runs (a search trial): its curves
        and a row in the run list, while this document is open. Returns its key."""
        if Path(run_dir) not in self._overlays:
            self._overlays.append(Path(run_dir))
        return self._add_history(RunHistory.from_run_dir(Path(run_dir)), current=False)

    def _add_history(self, history: RunHistory, current: bool) -> str:
        key = self.plots.add_run(history, current=current)
        self.runs.add(key, history, self.plots.runs[key].color)
        return key

    def _show_run(self, key: str) -> None:
        """Highlight a run: its snapshot in the prediction view, its values on hover."""
        curves = self.plots.runs.get(key)
        if curves is None:
            return
        if not self.session.active:
            self.plots.set_current(key)
            self._follow_current()
        snapshot = curves.history.snapshot
        if snapshot is not None and not self.session.active:
            self.predictions.show_snapshot(snapshot.view, snapshot.payload, snapshot.epoch)
            self.predictions.set_run_epoch(len(curves.history.epoch_x))

    # ---------------------------------------------------------------- events
    def _on_run_added(self, history: RunHistory) -> None:
        self._started = None
        self._rate_mark = None
        self._steps_per_s = 0.0
        self.predictions.clear()
        self._add_history(history, current=True)
        self._follow_current()
        self.predictions.set_run_epoch(None)
        # empty until the worker reports its plan: not the busy indicator, whose animation repaints
        # the bar 25 times a second (a few ms each) while the worker starts and trains its first steps
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Starting…")

    def _on_events(self, events: list) -> None:
        history = self.session.history
        if history is None:
            return
        for event in events:
            if isinstance(event, RunStarted):
                self._started = event
                self.progress.setRange(0, max(1, event.epochs * event.steps_per_epoch))
            elif isinstance(event, LearningRateChanged):
                self._show_lr(event.new)
            elif isinstance(event, (BatchMetrics, EpochEnd)):
                self._update_rate(event.global_step)
        kinds = {type(event) for event in events}
        if EpochEnd in kinds and self.overfit.history is history:
            self.overfit.check()
        if GradientHealth in kinds:
            self._show_warnings()
        now = time.monotonic()
        if now - self._shown_at >= TEXT_UPDATE_S:  # a progress bar repaints at once: a few times a second will do
            self._shown_at = now
            self._update_progress(history)
            self.runs.refresh(history.run_dir or history.name)
            self.predictions.set_run_epoch(len(history.epoch_x))

    def _update_rate(self, global_step: int) -> None:
        """Steps per second over the last few seconds (smooth, and honest after a pause)."""
        now = time.monotonic()
        if self._rate_mark is None or global_step < self._rate_mark[1]:
            self._rate_mark = (now, global_step)
            return
        elapsed = now - self._rate_mark[0]
        if elapsed >= 1.0:
            rate = (global_step - self._rate_mark[1]) / elapsed
            self._steps_per_s = rate if self._steps_per_s == 0 else 0.5 * self._steps_per_s + 0.5 * rate
            self._rate_mark = (now, global_step)

    def _update_progress(self, history: RunHistory) -> None:
        started = self._started
        if started is None:
            return
        total = max(1, started.epochs * started.steps_per_epoch)
        self.progress.setValue(min(history.global_step, total))
        epoch = min(history.epoch + 1, started.epochs)
        parts = [f"Epoch {epoch}/{started.epochs}"]
        if self.session.state == "paused":
            parts.append("paused")  # no rate and no ETA: nothing moves
        elif self._steps_per_s > 0:
            remaining = (total - history.global_step) / self._steps_per_s
            parts += [f"{self._steps_per_s:,.0f} steps/s", f"ETA {_duration(remaining)}"]
        metric = history.final_metric()
        if metric is not None:  # "val accuracy 97.2%", or a training value by its own name ("G loss 0.84")
            shown = f"{metric[1]:.1%}" if metric[0] == "accuracy" else f"{metric[1]:.4g}"
            parts.append(f"val {metric[0]} {shown}" if metric[0] in history.val else
                         f"{METRIC_LABELS.get(metric[0], metric[0])} {shown}")
        self.progress.setFormat(" · ".join(parts))

    def _on_state(self, state: str) -> None:
        self.state_label.setText(_STATE_TEXT.get(state, state))
        history = self.session.history
        if state in ("paused", "running"):
            self._rate_mark = None  # the rate after a pause counts from the moment it resumed
            if history is not None:
                self._update_progress(history)
        if history is not None and state != "idle":  # no events come while paused: show the state now
            self.runs.refresh(history.run_dir or history.name)
        if state == "paused" and history is not None and history.lr:
            self._show_lr(history.lr[-1])  # the rate the run uses now (a schedule moves it), ready to change
        self.overfit.set_busy(state != "idle")
        self._paused = paused = state == "paused"
        self.lr_editor.setEnabled(paused)
        self.lr_button.setEnabled(paused and not self._lr_problem)

    def _on_run_ended(self, event: object) -> None:
        history = self.session.history
        if history is not None:
            self._update_progress(history)
            self.runs.refresh(history.run_dir or history.name)
            self.predictions.set_run_epoch(len(history.epoch_x))
        if isinstance(event, Failed):
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat(f"Failed: {event.message}")
            self.state_label.setText("Failed")
        else:
            reason = str(getattr(event, "reason", "completed")).replace("_", " ")
            kept = [part for part in self.progress.format().split(" · ")
                    if not part.startswith(("ETA", "paused")) and not part.endswith("steps/s")]
            self.progress.setFormat(" · ".join([*kept, reason]))
            self.state_label.setText("Finished" if getattr(event, "reason", "") != "stopped" else "Stopped")

    def _follow_current(self) -> None:
        """The gradients tab, the overfitting watch and the run warnings follow the highlighted run."""
        history = self.plots.current_history()
        self.gradients.set_history(history)
        self.overfit.set_history(history)
        self._show_warnings(force=True)

    def _show_warnings(self, force: bool = False) -> None:
        """Tell the highlighted run's latest gradient warnings (the Problems panel lists them)."""
        history = self.plots.current_history()
        series = history.gradients if history is not None else None
        warnings = list(series.warnings) if series is not None else []
        shown = (id(history), series.step if series is not None else 0, tuple(map(str, warnings)))
        if shown == self._warned and not force:
            return
        self._warned = shown
        self.tabs.setTabIcon(1, icon("warning") if warnings else QIcon())
        self.run_warnings_changed.emit(warnings, history.name if history is not None else "",
                                       series.step if series is not None else 0)

    def show_gradients(self) -> None:
        """Bring the Gradients tab to the front."""
        self.tabs.setCurrentWidget(self.gradients)

    def set_theme(self, theme: object) -> None:
        """Recolour the curves, the gradient plots and the overfitting mark."""
        self.plots.set_theme(theme)
        self.gradients.set_theme(theme)
        self.overfit.set_theme(theme)

    # --------------------------------------------------------------- actions
    def apply_learning_rate(self) -> None:
        """Send the typed learning rate to the paused run (a value outside the declared bounds never goes)."""
        value = self.lr_editor.current_value()
        if self.session.state == "paused" and value is not None and math.isfinite(value):
            self.session.set_learning_rate(float(value))

    def _show_lr(self, value: object) -> None:
        try:
            self.lr_editor.set_value(value)
        except (ParamKindError, TypeError, ValueError):  # a file's odd value: keep what is shown
            pass

    def _on_lr_problem(self, problem: str) -> None:
        self._lr_problem = problem
        self.lr_button.setEnabled(self._paused and not problem)
        self.lr_button.setToolTip(f"Cannot set: {problem}" if problem else
                                  "Apply the learning rate to the paused run (marked on the curves)")

    def _save_folder(self) -> Path:
        """Where the Save dialogs start: the project's folder, else the home folder."""
        doc = self.document
        return doc.path.parent if doc is not None and doc.path is not None else Path.home()

    def _saved(self, path: Path, what: str) -> None:
        window = self.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(f"Saved {what} to {path}", 6000)

    def export_png_dialog(self) -> None:
        """Ask for a file and save the plots of the tab on show (curves, or gradient health) there."""
        gradients = self.tabs.currentWidget() is self.gradients
        stem = (self.document.path.stem if self.document is not None and self.document.path else "training")
        suggested = self._save_folder() / f"{stem}-{'gradients' if gradients else 'curves'}.png"
        name, _ = QFileDialog.getSaveFileName(self, "Save Plots as PNG", str(suggested), "PNG images (*.png)")
        if not name:
            return
        try:
            export_layout_png(self.gradients.view, Path(name)) if gradients else self.plots.export_png(Path(name))
        except OSError as exc:
            QMessageBox.warning(self, "Cannot save the plots", f"{name}: {exc.strerror or exc}")
            return
        self._saved(Path(name), "the gradient plots" if gradients else "the plots")

    def export_csv_dialog(self) -> None:
        """Ask for a file and save the highlighted run's metrics there."""
        history = self.plots.current_history()
        if history is None:
            return
        suggested = self._save_folder() / f"{history.name}.csv"
        name, _ = QFileDialog.getSaveFileName(self, "Save Metrics as CSV", str(suggested), "CSV files (*.csv)")
        if not name:
            return
        try:
            history.write_csv(Path(name))
        except OSError as exc:
            QMessageBox.warning(self, "Cannot save the metrics", f"{name}: {exc.strerror or exc}")
            return
        self._saved(Path(name), f"the metrics of {history.name}")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
