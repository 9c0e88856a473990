"""Evaluate a finished run on its held-out test split (or its validation split), in a window.

The numbers are :func:`engine.training.evaluate.evaluate_run`'s, computed off the GUI thread:
the task's metrics, and for classifiers per-class precision, recall, F1 and support, the
confusion matrix, and a table of every sample (thumbnail for images, true label, prediction,
confidence, file name) that sorts by any column, filters to the mistakes or a text, and exports
to CSV. The window stays open beside the main one (it is not modal).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QFileDialog, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QSplitter, QTableView,
                               QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from engine.errors import UserError
from engine.training.evaluate import Evaluation, evaluate_run
from gui.background import BackgroundCall
from gui.style import status_color
from gui.scroll_panel import fill_with_scroll
from gui.training.evaluation_attribution import EvaluationAttribution
from gui.training.inside_sections import image_pixmap

COLUMNS = ("#", "image", "true", "prediction", "confidence", "file")
THUMBNAIL = 40
Index = QModelIndex | QPersistentModelIndex


class SamplesModel(QAbstractTableModel):
    """The evaluation's samples: one row each (see :data:`COLUMNS`)."""

    def __init__(self, evaluation: Evaluation) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.rows = evaluation.rows
        images = getattr(evaluation, "images", None)
        self.images: np.ndarray | None = images if images is not None and len(images) == len(self.rows) else None
        self._pixmaps: dict[int, QPixmap] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt override
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row, column = self.rows[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return {"#": row.index, "true": _text(row.true), "prediction": _text(row.prediction),
                    "confidence": f"{row.confidence:.1%}" if row.confidence is not None else "",
                    "file": row.file or ""}.get(column)
        if role == Qt.ItemDataRole.UserRole:  # what sorting compares
            return {"#": row.index, "confidence": row.confidence if row.confidence is not None else -1.0,
                    "true": _text(row.true), "prediction": _text(row.prediction), "file": row.file or ""}.get(column, 0)
        if role == Qt.ItemDataRole.DecorationRole and column == "image" and self.images is not None:
            return self._pixmap(index.row())
        if role == Qt.ItemDataRole.ForegroundRole and column == "prediction" and row.correct is False:
            return QColor(status_color("error"))
        if role == Qt.ItemDataRole.ToolTipRole and column == "prediction" and row.correct is not None:
            return "correct" if row.correct else f"wrong: the sample is {_text(row.true)}"
        return None

    def _pixmap(self, position: int) -> QPixmap:
        if position not in self._pixmaps:
            image = np.asarray(self.images[position], dtype=np.float32)  # type: ignore[index]
            array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)[..., :3]
            self._pixmaps[position] = image_pixmap(array, THUMBNAIL)
        return self._pixmaps[position]


class SamplesFilter(QSortFilterProxyModel):
    """Sorts by the model's sort values; keeps the mistakes only, and rows containing a text."""

    def __init__(self) -> None:
        super().__init__()
        self.mistakes_only = False
        self.text = ""
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_filter(self, mistakes_only: bool, text: str) -> None:
        """Keep only the mistakes (when ``mistakes_only``) and the rows containing ``text``."""
        if hasattr(self, "beginFilterChange"):  # Qt 6.10 and later
            self.beginFilterChange()
            self.mistakes_only, self.text = mistakes_only, text.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.mistakes_only, self.text = mistakes_only, text.strip().lower()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:  # noqa: N802 - Qt override
        model = self.sourceModel()
        assert isinstance(model, SamplesModel)
        row = model.rows[source_row]
        if self.mistakes_only and row.correct is not False:
            return False
        if self.text:
            haystack = " ".join((_text(row.true), _text(row.prediction), row.file or "", str(row.index))).lower()
            return self.text in haystack
        return True


