"""Live training curves: loss, the task's metric and the learning rate, for several runs.

Each plot has a header above it: its title and a key to its lines (drawn in the highlighted
run's colour), so no legend covers the curves. The plots sit side by side when each gets at
least :data:`MIN_PLOT_WIDTH` pixels (the learning rate, a narrower strip, :data:`MIN_LR_WIDTH`);
narrower, the learning rate moves below the other two, then everything stacks. A plot never
gets less than :data:`MIN_PLOT_HEIGHT` pixels of height (the learning-rate strip
:data:`MIN_LR_HEIGHT`): where the dashboard is shorter than its arrangement needs, the plots
scroll vertically instead of collapsing into strips with overlapping tick labels.

Events only update :class:`~engine.training.history.RunHistory` objects; a timer redraws at
most :data:`REDRAW_HZ` times a second, and only runs whose history changed. Curves use
pyqtgraph's peak downsampling and clip-to-view, so a run of a million batches still draws
a few thousand points.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QGraphicsGridLayout, QSizePolicy, QVBoxLayout, QWidget

from engine.training.history import RunHistory
from gui.training.plot_parts import (
    KEY_TIPS,
    MIN_LR_HEIGHT,
    MIN_LR_WIDTH,
    MIN_PLOT_HEIGHT,
    MIN_PLOT_WIDTH,
    MarkLabel,
    TimedLayoutWidget,
    export_layout_png,
    finite,
    nice_ceiling,
    steady_range,
    header_texts,
    hold_heights,
    nearest,
    vertical_scroll,
)

REDRAW_HZ = 20
#: Runs of up to this many epochs show their whole length on the x axis from the start.
WHOLE_RUN_EPOCHS = 20
#: Redrawing may take at most this share of one core: after a redraw that cost t seconds
#: (updating the items and painting them), the next waits at least t * (1 / share - 1).
#: On a small machine every cycle the GUI takes is a cycle the training process loses.
REDRAW_CPU_SHARE = 0.03
#: A paint of the three plots before any was measured (seconds; ~6-10 ms on a 2-core machine).
FIRST_PAINT_ESTIMATE_S = 0.008
RUN_COLORS = ("#2F81F7", "#E8590C", "#2DA44E", "#8250DF", "#D1242F", "#BF8700", "#1B998B", "#D64F7A",
              "#6E7781", "#0A3069")
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

    The newest run draws on top and keys the headers; earlier runs keep their colours so they can be
    compared. Hovering a plot shows the values of the newest visible run under the cursor.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = TimedLayoutWidget()
        self.view.setBackground("w")
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(vertical_scroll(self.view))  # scrolls where the dashboard is too short
        self._text_color = "#3D444D"
        self._label_fill = QColor(255, 255, 255, 210)  # behind the learning-rate change labels
        self._marker_fill = "#FFFFFF"  # inside the hollow validation markers: the plot's background
        self._mark_font = QFont(self.font())
        self._mark_font.setPointSizeF(7.5)
        self.loss = self._plot("epoch")
        self.metric_plot = self._plot("epoch")
        self.lr = self._plot("epoch")
        self.headers = {plot: pg.LabelItem(justify="left") for plot in (self.loss, self.metric_plot, self.lr)}
        for (plot, header), tip in zip(self.headers.items(), KEY_TIPS.values()):
            header.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            header.setToolTip(tip)
        self.titles = {self.loss: "Loss", self.metric_plot: "Metric", self.lr: "Learning rate"}
        self.keys: dict[pg.PlotItem, str] = {plot: "" for plot in self.headers}
        self.arrangement = ""
        self.setMinimumWidth(MIN_PLOT_WIDTH)
        self.runs: dict[str, _RunCurves] = {}
        self.current: str | None = None
        self._lr_top = 0.0
        self.log_scale = False
        self._hover = {plot: self._hover_label(plot) for plot in (self.loss, self.metric_plot, self.lr)}
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REDRAW_HZ)
        self.timer.timeout.connect(self._scheduled_redraw)
        self.timer.start()
        self.redraw_count = 0
        self._next_redraw = 0.0
        #: What one paint of the plots costs (seconds), learnt from the paints so far. A redraw is
        #: charged its own time plus this: its paint happens after it, so charging the paints
        #: measured since the previous redraw let the first redraws of a run come in a burst.
        self._paint_cost = FIRST_PAINT_ESTIMATE_S
        self._redraw_cost = FIRST_PAINT_ESTIMATE_S / 2  # updating the items, measured at each redraw
        self._x_span = 0.0
        self._y_ranges: dict[pg.PlotItem, tuple[float, float]] = {}
        for plot in self.headers:
            self._show_header(plot)
        self._arrange()

    def _plot(self, x_label: str) -> pg.PlotItem:
        plot = pg.PlotItem()
        plot.setPreferredWidth(10)  # widths come from the column stretch factors, not from the items
        plot.setLabel("bottom", x_label)
        # no grid: pyqtgraph draws grid lines through its axes, ten times the cost of the whole plot
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen("#3D444D")
            plot.getAxis(axis).enableAutoSIPrefix(False)  # "epoch (x0.001)" reads worse than 0.15
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
        text = self._text_color = getattr(theme, "node_text", "#1F2328") if dark else "#3D444D"
        self._label_fill = QColor(getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFF")
        self._label_fill.setAlpha(210)
        self._marker_fill = getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFF"  # hollow markers
        for curves in self.runs.values():
            for name in ("val_loss", "val_metric"):
                curves.items[name].setSymbolBrush(self._marker_fill)
        for plot in (self.loss, self.metric_plot, self.lr):
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(text)
            if plot.getAxis("bottom").label.isVisible():
                plot.getAxis("bottom").setLabel("epoch", color=text)
            self._show_header(plot)

    # ---------------------------------------------------------------- layout
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange()
        self._limit_lr_height()

    def _limit_lr_height(self) -> None:
        """Below the other plots, the learning rate is a strip: a third of the height at most."""
        below = self.arrangement.startswith(("grid", "stack"))
        self.lr.setMaximumHeight(max(float(MIN_LR_HEIGHT), self.height() / 3) if below else 1e6)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._arrange()

    def _arrange(self) -> None:
        """Side by side when each plot gets MIN_PLOT_WIDTH, else the learning rate below, else stacked."""
        plots = [self.loss, self.lr] if self.metric_hidden else [self.loss, self.metric_plot, self.lr]
        width = self.width()
        row_width = (len(plots) - 1) * MIN_PLOT_WIDTH + MIN_LR_WIDTH
        mode = "row" if width >= row_width else "grid" if width >= 2 * MIN_PLOT_WIDTH else "stack"
        if len(plots) == 2 and mode == "grid":
            mode = "stack"
        arrangement = f"{mode}{len(plots)}"
        if arrangement == self.arrangement:
            return
        self.arrangement = arrangement
        grid: QGraphicsGridLayout = self.view.ci.layout
        while grid.count():
            grid.removeAt(grid.count() - 1)
        for row in range(8):
            grid.setRowStretchFactor(row, 0)
        for column in range(3):
            grid.setColumnStretchFactor(column, 0)
        if mode == "row":
            cells = [(0, column, 1) for column in range(len(plots))]
        elif mode == "grid":  # loss and metric above, the learning rate below across both
            cells = [(0, 0, 1), (0, 1, 1), (2, 0, 2)]
        else:
            cells = [(2 * index, 0, 1) for index in range(len(plots))]
        bottom = max(row for row, _, _ in cells)
        self.lr.setMinimumWidth(MIN_LR_WIDTH if mode == "row" else 0)  # room for its axis, curve and label
        for plot, (row, column, span) in zip(plots, cells):
            grid.addItem(self.headers[plot], row, column, 1, span)
            grid.addItem(plot, row + 1, column, 1, span)
            grid.setRowStretchFactor(row + 1, 1 if plot is self.lr and mode != "row" else 2)
            grid.setColumnStretchFactor(column, 3 if plot is self.lr and mode == "row" else 5)
            # the x axis is the epoch everywhere: named once, under the bottom row
            plot.getAxis("bottom").setLabel("epoch" if row == bottom else None, color=self._text_color)
            plot.getAxis("bottom").showLabel(row == bottom)
        for item in (self.metric_plot, self.headers[self.metric_plot]):
            item.setVisible(not self.metric_hidden)
        hold_heights(self.view, [(row, self.headers[plot], plot,
                                  MIN_LR_HEIGHT if plot is self.lr and mode != "row" else MIN_PLOT_HEIGHT)
                                 for plot, (row, _, _) in zip(plots, cells)])
        self._limit_lr_height()

    @property
    def metric_hidden(self) -> bool:
        """Whether the task has no metric beyond the loss (the metric plot is left out)."""
        history = self.current_history()
        return (history is not None and bool(history.epoch_x) and history.metric_name == "loss"
                and history.task != "gan")

    def _show_header(self, plot: pg.PlotItem) -> None:
        # the key line is always there (blank before the run's first lines): a header that grew a
        # line when the first epoch's lines appeared re-laid out and repainted every plot mid-run
        note = f"<br><span style='font-size:7.5pt'>{self.keys[plot] or '&nbsp;'}</span>"
        self.headers[plot].setText(f"<b>{self.titles[plot]}</b>{note}", size="9pt", color=self._text_color)

    def _set_header(self, plot: pg.PlotItem, title: str, key: str) -> None:
        if (title, key) != (self.titles[plot], self.keys[plot]):
            self.titles[plot], self.keys[plot] = title, key
            self._show_header(plot)

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
        """Highlight one run: drawn on top, keying the headers, with the hover values."""
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
        self._x_span = 0.0
        self._y_ranges.clear()
        self._fit_ranges()

    def clear(self) -> None:
        """Forget every run."""
        for curves in self.runs.values():
            self._remove_items(curves)
        self.runs.clear()
        self.current = None
        self._lr_top = 0.0
        self._x_span = 0.0
        self._y_ranges.clear()
        for plot, title in ((self.loss, "Loss"), (self.metric_plot, "Metric"), (self.lr, "Learning rate")):
            self._set_header(plot, title, "")
            # the empty axes of a new window: the ranges of the runs just forgotten (another
            # project's, after opening a file) would read as a scale for data that is not there
            plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            plot.enableAutoRange()
        self._arrange()

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
                                         symbolSize=7, symbolBrush=self._marker_fill, symbolPen=color, name="validation")),
            "train_metric": (self.metric_plot, dict(pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                                               symbolBrush=color, symbolPen=None)),
            "val_metric": (self.metric_plot, dict(pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine),
                                             symbol="t", symbolSize=7, symbolBrush=self._marker_fill, symbolPen=color)),
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
            if item.getViewBox() is not None:
                item.getViewBox().removeItem(item)
        for mark in curves.marks:
            if mark.getViewBox() is not None:
                mark.getViewBox().removeItem(mark)

    def _restyle(self) -> None:
        """The current run draws on top and its colour keys the headers."""
        for key, curves in self.runs.items():
            on_top = key == self.current
            for item in curves.items.values():
                item.setZValue(10 if on_top else 0)
        current = self.runs.get(self.current) if self.current is not None else None
        if current is not None:
            self._update_headers(current)
        self._arrange()

    def _update_headers(self, curves: _RunCurves) -> None:
        """Titles and line keys of the highlighted run: only the lines it has."""
        for name, (title, key) in header_texts(curves.history, curves.color).items():
            self._set_header({"loss": self.loss, "metric": self.metric_plot, "lr": self.lr}[name], title, key)

    # ---------------------------------------------------------------- drawing
    def hold_redraws(self) -> None:
        """Keep the CPU budget from the first step of a run on: the first redraw with data comes
        once the run has trained long enough to pay for it (a fraction of a second), not during
        the first epochs, when a 25 ms redraw took 10% of a short run's training time."""
        now = time.perf_counter()
        self._next_redraw = max(self._next_redraw, now + (self._paint_cost + self._redraw_cost)
                                * (1 / REDRAW_CPU_SHARE - 1))

    def _scheduled_redraw(self) -> None:
        """The timer's redraw, skipped while the CPU budget of the previous one lasts."""
        now = time.perf_counter()
        if now < self._next_redraw:
            return
        painted, self.view.paint_seconds = self.view.paint_seconds, 0.0  # the paints since the last redraw
        if painted > 0:
            self._paint_cost = 0.5 * self._paint_cost + 0.5 * painted
        drawn = self.redraw_count
        self.redraw()
        if self.redraw_count != drawn:
            self._redraw_cost = time.perf_counter() - now
            self._next_redraw = now + (self._redraw_cost + self._paint_cost) * (1 / REDRAW_CPU_SHARE - 1)

    def redraw(self) -> None:
        """Push changed runs into their plot items (the timer calls this at 20 Hz)."""
        changed = False
        for curves in self.runs.values():
            history = curves.history
            if history.version == curves.drawn_version:
                continue
            curves.drawn_version = history.version
            changed = True
            items = curves.items
            items["batch"].setData(history.batch_x, history.batch_loss)
            items["smooth"].setData(history.batch_x, history.batch_loss_smooth)
            items["train_loss"].setData(*finite(history.epoch_x, history.train.get("loss")))
            items["val_loss"].setData(*finite(history.epoch_x, history.val.get("loss")))
            (_, first), (_, second) = history.metric_series()
            items["train_metric"].setData(*finite(history.epoch_x, first))
            items["val_metric"].setData(*finite(history.epoch_x, second))
            items["lr"].setData(history.lr_x, history.lr)
            if history.lr and not self.log_scale and curves.visible:
                self._lr_top = max(self._lr_top, max(history.lr) * 1.15)
                self.lr.setYRange(0, self._lr_top, padding=0)  # from 0: a constant rate is a flat line
            self._draw_marks(curves)
            if self.current is not None and curves is self.runs[self.current]:
                self._update_headers(curves)
                self._arrange()  # nothing beyond the loss plot to show: the metric plot is left out
        if changed:
            self._fit_ranges()
            self.redraw_count += 1

    def _fit_ranges(self) -> None:
        """Axis ranges that stay put while a run streams, so a redraw rarely re-lays its ticks.

        pyqtgraph rebuilds an axis's tick labels (text metrics for each) whenever its range
        moves, two thirds of a redraw's cost when every new point moved every axis. The x axes
        span a short run's planned epochs from its start (up to :data:`WHOLE_RUN_EPOCHS`); a
        longer run's grow in steps of 1, 2, 5 x 10^k up to the planned epochs, so the curves fill
        at least two fifths of the width and the range moves a few times a run; the y axes of loss and
        metric move only when a value leaves them or the values shrink to under half of them
        (see :func:`steady_range`).
        """
        visible = [c.history for c in self.runs.values() if c.visible]
        if not visible:
            return
        reached = max(max([*h.epoch_x[-1:], *h.batch_x[-1:], 0.0]) for h in visible)
        planned = max(max(h.epochs_planned or 0 for h in visible), reached)
        grown = nice_ceiling(reached * 1.2)
        span = max(planned if planned and (planned <= WHOLE_RUN_EPOCHS or grown >= planned) else grown, 1.0)
        if span != self._x_span:
            self._x_span = span
            for plot in (self.loss, self.metric_plot, self.lr):
                plot.setXRange(0, span, padding=0.02)
        if self.log_scale:
            return
        for plot, names in ((self.loss, ("batch", "smooth", "train_loss", "val_loss")),
                            (self.metric_plot, ("train_metric", "val_metric"))):
            values = [y for c in self.runs.values() if c.visible for name in names
                      for y in (c.items[name].yData if c.items[name].yData is not None else ()) if math.isfinite(y)]
            if not values:
                continue
            fitted = steady_range(self._y_ranges.get(plot), min(values), max(values))
            if fitted != self._y_ranges.get(plot):
                self._y_ranges[plot] = fitted
                plot.setYRange(*fitted, padding=0)

    def _draw_marks(self, curves: _RunCurves) -> None:
        """A vertical line where the learning rate was changed by hand."""
        while len(curves.marks) < 2 * len(curves.history.lr_marks):
            x, old, new = curves.history.lr_marks[len(curves.marks) // 2]
            for plot in (self.loss, self.lr):
                line = pg.InfiniteLine(x, angle=90, pen=pg.mkPen(curves.color, width=1,
                                                                  style=Qt.PenStyle.DotLine))
                plot.addItem(line)
                if plot is self.lr:  # the new rate beside the mark, on whichever side it fits
                    line.label = MarkLabel(line, f"→ {new:.2g}", position=0.5, color=curves.color,
                                            fill=pg.mkBrush(self._label_fill))
                    line.label.setFont(self._mark_font)
                line.setVisible(curves.visible)
                curves.marks.append(line)

    def set_log_scale(self, on: bool) -> None:
        """Logarithmic y axes for the loss and learning-rate plots."""
        self.log_scale = on
        self.loss.setLogMode(y=on)
        self.lr.setLogMode(y=on)
        self._y_ranges.clear()
        if on:
            self.lr.enableAutoRange(y=True)
            self.loss.enableAutoRange(y=True)
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
            value = nearest(history.lr_x, history.lr, x)
            if value is not None:
                parts.append(f"lr {value[1]:.3g}")
            parts += [f"set by hand: {old:.3g} → {new:.3g}" for at, old, new in history.lr_marks if abs(at - x) < 0.3]
        else:
            if plot is self.loss:
                value = nearest(history.batch_x, history.batch_loss_smooth, x)
                if value is not None:
                    parts.append(f"train {value[1]:.4g}")
                series = (("train/epoch", history.train.get("loss", [])), ("val", history.val.get("loss", [])))
            else:
                series = history.metric_series()
            for label, values in series:
                value = nearest(history.epoch_x, values, x, within=0.5)
                if value is not None:
                    parts.append(f"{label} {value[1]:.4g}")
        return f"epoch {x:.2f}\n" + "\n".join(parts) if parts else ""

    # ----------------------------------------------------------------- export
    def export_png(self, path: Path) -> None:
        """Save the three plots as one PNG (raises OSError when it cannot be written)."""
        export_layout_png(self.view, path)

    def current_history(self) -> RunHistory | None:
        """The newest (highlighted) run."""
        return self.runs[self.current].history if self.current in self.runs else None
