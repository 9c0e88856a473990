"""Parts of the training plots that need no plot widget: the header texts (titles and line
keys of the highlighted run), the learning-rate mark label, the timed layout widget, the scroll
area the plots fall back to when short, and the series helpers."""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QFrame, QScrollArea, QWidget

from engine.training.history import TASK_METRIC, RunHistory

METRIC_TITLES = {"accuracy": "Accuracy", "r2": "R²", "mae": "MAE", "perplexity": "Perplexity",
                  "g_loss": "GAN losses", "loss": "Loss",
                  "mse_vs_noise": "MSE / noise MSE", "modes_covered": "Modes covered"}
#: Narrowest a plot may get (logical pixels) before the plots rearrange.
MIN_PLOT_WIDTH = 190
MIN_LR_WIDTH = 150
#: Least height of a plot with its x axis (its header comes on top): shorter, the plots scroll.
MIN_PLOT_HEIGHT = 100
#: Least height of the learning-rate strip when it sits below the other plots.
MIN_LR_HEIGHT = 75
#: The line keys of the headers: a glyph per line style.
_SOLID, _DASHED, _DOTS = "━━", "╍╍", "●"
_SHORT = {"validation": "val", "generator": "gen", "discriminator": "disc"}
#: What the keys mean in full (the headers' tooltips).
KEY_TIPS = {
    "loss": "solid: training loss, smoothed (faint: per batch) · dots: training loss per epoch · "
            "dashed with triangles: validation loss",
    "metric": "solid: training value (generator loss for a GAN) · dashed with triangles: validation value "
              "(discriminator loss for a GAN)",
    "lr": "the learning rate of each step; a dotted line marks a rate set by hand (Set LR)"}


def header_texts(history: RunHistory, color: str) -> dict[str, tuple[str, str]]:
    """``{"loss" | "metric" | "lr": (title, key)}`` for ``history`` drawn in ``color``; a key (rich
    text) names only the lines the run has."""

    def entry(glyph: str, text: str) -> str:
        return f"<span style='color:{color}'>{glyph}</span>&nbsp;{text}"

    loss = [entry(_SOLID, "train")] if history.batch_x else []  # its faint per-batch line: see the tooltip
    loss += [entry(_DOTS, "epoch")] if has_values(history.train.get("loss")) else []
    loss += [entry(_DASHED, "val")] if has_values(history.val.get("loss")) else []
    (first_label, first), (second_label, second) = history.metric_series()
    metric = [entry(_SOLID, _SHORT.get(first_label, first_label))] if has_values(first) else []
    metric += [entry(_DASHED, _SHORT.get(second_label, second_label))] if has_values(second) else []
    name = history.metric_name if history.epoch_x else TASK_METRIC.get(history.task, "loss")
    title = METRIC_TITLES["g_loss"] if history.task == "gan" else METRIC_TITLES.get(name, name)
    marks = [entry("┊", "set")] if history.lr_marks else []
    return {"loss": ("Loss", " &nbsp;".join(loss)), "metric": (title, " &nbsp;".join(metric)),
            "lr": ("Learning rate", " &nbsp;".join(marks))}


class MarkLabel(pg.InfLineLabel):
    """The label of a learning-rate mark: beside the line on the side where it fits inside the
    plot, hidden when it fits on neither (the hover still gives the values)."""

    def updatePosition(self) -> None:  # noqa: N802 - pyqtgraph override
        super().updatePosition()
        view = self.line.getViewBox()
        if view is None or not self.line.isVisible():
            return
        area = view.sceneBoundingRect()
        fits = False
        for anchor in (self.anchor, *self.anchors):
            self.setAnchor(anchor)
            rect = self.mapRectToScene(self.boundingRect())
            if area.contains(rect):
                fits = True
                break
        self.setOpacity(1.0 if fits else 0.0)


