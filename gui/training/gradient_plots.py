"""The dashboard's Gradients tab: gradient health of one run over its training.

Per layer with weights, the gradient norm and the size of each update relative to the weights
(both on log scales), and per ReLU the share of dead units. Layers are coloured by depth, from
the first layer (blue) to the last (orange): a header key shows the ramp with the first and last
layer's names, and hovering a plot names the nearest curve, draws it thicker and gives its value.
A line above the plots sums up the latest sample's warnings (the Problems panel has them whole).

The samples come from :class:`~engine.training.history.GradientSeries` (live while a run trains,
read from ``metrics.jsonl`` for finished runs); a timer redraws at most :data:`REDRAW_HZ` times a
second, only while the tab is on show and the samples changed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QTimer
from PySide6.QtGui import QColor, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from engine.training.history import GradientSeries, RunHistory
from gui.style import status_color
from gui.training.plot_parts import MIN_PLOT_HEIGHT, MIN_PLOT_WIDTH, hold_heights, nearest, vertical_scroll
from gui.training.plots import WHOLE_RUN_EPOCHS

REDRAW_HZ = 5
#: The depth ramp, first layer to last: readable on the light and the dark plot background.
DEPTH_COLORS = ("#2F81F7", "#8250DF", "#D6336C", "#F0750F")
#: At most this many colour marks in a header key (deeper networks are sampled evenly).
KEY_MARKS = 16
EMPTY_NOTE = "Gradient health appears here while the model trains (a sample every training.gradient_every steps)."
NO_SAMPLES_NOTE = "This run has no gradient samples (training.gradient_every was 0, or the run is older than them)."
TITLES = {"norm": "Gradient norm", "ratio": "Update / weight", "dead": "Dead units"}
TIPS = {"norm": "The norm of each layer's gradient (log scale). Early layers far below the last ones: vanishing "
                "gradients; above 1,000: exploding.",
        "ratio": "The size of each step's update over the size of the layer's weights (log scale); around 1e-3 is "
                 "healthy, far below means the layer barely learns, far above that it jumps around.",
        "dead": "The share of each ReLU's units that were 0 for every sample of the batch (they pass no gradient)."}


def depth_color(index: int, count: int) -> QColor:
    """The colour of layer ``index`` of ``count``: blue for the first, orange for the last."""
    ramp = pg.ColorMap(np.linspace(0.0, 1.0, len(DEPTH_COLORS)), [pg.mkColor(c) for c in DEPTH_COLORS])
    return ramp.map(index / (count - 1) if count > 1 else 0.0, mode="qcolor")


def depth_key(names: list[str]) -> str:
    """Rich text: the first name, a colour mark per layer (sampled beyond :data:`KEY_MARKS`), the last name."""
    if not names:
        return "&nbsp;"
    count = len(names)
    picks = sorted({round(i * (count - 1) / (KEY_MARKS - 1)) for i in range(KEY_MARKS)}) if count > KEY_MARKS \
        else range(count)
    marks = "".join(f"<span style='color:{depth_color(i, count).name()}'>█</span>" for i in picks)
    first, last = html.escape(names[0]), html.escape(names[-1])
    return f"{first} {marks} {last}" if count > 1 else f"{marks} {first}"


def warning_summary(warnings: list[dict[str, str]]) -> str:
    """The short form of each warning: its message up to the advice."""
    parts = []
    for warning in warnings:
        message = str(warning.get("message", ""))
        short = message.split(";", 1)[0] if ";" in message else message.rsplit(": ", 1)[0]
        parts.append(short[:1].upper() + short[1:])
    return " · ".join(parts)


def _positive(values: list[float]) -> np.ndarray:
    """The values with the ones a log axis cannot show (0, negative, not finite) as gaps."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isfinite(array) & (array > 0), array, np.nan)


