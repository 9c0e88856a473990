"""Shared pieces of the live prediction views: class colours, payload arrays to images, themed
pyqtgraph plots and the confusion-matrix heatmap.

Everything here turns plain payload data (nested lists from a training worker) into display
items; nothing keeps a reference to the payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPalette,
)
from PySide6.QtWidgets import QLabel, QWidget

from gui.style import LIGHT, Theme

#: A qualitative palette: Tableau 10, then ten more hues that stay apart from them.
CLASS_COLORS: tuple[str, ...] = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
    "#BAB0AC", "#2F4B7C", "#D45087", "#665191", "#FFA600", "#003F5C", "#8CD17D", "#A05195", "#499894",
    "#86BCB6", "#F1CE63",
)
#: Wrong predictions are framed and labelled in this colour (independent of the class colours).
WRONG_COLOR = "#D1242F"
#: Second series colour (predictions, generated samples, reconstructions).
ACCENT_COLOR = "#F28E2B"


def class_color(index: int) -> QColor:
    """The colour of class ``index``; beyond the palette, evenly spread golden-ratio hues."""
    if 0 <= index < len(CLASS_COLORS):
        return QColor(CLASS_COLORS[index])
    return QColor.fromHsvF((index * 0.618034) % 1.0, 0.65, 0.85)


def class_rgb(count: int) -> np.ndarray:
    """Colours of classes ``0 .. count-1`` as a float ``(count, 3)`` array of 0..255."""
    return np.array([class_color(i).getRgb()[:3] for i in range(max(count, 1))], dtype=np.float32)


_BRUSHES: dict[int, QBrush] = {}


def class_brushes(labels: Sequence[int] | np.ndarray) -> list[QBrush]:
    """One (shared, cached) brush per label, for per-point scatter colours."""
    result = []
    for label in np.asarray(labels, dtype=np.int64).tolist():
        brush = _BRUSHES.get(label)
        if brush is None:
            brush = _BRUSHES[label] = pg.mkBrush(class_color(label))
        result.append(brush)
    return result


def plot_background(theme: Theme) -> str:
    """The background colour of plots and image grids in ``theme``."""
    return theme.node_body


def class_name(names: Sequence[str], index: int) -> str:
    """``names[index]``, or the index itself when there is no such name."""
    return str(names[index]) if 0 <= index < len(names) else str(index)


def elide(text: str, limit: int = 14) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def legend_html(entries: Sequence[tuple[str, str]], theme: Theme) -> str:
    """Rich text of coloured squares and names, for a legend row under a plot.

    Args:
        entries: ``(colour, name)`` pairs; a colour of ``"ring"`` draws an outlined circle.
        theme: Gives the text colour.
    """
    parts = []
    for color, name in entries:
        mark = (f'<span style="color:{theme.node_text}">&#9711;</span>' if color == "ring"
                else f'<span style="color:{color}">&#9632;</span>')
        text = name.replace("&", "&amp;").replace("<", "&lt;")
        parts.append(f'{mark}&nbsp;<span style="color:{theme.node_subtle}">{text}</span>')
    return "&nbsp;&nbsp;&nbsp;".join(parts)


def legend_label() -> QLabel:
    """A one-line rich-text label for :func:`legend_html` (hidden until it has entries)."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setVisible(False)
    return label


def finite(value: Any, dtype: type = np.float64) -> np.ndarray:
    """``value`` as an array with NaN and infinities replaced by 0 (a broken model's output must
    still draw)."""
    return np.nan_to_num(np.asarray(value, dtype=dtype), nan=0.0, posinf=0.0, neginf=0.0)


def as_images(value: Any) -> np.ndarray:
    """Payload images as a finite float32 ``(N, C, H, W)`` array with C of 1 or 3.

    Accepts ``N x H x W`` (grayscale), ``N x C x H x W`` and ``N x H x W x C`` (C = 1 or 3);
    other channel counts show their first channel.

    Raises:
        ValueError: Not a stack of 2-D images.
    """
    array = finite(value, np.float32)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or 0 in array.shape:
        raise ValueError(f"expected a stack of images, got shape {list(array.shape)}")
    if array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.shape[1] not in (1, 3):
        array = array[:, :1]
    return array


def display_range(*arrays: np.ndarray) -> tuple[float, float]:
    """One display range (min, max) over all ``arrays`` so that a grid's tiles compare."""
    lo = min(float(a.min()) for a in arrays if a.size)
    hi = max(float(a.max()) for a in arrays if a.size)
    return (lo, hi) if hi - lo > 1e-8 else (lo, lo + 1.0)