class TimedLayoutWidget(pg.GraphicsLayoutWidget):
    """A plot layout that remembers how long its paints took (the redraw budget counts them).

    Inside a :func:`vertical_scroll` area that can scroll, the mouse wheel scrolls it, as it does
    over the rest of the tab; Ctrl+wheel zooms the plot under the pointer (the wheel alone zooms
    when there is nothing to scroll).
    """

    paint_seconds = 0.0

    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        start = time.perf_counter()
        super().paintEvent(event)
        self.paint_seconds += time.perf_counter() - start

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        area = self.parentWidget().parentWidget() if self.parentWidget() is not None else None
        if isinstance(area, QScrollArea) and area.verticalScrollBar().maximum() > 0 \
                and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            QApplication.sendEvent(area.verticalScrollBar(), event)  # what the scroll area does with a wheel
            event.accept()
            return
        super().wheelEvent(event)


def export_layout_png(view: pg.GraphicsLayoutWidget, path: Path) -> None:
    """Save every plot of ``view`` as one PNG, at least 1200 pixels wide.

    Raises:
        OSError: The file cannot be written.
    """
    from pyqtgraph.exporters import ImageExporter

    exporter = ImageExporter(view.ci)
    exporter.parameters()["width"] = max(1200, view.width())
    exporter.export(str(path))
    if not path.is_file():  # pyqtgraph's exporter reports a failed save only by not writing
        raise OSError(f"cannot write {path}")


def vertical_scroll(view: QWidget) -> QScrollArea:
    """``view`` in a frameless area that scrolls only vertically, only where it is shorter than the
    view's minimum height (set by the plots' arrangement)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(view)
    return area


def hold_heights(view: QWidget, cells: list[tuple[int, pg.GraphicsWidget, pg.PlotItem, int]]) -> None:
    """Give each plot of an arrangement its least height and the view the height they then need.

    Args:
        view: The plots' layout widget (inside :func:`vertical_scroll`).
        cells: ``(grid row, header, plot, least height)`` of each plot on show.
    """
    rows: dict[int, float] = {}
    for row, header, plot, least in cells:
        plot.setMinimumHeight(least)
        rows[row] = max(rows.get(row, 0.0), header.minimumHeight() + least)
    spacing = view.ci.layout.verticalSpacing()  # type: ignore[attr-defined]
    view.setMinimumHeight(int(sum(rows.values()) + 2 * len(rows) * max(spacing, 0) + 8))


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is at least ``value`` (1 for anything up to 1)."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return 10.0 * power


def steady_range(current: tuple[float, float] | None, low: float, high: float) -> tuple[float, float]:
    """A y range holding ``[low, high]`` that changes as seldom as it can.

    The current range is kept while it holds the values and they fill at least half of it;
    otherwise the new range is the values with a tenth of their span added on each side.
    """
    if current is not None and current[0] <= low and high <= current[1] \
            and (high - low) >= 0.5 * (current[1] - current[0]):
        return current
    span = high - low
    margin = 0.1 * span if span > 0 else max(abs(high) * 0.1, 1e-6)
    return low - margin, high + margin


def has_values(values: list[float] | None) -> bool:
    """Whether a series has at least one finite value (a line to draw)."""
    return any(math.isfinite(v) for v in values or ())


def finite(x: list[float], y: list[float] | None) -> tuple[list[float], list[float]]:
    if not y:
        return [], []
    pairs = [(a, b) for a, b in zip(x, y) if math.isfinite(b)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def nearest(xs: list[float], ys: list[float], x: float, within: float = math.inf) -> tuple[float, float] | None:
    """The point of ``(xs, ys)`` (sorted by x) nearest to ``x``, if within ``within``."""
    if not xs or len(ys) != len(xs):
        return None
    i = bisect_left(xs, x)
    candidates = [j for j in (i - 1, i) if 0 <= j < len(xs)]
    j = min(candidates, key=lambda k: abs(xs[k] - x))
    if abs(xs[j] - x) > within or not math.isfinite(ys[j]):
        return None
    return xs[j], ys[j]
