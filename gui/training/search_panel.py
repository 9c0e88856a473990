"""The Search panel: what a hyper-parameter search varies, and how its study runs.

The table lists the project's ``search.space`` (marked with the magnifiers of the Inspector and
the Training Settings panel), every range editable in place; the form below sets the study's
objectives, metric, sampler, pruner, trials and name. Each edit is checked with the engine
(:func:`engine.search.space.parse_space`, :func:`engine.search.settings.study_settings`) before
it is written: a refused one is not applied, and the panel shows the engine's own message in red,
the text ``python main.py search`` would print. Every applied edit is one undo step.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QDockWidget, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QMainWindow, QSpinBox, QVBoxLayout, QWidget)

from engine.errors import UserError
from engine.search.settings import METRICS, OBJECTIVES, PRUNERS, SAMPLERS, study_settings
from gui.document import Document
from gui.observers import DocumentLink
from gui.scroll_panel import fill_with_scroll
from gui.search_edit import FIELD_DEFAULTS, entry_problem, range_text, space_of
from gui.style import status_color
from gui.training.search_table import SearchTable, short_target
from gui.wheel_guard import guard_wheel

EMPTY_HINT = ("Nothing is searched yet. Click the magnifier beside a layer parameter in the Inspector, or beside "
              "a training setting in Settings, to let a search vary it; its range then shows here.")
RUN_HINT = "Run the study with Train ▸ Run Search, or: python main.py search FILE"
#: Wider than this, the table and the study settings sit side by side (the panel docked at the bottom).
SIDE_BY_SIDE_WIDTH = 760
#: Height the panel takes when it is brought to the front in a bottom or top dock (the study fits unscrolled).
ROOM_HEIGHT = 300
_CHOICE_TEXT = {"metric": {"auto": "auto (the task's own)"},
                "sampler": {"auto": "auto (TPE; NSGA-II for several objectives)", "tpe": "tpe", "random": "random",
                            "grid": "grid (every combination)", "nsga2": "nsga2 (several objectives)"},
                "pruner": {"median": "median (stop trials below the median)", "none": "none"}}
_OBJECTIVE_TIPS = {"metric": "The validation metric: always the first objective",
                   "flops": "Also minimize the FLOPs per sample", "parameters": "Also minimize the parameter count",
                   "latency": "Also minimize the measured time of one forward pass"}


def _problem_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _show_problem(label: QLabel, text: str) -> None:
    label.setStyleSheet(f"color: {status_color('error')};" if text else "")
    label.setText(text)
    label.setVisible(bool(text))


class SearchPanel(QWidget):
    """Edits the project's ``search`` section (table and study side by side when the panel is wide)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        body = QWidget()
        outer = QVBoxLayout(body)
        self.columns = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        outer.addLayout(self.columns)
        self.hint = QLabel(EMPTY_HINT)
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint.setMargin(8)
        space_box = QGroupBox("Searched values")
        space_layout = QVBoxLayout(space_box)
        self.table = SearchTable()
        self.table.edited.connect(self._set_entry)
        self.table.refused_edit.connect(lambda target, message: _show_problem(self.problem, f"Not applied: {message}"))
        self.table.remove_requested.connect(self._remove)
        self.problem = _problem_label()
        for widget in (self.hint, self.problem, self.table):  # the message above the rows: always in view
            space_layout.addWidget(widget)
        space_layout.addStretch(1)
        study = QWidget()
        study_layout = QVBoxLayout(study)
        study_layout.setContentsMargins(0, 0, 0, 0)
        study_layout.addWidget(self._study_box())
        self.run_hint = QLabel(RUN_HINT)
        self.run_hint.setWordWrap(True)
        self.run_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.run_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        study_layout.addWidget(self.run_hint)
        study_layout.addStretch(1)
        self.columns.addWidget(space_box, 3)
        self.columns.addWidget(study, 2)
        outer.addStretch(1)
        self.body = body
        fill_with_scroll(self, body)
        self._link = DocumentLink(search_changed=self.refresh, analysis_changed=lambda analysis: self._check_space(),
                                  read_only_changed=self._on_read_only)

    def _study_box(self) -> QGroupBox:
        box = QGroupBox("Study")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        objectives = QWidget()
        row = QHBoxLayout(objectives)
        row.setContentsMargins(0, 0, 0, 0)
        self.objectives: dict[str, QCheckBox] = {}
        for name in OBJECTIVES:
            check = QCheckBox(name)
            check.setToolTip(_OBJECTIVE_TIPS[name])
            check.clicked.connect(lambda on: self._set_objectives())
            row.addWidget(check)
            self.objectives[name] = check
        row.addStretch(1)
        self.objectives["metric"].setChecked(True)
        self.objectives["metric"].setEnabled(False)
        form.addRow("Objectives", objectives)
        self.combos: dict[str, QComboBox] = {}
        for key, values in (("metric", METRICS), ("sampler", SAMPLERS), ("pruner", PRUNERS)):
            combo = guard_wheel(QComboBox())
            for value in values:
                combo.addItem(_CHOICE_TEXT.get(key, {}).get(value, value), value)
            combo.activated.connect(lambda index, k=key, c=combo: self._set_field(k, c.itemData(index)))
            form.addRow(key.capitalize(), combo)
            self.combos[key] = combo
        self.trials = guard_wheel(QSpinBox())
        self.trials.setRange(1, 100_000)
        self.trials.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.trials.setToolTip("How many trials the study runs in all, over every worker and machine")
        self.trials.valueChanged.connect(lambda value: self._set_field("trials", value))
        form.addRow("Trials", self.trials)
        self.name = QLineEdit()
        self.name.setToolTip("The study's name in its storage; a search with the same name continues it")
        self.name.editingFinished.connect(lambda: self._set_field("name", self.name.text().strip()))
        form.addRow("Study name", self.name)
        self.study_problem = _problem_label()
        form.addRow(self.study_problem)
        return box

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE_WIDTH
        self.columns.setDirection(QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom)
        self.columns.setStretch(0, 3 if wide else 0)
        self.columns.setStretch(1, 2 if wide else 0)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        dock = self.parentWidget()
        window = dock.parentWidget() if isinstance(dock, QDockWidget) else None
        if isinstance(window, QMainWindow) and not dock.isFloating() and dock.height() < ROOM_HEIGHT and \
                window.dockWidgetArea(dock) in (Qt.DockWidgetArea.BottomDockWidgetArea,
                                                Qt.DockWidgetArea.TopDockWidgetArea):
            QTimer.singleShot(0, dock, lambda: window.resizeDocks([dock], [ROOM_HEIGHT], Qt.Orientation.Vertical))

    # ------------------------------------------------------------ showing
    def set_document(self, document: Document | None) -> None:
        """Show and edit ``document``'s search section."""
        self.document = self._link.follow(document)
        self.refresh()
        self._on_read_only(document.read_only_reason if document is not None else None)

    def refresh(self) -> None:
        """Show the stored section (its problems marked); what was refused is forgotten."""
        project = self.document.project if self.document is not None else None
        space = space_of(project) if project is not None else {}
        self.hint.setVisible(not space)
        self.table.setVisible(bool(space))
        if project is not None:
            self.table.show_space(project, space)
        section = project.search if project is not None else {}
        stored = {key: section.get(key, default) for key, default in FIELD_DEFAULTS.items()}
        objectives = stored["objectives"] if isinstance(stored["objectives"], list) else []
        for name, check in self.objectives.items():
            check.setChecked(name == "metric" or name in objectives)
        for key, combo in self.combos.items():
            index = combo.findData(stored[key])
            combo.setCurrentIndex(max(0, index))
        self.trials.blockSignals(True)
        self.trials.setValue(stored["trials"] if isinstance(stored["trials"], int) else 20)
        self.trials.blockSignals(False)
        if self.name.text() != stored["name"]:
            self.name.setText(str(stored["name"]))
        self.name.setPlaceholderText(project.name if project is not None and project.name else
                                     "the project's file name")
        self.combos["pruner"].setToolTip("Only used with one objective: Optuna prunes single-objective studies"
                                         if len(objectives) > 1 else "How unpromising trials stop early")
        self._check_space()
        self._check_study(section)

    def _check_space(self) -> None:
        """Mark every entry the engine refuses (a deleted layer, a bound out of range in the file)."""
        document = self.document
        if document is None:
            return
        problems = {t: p for t, s in space_of(document.project).items()
                    if (p := entry_problem(document.project, t, s))}
        self.table.mark_problems(problems)
        _show_problem(self.problem, "\n".join(problems.values()))

    def _check_study(self, section: dict[str, Any]) -> str:
        try:
            study_settings(section)
        except UserError as exc:
            _show_problem(self.study_problem, str(exc))
            return str(exc)
        _show_problem(self.study_problem, "")
        return ""

    def _on_read_only(self, reason: str | None) -> None:
        self.body.setEnabled(reason is None)
        self.body.setToolTip(reason or "")

    # -------------------------------------------------------------- edits
    def _set_entry(self, target: str, spec: dict[str, Any]) -> None:
        document = self.document
        if document is None:
            return
        problem = entry_problem(document.project, target, spec)
        if problem:
            rest = problem.removeprefix(f"search.space.{target}")
            key = rest[1:].split(":")[0].split("[")[0] if rest.startswith(".") else ""
            self.table.refuse(target, key, problem)
            _show_problem(self.problem, f"Not applied: {problem}")
            return
        if space_of(document.project).get(target) == spec:
            return
        document.push(document.search_command(f"Search {short_target(target)} over {range_text(spec)}",
                                              space={target: spec}))

    def _remove(self, target: str) -> None:
        if self.document is not None:
            self.document.push(self.document.search_command(f"Stop searching {short_target(target)}",
                                                            space={target: None}))

    def _set_objectives(self) -> None:
        self._set_field("objectives", [name for name, check in self.objectives.items() if check.isChecked()])

    def _set_field(self, key: str, value: Any) -> None:
        """Store one study field (its default removes it from the file), unless the engine refuses it."""
        document = self.document
        if document is None:
            return
        stored = None if value == FIELD_DEFAULTS[key] else value
        if document.project.search.get(key) == stored:
            return
        section = {k: v for k, v in {**document.project.search, key: stored}.items() if v is not None}
        problem = self._check_study(section)
        if problem:
            self.refresh()
            _show_problem(self.study_problem, f"Not applied: {problem}")
            return
        if not document.push(document.search_command(f"Set search.{key}", fields={key: stored})):
            self.refresh()
