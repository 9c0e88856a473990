"""The Experiments panel's table: one row per trial, sortable by any column.

Columns: the trial's number, its state (a failed trial's message, a pruned one's epoch as
the tooltip), each searched parameter, each objective and the time it took. The best trial
is bold; the trial that ran the project as it is is marked ⌂, and with several objectives
the trials on the Pareto front ◆. Rows update
in place (a running trial's epoch and latest metric), so the selection and the scroll
position survive the updates.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableWidget, QTableWidgetItem, QWidget

from gui.icons import icon
from gui.style import status_color
from gui.training.experiment_data import STATE_WORDS, Axis, TrialRow, format_objective, format_value

#: Icon (resources/icons) of each state the table shows.
STATE_ICONS = {"complete": "ok", "pruned": "pruned", "failed": "error", "running": "train", "stopped": "pause",
               "waiting": "pause"}
STOPPED_TIP = "Stopped with a checkpoint: the next Run Search continues it"


class _Item(QTableWidgetItem):
    """A cell that sorts by a key (a number sorts as a number; blanks last)."""

    def __init__(self) -> None:
        super().__init__()
        self.key: tuple[int, float | str] = (_BLANK, "")
        self.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if not isinstance(other, _Item):
            return super().__lt__(other)
        blank, other_blank = self.key[0] == _BLANK, other.key[0] == _BLANK
        if blank != other_blank:  # blanks last, whichever way the column sorts
            table = self.tableWidget()
            descending = table is not None and \
                table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
            return other_blank != descending
        return self.key < other.key


_BLANK = 2


def _key(value: object) -> tuple[int, float | str]:
    """Numbers first (by value), then texts, then blanks."""
    if isinstance(value, (int, float)):
        return (0, float(value))
    return (_BLANK, "") if value is None else (1, str(value))


def duration(seconds: float | None) -> str:
    """``8.6 s``, ``2:05``, ``1:02:05``; ``–`` when unknown."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TrialsTable(QTableWidget):
    """The trials of a study.

    Signals:
        trial_activated(int): A row was double-clicked (the trial's number).
        action_requested(str, int): A context-menu command (``overlay``, ``open``, ``apply``) for a trial.
    """

    trial_activated = Signal(int)
    action_requested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.cellDoubleClicked.connect(lambda row, column: self._activate(row))
        self.columns: list[str] = []
        self.axes: list[Axis] = []
        self.objectives: list[str] = []
        self.rows: dict[int, list[_Item]] = {}
        self.states: dict[int, str] = {}

    # ----------------------------------------------------------------- public
    def set_columns(self, axes: list[Axis], objectives: list[str]) -> None:
        """The study's parameters and objectives (the rows are cleared when they change)."""
        columns = ["#", "State", *[a.label for a in axes], *objectives, "Time"]
        if columns == self.columns:
            return
        self.setSortingEnabled(False)
        self.clearContents()
        self.setRowCount(0)
        self.rows.clear()
        self.states.clear()
        self.columns, self.axes, self.objectives = columns, list(axes), list(objectives)
        self.setColumnCount(len(columns))
        self.setHorizontalHeaderLabels(columns)
        self.horizontalHeaderItem(0).setToolTip("Trial number · ⌂ the project as it is · ◆ on the Pareto front · "
                                                "bold: the best trial")
        for index, axis in enumerate(axes):
            self.horizontalHeaderItem(2 + index).setToolTip(axis.target)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # new columns: by trial number (not a gone column)

    def show_rows(self, rows: list[TrialRow], best: int | None = None, pareto: set[int] | None = None,
                  epochs: dict[int, int] | None = None) -> None:
        """Show ``rows`` (new trials are added, known ones updated in place, gone ones removed)."""
        self.setSortingEnabled(False)
        first = not self.rows
        wanted = {r.number for r in rows}
        for number in [n for n in self.rows if n not in wanted]:
            self.removeRow(self.rows.pop(number)[0].row())
            self.states.pop(number, None)
        for row in rows:
            self._show(row, row.number == best, row.number in (pareto or set()), (epochs or {}).get(row.number))
        self.setSortingEnabled(True)
        if rows and first:
            self.resizeColumnsToContents()
        for column in range(self.columnCount() - 1):  # grow to new contents; what the person widened stays
            need = max(self.sizeHintForColumn(column), self.horizontalHeader().sectionSizeHint(column))
            if self.columnWidth(column) < need:
                self.setColumnWidth(column, need)

    def selected_number(self) -> int | None:
        """The number of the selected trial, if one is selected."""
        rows = self.selectionModel().selectedRows() if self.selectionModel() is not None else []
        if not rows:
            return None
        item = self.item(rows[0].row(), 0)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select_number(self, number: int) -> None:
        """Select (and scroll to) the trial ``number``."""
        items = self.rows.get(number)
        if items is not None:
            self.selectRow(items[0].row())
            self.scrollToItem(items[0])

    # ---------------------------------------------------------------- private
    def _show(self, row: TrialRow, best: bool, on_front: bool, epoch: int | None) -> None:
        items = self.rows.get(row.number)
        if items is None:
            at = self.rowCount()
            self.insertRow(at)
            items = self.rows[row.number] = [_Item() for _ in self.columns]
            for column, item in enumerate(items):
                self.setItem(at, column, item)
        state = STATE_WORDS.get(row.state, row.state)
        self.states[row.number] = state
        number = items[0]
        number.setText(f"{row.number}{' ⌂' if row.baseline else ''}{' ◆' if on_front else ''}")
        number.key = (0, row.number)
        number.setData(Qt.ItemDataRole.UserRole, row.number)
        notes = ["the best trial"] if best else []
        notes += ["on the Pareto front"] if on_front else []
        notes += ["the project as it is (the mark the other trials are compared with)"] if row.baseline else []
        number.setToolTip("; ".join(notes).capitalize())
        shown = f"running · epoch {epoch}" if state == "running" and epoch else state
        items[1].setText(shown)
        items[1].key = (1, state)
        items[1].setIcon(icon(STATE_ICONS.get(state, "warning")))
        items[1].setToolTip(row.message or (STOPPED_TIP if state == "stopped" else ""))
        self._colour_state(items[1], state)
        for index, axis in enumerate(self.axes):
            value = row.params.get(axis.target)
            items[2 + index].setText("" if value is None else format_value(value))
            items[2 + index].key = _key(value if not isinstance(value, list) else format_value(value))
        values = row.values or []
        provisional = state != "complete"
        for index in range(len(self.objectives)):
            item = items[2 + len(self.axes) + index]
            value = values[index] if index < len(values) else None
            item.setText("" if value is None else format_objective(value))
            item.key = _key(value)
            item.setToolTip("latest epoch's value: the trial has not completed" if provisional and value is not None
                            else "")
            font = item.font()
            font.setItalic(provisional)
            item.setFont(font)
        items[-1].setText(duration(row.seconds))
        items[-1].key = _key(row.seconds)
        for item in items:
            font = item.font()
            font.setBold(best)
            item.setFont(font)

    def _colour_state(self, item: QTableWidgetItem, state: str) -> None:
        if state == "failed":
            item.setForeground(QColor(status_color("error")))
        elif state in ("pruned", "stopped"):  # ended early: quieter than the trials that completed
            item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        else:
            item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def changeEvent(self, event: QEvent) -> None:
        """A new theme (palette): the state colours follow it."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            for number, items in self.rows.items():
                self._colour_state(items[1], self.states.get(number, ""))

    def _activate(self, row: int) -> None:
        item = self.item(row, 0)
        if item is not None:
            self.trial_activated.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _context_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        number = int(self.item(item.row(), 0).data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        chosen = {menu.addAction("Overlay curves on the Training dashboard"): "overlay",
                  menu.addAction("Open as project"): "open",
                  menu.addAction("Apply this trial's values"): "apply"}
        for action in chosen:
            action.setEnabled(self.states.get(number) != "failed" or chosen[action] == "open")
        picked = menu.exec(self.viewport().mapToGlobal(pos))
        if picked in chosen:
            self.action_requested.emit(chosen[picked], number)