def to_qimages(images: np.ndarray, lo: float, hi: float) -> list[QImage]:
    """``(N, C, H, W)`` floats mapped from ``lo..hi`` to 8-bit grayscale or RGB images."""
    scaled = np.clip((images - lo) * (255.0 / (hi - lo)), 0.0, 255.0).astype(np.uint8)
    result = []
    for image in scaled:
        _, height, width = image.shape
        if image.shape[0] == 1:
            data = np.ascontiguousarray(image[0])
            qimage = QImage(data.data, width, height, width, QImage.Format.Format_Grayscale8)
        else:
            data = np.ascontiguousarray(image.transpose(1, 2, 0))
            qimage = QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        result.append(qimage.copy())  # the copy owns its pixels; ``data`` is freed
    return result


def make_plot(theme: Theme, *, bottom: str = "", left: str = "", interactive: bool = True) -> pg.PlotWidget:
    """A themed plot without pyqtgraph's context menu and auto-range button.

    Args:
        theme: The colours.
        bottom: The x axis label.
        left: The y axis label.
        interactive: Whether the mouse pans and zooms.
    """
    plot = pg.PlotWidget()
    item = plot.getPlotItem()
    item.hideButtons()
    item.setMenuEnabled(False)
    item.setMouseEnabled(x=interactive, y=interactive)
    plot.setMinimumSize(120, 100)
    plot.setProperty("axis_labels", (bottom, left))
    style_plot(plot, theme)
    return plot


def style_plot(plot: pg.PlotWidget, theme: Theme) -> None:
    """Apply ``theme`` to the background, axes and axis labels of ``plot``."""
    plot.setBackground(plot_background(theme))
    item = plot.getPlotItem()
    bottom, left = plot.property("axis_labels") or ("", "")
    for name, text in (("bottom", bottom), ("left", left)):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(theme.node_border))
        axis.setTextPen(pg.mkPen(theme.node_subtle))
        if text:
            item.setLabel(name, text, color=theme.node_subtle)
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(theme.node_text)
        for _, label in legend.items:
            label.setText(label.text)  # the colour applies when the text is laid out again
        legend.setBrush(pg.mkBrush(QColor(plot_background(theme))))
        legend.setPen(pg.mkPen(theme.node_border))


