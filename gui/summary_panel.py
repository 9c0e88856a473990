"""The model summary: one row per node (shape, parameters, FLOPs) and a totals row.

A :class:`SummaryModel` reads the document's latest analysis on demand; after an edit that
keeps the node list it only signals ``dataChanged``, so a 1,000-node graph updates without
rebuilding anything. Nodes that do not lead to an Output are shown greyed: they are not part
of the model and not counted in the totals.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.shapes import Analysis
from gui.document import Document
from gui.observers import DocumentLink

COLUMNS = ("Node", "Type", "Output shape", "Parameters", "FLOPs")
NUMERIC_COLUMNS = (3, 4)
TOTAL_LABEL = "Total (model)"
Index = QModelIndex | QPersistentModelIndex


class SummaryModel(QAbstractTableModel):
    """Rows of a document's analysis plus a final totals row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.analysis: Analysis | None = None
        self.node_ids: list[str] = []
        self._bold = QFont()
        self._bold.setBold(True)

    def set_analysis(self, document: Document | None, analysis: Analysis | None) -> None:
        """Show ``analysis``; only a changed node list resets the model."""
        node_ids = list(analysis.nodes) if analysis is not None else []
        if document is self.document and node_ids == self.node_ids:
            self.analysis = analysis
            if self.rowCount():
                self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, len(COLUMNS) - 1))
            return
        self.beginResetModel()
        self.document, self.analysis, self.node_ids = document, analysis, node_ids
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt override
        return 0 if parent.isValid() or self.analysis is None else len(self.node_ids) + 1

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt override
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in NUMERIC_COLUMNS:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def node_id(self, row: int) -> str | None:
        """The node id of ``row`` (``None`` for the totals row)."""
        return self.node_ids[row] if 0 <= row < len(self.node_ids) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.analysis is None or self.document is None:
            return None
        row, column = index.row(), index.column()
        total = row == len(self.node_ids)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            horizontal = Qt.AlignmentFlag.AlignRight if column in NUMERIC_COLUMNS else Qt.AlignmentFlag.AlignLeft
            return int(horizontal | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and total:
            return self._bold
        if role == Qt.ItemDataRole.BackgroundRole and total:
            return QGuiApplication.palette().color(QPalette.ColorRole.Window)
        if total:
            return self._total_text(column) if role == Qt.ItemDataRole.DisplayRole else None
        node_id = self.node_ids[row]
        outside = node_id not in self.analysis.in_model
        if role == Qt.ItemDataRole.ForegroundRole and outside:
            return QGuiApplication.palette().color(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.ToolTipRole and outside:
            return "Not connected to an Output: not part of the model and not counted in the totals."
        if role == Qt.ItemDataRole.DisplayRole:
            return self._node_text(node_id, column)
        return None

    def _node_text(self, node_id: str, column: int) -> str:
        info = self.analysis.nodes[node_id]  # type: ignore[union-attr]
        node = self.document.graph.nodes.get(node_id)  # type: ignore[union-attr]
        if column == 0:
            return node_id
        if column == 1:
            return node.layer.title if node is not None else "?"
        if column == 2:
            if info.output is not None:
                return str(info.output)
            return "—" if node is not None and not node.layer.has_output else "?"
        return f"{info.parameters if column == 3 else info.flops:,}"

    def _total_text(self, column: int) -> str:
        analysis = self.analysis
        assert analysis is not None
        if column == 0:
            return TOTAL_LABEL
        if column == 1:
            return f"{len(analysis.in_model)} of {len(self.node_ids)} nodes"
        if column == 2:
            errors = len(analysis.errors)
            return "valid" if analysis.valid else f"{errors} error{'s' if errors != 1 else ''}"
        return f"{analysis.parameters if column == 3 else analysis.flops:,}"


class _SpacedDelegate(QStyledItemDelegate):
    """Leaves room between columns that size to their contents."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:  # noqa: N802 - Qt override
        hint = super().sizeHint(option, index)
        return QSize(hint.width() + 18, hint.height())


class SummaryWidget(QWidget):
    """A table of every node's shape, parameters and FLOPs with the model's totals.

    Clicking a node's row emits ``node_activated(node_id)``.
    """

    node_activated = Signal(str)

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.model = SummaryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegate(_SpacedDelegate(self.table))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setResizeContentsPrecision(64)
        header.setHighlightSections(False)
        for column in range(len(COLUMNS)):
            mode = QHeaderView.ResizeMode.Stretch if column == 2 else QHeaderView.ResizeMode.ResizeToContents
            header.setSectionResizeMode(column, mode)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.clicked.connect(self._clicked)
        self.table.activated.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        self._link = DocumentLink(analysis_changed=self._on_analysis)
        self.set_document(document)

    def set_document(self, document: Document | None) -> None:
        """Summarize ``document`` (``None``: an empty table)."""
        self.document = self._link.follow(document)
        self.model.set_analysis(document, document.analysis if document is not None else None)

    def _on_analysis(self, analysis: Analysis) -> None:
        self.model.set_analysis(self.document, analysis)

    def _clicked(self, index: QModelIndex) -> None:
        node_id = self.model.node_id(index.row())
        if node_id is not None:
            self.node_activated.emit(node_id)
