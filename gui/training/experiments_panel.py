"""The Experiments panel: a search's trials as a table and plots, and what to do with a trial.

The panel shows a :class:`~gui.training.experiment_data.StudyView` (the study as last read)
merged with the live news of the search running now (each trial's epochs, its end), which
arrive between two reads of the study. It never reads the study itself and never touches
the document: :class:`~gui.training.experiments.ExperimentsController` does both.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSplitter, QToolButton, QVBoxLayout, QWidget

from gui.training.experiment_data import StudyView, TrialRow, format_objective, format_value
from gui.training.experiment_plots import ExperimentPlots
from gui.training.trials_table import TrialsTable

#: Live trial ends and what the table calls them.
_LIVE_STATES = {"complete": "complete", "pruned": "pruned", "failed": "fail", "interrupted": "interrupted"}

#: What the panel says before the project's first search.
NO_STUDY = ("No search has run for this project yet: Train > Run Search (Ctrl+Shift+F5) runs the one the "
            "Search panel describes")


class ExperimentsPanel(QWidget):
    """Trials table, plots, and the buttons that act on a trial.

    Args:
        actions: The window's ``run_search`` and ``stop_search`` actions (shown as buttons).

    Signals:
        overlay_requested(int): Overlay the trial's curves on the Training dashboard.
        open_requested(int): Open the trial's project in a new window.
        apply_requested(int): Write the trial's values into the document (one undo step).
    """

    overlay_requested = Signal(int)
    open_requested = Signal(int)
    apply_requested = Signal(int)

    def __init__(self, actions: dict[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view: StudyView | None = None
        self.live: dict[int, TrialRow] = {}
        self.epochs: dict[int, int] = {}
        self.running: set[int] = set()
        #: Whether a search runs now (its study's running trials are running, not stopped).
        self.searching = False
        self.status = QLabel(NO_STUDY)
        self.status.setWordWrap(False)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setMinimumWidth(80)
        self.overlay_button = QPushButton("Overlay Curves")
        self.overlay_button.setToolTip("Add the selected trial's curves to the Training dashboard (or double-click it)")
        self.open_button = QPushButton("Open as Project")
        self.open_button.setToolTip("Open the selected trial's project (its values applied) in a new window")
        self.apply_button = QPushButton("Apply Best")
        self.overlay_button.clicked.connect(lambda: self._emit_selected(self.overlay_requested))
        self.open_button.clicked.connect(lambda: self._emit_selected(self.open_requested))
        self.apply_button.clicked.connect(lambda: self.view is not None and self.view.best is not None
                                          and self.apply_requested.emit(self.view.best))
        bar = QHBoxLayout()
        for key in ("run_search", "stop_search"):
            button = QToolButton()
            button.setDefaultAction(actions[key])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            bar.addWidget(button)
        bar.addSpacing(6)
        bar.addWidget(self.status, 1)
        for button in (self.overlay_button, self.open_button, self.apply_button):
            bar.addWidget(button)
        self.table = TrialsTable()
        self.plots = ExperimentPlots()
        self.table.trial_activated.connect(self.overlay_requested)
        self.table.action_requested.connect(self._on_table_action)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.plots.trial_clicked.connect(self.table.select_number)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.plots)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([460, 700])
        split.setChildrenCollapsible(False)
        self.splitter = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        self._update_buttons()

    # ----------------------------------------------------------------- public
    def clear(self, message: str = "") -> None:
        """Forget the study and the live news (another document, another study)."""
        self.view = None
        self.live.clear()
        self.epochs.clear()
        self.running.clear()
        self.searching = False
        self.table.set_columns([], [])
        self.plots.show_live({}, set())
        self.plots.show_view(None)
        if message:
            self.status.setText(message)
        self._update_buttons()

    def show_view(self, view: StudyView) -> None:
        """Show the study as just read; live news it already holds is dropped."""
        self.view = view
        for number, row in list(self.live.items()):
            read = view.trial(number)
            if read is not None and read.state not in ("running", "waiting") and number not in self.running:
                del self.live[number]
        self.table.set_columns(view.axes, view.objectives)
        self._show_rows()
        self.plots.show_view(view)
        self.plots.show_live(self._live_curves(), self.running)
        self._update_buttons()

    def add_updates(self, updates: list[object]) -> bool:
        """Take a search's :class:`~engine.search.trial.TrialUpdate` objects; returns whether a trial ended."""
        ended = False
        for update in updates:
            number = update.number  # type: ignore[attr-defined]
            row = self.live.get(number)
            if row is None:
                row = self.live[number] = TrialRow(number, "running", dict(update.params), run=update.run,  # type: ignore[attr-defined]
                                                   baseline=bool(getattr(update, "baseline", False)))
            state = update.state  # type: ignore[attr-defined]
            if state == "running":
                self.running.add(number)
                row.state = "running"
                row.curve.append((update.epoch, update.metric))  # type: ignore[attr-defined]
                row.values = [update.metric]  # type: ignore[attr-defined]  # provisional: the latest epoch's
                self.epochs[number] = update.epoch  # type: ignore[attr-defined]
            else:
                ended = True
                self.running.discard(number)
                row.state = _LIVE_STATES.get(state, state)
                row.values = update.values if update.values else row.values  # type: ignore[attr-defined]
                row.message, row.seconds = update.message, update.seconds  # type: ignore[attr-defined]
        self._show_rows()
        self.plots.show_live(self._live_curves(), self.running)
        return ended

    def begin_search(self) -> None:
        """A search starts: trials the study says are running are."""
        self.searching = True

    def end_search(self) -> None:
        """The search is over: no trial runs any more."""
        self.searching = False
        self.running.clear()
        self._show_rows()
        self.plots.show_live(self._live_curves(), self.running)

    def counts(self) -> dict[str, int]:
        """Trials per state as the table shows them."""
        counts: dict[str, int] = {}
        for row in self.rows():
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts

    def summary(self) -> str:
        """``4 complete · 1 pruned · best val_accuracy 0.7 (trial 0)``."""
        counts = self.counts()
        parts = [f"{counts[s]} {w}" for s, w in (("running", "running"), ("complete", "complete"),
                                                 ("pruned", "pruned"), ("fail", "failed"),
                                                 ("interrupted", "stopped")) if counts.get(s)]
        view = self.view
        if view is not None and view.best is not None:
            best = view.trial(view.best)
            if best is not None and best.values:
                parts.append(f"best {view.objectives[0]} {format_objective(best.values[0])} (trial {best.number})")
        return " · ".join(parts) if parts else "no trials yet"

    def rows(self) -> list[TrialRow]:
        """The study's trials with the live news laid over them, by number."""
        rows = {t.number: t for t in self.view.trials} if self.view is not None else {}
        for number, live in self.live.items():
            read = rows.get(number)
            if read is None or number in self.running or read.state in ("running", "waiting"):
                rows[number] = live
        for number, row in rows.items():
            if row.state == "running" and not self.searching:  # stays running in the study: the next
                rows[number] = dataclasses.replace(row, state="interrupted")  # search continues it
        return [rows[n] for n in sorted(rows)]

    # ---------------------------------------------------------------- private
    def _show_rows(self) -> None:
        view = self.view
        if view is None and self.live and not self.table.columns:
            return  # the study is not read yet: its columns come with it
        self.table.show_rows(self.rows(), view.best if view else None, view.pareto if view else None,
                             {n: e for n, e in self.epochs.items() if n in self.running})

    def _live_curves(self) -> dict[int, list[tuple[int, float]]]:
        return {n: row.curve for n, row in self.live.items() if row.curve}

    def _emit_selected(self, signal: Signal) -> None:
        number = self.table.selected_number()
        if number is not None:
            signal.emit(number)  # type: ignore[attr-defined]

    def _on_table_action(self, action: str, number: int) -> None:
        {"overlay": self.overlay_requested, "open": self.open_requested,
         "apply": self.apply_requested}[action].emit(number)

    def _update_buttons(self) -> None:
        number = self.table.selected_number()
        state = self.table.states.get(number) if number is not None else None
        run = next((r.run for r in self.rows() if r.number == number), "") if number is not None else ""
        self.overlay_button.setEnabled(bool(run) and state not in (None, "failed"))
        self.open_button.setEnabled(bool(run))
        view = self.view
        best = view.trial(view.best) if view is not None and view.best is not None else None
        self.apply_button.setEnabled(best is not None)
        if best is not None and best.values:
            values = ", ".join(f"{k.split('.', 1)[-1]}={format_value(v)}" for k, v in best.params.items())
            self.apply_button.setToolTip(f"Write trial {best.number}'s values into the project as one undo step "
                                         f"({view.objectives[0]} {format_objective(best.values[0])}): {values}")
        else:
            self.apply_button.setToolTip("Write the best trial's values into the project (after a trial completes)")
