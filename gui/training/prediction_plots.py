"""Prediction pages built around plots: the 2-D decision boundary, regression and forecast
fits, generated 2-D points, and generated text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPen,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from gui.style import LIGHT, Theme
from gui.training.prediction_common import (
    ACCENT_COLOR,
    CLASS_COLORS,
    ConfusionMatrix,
    PredictionPage,
    class_brushes,
    class_color,
    class_name,
    class_rgb,
    finite,
    legend_html,
    legend_label,
    make_plot,
    plot_background,
    style_plot,
)


def _column(payload: dict[str, Any], key: str) -> np.ndarray:
    """``payload[key]`` as a finite 1-D float array."""
    return finite(payload[key]).reshape(-1)


def _points(payload: dict[str, Any], key: str) -> np.ndarray:
    """``payload[key]`` as a finite ``(n, 2)`` float array (empty lists allowed)."""
    array = finite(payload[key])
    if array.size == 0:
        return np.zeros((0, 2))
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(f"'{key}' must be a list of [x, y] points, got shape {list(array.shape)}")
    return array[:, :2]


class DecisionBoundaryPage(PredictionPage):
    """The predicted class over the plane, brighter where the model is confident, under the data
    points (validation points outlined differently), beside the confusion matrix."""

    title = "Decision boundary"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.plot = make_plot(theme, bottom="x₁", left="x₂")
        self.plot.getPlotItem().setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.points = pg.ScatterPlotItem(size=7)
        self.plot.addItem(self.image)
        self.plot.addItem(self.points)
        self.legend = legend_label()
        self.confusion = ConfusionMatrix(theme)
        left = QVBoxLayout()
        left.setSpacing(2)
        left.addWidget(self.plot, 1)
        left.addWidget(self.legend)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(left, 3)
        layout.addWidget(self.confusion, 2)
        self._extent: tuple[float, ...] = ()
        self._legend_names: list[str] | None = None

    def show_payload(self, payload: dict[str, Any]) -> str:
        predicted = np.asarray(payload["predicted"], dtype=np.int64)
        confidence = finite(payload["confidence"])
        if predicted.ndim != 2 or confidence.shape != predicted.shape:
            raise ValueError(f"'predicted' and 'confidence' must be equal grids, got shapes "
                             f"{list(predicted.shape)} and {list(confidence.shape)}")
        (x0, x1), (y0, y1) = map(float, payload["x_range"]), map(float, payload["y_range"])
        points, labels = _points(payload, "points"), np.asarray(payload["labels"], dtype=np.int64)
        validation = np.asarray(payload.get("validation") or [False] * len(points), dtype=bool)
        if not len(labels) == len(points) == len(validation):
            raise ValueError("'points', 'labels' and 'validation' differ in length")
        names = [str(n) for n in payload.get("class_names") or []]
        classes = max(len(names), int(predicted.max(initial=0)) + 1, int(labels.max(initial=0)) + 1)
        self.image.setImage(self._colours(predicted, confidence, classes), levels=(0, 255), autoLevels=False)
        rows, columns = predicted.shape
        dx, dy = (x1 - x0) / max(columns - 1, 1), (y1 - y0) / max(rows - 1, 1)
        self.image.setRect(QRectF(x0 - dx / 2, y0 - dy / 2, x1 - x0 + dx, y1 - y0 + dy))
        train_pen = pg.mkPen(plot_background(self.theme), width=1)
        val_pen = pg.mkPen(self.theme.node_text, width=1.6)
        self.points.setData(x=points[:, 0], y=points[:, 1], brush=class_brushes(labels),
                            pen=[val_pen if v else train_pen for v in validation.tolist()])
        if (x0, x1, y0, y1) != self._extent:
            self._extent = (x0, x1, y0, y1)
            self.plot.getPlotItem().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.0)
        if payload.get("confusion") is not None:
            self.confusion.set_matrix(payload["confusion"], names)
            self.confusion.setVisible(True)
        else:
            self.confusion.setVisible(False)
        self._set_legend([class_name(names, c) for c in range(classes)])
        shown = int(validation.sum())
        counts = self.confusion.counts if self.confusion.isVisible() else np.zeros((0, 0))
        accuracy = f" · validation accuracy {np.trace(counts) / counts.sum():.1%}" if counts.sum() else ""
        return f"{len(points)} points ({shown} validation){accuracy}"

    def _colours(self, predicted: np.ndarray, confidence: np.ndarray, classes: int) -> np.ndarray:
        """RGB of each grid cell: the class colour, mixed into the background by confidence."""
        palette = class_rgb(classes)
        background = np.array(QColor(plot_background(self.theme)).getRgb()[:3], dtype=np.float32)
        chance = 1.0 / max(classes, 2)
        strength = np.clip((confidence - chance) / (1.0 - chance), 0.0, 1.0).astype(np.float32)
        alpha = (0.12 + 0.6 * strength)[..., None]
        colour = palette[np.clip(predicted, 0, classes - 1)]
        return (background + (colour - background) * alpha).astype(np.uint8)

    def _set_legend(self, names: list[str]) -> None:
        if names == self._legend_names:
            return
        self._legend_names = names
        entries = [(class_color(i).name(), n) for i, n in enumerate(names)]
        self.legend.setText(legend_html([*entries, ("ring", "validation")], self.theme))
        self.legend.setVisible(True)

    def clear(self) -> None:
        self.image.clear()
        self.points.clear()
        self.confusion.clear_matrix()
        self._extent = ()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        style_plot(self.plot, theme)
        self.confusion.set_theme(theme)
        self._legend_names = None


def _dashed(theme: Theme) -> QPen:
    """The pen of reference lines (perfect predictions)."""
    return pg.mkPen(theme.node_subtle, width=1, style=Qt.PenStyle.DashLine)


class RegressionPage(PredictionPage):
    """Predicted against target values, with the line of perfect predictions."""

    title = "Regression"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.plot = make_plot(theme, bottom="target", left="predicted")
        self.plot.getPlotItem().setAspectLocked(True)
        self.identity = pg.InfiniteLine(pos=(0, 0), angle=45, pen=_dashed(theme))
        self.points = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(QColor(CLASS_COLORS[0])))
        self.plot.addItem(self.identity)
        self.plot.addItem(self.points)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def show_payload(self, payload: dict[str, Any]) -> str:
        target, predicted = _column(payload, "target"), _column(payload, "predicted")
        if len(target) != len(predicted):
            raise ValueError("'target' and 'predicted' differ in length")
        self.points.setData(x=target, y=predicted)
        if not len(target):
            return "no samples"
        lo, hi = float(min(target.min(), predicted.min())), float(max(target.max(), predicted.max()))
        self.plot.getPlotItem().setRange(xRange=(lo, hi), yRange=(lo, hi), padding=0.05)
        error = predicted - target
        spread = float(np.sum((target - target.mean()) ** 2))
        r2 = f" · R² {1 - float(np.sum(error ** 2)) / spread:.3f}" if spread > 0 else ""
        return f"{len(target)} validation samples · MAE {float(np.abs(error).mean()):.4g}{r2}"

    def clear(self) -> None:
        self.points.clear()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        style_plot(self.plot, theme)
        self.identity.setPen(_dashed(theme))


class ForecastPage(PredictionPage):
    """Target and predicted series over their positions in the data."""

    title = "Forecast"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.plot = make_plot(theme, bottom="position", left="value")
        self.target = self.plot.plot(name="target", pen=pg.mkPen(CLASS_COLORS[0], width=2))
        self.predicted = self.plot.plot(name="predicted", pen=pg.mkPen(ACCENT_COLOR, width=1.5))
        style_plot(self.plot, theme)
        self.legend = _legend_below(self, self.plot, [(CLASS_COLORS[0], "target"), (ACCENT_COLOR, "predicted")])

    def show_payload(self, payload: dict[str, Any]) -> str:
        position = _column(payload, "position")
        target, predicted = _column(payload, "target"), _column(payload, "predicted")
        if not len(position) == len(target) == len(predicted):
            raise ValueError("'position', 'target' and 'predicted' differ in length")
        order = np.argsort(position, kind="stable")
        self.target.setData(position[order], target[order])
        self.predicted.setData(position[order], predicted[order])
        error = float(np.abs(predicted - target).mean()) if len(target) else 0.0
        return f"{len(position)} validation steps · MAE {error:.4g}"

    def clear(self) -> None:
        self.target.clear()
        self.predicted.clear()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        style_plot(self.plot, theme)
        self.legend.setText(legend_html(self.legend.entries, theme))


class GanPointsPage(PredictionPage):
    """Generated 2-D points over the real ones."""

    title = "Generated points"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.plot = make_plot(theme, bottom="x₁", left="x₂")
        self.plot.getPlotItem().setAspectLocked(True)
        self.real = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(CLASS_COLORS[0]), name="real")
        generated = QColor(ACCENT_COLOR)
        generated.setAlpha(190)
        self.generated = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(generated), name="generated")
        self.plot.addItem(self.real)
        self.plot.addItem(self.generated)
        style_plot(self.plot, theme)
        self.legend = _legend_below(self, self.plot, [(CLASS_COLORS[0], "real"), (ACCENT_COLOR, "generated")])

    def show_payload(self, payload: dict[str, Any]) -> str:
        real, generated = _points(payload, "real"), _points(payload, "generated")
        self.real.setData(pos=real)
        self.generated.setData(pos=generated)
        both = np.concatenate([real, generated]) if len(real) else generated
        if len(both):
            lo, hi = both.min(0), both.max(0)
            if len(real):  # a diverging generator must not squeeze the real data to a dot
                r_lo, r_hi = real.min(0), real.max(0)
                span = np.maximum(r_hi - r_lo, 1e-6)
                lo, hi = np.maximum(lo, r_lo - span), np.minimum(hi, r_hi + span)
            self.plot.getPlotItem().setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.05)
        return f"{len(generated)} generated points over {len(real)} real ones"

    def clear(self) -> None:
        self.real.clear()
        self.generated.clear()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        style_plot(self.plot, theme)
        self.legend.setText(legend_html(self.legend.entries, theme))


class TextPage(PredictionPage):
    """The prompt (dimmed) followed by the generated continuation, in a monospace font."""

    title = "Generated text"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        self.prompt, self.generated = "", ""

    def show_payload(self, payload: dict[str, Any]) -> str:
        prompt, generated = str(payload["prompt"]), str(payload["generated"])
        temperature = payload.get("temperature")
        self.prompt, self.generated = prompt, generated
        self._render()
        shown = f" · temperature {float(temperature):g}" if temperature is not None else ""
        return f"{len(generated)} characters after a {len(prompt)}-character prompt{shown}"

    def _render(self) -> None:
        self.text.clear()
        cursor = QTextCursor(self.text.document())
        dim, normal = QTextCharFormat(), QTextCharFormat()
        dim.setForeground(QColor(self.theme.node_subtle))
        dim.setFontItalic(True)
        normal.setForeground(self.palette().text().color())
        cursor.insertText(self.prompt, dim)
        cursor.insertText(self.generated, normal)

    def clear(self) -> None:
        self.prompt, self.generated = "", ""
        self.text.clear()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        self._render()


def _legend_below(page: PredictionPage, plot: pg.PlotWidget, entries: list[tuple[str, str]]) -> QLabel:
    """Lay ``plot`` out with a legend row under it (never over the data); returns the row."""
    legend = legend_label()
    legend.entries = entries  # type: ignore[attr-defined]
    legend.setText(legend_html(entries, page.theme))
    legend.setVisible(True)
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(plot, 1)
    layout.addWidget(legend)
    return legend
