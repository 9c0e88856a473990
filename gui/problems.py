"""The problems panel: every diagnostic of the document, errors first.

Clicking an entry (or pressing Enter on it) emits ``node_activated(node_id)`` so the main
window can select and show that node; problems of the whole graph name no node and emit
nothing. Problems of the project outside the graph (no dataset; data that cannot be loaded or
does not fit the Input node, set by the Data panel through :meth:`ProblemsWidget.set_data_problem`)
come first and emit ``panel_requested(key)`` with the dock where they are fixed. Warnings of the current training
run (gradient health: vanishing, exploding, dead units) come last, are set by the training
dashboard (:meth:`ProblemsWidget.set_run_warnings`) and emit ``run_warning_activated(kind)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.memory import check_training_memory
from engine.shapes import Analysis, Diagnostic
from gui.document import Document
from gui.icons import icon
from gui.observers import DocumentLink
from gui.project_checks import ProjectProblem, project_problems

#: Item data role holding the node id of an entry (``None`` for graph problems).
NODE_ROLE = Qt.ItemDataRole.UserRole
#: Item data role holding the dock key of a project problem's panel.
PANEL_ROLE = Qt.ItemDataRole.UserRole + 1
#: Item data role holding the kind of a run warning (``vanishing``, ``exploding``, ``dead``).
RUN_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class RunWarning:
    """A warning of the current training run (not of the graph)."""

    kind: str
    message: str
    run: str = ""
    step: int = 0

    @property
    def text(self) -> str:
        """The line shown: the message as a sentence."""
        return f"Training run · {self.message[:1].upper()}{self.message[1:]}"


def count_text(errors: int, warnings: int) -> str:
    """``"2 errors, 1 warning"``, or ``"No problems"``."""
    parts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((errors, "error"), (warnings, "warning")) if n]
    return ", ".join(parts) if parts else "No problems"


class _ProblemList(QListWidget):
    """Emits ``entry_chosen`` on a click or Enter."""

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.itemClicked.emit(self.currentItem())
            return
        super().keyPressEvent(event)


class ProblemsWidget(QWidget):
    """Lists the diagnostics of a document's latest analysis."""

    node_activated = Signal(str)
    panel_requested = Signal(str)
    run_warning_activated = Signal(str)

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self._shown: tuple[object, ...] | None = None
        self._run_warnings: tuple[RunWarning, ...] = ()
        self._data_problem: ProjectProblem | None = None
        self.header_icon = QLabel()
        self.header = QLabel()
        bold = self.header.font()  # a font, not a style sheet: a styled label kept the light theme's black text
        bold.setWeight(QFont.Weight.DemiBold)
        self.header.setFont(bold)
        top = QHBoxLayout()
        top.setContentsMargins(8, 4, 8, 0)
        top.setSpacing(6)
        top.addWidget(self.header_icon)
        top.addWidget(self.header, 1)
        self.list = _ProblemList()
        self.list.setWordWrap(True)
        self.list.setSpacing(1)
        self.list.setIconSize(QSize(16, 16))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.itemClicked.connect(self._chosen)
        self.empty = QLabel("The graph is ready to train.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty.setMargin(8)
        self.empty.setWordWrap(True)
        self._pages = QStackedWidget()
        self._pages.addWidget(self.list)
        self._pages.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self._pages, 1)
        self._link = DocumentLink(analysis_changed=self._on_analysis,
                                  settings_changed=lambda: self._on_analysis())
        self.set_document(document)

    def set_document(self, document: Document | None) -> None:
        """Show the problems of ``document`` (``None``: an empty panel)."""
        self.document = self._link.follow(document)
        self._shown = None
        self._run_warnings = ()
        if document is not None:
            self._on_analysis()
        else:
            self.list.clear()
            self.header.setText("No project")
            self.header_icon.clear()
            self._pages.setCurrentWidget(self.empty)

    def diagnostics(self) -> list[Diagnostic]:
        """The diagnostics shown, in list order."""
        return [d for d in self._shown or () if isinstance(d, Diagnostic)]

    def project_problems(self) -> list[ProjectProblem]:
        """The project problems shown (first in the list)."""
        return [p for p in self._shown or () if isinstance(p, ProjectProblem)]

    def run_warnings(self) -> list[RunWarning]:
        """The training run's warnings shown (last in the list)."""
        return [w for w in self._shown or () if isinstance(w, RunWarning)]

    def set_run_warnings(self, warnings: list[dict[str, str]], run: str = "", step: int = 0) -> None:
        """Show the current run's latest gradient warnings (``[]``: none, e.g. a new run started).

        Args:
            warnings: ``{"kind", "message"}`` each, as a ``GradientHealth`` event carries them.
            run: The run's name (tooltips).
            step: The training step of the sample.
        """
        shown = tuple(RunWarning(str(w.get("kind", "")), str(w.get("message", "")), run, step) for w in warnings)
        if shown != self._run_warnings:
            self._run_warnings = shown
            self._on_analysis()

    def set_data_problem(self, problem: ProjectProblem | None) -> None:
        """Show why the chosen data cannot be used (``None``: it can), as the Data panel found it."""
        if problem != self._data_problem:
            self._data_problem = problem
            self._on_analysis()

    def _on_analysis(self, _level_analysis: Analysis | None = None) -> None:
        """Show the whole model's problems (inside blocks too, by path), whatever level the canvas shows."""
        if self.document is None:
            return
        analysis = self.document.model_analysis
        project = project_problems(self.document)
        if not project and self._data_problem is not None:  # no dataset chosen says it all
            project.append(self._data_problem)
        ordered = sorted(analysis.diagnostics, key=lambda d: d.severity != "error")
        if analysis.valid:  # the training-memory estimate at the configured batch size, against free RAM
            memory = check_training_memory(self.document.project.graph, analysis, self.document.project.training,
                                           allow_torch=False).diagnostic
            ordered += [memory] if memory is not None else []
        run = self._run_warnings
        if (*project, *ordered, *run) == self._shown:
            return
        self._shown = (*project, *ordered, *run)
        graph = self.document.project.graph
        self.list.setUpdatesEnabled(False)
        self.list.clear()
        for problem in project:
            item = QListWidgetItem(icon("error"), problem.text, self.list)
            item.setData(PANEL_ROLE, problem.panel)
            item.setToolTip(f"Cannot train yet: {problem.text}\nClick to open the panel.")
        for diagnostic in ordered:
            text = diagnostic.format(graph)
            item = QListWidgetItem(icon(diagnostic.severity), text, self.list)
            item.setData(NODE_ROLE, diagnostic.node)
            item.setToolTip(f"{diagnostic.severity.capitalize()}: {text}"
                            + ("\nClick to select the node." if diagnostic.node else ""))
        for warning in run:
            item = QListWidgetItem(icon("warning"), warning.text, self.list)
            item.setData(RUN_ROLE, warning.kind)
            where = f" {warning.run}" if warning.run else ""
            item.setToolTip(f"Warning of the training run{where} (step {warning.step}), not of the graph: "
                            f"{warning.message}\nClick to see the Gradients tab.")
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        self.list.setUpdatesEnabled(True)
        errors = len(project) + sum(d.severity == "error" for d in ordered)
        self.header.setText(count_text(errors, len(ordered) + len(project) + len(run) - errors))
        self.header_icon.setPixmap(icon("error" if errors else "warning" if ordered or run else "ok").pixmap(16, 16))
        self._pages.setCurrentWidget(self.list if self._shown else self.empty)

    def _chosen(self, item: QListWidgetItem) -> None:
        if item.data(RUN_ROLE):
            self.run_warning_activated.emit(item.data(RUN_ROLE))
            return
        if item.data(PANEL_ROLE):
            self.panel_requested.emit(item.data(PANEL_ROLE))
            return
        node_id = item.data(NODE_ROLE)
        if node_id and self.document is not None and node_id in self.document.project.graph.nodes:
            self.node_activated.emit(node_id)
