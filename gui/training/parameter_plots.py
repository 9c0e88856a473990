"""The Experiments panel's parameter plots, and the plot helpers its other plots share.

* :class:`ParallelPlot`: one polyline per complete trial across the searched parameters'
  axes (each normalized from its low to its high value, log ranges on a log scale, choices
  evenly spaced) and the first objective's (better at the top), coloured by that objective.
* :class:`ImportancePlot`: Optuna's parameter importances as horizontal bars, or why there
  are none yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt

from gui.training.experiment_data import Axis, StudyView, format_objective

#: Bar colour of the importances.
BAR_COLOR = "#2F81F7"


@dataclass
class PlotColors:
    """The plots' colours for the theme on show."""

    background: str = "#FFFFFF"
    text: str = "#3D444D"
    muted: str = "#8C959F"
    faint: str = "#C5CAD3"
    #: The parallel coordinates' colours from the worst trial to the best.
    ramp: tuple[str, ...] = ("#C9D3DF", "#6F95C8", "#0B4FAF")

    def use(self, theme: object) -> None:
        """Take the light or dark theme's colours (``None``: light)."""
        dark = getattr(theme, "name", "light") == "dark"
        self.background = getattr(theme, "node_body", "#2B3036") if dark else "#FFFFFF"
        self.text = getattr(theme, "node_text", "#E6EDF3") if dark else "#3D444D"
        self.muted = "#7D8590" if dark else "#8C959F"
        self.faint = getattr(theme, "node_border", "#444C56") if dark else "#C5CAD3"
        self.ramp = ("#46505C", "#4F7FB8", "#9CD1FF") if dark else ("#C9D3DF", "#6F95C8", "#0B4FAF")


class IntegerAxis(pg.AxisItem):
    """An axis of whole numbers (epochs, trial numbers): no tick at 1.5."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:  # noqa: N802,N803 - pyqtgraph override
        levels = []
        for spacing, values in super().tickValues(minVal, maxVal, size):
            if spacing >= 1:
                levels.append((spacing, [v for v in values if float(v).is_integer()]))
        return levels or [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]


def styled_plot(colors: PlotColors, x_label: str, whole_x: bool = False) -> pg.PlotItem:
    """A plot without pyqtgraph's menu and buttons, its axis values unscaled (``whole_x``: whole numbers on x)."""
    plot = pg.PlotItem(axisItems={"bottom": IntegerAxis("bottom")} if whole_x else None)
    plot.setPreferredWidth(10)  # widths come from the layout's stretch factors, not from the items
    plot.setMenuEnabled(False)
    plot.hideButtons()
    if x_label:
        plot.setLabel("bottom", x_label, color=colors.text)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)
        plot.getAxis(axis).setTextPen(colors.text)
    return plot


def note(plot: pg.PlotItem, text: str, colors: PlotColors) -> None:
    """Show ``text`` in the middle of an empty ``plot`` (``""``: hide it)."""
    item: pg.TextItem | None = getattr(plot, "_note_item", None)
    if item is None:
        item = pg.TextItem(anchor=(0.5, 0.5))
        plot._note_item = item  # type: ignore[attr-defined]
    if item.getViewBox() is None:
        plot.addItem(item, ignoreBounds=True)
    item.setColor(colors.text)
    item.setText(text)
    item.setVisible(bool(text))
    if text:
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        item.setPos(0.5, 0.5)
    else:
        plot.enableAutoRange()