class LogAxis(pg.AxisItem):
    """A log axis that labels 1, 2 and 5 times the powers of ten when it spans few decades (not every
    one of 1 to 9, whose labels run into each other)."""

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: list) -> list:  # noqa: N802, N803
        ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(ticks) >= 3 or not (math.isfinite(minVal) and math.isfinite(maxVal)):
            return ticks
        decades = range(math.floor(minVal), math.ceil(maxVal))
        for steps in ((1, 2, 5), tuple(range(1, 10))):
            minor = [d + math.log10(m) for d in decades for m in steps if minVal < d + math.log10(m) < maxVal]
            if len(minor) >= 2:
                break
        return [*ticks, (None, minor)]


class _HoverLayout(pg.GraphicsLayoutWidget):
    """A plot layout that says when the pointer leaves it (the hover value goes)."""

    def __init__(self, on_leave: Callable[[], None]) -> None:
        super().__init__()
        self._on_leave = on_leave

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().leaveEvent(event)
        self._on_leave()


class GradientPlots(QWidget):
    """The Gradients tab: a summary line over the gradient norm, update-ratio and dead-unit plots."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.note = QLabel(EMPTY_NOTE)
        self.note.setWordWrap(True)
        self.note.setContentsMargins(6, 2, 6, 0)
        self.note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.view = _HoverLayout(lambda: self._highlight(None))
        self.view.setBackground("w")
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.note)
        layout.addWidget(vertical_scroll(self.view), 1)  # scrolls where the dashboard is too short
        self._text_color = "#3D444D"
        self.plots = {name: self._plot(name) for name in TITLES}
        self.headers = {name: pg.LabelItem(justify="left") for name in TITLES}
        for name, header in self.headers.items():
            header.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            header.setToolTip(TIPS[name])
        self.plots["dead"].setYRange(0, 1, padding=0.02)
        self.plots["dead"].getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1.0)]])
        self.curves: dict[str, dict[str, pg.PlotDataItem]] = {name: {} for name in TITLES}
        self.keys = {name: "" for name in TITLES}
        self.history: RunHistory | None = None
        self.arrangement = ""
        self._drawn = (-1, None)
        self._highlighted: tuple[str, str] | None = None
        self._hover = pg.TextItem(color="#1F2328", anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 225))
        self._hover.setZValue(100)
        self._hover.hide()
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REDRAW_HZ)
        self.timer.timeout.connect(self._scheduled_redraw)
        self.timer.start()
        for name in TITLES:
            self._show_header(name)
        self._arrange()

    def _plot(self, name: str) -> pg.PlotItem:
        plot = pg.PlotItem(axisItems={"left": LogAxis("left")} if name != "dead" else None)
        plot.setPreferredWidth(10)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        if name != "dead":
            plot.setLogMode(y=True)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setTextPen(self._text_color)
            plot.getAxis(axis).enableAutoSIPrefix(False)
        return plot

    # ---------------------------------------------------------------- theme
    def set_theme(self, theme: object) -> None:
        """Plot background and text colours of the light or dark theme."""
        dark = getattr(theme, "name", "light") == "dark"
        self.view.setBackground(getattr(theme, "node_body", "w") if dark else "w")
        self._text_color = getattr(theme, "node_text", "#1F2328") if dark else "#3D444D"
        fill = QColor(getattr(theme, "node_body", "#FFFFFF") if dark else "#FFFFFF")
        fill.setAlpha(225)
        self._hover.fill = pg.mkBrush(fill)
        self._hover.setColor(self._text_color)
        for plot in self.plots.values():
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(self._text_color)
        for name in TITLES:
            self._show_header(name)
        self._arrange(force=True)
        self._show_note()

    # --------------------------------------------------------------- layout
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._arrange()
        self.redraw()

    @property
    def shown_plots(self) -> list[str]:
        """The plots on show: the dead-unit plot only for runs with ReLUs."""
        series = self.series
        return ["norm", "ratio", "dead"] if series is not None and series.relus else ["norm", "ratio"]

    def _arrange(self, force: bool = False) -> None:
        """Side by side when each plot gets MIN_PLOT_WIDTH, else two above and the dead units below,
        else stacked; each row at least MIN_PLOT_HEIGHT high (the tab scrolls when shorter)."""
        names = self.shown_plots
        width = self.width()
        mode = ("row" if width >= len(names) * MIN_PLOT_WIDTH
                else "grid" if width >= 2 * MIN_PLOT_WIDTH and len(names) == 3 else "stack")
        arrangement = f"{mode}{len(names)}"
        if arrangement == self.arrangement and not force:
            return
        self.arrangement = arrangement
        grid = self.view.ci.layout
        while grid.count():
            grid.removeAt(grid.count() - 1)
        for row in range(4):
            grid.setRowStretchFactor(row, 0)
        cells = {"row": [(0, i, 1) for i in range(len(names))], "grid": [(0, 0, 1), (0, 1, 1), (2, 0, 2)],
                 "stack": [(2 * i, 0, 1) for i in range(len(names))]}[mode]
        bottom = max(row for row, _, _ in cells)
        hold_heights(self.view, [(row, self.headers[name], self.plots[name], MIN_PLOT_HEIGHT)
                                 for name, (row, _, _) in zip(names, cells)])
        for name, (row, column, span) in zip(names, cells):
            grid.addItem(self.headers[name], row, column, 1, span)
            grid.addItem(self.plots[name], row + 1, column, 1, span)
            grid.setRowStretchFactor(row + 1, 1)
            axis = self.plots[name].getAxis("bottom")
            axis.setLabel("epoch" if row == bottom else None, color=self._text_color)
            axis.showLabel(row == bottom)
        for name in TITLES:
            visible = name in names
            self.plots[name].setVisible(visible)
            self.headers[name].setVisible(visible)

    def _show_header(self, name: str) -> None:
        scale = "" if name == "dead" else " <span style='font-size:7.5pt'>(log)</span>"
        key = f"<br><span style='font-size:7.5pt'>{self.keys[name] or '&nbsp;'}</span>"
        self.headers[name].setText(f"<b>{TITLES[name]}</b>{scale}{key}", size="9pt", color=self._text_color)

    # ----------------------------------------------------------------- data
    @property
    def series(self) -> GradientSeries | None:
        """The shown run's samples."""
        return self.history.gradients if self.history is not None else None

    def set_history(self, history: RunHistory | None) -> None:
        """Show ``history``'s samples (``None``: nothing)."""
        if history is self.history:
            return
        self.history = history
        self._drawn = (-1, None)
        self._clear_curves()
        self.redraw()

    def _clear_curves(self) -> None:
        for name, curves in self.curves.items():
            for item in curves.values():
                self.plots[name].removeItem(item)
            curves.clear()
        self._highlighted = None
        self._hover.hide()

    def _scheduled_redraw(self) -> None:
        if self.isVisible():
            self.redraw()

    def redraw(self) -> None:
        """Push new samples into the curves (the timer calls this while the tab is on show)."""
        series = self.series
        stamp = (series.version if series is not None else -1, id(series))
        if stamp == self._drawn:
            return
        self._drawn = stamp
        self._show_note()
        if series is None:
            self._arrange()
            return
        for name, order, store in (("norm", series.layers, series.grad_norm),
                                   ("ratio", series.layers, series.update_ratio), ("dead", series.relus, series.dead)):
            curves = self.curves[name]
            if list(curves) != order:  # new layers: colours by depth change for all
                for item in curves.values():
                    self.plots[name].removeItem(item)
                curves.clear()
                for index, node in enumerate(order):
                    item = pg.PlotDataItem(pen=pg.mkPen(depth_color(index, len(order)), width=1.5), connect="finite")
                    self.plots[name].addItem(item)
                    curves[node] = item
                self.keys[name] = depth_key(order)
                self._show_header(name)
                self._highlighted = None
            for node, item in curves.items():
                values = store[node]
                item.setData(series.x, values if name == "dead" else _positive(values))
        if series.x:  # the epochs the curves span too (a short run's planned length from its start)
            history = self.history
            planned = history.epochs_planned if history.epochs_planned <= WHOLE_RUN_EPOCHS else 0
            span = max(series.x[-1], *history.epoch_x[-1:], planned, 1e-9)
            for plot in self.plots.values():
                plot.setXRange(0, span, padding=0.02)
        self._arrange()

    def _show_note(self) -> None:
        series = self.series
        if self.history is None:
            text, kind = EMPTY_NOTE, ""
        elif series is None or not series.x:
            text, kind = (EMPTY_NOTE if self.history.active else NO_SAMPLES_NOTE), ""
        elif series.warnings:
            summary = warning_summary(series.warnings)
            text, kind = f"⚠ {summary} (step {series.step}; the Problems panel says what to do)", "warning"
        else:
            text, kind = f"No problems in the latest sample (step {series.step}, {len(series.layers)} layers).", "ok"
        self.note.setText(text)
        self.note.setToolTip("\n\n".join(w.get("message", "") for w in series.warnings)
                             if series is not None and series.warnings else "")
        self.note.setStyleSheet(f"color: {status_color(kind)};" if kind else "")

    # ---------------------------------------------------------------- hover
    def _on_mouse_moved(self, pos: QPointF) -> None:
        series = self.series
        target = None
        if series is not None and series.x:
            for name in self.shown_plots:
                plot = self.plots[name]
                if plot.isVisible() and plot.vb.sceneBoundingRect().contains(pos):
                    target = (name, plot.vb.mapSceneToView(pos))
                    break
        if target is None:
            self._highlight(None)
            return
        name, point = target
        found = self._nearest_curve(name, point.x(), point.y())
        if found is None:
            self._highlight(None)
            return
        node, x, value = found
        self._highlight((name, node))
        label = {"norm": "norm", "ratio": "update/weight"}.get(name, "")
        shown = f"{value:.0%} dead" if name == "dead" else f"{label} {value:.3g}"
        self._hover.setText(f"{node} · epoch {x:.2f}\n{shown}")
        if self._hover.getViewBox() is not self.plots[name].vb:
            if self._hover.getViewBox() is not None:
                self._hover.getViewBox().removeItem(self._hover)
            self.plots[name].addItem(self._hover, ignoreBounds=True)
        (left, right), (bottom, top) = self.plots[name].vb.viewRange()
        # beside the pointer on the side with room: never cut off by the plot's edge
        self._hover.setAnchor((1 if point.x() > (left + right) / 2 else 0, 0 if point.y() > (bottom + top) / 2 else 1))
        self._hover.setPos(point)
        self._hover.show()

    def _nearest_curve(self, name: str, x: float, y: float) -> tuple[str, float, float] | None:
        """The curve of plot ``name`` nearest to the cursor (in the plot's own, log, coordinates)."""
        series = self.series
        assert series is not None
        store = {"norm": series.grad_norm, "ratio": series.update_ratio, "dead": series.dead}[name]
        best: tuple[float, str, float, float] | None = None
        for node, values in store.items():
            point = nearest(series.x, values, x)
            if point is None or (name != "dead" and point[1] <= 0):
                continue
            shown = point[1] if name == "dead" else math.log10(point[1])
            distance = abs(shown - y)
            if best is None or distance < best[0]:
                best = (distance, node, point[0], point[1])
        return None if best is None else best[1:]

    def _highlight(self, which: tuple[str, str] | None) -> None:
        """Draw the hovered curve thicker and on top (``None``: all as they were)."""
        if which == self._highlighted:
            return
        if which is None:
            self._hover.hide()
        for (name, node) in [h for h in (self._highlighted, which) if h is not None]:
            item = self.curves[name].get(node)
            if item is None:
                continue
            on = (name, node) == which
            pen = pg.mkPen(item.opts["pen"])
            pen.setWidthF(3.0 if on else 1.5)
            item.setPen(pen)
            item.setZValue(10 if on else 0)
        self._highlighted = which

    # ---------------------------------------------------------------- tests
    def curve_data(self, name: str) -> dict[str, tuple[list[float], list[float]]]:
        """Per curve of plot ``name``, its points (what tests and reviews read)."""
        result = {}
        for node, item in self.curves[name].items():
            x, y = item.xData, item.yData  # the values, not their logarithms
            result[node] = ([] if x is None else [float(v) for v in x], [] if y is None else [float(v) for v in y])
        return result
