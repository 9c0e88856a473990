"""Live training curves: loss, the task's metric and the learning rate, for several runs.

Events only update :class:`~engine.training.history.RunHistory` objects; a timer redraws at
most :data:`REDRAW_HZ` times a second, and only runs whose history changed. Curves use
pyqtgraph's peak downsampling and clip-to-view, so a run of a million batches still draws
a few thousand points.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine.training.history import RunHistory

REDRAW_HZ = 20
#: Redrawing may take at most this share of one core: after a redraw that cost t seconds
#: (updating the items and painting them), the next waits at least t * (1 / share - 1).
#: On a small machine every cycle the GUI takes is a cycle the training process loses.
REDRAW_CPU_SHARE = 0.03
RUN_COLORS = ("#2F81F7", "#E8590C", "#2DA44E", "#8250DF", "#D1242F", "#BF8700", "#1B998B", "#D64F7A",
              "#6E7781", "#0A3069")
_METRIC_TITLES = {"accuracy": "Accuracy", "r2": "R²", "mae": "MAE", "perplexity": "Perplexity",
                  "g_loss": "Generator loss", "loss": "Loss",
                  "mse_vs_noise": "Reconstruction MSE / noise MSE", "modes_covered": "Modes covered"}


def run_color(index: int) -> str:
    """The colour of the ``index``-th run of a project."""
    return RUN_COLORS[index % len(RUN_COLORS)]


@dataclass
class _RunCurves:
    """The plot items of one run."""

    history: RunHistory
    color: str
    items: dict[str, pg.PlotDataItem] = field(default_factory=dict)
    marks: list[pg.InfiniteLine] = field(default_factory=list)
    drawn_version: int = -1
    visible: bool = True


class MetricPlots(QWidget):
    """Three plots side by side: loss, metric, learning rate.

    The newest run draws on top with a legend; earlier runs keep their colours so they can be
    compared. Hovering a plot shows the values of the newest visible run under the cursor.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = _TimedLayoutWidget()
        self.view.setBackground("w")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.loss = self._plot(0, "Loss", "epoch")
        self.metric = self._plot(1, "Metric", "epoch")
        self.lr = self._plot(2, "Learning rate", "epoch")
        self.legend = self.loss.addLegend(labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 200))
        self.legend.anchor((1, 0), (1, 0), offset=(-4, 4))
        self.runs: dict[str, _RunCurves] = {}
        self.current: str | None = None
        self._lr_top = 0.0
        self.log_scale = False
        self._hover = {plot: self._hover_label(plot) for plot in (self.loss, self.metric, self.lr)}
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REDRAW_HZ)
        self.timer.timeout.connect(self._scheduled_redraw)
        self.timer.start()
        self.redraw_count = 0
        self._next_redraw = 0.0

    def _plot(self, column: int, title: str, x_label: str) -> pg.PlotItem:
        plot: pg.PlotItem = self.view.addPlot(row=0, col=column)
        plot.setTitle(title, size="9pt")
        plot.setLabel("bottom", x_label)
        # no grid: pyqtgraph draws grid lines through its axes, ten times the cost of the whole plot
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("#3D444D")
        return plot

    @staticmethod
    def _hover_label(plot: pg.PlotItem) -> pg.TextItem:
        label = pg.TextItem(color="#1F2328", anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 215))
        label.setZValue(100)
        label.hide()
        plot.addItem(label, ignoreBounds=True)
        return label

    def set_theme(self, theme: object) -> None:
        """Plot background and axis colours of the light or dark theme."""
        dark = getattr(theme, "name", "light") == "dark"
        self.view.setBackground(getattr(theme, "node_body", "w") if dark else "w")
        text = getattr(theme, "node_text", "#1F2328") if dark else "#3D444D"
        for plot in (self.loss, self.metric, self.lr):
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(text)
            plot.titleLabel.setAttr("color", text)
            plot.setTitle(plot.titleLabel.text, size="9pt", color=text)
        self.legend.setBrush(pg.mkBrush(getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFFC8"))
        self.legend.setLabelTextColor(text)

    # ------------------------------------------------------------------ runs
    def add_run(self, history: RunHistory, current: bool = True) -> str:
        """Show ``history`` (replacing a run with the same folder); returns its key."""
        key = history.run_dir or history.name
        if key in self.runs:
            color = self.runs[key].color
            self._remove_items(self.runs.pop(key))
        else:
            color = run_color(len(self.runs))
        curves = _RunCurves(history, color)
        self.runs[key] = curves
        self._make_items(curves)
        if current or self.current is None:
            self.current = key
        self._restyle()
        self.redraw()
        return key

    def set_current(self, key: str) -> None:
        """Highlight one run: drawn on top, with the legend and the hover values."""
        if key in self.runs:
            self.current = key
            self._restyle()

    def set_visible(self, key: str, visible: bool) -> None:
        """Show or hide one run's curves."""
        curves = self.runs.get(key)
        if curves is None:
            return
        curves.visible = visible
        for item in [*curves.items.values(), *curves.marks]:
            item.setVisible(visible)

    def clear(self) -> None:
        """Forget every run."""
        for curves in self.runs.values():
            self._remove_items(curves)
        self.runs.clear()
        self.current = None
        self._lr_top = 0.0

    def _make_items(self, curves: _RunCurves) -> None:
        color = curves.color
        faint = pg.mkColor(color)
        faint.setAlpha(60)
        specs = {
            "batch": (self.loss, dict(pen=pg.mkPen(faint, width=1))),
            "smooth": (self.loss, dict(pen=pg.mkPen(color, width=2), name="train (smoothed)")),
            "train_loss": (self.loss, dict(pen=None, symbol="o", symbolSize=5, symbolBrush=color,
                                           symbolPen=None, name="train, per epoch")),
            "val_loss": (self.loss, dict(pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine), symbol="t",
                                         symbolSize=7, symbolBrush="w", symbolPen=color, name="validation")),
            "train_metric": (self.metric, dict(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                                               symbolBrush=color, symbolPen=None)),
            "val_metric": (self.metric, dict(pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine),
                                             symbol="t", symbolSize=7, symbolBrush="w", symbolPen=color)),
            "lr": (self.lr, dict(pen=pg.mkPen(color, width=2))),
        }
        for name, (plot, options) in specs.items():
            item = pg.PlotDataItem(**options)
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            plot.addItem(item)
            curves.items[name] = item

    def _remove_items(self, curves: _RunCurves) -> None:
        for item in curves.items.values():
            self.legend.removeItem(item)
            if item.getViewBox() is not None:
                item.getViewBox().removeItem(item)
        for mark in curves.marks:
            if mark.getViewBox() is not None:
                mark.getViewBox().removeItem(mark)

    def _restyle(self) -> None:
        """Only the current run has a legend and draws on top; earlier runs are thinner."""
        self.legend.clear()
        for key, curves in self.runs.items():
            on_top = key == self.current
            for item in curves.items.values():
                item.setZValue(10 if on_top else 0)
                if on_top and item.opts.get("name"):
                    self.legend.addItem(item, item.opts["name"])

    # ---------------------------------------------------------------- drawing
    def _scheduled_redraw(self) -> None:
        """The timer's redraw, skipped while the CPU budget of the previous one lasts."""
        now = time.perf_counter()
        if now < self._next_redraw:
            return
        painted, self.view.paint_seconds = self.view.paint_seconds, 0.0  # the paints since the last redraw
        drawn = self.redraw_count
        self.redraw()
        if self.redraw_count != drawn:
            cost = time.perf_counter() - now + painted
            self._next_redraw = now + cost * (1 / REDRAW_CPU_SHARE - 1)

    def redraw(self) -> None:
        """Push changed runs into their plot items (the timer calls this at 20 Hz)."""
        changed = False
        for curves in self.runs.values():
            history = curves.history
            if history.version == curves.drawn_version:
                continue
            curves.drawn_version = history.version
            changed = True
            metric = history.metric_name
            items = curves.items
            items["batch"].setData(history.batch_x, history.batch_loss)
            items["smooth"].setData(history.batch_x, history.batch_loss_smooth)
            items["train_loss"].setData(*_finite(history.epoch_x, history.train.get("loss")))
            items["val_loss"].setData(*_finite(history.epoch_x, history.val.get("loss")))
            (first_label, first), (second_label, second) = history.metric_series()
            items["train_metric"].setData(*_finite(history.epoch_x, first))
            items["val_metric"].setData(*_finite(history.epoch_x, second))
            items["lr"].setData(history.lr_x, history.lr)
            if history.lr and not self.log_scale and curves.visible:
                self._lr_top = max(self._lr_top, max(history.lr) * 1.15)
                self.lr.setYRange(0, self._lr_top, padding=0)  # from 0: a constant rate is a flat line
            self._draw_marks(curves)
            if self.current is not None and curves is self.runs[self.current]:
                title = "Generator vs discriminator loss" if history.task == "gan" else \
                    _METRIC_TITLES.get(metric, metric)
                self.metric.setTitle(f"{title} <span style='font-size:7pt'>(solid: {first_label}, dashed: "
                                     f"{second_label})</span>", size="9pt")
                self.metric.setVisible(metric != "loss")  # nothing beyond the loss plot to show
        if changed:
            self.redraw_count += 1

    def _draw_marks(self, curves: _RunCurves) -> None:
        """A vertical line where the learning rate was changed by hand."""
        while len(curves.marks) < 2 * len(curves.history.lr_marks):
            x, old, new = curves.history.lr_marks[len(curves.marks) // 2]
            for plot in (self.loss, self.lr):
                line = pg.InfiniteLine(x, angle=90, pen=pg.mkPen(curves.color, width=1,
                                                                  style=Qt.PenStyle.DotLine),
                                       label=f"lr {old:.2g}→{new:.2g}" if plot is self.lr else None,
                                       labelOpts={"position": 0.85, "color": curves.color})
                line.setVisible(curves.visible)
                plot.addItem(line)
                curves.marks.append(line)

    def set_log_scale(self, on: bool) -> None:
        """Logarithmic y axes for the loss and learning-rate plots."""
        self.log_scale = on
        self.loss.setLogMode(y=on)
        self.lr.setLogMode(y=on)
        if on:
            self.lr.enableAutoRange(y=True)
        else:
            for curves in self.runs.values():
                curves.drawn_version = -1  # redraw sets the linear range again

    # ------------------------------------------------------------------ hover
    def _on_mouse_moved(self, pos: QPointF) -> None:
        for plot, label in self._hover.items():
            if not plot.sceneBoundingRect().contains(pos) or self.current is None:
                label.hide()
                continue
            point = plot.vb.mapSceneToView(pos)
            text = self._values_at(plot, point.x())
            if not text:
                label.hide()
                continue
            label.setText(text)
            label.setPos(point)
            label.show()

    def _values_at(self, plot: pg.PlotItem, x: float) -> str:
        """The current run's values nearest to epoch ``x`` in ``plot``."""
        history = self.runs[self.current].history  # type: ignore[index]
        parts: list[str] = []
        if plot is self.lr:
            value = _nearest(history.lr_x, history.lr, x)
            if value is not None:
                parts.append(f"lr {value[1]:.3g}")
        else:
            if plot is self.loss:
                value = _nearest(history.batch_x, history.batch_loss_smooth, x)
                if value is not None:
                    parts.append(f"train {value[1]:.4g}")
                series = (("train/epoch", history.train.get("loss", [])), ("val", history.val.get("loss", [])))
            else:
                series = history.metric_series()
            for label, values in series:
                value = _nearest(history.epoch_x, values, x, within=0.5)
                if value is not None:
                    parts.append(f"{label} {value[1]:.4g}")
        return f"epoch {x:.2f}\n" + "\n".join(parts) if parts else ""

    # ----------------------------------------------------------------- export
    def export_png(self, path: Path) -> None:
        """Save the three plots as one PNG."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.view.ci)
        exporter.parameters()["width"] = max(1200, self.view.width())
        exporter.export(str(path))

    def current_history(self) -> RunHistory | None:
        """The newest (highlighted) run."""
        return self.runs[self.current].history if self.current in self.runs else None


class _TimedLayoutWidget(pg.GraphicsLayoutWidget):
    """A plot layout that remembers how long its paints took (the redraw budget counts them)."""

    paint_seconds = 0.0

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        start = time.perf_counter()
        super().paintEvent(event)
        self.paint_seconds += time.perf_counter() - start


def _finite(x: list[float], y: list[float] | None) -> tuple[list[float], list[float]]:
    if not y:
        return [], []
    pairs = [(a, b) for a, b in zip(x, y) if math.isfinite(b)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _nearest(xs: list[float], ys: list[float], x: float, within: float = math.inf) -> tuple[float, float] | None:
    """The point of ``(xs, ys)`` (sorted by x) nearest to ``x``, if within ``within``."""
    if not xs or len(ys) != len(xs):
        return None
    i = bisect_left(xs, x)
    candidates = [j for j in (i - 1, i) if 0 <= j < len(xs)]
    j = min(candidates, key=lambda k: abs(xs[k] - x))
    if abs(xs[j] - x) > within or not math.isfinite(ys[j]):
        return None
    return xs[j], ys[j]