class EvaluationDialog(QDialog):
    """The evaluation of one run (see the module docstring).

    Args:
        run_dir: The run folder.
        base_dir: Where relative dataset paths resolve (the project's folder).
        parent: The main window.
    """

    def __init__(self, run_dir: Path, base_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir, self.base_dir = Path(run_dir), base_dir
        self.evaluation: Evaluation | None = None
        self.error = ""
        self.setWindowTitle(f"Evaluate {self.run_dir.name}")
        self.resize(1040, 600)
        self.split = QComboBox()
        self.split.addItem("Test split (never seen in training)", "test")
        self.split.addItem("Validation split", "val")
        self.split.currentIndexChanged.connect(lambda _i: self.start())
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(160)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Evaluate on"))
        top.addWidget(self.split)
        top.addWidget(self.progress)
        top.addStretch(1)
        self.tabs = QTabWidget()
        self.classes = _table(("class", "precision", "recall", "F1", "support"))
        self.confusion = QTableWidget()
        self.confusion.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.samples = QTableView()
        self.samples.setSortingEnabled(True)
        self.samples.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.samples.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.samples.verticalHeader().setDefaultSectionSize(THUMBNAIL + 4)
        self.samples.verticalHeader().hide()
        self.filter = SamplesFilter()
        self.mistakes = QCheckBox("Mistakes only")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter by class or file")
        self.search.setClearButtonEnabled(True)
        self.export = QPushButton("Export CSV…")
        self.export.clicked.connect(self.export_csv)
        for signal in (self.mistakes.toggled, self.search.textChanged):
            signal.connect(lambda *_: self.filter.set_filter(self.mistakes.isChecked(), self.search.text()))
        controls = QHBoxLayout()
        controls.addWidget(self.mistakes)
        controls.addWidget(self.search, 1)
        controls.addWidget(self.export)
        sample_page = QWidget()
        sample_column = QVBoxLayout(sample_page)
        sample_column.addLayout(controls)
        self.attribution = EvaluationAttribution(self.run_dir, base_dir)
        beside = QSplitter(Qt.Orientation.Horizontal)
        beside.addWidget(self.samples)
        pane = QWidget()
        fill_with_scroll(pane, self.attribution, frameless=True)  # a long attribution (many features) scrolls
        beside.addWidget(pane)
        beside.setStretchFactor(0, 3)
        beside.setStretchFactor(1, 2)
        sample_column.addWidget(beside, 1)
        self.tabs.addTab(sample_page, "Samples")
        self.tabs.addTab(self.classes, "Per class")
        confusion_page = QWidget()
        confusion_column = QVBoxLayout(confusion_page)
        confusion_column.addWidget(QLabel("Rows: the true class · columns: the predicted class · green: right, "
                                          "red: wrong (darker: more samples)"))
        confusion_column.addWidget(self.confusion, 1)
        self.tabs.addTab(confusion_page, "Confusion matrix")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
        self.note = ""
        if not _has_test_split(self.run_dir):  # trained without one: its validation split is what there is
            self.split.blockSignals(True)
            self.split.setCurrentIndex(1)
            self.split.blockSignals(False)
            self.note = ("This run held no test split out (test_fraction 0), so its validation split is shown; "
                         "set test_fraction in Settings and train again for a test split. ")
        self.start()

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Evaluate (again) on the chosen split, in the background."""
        split = self.split.currentData()
        self.progress.show()
        self.summary.setStyleSheet("")
        self.summary.setText(f"Evaluating {self.run_dir.name} on its {'test' if split == 'test' else 'validation'} "
                             "split…")
        self.background.start(lambda: evaluate_run(self.run_dir, split, self.base_dir))

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the evaluation finished and is shown (tests)."""
        return self.background.wait(msecs)

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        if ticket != self.background.ticket:
            return
        self.progress.hide()
        if result is None:
            self.evaluation, self.error = None, error
            self.summary.setStyleSheet(f"color: {status_color('error')}")
            self.summary.setText(error)
            self.samples.setModel(None)
            self.classes.setRowCount(0)
            self.confusion.clear()
            return
        self.evaluation, self.error = result, ""
        self._show(result)

    # ------------------------------------------------------------------ showing
    def _show(self, evaluation: Evaluation) -> None:
        metrics = " · ".join(f"{name} {_metric(name, value)}" for name, value in evaluation.metrics.items())
        macro = (" · macro precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f}".format(**evaluation.macro)
                 if evaluation.macro else "")
        wrong = sum(1 for row in evaluation.rows if row.correct is False)
        mistakes = f" · {wrong} mistake{'s' if wrong != 1 else ''}" if evaluation.per_class else ""
        self.summary.setText(f"{self.note if evaluation.split == 'val' else ''}{evaluation.samples} samples, weights "
                             f"{evaluation.weights}: {metrics}{macro}{mistakes}")
        model = SamplesModel(evaluation)
        self.filter.setSourceModel(model)
        self.samples.setModel(self.filter)
        self.samples.selectionModel().currentRowChanged.connect(self._explain_row)
        self.attribution.show_sample(None)
        header = self.samples.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.samples.setColumnHidden(COLUMNS.index("image"), model.images is None)
        self.samples.setColumnHidden(COLUMNS.index("confidence"), not evaluation.per_class)
        self.samples.setColumnHidden(COLUMNS.index("file"), not any(row.file for row in evaluation.rows))
        self.samples.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.mistakes.setEnabled(bool(evaluation.per_class))
        self.tabs.setTabEnabled(1, bool(evaluation.per_class))
        self.tabs.setTabEnabled(2, evaluation.confusion is not None)
        self.classes.setRowCount(len(evaluation.per_class))
        for r, scores in enumerate(evaluation.per_class):
            for c, value in enumerate((scores.name, scores.precision, scores.recall, scores.f1, scores.support)):
                self.classes.setItem(r, c, _item(value))
        self._show_confusion(evaluation)

    def _explain_row(self, current: QModelIndex, previous: QModelIndex) -> None:
        """Show the attribution of the sample chosen in the table."""
        inputs = self.evaluation.inputs if self.evaluation is not None else None
        row = self.filter.mapToSource(current).row() if current.isValid() else -1
        self.attribution.show_sample(inputs[row] if inputs is not None and 0 <= row < len(inputs) else None)

    def _show_confusion(self, evaluation: Evaluation) -> None:
        self.confusion.clear()
        matrix = evaluation.confusion
        if matrix is None:
            return
        names = evaluation.class_names
        self.confusion.setRowCount(len(names))
        self.confusion.setColumnCount(len(names))
        self.confusion.setHorizontalHeaderLabels(list(names))
        self.confusion.setVerticalHeaderLabels(list(names))
        top = max(int(matrix.max()), 1)
        for r in range(len(names)):
            for c in range(len(names)):
                item = _item(int(matrix[r, c]))
                share = matrix[r, c] / top
                if matrix[r, c]:
                    base = QColor(status_color("ok" if r == c else "error"))
                    base.setAlphaF(0.15 + 0.6 * float(share))
                    item.setBackground(base)
                item.setToolTip(f"{int(matrix[r, c])} sample(s) of {names[r]} predicted as {names[c]}")
                self.confusion.setItem(r, c, item)
        self.confusion.resizeColumnsToContents()

    def export_csv(self, path: Path | None = None) -> Path | None:
        """Write every sample of the evaluation as CSV (asks where when ``path`` is not given)."""
        if self.evaluation is None:
            return None
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export samples as CSV",
                                                    str(self.run_dir / f"evaluation_{self.evaluation.split}.csv"),
                                                    "CSV files (*.csv)")
            if not chosen:
                return None
            path = Path(chosen)
        try:
            self.evaluation.write_csv(path)
        except OSError as exc:
            self.summary.setText(f"Cannot write {path}: {exc.strerror or exc}")
            return None
        return path


def _has_test_split(run_dir: Path) -> bool:
    """Whether the run recorded a test split (unknown runs say yes: evaluating says what is wrong)."""
    from engine.training.split_file import read_split

    try:
        recorded = read_split(run_dir)
    except UserError:
        return True
    return recorded is None or len(recorded.test) > 0


def _table(headers: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSortingEnabled(True)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _item(value: Any) -> QTableWidgetItem:
    item = QTableWidgetItem()
    if isinstance(value, float):
        item.setData(Qt.ItemDataRole.DisplayRole, round(value, 3))
    else:
        item.setData(Qt.ItemDataRole.DisplayRole, value)
    return item


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(f"{v:.4g}" for v in value)
    return str(value)


def _metric(name: str, value: float) -> str:
    return f"{value:.1%}" if "acc" in name else f"{value:.4g}"