class CellTexts(pg.GraphicsObject):
    """The counts of a K x K grid of unit cells, painted in one pass at a fixed pixel size
    (none when the cells are too small to hold them); cheaper than one text item per cell."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.strong: list[bool] = []
        self.size = 0
        self.color = QColor("#000000")
        self.font = QFont()
        self.font.setPointSizeF(max(self.font.pointSizeF() - 1.0, 7.0))
        self._metrics = QFontMetrics(self.font)

    def set_cells(self, texts: list[str], strong: list[bool], size: int, color: QColor) -> None:
        """Row-major ``texts`` of a ``size`` x ``size`` grid; ``strong`` cells get white text."""
        self.prepareGeometryChange()
        self.texts, self.strong, self.size, self.color = texts, strong, size, color
        self.update()

    def fits(self, cell_px: float) -> bool:
        """Whether the longest text fits a cell ``cell_px`` pixels wide."""
        widest = max((self._metrics.horizontalAdvance(t) for t in self.texts), default=0)
        return cell_px >= max(widest + 3, self._metrics.height())

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.size, self.size)

    def paint(self, painter: QPainter, *args: Any) -> None:
        if not self.size:
            return
        transform = painter.transform()
        step = transform.map(QPointF(1, 1)) - transform.map(QPointF(0, 0))
        cell_w, cell_h = abs(step.x()), abs(step.y())
        if not self.fits(min(cell_w, cell_h)):
            return
        painter.resetTransform()
        painter.setFont(self.font)
        white = QColor("#FFFFFF")
        for index, (text, strong) in enumerate(zip(self.texts, self.strong)):
            row, column = divmod(index, self.size)
            centre = transform.map(QPointF(column + 0.5, row + 0.5))
            painter.setPen(white if strong else self.color)
            painter.drawText(QRectF(centre.x() - cell_w / 2, centre.y() - cell_h / 2, cell_w, cell_h),
                             Qt.AlignmentFlag.AlignCenter, text)


class ConfusionMatrix(pg.PlotWidget):
    """A confusion-matrix heatmap with square cells, counts in the cells and class names on the
    axes (rows: true class, top to bottom; columns: predicted class).

    Cells are coloured by the row-normalised count, so rare classes read as clearly as common ones.
    """

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.names: list[str] = []
        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.setAspectLocked(True)
        item.invertY(True)
        self.setProperty("axis_labels", ("predicted", "true"))
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.cells = CellTexts()
        item.addItem(self.cells)
        self._ticks: tuple[list[str], list[str]] = ([], [])
        self.setMinimumSize(140, 120)
        for side in ("bottom", "left"):  # tick marks outside the cells, toward the class names
            item.getAxis(side).setStyle(tickLength=5)
        item.getViewBox().sigResized.connect(self._fit_labels)
        style_plot(self, theme)

    def set_matrix(self, counts: Any, names: Sequence[str]) -> None:
        """Show ``counts`` (K x K, rows = true class) with ``names`` on the axes.

        Raises:
            ValueError: ``counts`` is not a square matrix.
        """
        matrix = finite(counts)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not matrix.size:
            raise ValueError(f"confusion matrix must be K x K, got shape {list(matrix.shape)}")
        k = matrix.shape[0]
        self.counts = matrix.astype(np.int64)
        self.names = [class_name(names, i) for i in range(k)]
        rows = self.counts.sum(axis=1, keepdims=True)
        fraction = self.counts / np.maximum(rows, 1)
        low = np.array(QColor(plot_background(self.theme)).getRgb()[:3], dtype=np.float64)
        high = np.array(QColor(self.theme.selection).getRgb()[:3], dtype=np.float64) * 0.85
        rgb = low + (high - low) * np.sqrt(fraction)[..., None]
        self.image.setImage(rgb.astype(np.uint8), levels=(0, 255), autoLevels=False)
        self.image.setRect(QRectF(0, 0, k, k))
        strong = (fraction > 0.45) | (QColor(plot_background(self.theme)).lightnessF() <= 0.5)
        self.cells.set_cells([str(c) for c in self.counts.ravel().tolist()], strong.ravel().tolist(), k,
                             QColor(self.theme.node_text))
        self._fit_labels()
        self.getPlotItem().setRange(xRange=(0, k), yRange=(0, k), padding=0.02)

    def clear_matrix(self) -> None:
        """Show nothing."""
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.image.clear()
        self.cells.set_cells([], [], 0, QColor(self.theme.node_text))

    def set_theme(self, theme: Theme) -> None:
        """Recolour for ``theme``."""
        self.theme = theme
        style_plot(self, theme)
        if self.counts.size:
            self.set_matrix(self.counts, self.names)

    def mouseMoveEvent(self, event: Any) -> None:
        """Name the cell under the mouse in the tooltip (axis labels may show indices only)."""
        super().mouseMoveEvent(event)
        point = self.getPlotItem().getViewBox().mapSceneToView(self.mapToScene(event.position().toPoint()))
        row, column, k = int(np.floor(point.y())), int(np.floor(point.x())), self.counts.shape[0]
        if 0 <= row < k and 0 <= column < k:
            count = int(self.counts[row, column])
            self.setToolTip(f"true {self.names[row]}, predicted {self.names[column]}: "
                            f"{count} sample{'s' if count != 1 else ''}")
        else:
            self.setToolTip("")

    def _fit_labels(self, *_: Any) -> None:
        """Class names on both axes where they fit, else indices below and "i: name" at the left
        (just the name when it is the index, indices only when the widget is narrow)."""
        k = len(self.names)
        if not k or self.counts.shape != (k, k):
            return
        metrics = QFontMetrics(self.font())
        box = self.getPlotItem().getViewBox()
        cell = min(box.width(), box.height()) / (k * 1.04)  # square cells; 2 % padding each side
        short = [elide(n, 12) for n in self.names]
        fits = max(metrics.horizontalAdvance(n) for n in short) + 6 <= cell
        bottom = short if fits else [str(i) for i in range(k)]
        left = short if fits else [n if n == str(i) else f"{i}: {n}" for i, n in enumerate(short)]
        if not fits and self.width() - max(metrics.horizontalAdvance(t) for t in left) - 40 < 12 * k:
            left = bottom
        if (bottom, left) == self._ticks:
            return
        self._ticks = (bottom, left)
        item = self.getPlotItem()
        item.getAxis("bottom").setTicks([[(i + 0.5, t) for i, t in enumerate(bottom)], []])
        item.getAxis("left").setTicks([[(i + 0.5, t) for i, t in enumerate(left)], []])


class PredictionPage(QWidget):
    """One sub-view of the prediction dashboard: draws one payload kind in place.

    Subclasses build their items once and update them in :meth:`show_payload`.
    """

    #: What the view shows, for the header line.
    title = ""

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.setAutoFillBackground(True)
        self._fill_background()

    def _fill_background(self) -> None:
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(plot_background(self.theme)))
        self.setPalette(palette)

    def show_payload(self, payload: dict[str, Any]) -> str:
        """Draw ``payload``.

        Returns:
            A short summary for the header line (may be empty).

        Raises:
            KeyError, ValueError, TypeError, IndexError: The payload is malformed.
        """
        raise NotImplementedError

    def clear(self) -> None:
        """Show no data."""

    def set_theme(self, theme: Theme) -> None:
        """Recolour for ``theme`` (the view redraws its last payload afterwards)."""
        self.theme = theme
        self._fill_background()
