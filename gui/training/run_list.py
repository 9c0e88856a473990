"""The run list of the training dashboard: every run of the project, its colour, state and result.

A run's state shows as an icon (an SVG from ``resources/icons``, so it draws the same on every
system, unlike a font's ⏸), its result names the metric (``acc 97.2%``, ``G loss 0.842``),
and the columns are wide enough for the whole run name.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHeaderView, QMenu, QStyle, QTreeWidget, QTreeWidgetItem, QWidget

from engine.training.history import RunHistory
from gui.icons import icon

_RUN_STAMP = re.compile(r"-(\d{8})-(\d{6})(-\d+)?$")
#: The icon of each run state (file stems in resources/icons).
STATE_ICONS = {"starting": "train", "running": "train", "paused": "pause", "stopping": "stop", "stopped": "stop",
               "interrupted": "warning", "failed": "error", "finished": "ok"}
STATE_WORDS = {"starting": "starting", "running": "running", "paused": "paused", "stopping": "stopping",
               "stopped": "stopped (can be resumed)", "interrupted": "interrupted (can be resumed)",
               "failed": "failed", "finished": "finished"}
#: Short names of the headline metrics, for the Result column.
METRIC_LABELS = {"accuracy": "acc", "r2": "R²", "mae": "MAE", "perplexity": "ppl", "g_loss": "G loss",
                 "mse_vs_noise": "MSE/noise", "loss": "loss"}
#: The texts the columns show whole at the list's minimum width.
_WIDEST_NAME, _SHORT_RESULT = "00-00 00:00:00", "acc 00.0%"


def short_name(run_name: str) -> str:
    """``mlp-20261124-071744`` -> ``11-24 07:17:44`` (the project name is the same for all rows)."""
    match = _RUN_STAMP.search(run_name)
    if match is None:
        return run_name
    day, clock, suffix = match.groups()
    return f"{day[4:6]}-{day[6:]} {clock[:2]}:{clock[2:4]}:{clock[4:]}" + (f" ({suffix[1:]})" if suffix else "")


def result_text(history: RunHistory) -> str:
    """The run's latest headline metric with its name (``acc 97.2%``), ``–`` before the first epoch."""
    metric = history.final_metric()
    if metric is None:
        return "–"
    name, value = metric
    shown = f"{value:.1%}" if name == "accuracy" else f"{value:.4g}"
    return f"{METRIC_LABELS.get(name, name)} {shown}"


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class RunList(QTreeWidget):
    """The project's runs: show/hide checkboxes, colour, state and final metric.

    Signals:
        visibility_changed(str, bool): A run's checkbox changed (run key, shown).
        run_chosen(str): A run was clicked (its key).
        resume_requested(str): "Resume" was chosen in a stopped run's context menu.
        evaluate_requested(str): "Evaluate" was chosen in a run's context menu.
    """

    visibility_changed = Signal(str, bool)
    run_chosen = Signal(str)
    resume_requested = Signal(str)
    evaluate_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Run", "Result"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setToolTip("Runs of this project: tick to overlay, click to highlight, right-click to resume")
        header = self.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(True)
        self.setMinimumWidth(self.needed_width())
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemChanged.connect(self._on_item_changed)
        self.itemClicked.connect(lambda item, column: self.run_chosen.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        self.items: dict[str, QTreeWidgetItem] = {}
        self.histories: dict[str, RunHistory] = {}

    def needed_width(self) -> int:
        """Room for a whole run name and a short result (a longer one scrolls): check box, swatch,
        name, state icon, scroll bar."""
        metrics, style = self.fontMetrics(), self.style()
        indicator = style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
        icon_size = style.pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        scroll = style.pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        name = indicator + icon_size + metrics.horizontalAdvance(_WIDEST_NAME) + 24
        result = icon_size + metrics.horizontalAdvance(_SHORT_RESULT) + 16
        return name + result + scroll + 2 * self.frameWidth()

    def add(self, key: str, history: RunHistory, color: str) -> None:
        """Add or refresh the row of a run (newest on top)."""
        item = self.items.get(key)
        self.blockSignals(True)
        if item is None:
            item = QTreeWidgetItem()
            item.setData(0, Qt.ItemDataRole.UserRole, key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked)
            self.insertTopLevelItem(0, item)
            self.items[key] = item
        item.setIcon(0, _swatch(color))
        self.histories[key] = history
        self.blockSignals(False)
        self.refresh(key)

    def refresh(self, key: str) -> None:
        """Update a run's state and result columns."""
        item, history = self.items.get(key), self.histories.get(key)
        if item is None or history is None:
            return
        self.blockSignals(True)
        item.setText(0, short_name(history.name))
        item.setText(1, result_text(history) if history.state != "failed" else "failed")
        item.setIcon(1, icon(STATE_ICONS.get(history.state, "stop")))
        metric = history.final_metric()
        source = "validation" if metric and metric[0] in history.val else "training"
        item.setToolTip(1, f"{STATE_WORDS.get(history.state, history.state).capitalize()}"
                        + (f"; latest {source} {metric[0]}" if metric else ""))
        item.setToolTip(0, f"{history.name}\n{history.run_dir}\n{history.summary()}"
                        + (f"\n{history.message}" if history.message else ""))
        self.blockSignals(False)

    def clear_runs(self) -> None:
        """Forget every row."""
        self.clear()
        self.items.clear()
        self.histories.clear()

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self.visibility_changed.emit(item.data(0, Qt.ItemDataRole.UserRole),
                                         item.checkState(0) == Qt.CheckState.Checked)

    def _context_menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        key = item.data(0, Qt.ItemDataRole.UserRole)
        history = self.histories[key]
        menu = QMenu(self)
        resume = menu.addAction("Resume this run")
        resume.setEnabled(not history.active and history.state in ("stopped", "interrupted", "failed")
                          and (Path(history.run_dir) / "checkpoint.pt").is_file())
        evaluate = menu.addAction("Evaluate…")
        evaluate.setToolTip("Test metrics, per-class scores, confusion matrix and every test sample")
        evaluate.setEnabled(not history.active and any((Path(history.run_dir) / name).is_file()
                                                       for name in ("model.safetensors", "checkpoint.pt")))
        chosen = menu.exec(self.viewport().mapToGlobal(pos))
        if chosen is resume:
            self.resume_requested.emit(key)
        elif chosen is evaluate:
            self.evaluate_requested.emit(key)
