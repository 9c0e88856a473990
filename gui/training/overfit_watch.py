"""The overfitting watch on the dashboard's curves.

When :func:`~engine.training.overfitting.overfitting_since` finds the epoch after which the
highlighted run overfits, the loss plot marks it (a vertical line and a label) and a bar under
the plots gives the advice with buttons for what it points to: early stopping and weight decay
(each one undoable change of a training setting, for the next run) and where a dropout layer
would go (a graph change, so the bar only says where).
"""

from __future__ import annotations

import networkx as nx
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from engine.graph.model import Graph
from engine.training.history import RunHistory
from engine.training.overfitting import overfitting_advice, overfitting_since
from gui.document import Document
from gui.icons import icon
from gui.observers import DocumentLink
from gui.training.plot_parts import MarkLabel

#: What the buttons set.
PATIENCE = 5
WEIGHT_DECAY = 1e-4
#: The validation metric watched (as the command line watches it).
WATCHED = "loss"
MARK_COLORS = {"light": "#BF8700", "dark": "#D29922"}


def dropout_hint(graph: Graph) -> str:
    """Where dropout would go in ``graph``, in one line."""
    drops = [node.id for node in graph if node.type_id.startswith("dropout")]
    if drops:
        return f"Dropout: raise p of {', '.join(f'‘{d}’' for d in drops[:3])} on the canvas (a graph change)"
    try:
        order = list(nx.topological_sort(graph.nx_graph()))
    except nx.NetworkXUnfeasible:
        order = [node.id for node in graph]
    dense = [node for node in order if graph.nodes[node].type_id == "linear"]
    if len(dense) >= 2:
        return f"Dropout: add a Dropout layer before ‘{dense[-1]}’ on the canvas (a graph change)"
    return "Dropout: add a Dropout layer before the last layer on the canvas (a graph change)"


class OverfitWatch(QWidget):
    """The advice bar; it also draws the mark on ``loss_plot``.

    Args:
        loss_plot: The dashboard's loss plot.
    """

    def __init__(self, loss_plot: pg.PlotItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = loss_plot
        self.document: Document | None = None
        self._link = DocumentLink(settings_changed=self._show_buttons, analysis_changed=lambda *_: self._show_buttons())
        self.history: RunHistory | None = None
        self.since: int | None = None
        self._busy = False
        self._mark_color = MARK_COLORS["light"]
        self._fill = QColor(255, 255, 255, 210)
        self.mark = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(self._mark_color, width=1.5,
                                                               style=Qt.PenStyle.DashLine))
        self.mark.label = MarkLabel(self.mark, "", position=0.85, color=self._mark_color,
                                    fill=pg.mkBrush(self._fill))
        font = QFont(self.font())
        font.setPointSizeF(7.5)
        self.mark.label.setFont(font)
        self.mark.setZValue(20)
        self.mark.hide()
        loss_plot.addItem(self.mark, ignoreBounds=True)
        self.icon = QLabel()
        self.icon.setPixmap(icon("warning").pixmap(16, 16))
        self.advice = QLabel()
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.early = QPushButton()
        self.early.clicked.connect(self.use_early_stopping)
        self.decay = QPushButton()
        self.decay.clicked.connect(self.use_weight_decay)
        self.dropout = QLabel()
        self.dropout.setWordWrap(True)
        self.dropout.setToolTip("Dropout is a layer of the graph: add or change it on the canvas")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.advice, 3)
        layout.addWidget(self.early)
        layout.addWidget(self.decay)
        layout.addWidget(self.dropout, 1)
        self.hide()

    def set_theme(self, theme: object) -> None:
        """Mark colours of the light or dark theme."""
        dark = getattr(theme, "name", "light") == "dark"
        self._mark_color = MARK_COLORS["dark" if dark else "light"]
        self._fill = QColor(getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFF")
        self._fill.setAlpha(210)
        self.mark.setPen(pg.mkPen(self._mark_color, width=1.5, style=Qt.PenStyle.DashLine))
        self.mark.label.setColor(self._mark_color)
        self.mark.label.fill = pg.mkBrush(self._fill)
        self.mark.label.update()

    def set_document(self, document: Document | None) -> None:
        """The document whose settings the buttons change."""
        self.document = self._link.follow(document)
        self._show_buttons()

    def set_busy(self, busy: bool) -> None:
        """While a run trains the settings cannot change (the buttons wait for its end)."""
        self._busy = busy
        self._show_buttons()

    def set_history(self, history: RunHistory | None) -> None:
        """Watch ``history`` (the highlighted run)."""
        self.history = history
        self.check()

    def check(self) -> None:
        """Look for the overfitting point again (after an epoch, or another run was highlighted)."""
        history = self.history
        since = overfitting_since(history.epoch_records(), WATCHED) if history is not None and history.task != "gan" \
            else None
        self.since = since
        if since is None:
            self.mark.hide()
            self.hide()
            return
        self.mark.show()
        self.mark.setValue(float(since))
        self.mark.label.setFormat("overfitting")
        self.mark.setToolTip(f"The run overfits after epoch {since}")
        advice = overfitting_advice(since, WATCHED)
        self.advice.setText(advice[:1].upper() + advice[1:])
        self._show_buttons()
        self.show()

    def _show_buttons(self) -> None:
        document = self.document
        if self.since is None:
            return  # nothing on show
        training = document.project.training if document is not None else {}
        patience = int(training.get("early_stopping_patience", 0) or 0)
        decay = float(training.get("weight_decay", 0.0) or 0.0)
        waiting = " (when the run has ended: the settings are for the next run)" if self._busy else ""
        self.early.setText(f"Early stopping is on (patience {patience})" if patience else
                           f"Stop early (patience {PATIENCE})")
        self.early.setEnabled(document is not None and not patience and not self._busy)
        self.early.setToolTip(f"Set training.early_stopping_patience to {PATIENCE}: the next run stops after "
                              f"{PATIENCE} epochs without a better validation value (undoable){waiting}")
        self.decay.setText(f"Weight decay is {decay:g}" if decay else f"Weight decay {WEIGHT_DECAY:g}")
        self.decay.setEnabled(document is not None and not decay and not self._busy)
        self.decay.setToolTip(f"Set training.weight_decay to {WEIGHT_DECAY:g}: an L2 penalty that keeps the weights "
                              f"small (undoable){waiting}")
        self.dropout.setText(dropout_hint(document.project.graph) if document is not None else "")

    def use_early_stopping(self) -> bool:
        """Switch early stopping on (one undo step)."""
        return self._set("early_stopping_patience", PATIENCE, f"Turn on early stopping (patience {PATIENCE})")

    def use_weight_decay(self) -> bool:
        """Set weight decay (one undo step)."""
        return self._set("weight_decay", WEIGHT_DECAY, f"Set weight decay to {WEIGHT_DECAY:g}")

    def _set(self, name: str, value: object, text: str) -> bool:
        document = self.document
        if document is None:
            return False
        return document.push(document.settings_command("training", {name: value}, text))
