"""The main window (minimal for now): a summary of the open project's graph.

The node-editor canvas replaces the central table; the problems dock and status bar stay.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDockWidget, QHeaderView, QLabel, QListWidget, QListWidgetItem, QMainWindow,
                               QMessageBox, QTableWidget, QTableWidgetItem)

from engine.graph.fileformat import ProjectFileError, load_project
from engine.graph.project import Project
from engine.shapes import analyze

_COLUMNS = ("Node", "Type", "Output shape", "Parameters", "FLOPs")


class MainWindow(QMainWindow):
    """Shows the layers of one project with shapes, counts and problems."""

    def __init__(self) -> None:
        super().__init__()
        self.project: Project | None = None
        self.path: Path | None = None
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setCentralWidget(self.table)
        self.problems = QListWidget()
        dock = QDockWidget("Problems", self)
        dock.setObjectName("problems")
        dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.totals = QLabel()
        self.statusBar().addPermanentWidget(self.totals)
        self.setWindowTitle("Neural Canvas")

    def open_project(self, path: Path, untitled: bool = False) -> bool:
        """Load ``path``; on failure show the loader's message and keep the current project."""
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))
            return False
        self.project, self.path = project, None if untitled else path
        name = project.name or path.stem
        self.setWindowTitle(f"{name}{' (untitled)' if untitled else ''} — Neural Canvas")
        self._show(project)
        return True

    def _show(self, project: Project) -> None:
        graph = project.graph
        analysis = analyze(graph)
        self.table.setRowCount(len(graph))
        for row, node in enumerate(graph):
            info = analysis.nodes[node.id]
            shape = str(info.output) if info.output else ("" if not node.layer.has_output else "?")
            cells = (node.id, node.layer.title, shape, f"{info.parameters:,}", f"{info.flops:,}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.problems.clear()
        for diagnostic in analysis.diagnostics:
            QListWidgetItem(f"{diagnostic.severity}: {diagnostic.format(graph)}", self.problems)
        if not analysis.diagnostics:
            QListWidgetItem("No problems: the graph is ready to train.", self.problems)
        state = "valid" if analysis.valid else f"{len(analysis.errors)} error(s)"
        self.totals.setText(f"{analysis.parameters:,} parameters · {analysis.flops:,} FLOPs/sample · {state}")
