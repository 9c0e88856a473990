"""The Experiments panel's plots (pyqtgraph), in three tabs of two plots each.

* Progress: the metric per epoch of every trial (running trials in colour, finished ones
  thin and grey, the best one green) and the best value so far against the trial number.
* Parameters: parallel coordinates and parameter importances (:mod:`gui.training.parameter_plots`).
* Trade-off: with several objectives, the metric against the second objective, the
  Pareto front joined and highlighted, the project's own configuration marked.

Clicking a trial's point emits :attr:`ExperimentPlots.trial_clicked` (the table selects it).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from gui.training.experiment_data import StudyView, better, format_objective, format_value
from gui.training.parameter_plots import ImportancePlot, ParallelPlot, PlotColors, note, styled_plot
from gui.training.plots import run_color

BEST_COLOR = "#2DA44E"
FRONT_COLOR = "#E8590C"
#: Tab titles, in order.
TABS = ("Progress", "Parameters", "Trade-off")


class ExperimentPlots(QTabWidget):
    """Every plot of a study; :meth:`show_view` draws a read study, :meth:`show_live` the running trials.

    Signals:
        trial_clicked(int): A trial's point was clicked (its number).
    """

    trial_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocumentMode(True)
        self.colors = PlotColors()
        self.view: StudyView | None = None
        self.widgets: dict[str, pg.GraphicsLayoutWidget] = {}
        for title in TABS:
            widget = pg.GraphicsLayoutWidget()
            widget.ci.setContentsMargins(2, 2, 2, 2)
            self.widgets[title] = widget
            self.addTab(widget, title)
        self.curves = styled_plot(self.colors, "epoch", whole_x=True)
        self.progress = styled_plot(self.colors, "trial", whole_x=True)
        self.widgets["Progress"].addItem(self.curves, 0, 0)
        self.widgets["Progress"].addItem(self.progress, 0, 1)
        self.parallel = ParallelPlot(self.colors)
        self.importance = ImportancePlot(self.colors)
        self.widgets["Parameters"].addItem(self.parallel.plot, 0, 0)
        self.widgets["Parameters"].addItem(self.importance.plot, 0, 1)
        self.widgets["Parameters"].ci.layout.setColumnStretchFactor(0, 3)
        self.widgets["Parameters"].ci.layout.setColumnStretchFactor(1, 2)
        self.pareto = styled_plot(self.colors, "")
        self.widgets["Trade-off"].addItem(self.pareto, 0, 0)
        self._curve_items: dict[int, pg.PlotDataItem] = {}
        self._live: dict[int, list[tuple[int, float]]] = {}
        self._running: set[int] = set()
        self.set_theme(None)

    # ----------------------------------------------------------------- public
    def set_theme(self, theme: object) -> None:
        """Background and text colours of the light or dark theme."""
        self.colors.use(theme)
        for widget in self.widgets.values():
            widget.setBackground(self.colors.background)
        for plot in (self.curves, self.progress, self.pareto, self.parallel.plot, self.importance.plot):
            for axis in ("left", "bottom"):
                item = plot.getAxis(axis)
                item.setTextPen(self.colors.text)
                item.setPen(self.colors.faint)
                if item.labelText:  # its name, in the theme's text colour
                    item.setLabel(item.labelText, color=self.colors.text)
        self.redraw()

    def show_view(self, view: StudyView | None) -> None:
        """Draw a study as read (``None``: no study)."""
        self.view = view
        self.redraw()

    def show_live(self, curves: dict[int, list[tuple[int, float]]], running: set[int]) -> None:
        """The metric per epoch of the trials this search runs (newer than the study read)."""
        self._live, self._running = curves, running
        self._draw_curves()

    def redraw(self) -> None:
        """Draw every plot again."""
        view = self.view
        self._draw_curves()
        self._draw_progress()
        self.parallel.draw(view)
        self.importance.draw(view)
        self._draw_pareto()
        several = view is not None and len(view.objectives) > 1
        self.setTabEnabled(TABS.index("Trade-off"), several)
        self.setTabToolTip(TABS.index("Trade-off"), "" if several else
                           "The trade-off of several objectives: add flops, parameters or latency to "
                           "search.objectives")
        if not several and self.currentIndex() == TABS.index("Trade-off"):
            self.setCurrentIndex(0)

    # ------------------------------------------------------------- progress
    def _draw_curves(self) -> None:
        plot, view = self.curves, self.view
        metric = view.objectives[0] if view is not None else "metric"
        plot.setTitle(f"{metric} per epoch", color=self.colors.text, size="9pt")
        curves = {t.number: t.curve for t in view.trials if t.curve} if view is not None else {}
        curves.update({n: c for n, c in self._live.items() if c})
        for number in [n for n in self._curve_items if n not in curves]:
            plot.removeItem(self._curve_items.pop(number))
        best = view.best if view is not None else None
        for number, points in sorted(curves.items()):
            item = self._curve_items.get(number)
            if item is None:
                item = self._curve_items[number] = pg.PlotDataItem()
                plot.addItem(item)
            state = "running" if number in self._running else (view.trial(number).state if view is not None
                                                               and view.trial(number) else "complete")
            if state == "running":
                pen, z = pg.mkPen(run_color(number), width=2), 5
            elif number == best:
                pen, z = pg.mkPen(BEST_COLOR, width=2.5), 10
            else:
                style = Qt.PenStyle.DashLine if state == "pruned" else Qt.PenStyle.SolidLine
                pen, z = pg.mkPen(self.colors.muted, width=1, style=style), 0
            item.setData([p[0] for p in points], [p[1] for p in points], pen=pen, symbol="o", symbolSize=4,
                         symbolBrush=pen.color(), symbolPen=None)
            item.setZValue(z)
        note(plot, "" if curves else "No trial has finished an epoch yet", self.colors)

    def _draw_progress(self) -> None:
        plot, view = self.progress, self.view
        plot.clear()
        metric = view.objectives[0] if view is not None else "metric"
        plot.setTitle(f"best {metric} so far", color=self.colors.text, size="9pt")
        done = view.complete() if view is not None else []
        if view is None or not done:
            note(plot, "No complete trial yet", self.colors)
            return
        direction = view.directions[0]
        xs, ys, best = [], [], None
        for t in done:
            value = t.values[0]  # type: ignore[index]
            if best is not None:
                xs.append(t.number)
                ys.append(best)
            best = value if best is None or better(value, best, direction) else best
            xs.append(t.number)
            ys.append(best)
        plot.addItem(pg.PlotDataItem(xs, ys, pen=pg.mkPen(BEST_COLOR, width=2)))
        brushes = [BEST_COLOR if t.number == view.best else self.colors.muted for t in done]
        scatter = pg.ScatterPlotItem([t.number for t in done], [t.values[0] for t in done],  # type: ignore[index]
                                     data=[t.number for t in done], brush=brushes, pen=None, size=8,
                                     hoverable=True, tip=lambda x, y, data: f"trial {data}: {metric} {format_objective(y)}")
        scatter.sigClicked.connect(self._on_clicked)
        plot.addItem(scatter)
        own = view.trial(view.template_trial) if view.template_trial is not None else None
        if own is not None and own.state == "complete" and own.values:
            plot.addItem(pg.InfiniteLine(own.values[0], angle=0,
                                         pen=pg.mkPen(self.colors.text, width=1, style=Qt.PenStyle.DotLine),
                                         label="the project as it is",
                                         # at the right end, away from the project's own trial (the first); below
                                         # the line in the view's upper half, above it in the lower, never cut
                                         labelOpts={"position": 0.98, "color": self.colors.text,
                                                    "anchors": [(1, 0), (1, 1)]}))
        note(plot, "", self.colors)
        values = [t.values[0] for t in done]  # type: ignore[index]
        if max(values) == min(values):  # one value: a narrow band round it, not pyqtgraph's ±0.5
            pad = max(abs(values[0]) * 0.01, 1e-3)
            plot.setYRange(values[0] - pad, values[0] + pad)

    # ---------------------------------------------------------------- pareto
    def _draw_pareto(self) -> None:
        plot, view = self.pareto, self.view
        plot.clear()
        if view is None or len(view.objectives) < 2:
            note(plot, "One objective: no trade-off to show", self.colors)
            return
        first, second = view.objectives[0], view.objectives[1]
        plot.setTitle(f"{first} against {second} · Pareto front in orange", color=self.colors.text, size="9pt")
        plot.setLabel("bottom", f"{second} ({'lower' if view.directions[1] == 'minimize' else 'higher'} is better)",
                      color=self.colors.text)
        plot.setLabel("left", first, color=self.colors.text)
        done = view.complete()
        front = sorted((t for t in done if t.number in view.pareto), key=lambda t: t.values[1])  # type: ignore[index]
        if len(front) > 1:
            plot.addItem(pg.PlotDataItem([t.values[1] for t in front], [t.values[0] for t in front],  # type: ignore[index]
                                         pen=pg.mkPen(FRONT_COLOR, width=1.5, style=Qt.PenStyle.DashLine)))
        scatter = pg.ScatterPlotItem(
            [t.values[1] for t in done], [t.values[0] for t in done], data=[t.number for t in done],  # type: ignore[index]
            brush=[FRONT_COLOR if t.number in view.pareto else self.colors.muted for t in done], pen=None,
            size=[11 if t.number in view.pareto else 7 for t in done], hoverable=True,
            tip=lambda x, y, data: f"trial {data}: {first} {format_objective(y)}, {second} {format_objective(x)}")
        scatter.sigClicked.connect(self._on_clicked)
        plot.addItem(scatter)
        self._mark_template(plot, view, second, [t.values[1] for t in done])  # type: ignore[index]
        note(plot, "" if done else "No complete trial yet", self.colors)

    def _mark_template(self, plot: pg.PlotItem, view: StudyView, second: str, xs: list[float]) -> None:
        """The project's own configuration: a ring round its trial, else a line at its cost."""
        own = view.trial(view.template_trial) if view.template_trial is not None else None
        if own is not None and own.values and len(own.values) > 1:
            plot.addItem(pg.ScatterPlotItem([own.values[1]], [own.values[0]], symbol="o", size=20, brush=None,
                                            pen=pg.mkPen(self.colors.text, width=1.5)))
            right = bool(xs) and own.values[1] > (min(xs) + max(xs)) / 2  # the label on the side with room
            label = pg.TextItem("the project as it is ", color=self.colors.text, anchor=(1, 1) if right else (0, 1))
            label.setPos(own.values[1], own.values[0])
            plot.addItem(label)
        elif second in view.template_costs:
            line = pg.InfiniteLine(view.template_costs[second], angle=90,
                                   pen=pg.mkPen(self.colors.text, width=1, style=Qt.PenStyle.DotLine),
                                   label=f"the project ({format_value(view.template_costs[second])})",
                                   labelOpts={"position": 0.95, "color": self.colors.text, "anchors": [(1, 0), (1, 0)]})
            plot.addItem(line)

    def _on_clicked(self, item: pg.ScatterPlotItem, points: list, *args: object) -> None:
        if len(points):
            self.trial_clicked.emit(int(points[0].data()))
