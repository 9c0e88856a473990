"""The Train menu's quick diagnostics: Find Learning Rate and Overfit One Batch.

Each dialog trains a throwaway copy of the project (frozen when it starts, so edits made
meanwhile do not reach it) on a :class:`~gui.background.BackgroundCall` thread. The engine's
progress callback only records the step in a box the dialog reads on a timer (no Qt object is
touched from the worker thread); Cancel sets a flag that the callback checks, so the test ends
at its next step. A problem the engine reports (:class:`~engine.errors.UserError`) is one line in
the dialog, never a traceback.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Callable

import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.graph.fileformat import dumps, loads
from engine.graph.project import Project
from engine.training.lr_finder import SMOOTHING, LrRange, lr_range_test
from engine.training.overfit_batch import OverfitResult, overfit_one_batch
from gui.background import BackgroundCall
from gui.document import Document
from gui.style import STATUS_TEXT, status_color
from gui.training.gradient_plots import LogAxis

#: Milliseconds between reads of the worker's progress.
POLL_MS = 100


def _rate(value: float) -> str:
    """A learning rate as people write it: 1e-7, 0.001, 10."""
    return f"{value:g}".replace("e-0", "e-").replace("e+0", "e+")


class Cancelled(Exception):
    """Raised in the worker thread by the progress callback once the person pressed Cancel."""


class ProgressBox:
    """What the worker thread reports, read by the dialog on the GUI thread."""

    def __init__(self) -> None:
        self.cancelled = False
        self._lock = threading.Lock()
        self._points: list[tuple[float, ...]] = []

    def cancel(self, *_: object) -> None:
        """Make the next report end the work."""
        self.cancelled = True

    def report(self, *point: float) -> None:
        """The engine's progress callback: record a step, or end the work if cancelled."""
        if self.cancelled:
            raise Cancelled()
        with self._lock:
            self._points.append(tuple(float(v) for v in point))

    def take(self) -> list[tuple[float, ...]]:
        """The steps reported since the last call."""
        with self._lock:
            points, self._points = self._points, []
        return points