class ParallelPlot:
    """Parallel coordinates of the complete trials."""

    def __init__(self, colors: PlotColors) -> None:
        self.colors = colors
        self.plot = styled_plot(colors, "")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideAxis("left")  # the bottom axis names the parameters
        self.lines: dict[int, pg.PlotDataItem] = {}

    def draw(self, view: StudyView | None) -> None:
        """Draw the complete trials of ``view``."""
        plot = self.plot
        plot.clear()
        self.lines = {}
        done = view.complete() if view is not None else []
        if view is None or not done or not view.axes:
            plot.setTitle("Parallel coordinates", color=self.colors.text, size="9pt")
            plot.getAxis("bottom").setTicks([[]])
            note(plot, "No complete trial yet" if view is None or not done else "Nothing was searched", self.colors)
            return
        metric, direction = view.objectives[0], view.directions[0]
        values = [t.values[0] for t in done]  # type: ignore[index]
        low, high = min(values), max(values)
        objective = Axis(metric, "float", low, high)
        axes = [*view.axes, objective]
        plot.setTitle(f"Parallel coordinates (colour: {metric})", color=self.colors.text, size="9pt")
        plot.setToolTip(f"One line per complete trial; the stronger its colour, the better its {metric}; the "
                        f"best trial is drawn thick, the project as it is dashed")
        colormap = pg.ColorMap([0.0, 0.5, 1.0], list(self.colors.ramp))
        for t in sorted(done, key=lambda t: _goodness(t.values[0], low, high, direction)):  # type: ignore[index]
            ys = [a.position(t.params.get(a.target)) for a in view.axes]
            ys.append(_goodness(t.values[0], low, high, direction))  # type: ignore[index]
            color = colormap.map(ys[-1], mode="qcolor")
            width = 3.0 if t.number == view.best else 1.5
            style = Qt.PenStyle.DashLine if t.number == view.template_trial else Qt.PenStyle.SolidLine
            line = pg.PlotDataItem(list(range(len(axes))), [math.nan if y is None else y for y in ys],
                                   pen=pg.mkPen(color, width=width, style=style), connect="finite")
            line.setToolTip(f"trial {t.number}{' (the project as it is)' if t.number == view.template_trial else ''}"
                            f": {metric} {format_objective(t.values[0])}")  # type: ignore[index]
            plot.addItem(line)
            self.lines[t.number] = line
        for index, axis in enumerate(axes):
            self._draw_axis(index, axis, flipped=axis is objective and direction == "minimize")
        # Names alternate between two rows, so each may take two axes' width (pixels / ~7 per character).
        room = plot.getViewBox().width() or 480.0
        limit = max(6, int(2 * room / max(len(axes), 1) / 7.0) - 2)
        names = [("\n" if index % 2 else "") + _elided(a.label + (" (log)" if a.log else ""), limit)
                 for index, a in enumerate(axes)]
        plot.getAxis("bottom").setHeight(44)
        plot.getAxis("bottom").setTicks([list(enumerate(names))])
        note(plot, "", self.colors)
        plot.setRange(xRange=(-0.5, len(axes) - 0.5), yRange=(-0.2, 1.2), padding=0)

    def _draw_axis(self, index: int, axis: Axis, flipped: bool) -> None:
        plot, text = self.plot, self.colors.text
        plot.addItem(pg.InfiniteLine(index, angle=90, pen=pg.mkPen(self.colors.muted, width=1)))
        bottom, top = axis.ends()
        if flipped:
            bottom, top = top, bottom
        for y, shown, anchor in ((0.0, bottom, (0.5, 0.0)), (1.0, top, (0.5, 1.0))):
            label = pg.TextItem(shown, color=text, anchor=anchor, fill=pg.mkBrush(self.colors.background))
            label.setPos(index, y)
            label.setZValue(20)
            plot.addItem(label)


def _goodness(value: float, low: float, high: float, direction: str) -> float:
    """0 for the worst value, 1 for the best."""
    if high == low:
        return 1.0
    share = (value - low) / (high - low)
    return share if direction == "maximize" else 1.0 - share


def _elided(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ImportancePlot:
    """Horizontal bars of Optuna's parameter importances (share of the first objective's variation)."""

    def __init__(self, colors: PlotColors) -> None:
        self.colors = colors
        self.plot = styled_plot(colors, "share of the variation")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMinimumWidth(180)
        self.plot.setToolTip("How much each parameter explains of the first objective's variation among the "
                             "complete trials (Optuna's PED-ANOVA evaluator)")
        self.shown: dict[str, float] = {}

    def draw(self, view: StudyView | None) -> None:
        """Draw the importances of ``view`` (or its note on why there are none)."""
        plot = self.plot
        plot.clear()
        plot.setTitle("Importance", color=self.colors.text, size="9pt")
        self.shown = dict(view.importances) if view is not None else {}
        if not self.shown:
            plot.getAxis("left").setTicks([[]])
            note(plot, _wrapped(view.importance_note if view is not None and view.importance_note
                                else "No study yet"), self.colors)
            return
        ordered = sorted(self.shown.items(), key=lambda item: item[1])
        ys = list(range(len(ordered)))
        plot.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.6, width=[v for _, v in ordered],
                                     brush=BAR_COLOR, pen=None))
        longest = max(v for _, v in ordered)
        for y, (target, value) in zip(ys, ordered):
            inside = value > longest / 2  # a long bar holds its share at its end; a short one has room after it
            label = pg.TextItem(f"{value:.0%}", color="#FFFFFF" if inside else self.colors.text,
                                anchor=(1, 0.5) if inside else (0, 0.5))
            label.setPos(value, y)
            plot.addItem(label)
        plot.getAxis("left").setTicks([[(y, _elided(t.split(".", 1)[-1])) for y, (t, _) in zip(ys, ordered)]])
        note(plot, "", self.colors)
        plot.setRange(xRange=(0, longest * 1.02), yRange=(-0.6, len(ordered) - 0.4), padding=0)


def _wrapped(text: str, width: int = 48) -> str:
    """``text`` broken into lines of about ``width`` characters (a note in a narrow plot)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])

