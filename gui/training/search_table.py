"""The Search panel's table: one row per searched target, every range cell editable in place.

The table shows a project's ``search.space`` and reports what the user typed as
``edited(target, spec)`` with the entry rewritten (:func:`edit_spec`); it never writes the
document. The panel checks the entry with the engine and either pushes it or calls
:meth:`SearchTable.refuse`, which keeps the typed text in red with the engine's message.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QAbstractScrollArea, QApplication, QHeaderView, QTableWidget,
                               QTableWidgetItem, QToolButton, QWidget)

from engine.errors import UserError
from engine.graph.project import Project
from engine.search.space import target_declaration
from gui.icons import icon
from gui.search_edit import choice_text, number_text, parse_choice
from gui.style import status_color

COLUMNS = ("Target", "Kind", "Low", "High", "Step", "Log", "Choices", "")
TARGET, KIND, LOW, HIGH, STEP, LOG, CHOICES, REMOVE = range(len(COLUMNS))
_KEYS = {LOW: "low", HIGH: "high", STEP: "step", LOG: "log", CHOICES: "choices"}
_TIPS = {LOW: "Smallest value tried", HIGH: "Largest value tried", STEP: "Spacing of the values tried (empty: any)",
         LOG: "Sample on a log scale (ranges spanning several powers of ten)",
         CHOICES: "Values tried, separated by commas (3x3 for a kernel size); typing choices replaces a range"}


def target_kind(project: Project, target: str, spec: Any) -> str:
    """What a row varies: ``int`` or ``float`` (a range or a list of numbers), ``choice``, ``bool``,
    ``type`` (a layer type), ``optional`` (a layer kept or left out), or ``?`` (names nothing)."""
    parts = target.split(".")
    if parts[0] == "nodes" and len(parts) == 2:
        return "optional"
    if parts[0] == "nodes" and len(parts) == 3 and parts[2] == "type":
        return "type"
    try:
        return target_declaration(target, project).kind
    except UserError:
        return "choice" if isinstance(spec, dict) and "choices" in spec else "?"


def short_target(target: str) -> str:
    """How the Target column names a target: ``conv1.out_channels``, ``drop1 (optional)``, ``training.lr``."""
    parts = target.split(".")
    if parts[0] == "nodes":
        if len(parts) == 2:
            return f"{parts[1]} (optional)"
        if len(parts) == 3 and parts[2] == "type":
            return f"{parts[1]} (layer type)"
        return ".".join(parts[1:])
    if parts[0] == "blocks":
        return ".".join(parts[1:])
    return target


def edit_spec(target: str, spec: dict[str, Any], kind: str, key: str, value: Any) -> tuple[dict[str, Any], str]:
    """The entry ``spec`` after the cell ``key`` was set to ``value`` (text, or a bool for ``log``).

    Returns:
        ``(new spec, "")``, or ``(spec, message)`` when the text is not a number where one belongs
        (worded as the engine words it).
    """
    new = dict(spec)
    if key in ("low", "high", "step"):
        text = str(value).strip()
        if "choices" in new:  # a list of numbers becomes a range again
            numbers = [c for c in new.pop("choices") or [] if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numbers:
                new.update(low=min(numbers), high=max(numbers))
        if not text:
            new.pop(key, None)
            return new, ""
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            return spec, f"search.space.{target}.{key}: must be a finite number, got {text!r}"
        new[key] = int(number) if kind == "int" and number.is_integer() else number
    elif key == "log":
        if value:
            new["log"] = True
        else:
            new.pop("log", None)
    elif key == "choices":
        texts = [t.strip() for t in str(value).split(",") if t.strip()]
        new = {"choices": texts if kind in ("choice", "type") else [parse_choice(t) for t in texts]}
    return new, ""


def _delete_icon() -> QIcon:
    """The remove button's icon in the theme's secondary text colour (it reads on light and dark rows)."""
    return icon("delete", QApplication.palette().color(QPalette.ColorRole.PlaceholderText).name())


class SearchTable(QTableWidget):
    """The searched targets of a project.

    Signals are emitted on the next event-loop turn, so a handler may rebuild the rows (deleting the
    item or button that sent them).

    Signals:
        edited(str, object): A cell of a target's row changed: the target and its new entry.
        refused_edit(str, str): What was typed is not a number: the target and the message.
        remove_requested(str): The row's remove button (the target).
    """

    edited = Signal(str, object)
    refused_edit = Signal(str, str)
    remove_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        for column, tip in _TIPS.items():
            self.horizontalHeaderItem(column).setToolTip(tip)
        self.verticalHeader().hide()
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        triggers = QAbstractItemView.EditTrigger
        self.setEditTriggers(triggers.DoubleClicked | triggers.SelectedClicked | triggers.EditKeyPressed
                             | triggers.AnyKeyPressed)
        self.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CHOICES, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(28)
        self.targets: list[str] = []
        self.specs: dict[str, dict[str, Any]] = {}
        self.kinds: dict[str, str] = {}
        self._edited_column: int | None = None
        self.itemChanged.connect(self._on_item_changed)

    def show_space(self, project: Project, space: dict[str, Any]) -> None:
        """Fill the rows from ``space`` (marks are cleared)."""
        self.blockSignals(True)
        self.targets = [str(t) for t in space]
        self.specs = {t: (dict(s) if isinstance(s, dict) else {}) for t, s in space.items()}
        self.kinds = {t: target_kind(project, t, self.specs[t]) for t in self.targets}
        self.setRowCount(len(self.targets))
        for row, target in enumerate(self.targets):
            self._fill_row(row, target)
        self.blockSignals(False)
        self.resizeColumnsToContents()

    def _fill_row(self, row: int, target: str) -> None:
        spec, kind = self.specs[target], self.kinds[target]
        numeric, has_choices = kind in ("int", "float"), "choices" in spec
        name = QTableWidgetItem(short_target(target))
        name.setFlags(Qt.ItemFlag.ItemIsEnabled)
        name.setToolTip(target)
        self.setItem(row, TARGET, name)
        kind_item = QTableWidgetItem(kind)
        kind_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.setItem(row, KIND, kind_item)
        for column, key in ((LOW, "low"), (HIGH, "high"), (STEP, "step")):
            self.setItem(row, column, self._cell(number_text(spec.get(key)) if not has_choices else "", numeric))
        log = QTableWidgetItem()
        log.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable if numeric else
                     Qt.ItemFlag.NoItemFlags)
        if numeric:
            log.setCheckState(Qt.CheckState.Checked if spec.get("log") and not has_choices else Qt.CheckState.Unchecked)
        self.setItem(row, LOG, log)
        choices = spec.get("choices") if isinstance(spec.get("choices"), list) else []
        self.setItem(row, CHOICES, self._cell(", ".join(choice_text(c) for c in choices), kind != "optional"))
        shown = self.cellWidget(row, REMOVE)
        if shown is None or shown.property("target") != target:  # a row that stays keeps its button
            remove = QToolButton()
            remove.setProperty("target", target)
            remove.setIcon(_delete_icon())
            remove.setAutoRaise(True)
            remove.setToolTip(f"Stop searching {target}")
            remove.setAccessibleName(f"Remove {target}")
            remove.clicked.connect(lambda checked=False, t=target: self._later(self.remove_requested.emit, t))
            self.setCellWidget(row, REMOVE, remove)
        for column in range(REMOVE):
            item = self.item(row, column)
            if column in _TIPS and item.flags() & Qt.ItemFlag.ItemIsEditable:
                item.setToolTip(_TIPS[column])

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for row in range(self.rowCount()):
                button = self.cellWidget(row, REMOVE)
                if isinstance(button, QToolButton):
                    button.setIcon(_delete_icon())

    @staticmethod
    def _cell(text: str, editable: bool) -> QTableWidgetItem:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignVCenter | (Qt.AlignmentFlag.AlignLeft if text and not
                              text[0].isdigit() else Qt.AlignmentFlag.AlignRight))
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
                      if editable else Qt.ItemFlag.NoItemFlags)
        return item

    def mark_problems(self, problems: dict[str, str]) -> None:
        """Mark the rows whose entries the engine refuses (``target -> message``); clear the others."""
        for row, target in enumerate(self.targets):
            self._mark(row, problems.get(target, ""), None)

    def refuse(self, target: str, key: str, message: str) -> None:
        """Show that what was typed in ``target``'s row was not applied: ``message`` on the row, the cell of
        ``key`` (else the cell last edited) in red, its text kept for correcting."""
        if target in self.targets:
            column = next((c for c, k in _KEYS.items() if k == key), self._edited_column)
            self._mark(self.targets.index(target), message, column)

    def _mark(self, row: int, message: str, column: int | None) -> None:
        self.blockSignals(True)
        red = QBrush(QColor(status_color("error")))
        name = self.item(row, TARGET)
        name.setIcon(icon("error") if message else QIcon())
        name.setForeground(red if message else QBrush())
        name.setToolTip(f"{self.targets[row]}\n{message}" if message else self.targets[row])
        for c in (LOW, HIGH, STEP, CHOICES):
            item = self.item(row, c)
            item.setForeground(red if c == column else QBrush())
            if c == column:
                item.setToolTip(message)
        self.blockSignals(False)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        row, column = item.row(), item.column()
        if not 0 <= row < len(self.targets) or column not in _KEYS:
            return
        target = self.targets[row]
        value: Any = item.checkState() == Qt.CheckState.Checked if column == LOG else item.text()
        self._edited_column = column
        spec, problem = edit_spec(target, self.specs[target], self.kinds[target], _KEYS[column], value)
        if problem:
            self._mark(row, problem, column)
            self._later(self.refused_edit.emit, target, problem)
        else:
            self._later(self.edited.emit, target, spec)

    def _later(self, emit: Any, *args: Any) -> None:
        QTimer.singleShot(0, self, lambda: emit(*args))