class DiagnosticDialog(QDialog):
    """A progress bar, a plot and a result line over Run Again / Cancel / Close.

    Subclasses say what runs (:meth:`work`), how a step shows (:meth:`show_points`) and how the
    result shows (:meth:`show_result`).
    """

    title = ""

    def __init__(self, document: Document, base_dir: Path | None, intro: str, parent: QWidget | None = None,
                 log_y: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.title)
        self.document = document
        self.base_dir = base_dir
        self.result_value: Any = None
        self.error = ""
        self.running = False
        self._box: ProgressBox | None = None
        self.call = BackgroundCall(self)
        self.call.done.connect(self._on_done)
        self.intro = QLabel(intro)
        self.intro.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.plot = pg.PlotWidget(background="w", axisItems={"left": LogAxis("left")} if log_y else None)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(220)
        self._style_plot(self.plot.getPlotItem())
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_button = QPushButton("Run Again")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the test at its next step")
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        self.buttons = QHBoxLayout()
        self.buttons.addWidget(self.run_button)
        self.buttons.addWidget(self.cancel_button)
        self.buttons.addStretch(1)
        self.buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addLayout(self.buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.resize(640, 480)

    @staticmethod
    def _style_plot(plot: pg.PlotItem, text: str = "#3D444D") -> None:
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(text)
            plot.getAxis(axis).setPen(text)
            plot.getAxis(axis).enableAutoSIPrefix(False)
            label = plot.getAxis(axis).label
            if label.isVisible():
                plot.getAxis(axis).setLabel(plot.getAxis(axis).labelText, color=text)

    def set_theme(self, theme: object) -> None:
        """The plot's background and text in the light or dark theme."""
        dark = getattr(theme, "name", "light") == "dark"
        self.plot.setBackground(getattr(theme, "node_body", "w") if dark else "w")
        self._style_plot(self.plot.getPlotItem(), getattr(theme, "node_text", "#E6EDF3") if dark else "#3D444D")

    # --------------------------------------------------------------- running
    def work(self, project: Project, report: Callable[..., None]) -> Any:  # pragma: no cover - abstract
        """Run the diagnostic (on the worker thread) and return its result."""
        raise NotImplementedError

    def start(self) -> None:
        """Run the diagnostic on a frozen copy of the document's project."""
        if self.running or not shiboken6.isValid(self.document):
            return
        project = loads(dumps(self.document.project))  # frozen now: later edits do not reach the test
        box = self._box = ProgressBox()
        self.destroyed.connect(box.cancel)  # the window closed with the dialog: the worker ends at its next step
        self.result_value, self.error = None, ""
        self.reset_view()
        self.running = True
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing the model and the data…")
        self._set_status("", "")
        self._show_running()
        self.call.start(lambda: self.work(project, box.report))
        self.timer.start()

    def cancel(self) -> None:
        """End the running test at its next step (its result is never shown)."""
        if not self.running or self._box is None:
            return
        self._box.cancel()
        self.call.cancel()  # the job's answer is stale now
        self._finish()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Cancelled")
        self._set_status("Cancelled: nothing was changed.", "")

    def _poll(self) -> None:
        if self._box is not None:
            points = self._box.take()
            if points:
                self.show_points(points)

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        if ticket != self.call.ticket or not self.running:
            return  # a cancelled test's late answer
        self._poll()
        self._finish()
        if error:
            self.error = error.splitlines()[0] if error else ""
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("Failed")
            self._set_status(self.error, "error")
            return
        self.result_value = result
        self.show_result(result)

    def _finish(self) -> None:
        self.running = False
        self.timer.stop()
        self._show_running()

    def _show_running(self) -> None:
        self.run_button.setEnabled(not self.running)
        self.cancel_button.setEnabled(self.running)

    def _set_status(self, text: str, kind: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {status_color(kind)};" if kind else "")

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the running test has reported (tests)."""
        done = self.call.wait(msecs)
        self._poll()
        return done

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.cancel()
        super().closeEvent(event)

    def reset_view(self) -> None:  # pragma: no cover - abstract
        """Empty the plot for a new test."""
        raise NotImplementedError

    def show_points(self, points: list[tuple[float, ...]]) -> None:  # pragma: no cover - abstract
        """Show the steps just reported."""
        raise NotImplementedError

    def show_result(self, result: Any) -> None:  # pragma: no cover - abstract
        """Show the finished test's result."""
        raise NotImplementedError


class LrFinderDialog(DiagnosticDialog):
    """Train > Find Learning Rate: the range test, its smoothed loss against the rate, the suggestion,
    and Use This Learning Rate (one undo step)."""

    title = "Find Learning Rate"

    def __init__(self, document: Document, base_dir: Path | None, parent: QWidget | None = None,
                 steps: int = 200, start: float = 1e-7, end: float = 10.0) -> None:
        super().__init__(document, base_dir, f"Trains a throwaway copy of the model for up to {steps} steps while the "
                         f"learning rate rises from {_rate(start)} to {_rate(end)}, and suggests the rate where the "
                         "loss falls fastest. Nothing in the project changes until you use the suggestion.", parent)
        self.steps, self.start_lr, self.end_lr = steps, start, end
        plot = self.plot.getPlotItem()
        plot.setLogMode(x=True)
        plot.setXRange(math.log10(start), math.log10(end), padding=0.02)  # the whole range from the start
        plot.setLabel("bottom", "learning rate (log)")
        plot.setLabel("left", "loss")
        faint = pg.mkColor("#2F81F7")
        faint.setAlpha(70)
        self.raw_curve = plot.plot(pen=pg.mkPen(faint, width=1), name="loss")
        self.smooth_curve = plot.plot(pen=pg.mkPen("#2F81F7", width=2), name="smoothed")
        self.mark = pg.InfiniteLine(1e-3, angle=90, pen=pg.mkPen("#1A7F37", width=1.5, style=Qt.PenStyle.DashLine),
                                    label="", labelOpts={"position": 0.9, "color": "#1A7F37",
                                                         "fill": pg.mkBrush(255, 255, 255, 220)})
        self.mark.hide()
        plot.addItem(self.mark, ignoreBounds=True)
        self.use_button = QPushButton("Use This Learning Rate")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_suggestion)
        self.buttons.insertWidget(2, self.use_button)
        self._lrs: list[float] = []
        self._raw: list[float] = []
        self._smoothed: list[float] = []
        self._average = 0.0
        self.suggestion: float | None = None
        self._used = False  # the suggestion was applied from this dialog
        # Undo and Redo work here as in the main window (the dialog is a window of its own), and the
        # dialog follows the project's learning rate whichever window undid the change.
        for keys, step in ((QKeySequence.StandardKey.Undo, document.undo_stack.undo),
                           (QKeySequence.StandardKey.Redo, document.undo_stack.redo)):
            QShortcut(QKeySequence(keys), self, activated=step)
        document.undo_stack.indexChanged.connect(self._follow_project)

    def _follow_project(self, _index: int = 0) -> None:
        """The project's learning rate changed (use, undo, redo, an edit): say where it stands."""
        if self.suggestion is None or not shiboken6.isValid(self.document):
            return
        current = self.document.project.training.get("lr")
        if isinstance(current, (int, float)) and float(current) == self.suggestion:
            self._set_status(f"The learning rate is {self.suggestion:g} now (Undo puts the old one back)."
                             if self._used else f"Suggested learning rate: {self.suggestion:g}, which the project "
                             "already uses.", "ok")
            self.use_button.setEnabled(False)
        else:
            now = f" The project uses {float(current):g}." if isinstance(current, (int, float)) else ""
            self._set_status(f"Suggested learning rate: {self.suggestion:g}, where the loss falls fastest.{now}", "ok")
            self.use_button.setEnabled(True)

    def set_theme(self, theme: object) -> None:
        super().set_theme(theme)
        dark = getattr(theme, "name", "light") == "dark"
        color = STATUS_TEXT["dark" if dark else "light"]["ok"]
        fill = QColor(getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFF")
        fill.setAlpha(220)
        self.mark.setPen(pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine))
        self.mark.label.setColor(color)
        self.mark.label.fill = pg.mkBrush(fill)

    def work(self, project: Project, report: Callable[..., None]) -> LrRange:
        return lr_range_test(project, self.base_dir, steps=self.steps, start=self.start_lr, end=self.end_lr,
                             progress=report)

    def reset_view(self) -> None:
        self._lrs, self._raw, self._smoothed, self._average = [], [], [], 0.0
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.mark.hide()
        self.suggestion = None
        self._used = False
        self.use_button.setEnabled(False)
        self.use_button.setText("Use This Learning Rate")

    def show_points(self, points: list[tuple[float, ...]]) -> None:
        for step, lr, loss in points:  # smoothed as the engine smooths it
            finite = loss if math.isfinite(loss) else 1e30
            self._average = SMOOTHING * self._average + (1 - SMOOTHING) * finite
            self._lrs.append(lr)
            self._raw.append(loss)
            self._smoothed.append(self._average / (1 - SMOOTHING ** (int(step) + 1)))
        step, lr, loss = points[-1]
        self.progress.setRange(0, self.steps)
        self.progress.setValue(int(step) + 1)
        self.progress.setFormat(f"Step {int(step) + 1}/{self.steps} · learning rate {lr:.2g} · loss {loss:.4g}")
        self._draw(self._lrs, self._raw, self._smoothed)

    def _draw(self, lrs: list[float], raw: list[float], smoothed: list[float]) -> None:
        pairs = [(x, y) for x, y in zip(lrs, raw) if math.isfinite(y)]
        self.raw_curve.setData([x for x, _ in pairs], [y for _, y in pairs])
        self.smooth_curve.setData(lrs, smoothed)
        finite = [v for v in smoothed if math.isfinite(v) and v < 1e29]
        if finite:  # the plateau and the fall (the raw loss's too); a divergence runs off the top
            at = finite.index(min(finite))
            lowest = min([min(finite), *(v for v in raw[: at + 1] if math.isfinite(v))])
            top = max(finite[: at + 1])
            span = max(top - lowest, abs(lowest) * 0.1, 1e-6)
            self.plot.getPlotItem().setYRange(lowest - 0.1 * span, top + 0.15 * span, padding=0)

    def show_result(self, result: LrRange) -> None:
        self._draw(result.lrs, result.losses, result.smoothed)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        ended = "the loss diverged" if result.stopped == "diverged" else "end of the range"
        self.progress.setFormat(f"{len(result.lrs)} steps · {ended}")
        current = self.document.project.training.get("lr") if shiboken6.isValid(self.document) else None
        now = f" The project uses {float(current):g}." if isinstance(current, (int, float)) else ""
        if result.suggestion is None:
            self._set_status("The loss never fell: no learning rate to suggest. The model or the data may be the "
                             "problem (try Overfit One Batch)." + now, "warning")
            return
        self.suggestion = suggestion = float(f"{result.suggestion:.2g}")
        self.mark.show()
        self.mark.setValue(math.log10(suggestion))
        self.mark.label.setFormat(f"suggested {_rate(suggestion)}")
        self.use_button.setText(f"Use {suggestion:g}")
        self.use_button.setEnabled(True)
        self.use_button.setToolTip(f"Set training.lr to {suggestion:g} (one undoable change)")
        self._follow_project()

    def use_suggestion(self) -> bool:
        """Set the project's learning rate to the suggestion: one undo step."""
        document = self.document
        if self.suggestion is None or not shiboken6.isValid(document):
            return False
        if not document.push(document.settings_command("training", {"lr": self.suggestion},
                                                       f"Set learning rate to {self.suggestion:g} (found)")):
            self._set_status(f"Cannot set it now: {document.read_only_reason or 'the project cannot change'}",
                             "error")
            return False
        self._used = True
        self._follow_project()
        return True


class OverfitBatchDialog(DiagnosticDialog):
    """Train > Overfit One Batch: the loss of a fresh copy trained on one batch, and the verdict."""

    title = "Overfit One Batch"

    def __init__(self, document: Document, base_dir: Path | None, parent: QWidget | None = None,
                 max_steps: int = 300) -> None:
        super().__init__(document, base_dir, f"Trains a throwaway copy of the model on a single batch for up to "
                         f"{max_steps} steps. A network that can learn at all memorizes a few samples; one that cannot "
                         "has a wiring or capacity problem, or a learning rate far off.", parent, log_y=True)
        self.max_steps = max_steps
        plot = self.plot.getPlotItem()
        plot.setLogMode(y=True)
        plot.setLabel("bottom", "step")
        plot.setLabel("left", "loss (log)")
        self.curve = plot.plot(pen=pg.mkPen("#2F81F7", width=2))
        self._steps: list[float] = []
        self._losses: list[float] = []

    def work(self, project: Project, report: Callable[..., None]) -> OverfitResult:
        return overfit_one_batch(project, self.base_dir, max_steps=self.max_steps, progress=report)

    def reset_view(self) -> None:
        self._steps, self._losses = [], []
        self.curve.setData([], [])

    def show_points(self, points: list[tuple[float, ...]]) -> None:
        for step, loss in points:
            if math.isfinite(loss) and loss > 0:
                self._steps.append(step)
                self._losses.append(loss)
        step, loss = points[-1]
        self.progress.setRange(0, self.max_steps)
        self.progress.setValue(int(step))
        self.progress.setFormat(f"Step {int(step)}/{self.max_steps} · loss {loss:.4g}")
        self.curve.setData(self._steps, self._losses)

    def show_result(self, result: OverfitResult) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"{result.steps} steps · {result.seconds:.1f} s")
        mark = "✔" if result.fitted else "✘"
        message = result.message()
        self._set_status(f"{mark} {message[:1].upper()}{message[1:]}", "ok" if result.fitted else "error")
