"""The sections of the Look Inside panel, one widget each: the sample chooser, weights,
activation and attention (attributions: :mod:`gui.training.attribution_view`).

Each section builds its own widgets and draws its part of a node report; the panel
(:mod:`gui.training.inside_panel`) only decides which sections show and feeds them.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from gui.style import Theme
from gui.wheel_guard import guard_wheel

HINT_WEIGHTLESS = "This layer has no weights."
#: Side of the sample preview, the input / attribution pair and the attention map, in pixels (at most).
PREVIEW_SIZE = 72
PAIR_SIZE = 120
ATTENTION_SIZE = 240
FEATURE_SIZE = 56
FEATURE_COLUMNS = 4
HISTOGRAM_COLOR = "#3B7DD8"
ACTIVATION_COLOR = "#D9822B"


@functools.cache
def lut(name: str) -> np.ndarray:
    """A pyqtgraph colour map as a 256 x 3 byte lookup table."""
    return pg.colormap.get(name).getLookupTable(nPts=256, mode=pg.ColorMap.BYTE)[:, :3].astype(np.uint8)


def image_pixmap(array: np.ndarray, size: int, table: np.ndarray | None = None,
                 value_range: tuple[float, float] | None = None) -> QPixmap:
    """A 2-D array (or H x W x 3 colour image) as a pixmap at most ``size`` pixels on its long side.

    Every array element becomes a square block of pixels (nearest-neighbour scaling), so small
    images stay crisp and undistorted. Values map linearly from ``value_range`` (default: the
    array's own range) through ``table`` (256 x 3 bytes; grayscale when omitted).
    """
    data = np.nan_to_num(np.asarray(array, dtype=np.float32))
    lo, hi = value_range if value_range is not None else (float(data.min()), float(data.max()))
    scaled = np.clip((data - lo) / (hi - lo if hi - lo > 1e-12 else 1.0), 0.0, 1.0)
    if data.ndim == 3:
        rgb = (scaled * 255).astype(np.uint8)
    else:
        index = (scaled * 255).astype(np.uint8)
        rgb = table[index] if table is not None else np.repeat(index[..., None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    factor = size / max(height, width)
    mode = Qt.TransformationMode.FastTransformation if factor >= 1 else Qt.TransformationMode.SmoothTransformation
    factor = max(1, int(factor)) if factor >= 1 else factor
    return QPixmap.fromImage(image.scaled(max(1, round(width * factor)), max(1, round(height * factor)),
                                          Qt.AspectRatioMode.IgnoreAspectRatio, mode))


def fmt(value: float) -> str:
    """A number in three significant digits with a real minus sign."""
    return f"{value:.3g}".replace("-", "−")


def shape_text(shape: tuple[int, ...]) -> str:
    """``16×8×8`` (``scalar`` for no dims)."""
    return "×".join(str(d) for d in shape) or "scalar"


def escape(text: str) -> str:
    """Text safe inside rich text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def note() -> QLabel:
    """A wrapping, selectable text line."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _heading(title: str) -> QLabel:
    label = QLabel(f"<b>{title}</b>")
    label.setContentsMargins(0, 6, 0, 0)
    return label


def _column(owner: QWidget, *widgets: QWidget) -> QVBoxLayout:
    box = QVBoxLayout(owner)
    box.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        box.addWidget(widget)
    return box


def histogram_plot(color: str) -> tuple[pg.PlotWidget, pg.PlotDataItem]:
    """A small fixed-height histogram plot that does not pan or zoom."""
    plot = pg.PlotWidget()
    item = plot.getPlotItem()
    item.hideButtons()
    item.setMenuEnabled(False)
    item.setMouseEnabled(x=False, y=False)
    plot.setFixedHeight(130)
    curve = plot.plot([0.0, 1.0], [0.0], stepMode="center", fillLevel=0, pen=pg.mkPen(color, width=1.5),
                      brush=pg.mkBrush(color + "66"))
    return plot, curve


def theme_plot(plot: pg.PlotWidget, theme: Theme) -> None:
    """Background and axis colours of ``theme``."""
    plot.setBackground(theme.node_body)
    for name in ("left", "bottom"):
        axis = plot.getPlotItem().getAxis(name)
        axis.setPen(pg.mkPen(theme.node_border))
        axis.setTextPen(pg.mkPen(theme.node_subtle))


class SampleChooser(QWidget):
    """Which validation sample to look at: a spin box, its picture and its labels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spin = guard_wheel(QSpinBox())
        self.spin.setPrefix("Sample ")
        self.spin.setToolTip("Which validation sample to run through the model")
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = note()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.spin, 0, 0)
        grid.addWidget(self.text, 1, 0)
        grid.addWidget(self.preview, 0, 1, 2, 1)
        grid.setColumnStretch(0, 1)

    def show_picture(self, preview: dict[str, Any]) -> None:
        """The sample's image, if it has one."""
        if "image" in preview:
            self.preview.setPixmap(image_pixmap(preview["image"], PREVIEW_SIZE))
        else:
            self.preview.clear()


class WeightsSection(QWidget):
    """A histogram of one parameter tensor of the layer, chosen in a combo box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = guard_wheel(QComboBox())
        self.combo.currentIndexChanged.connect(lambda index: self.show_tensor())
        self.plot, self.curve = histogram_plot(HISTOGRAM_COLOR)
        self.text = note()
        self.weightless = QLabel(HINT_WEIGHTLESS)
        self.report: Any = None
        _column(self, _heading("Weights"), self.combo, self.plot, self.text, self.weightless)

    def show_report(self, report: Any) -> None:
        """The report's tensors (the one chosen before stays chosen)."""
        self.report = report
        has_weights = bool(report.weights)
        for widget in (self.combo, self.plot, self.text):
            widget.setVisible(has_weights)
        self.weightless.setVisible(not has_weights)
        self.combo.blockSignals(True)
        previous = self.combo.currentText()
        self.combo.clear()
        for weight in report.weights:
            self.combo.addItem(f"{weight.name}  ({shape_text(weight.shape)})")
        self.combo.setCurrentIndex(max(self.combo.findText(previous), 0))
        self.combo.blockSignals(False)
        self.show_tensor()

    def show_tensor(self) -> None:
        """The histogram and statistics of the chosen tensor."""
        report, index = self.report, self.combo.currentIndex()
        if report is None or not 0 <= index < len(report.weights):
            return
        weight = report.weights[index]
        self.curve.setData(weight.edges, weight.counts.astype(np.float64))
        self.text.setText(f"{int(np.prod(weight.shape)):,} values · mean {fmt(weight.mean)} · "
                          f"std {fmt(weight.std)}<br>min {fmt(weight.min)} · max {fmt(weight.max)}")


class ActivationSection(QWidget):
    """The layer's output for the sample: statistics, a histogram or one bar per unit, feature maps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = note()
        self.plot, self.curve = histogram_plot(ACTIVATION_COLOR)
        self.bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, pen=pg.mkPen(ACTIVATION_COLOR),
                                    brush=pg.mkBrush(ACTIVATION_COLOR + "99"))
        self.plot.addItem(self.bars)
        self.caption = note()
        self.feature_caption = note()
        self.feature_grid = QGridLayout()
        self.feature_grid.setSpacing(3)
        self.feature_labels: list[QLabel] = []
        box = _column(self, _heading("Activation (output for this sample)"), self.text, self.caption, self.plot,
                      self.feature_caption)
        box.addLayout(self.feature_grid)

    def show_stats(self, stats: Any) -> None:
        """Draw one activation report."""
        self.text.setText(f"shape {shape_text(stats.shape)} · mean {fmt(stats.mean)} · std {fmt(stats.std)}"
                          f"<br>min {fmt(stats.min)} · max {fmt(stats.max)} · zeros {stats.zero_fraction:.0%}")
        values = stats.values
        per_unit = values is not None and values.ndim == 1
        self.curve.setVisible(not per_unit)
        self.bars.setVisible(per_unit)
        if per_unit:  # few values (e.g. logits): show each one
            self.bars.setOpts(x=np.arange(len(values)), height=values, width=0.8)
            self.caption.setText("Value of each output unit:")
        else:
            self.curve.setData(stats.edges, stats.counts.astype(np.float64))
            self.caption.setText("Histogram of the output values:")
        self.plot.getPlotItem().enableAutoRange()
        self._show_maps(stats.feature_maps, stats.shape[0] if stats.feature_maps else 0)

    def _show_maps(self, maps: list[np.ndarray], channels: int) -> None:
        while len(self.feature_labels) < len(maps):
            label = QLabel()
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            index = len(self.feature_labels)
            self.feature_grid.addWidget(label, index // FEATURE_COLUMNS, index % FEATURE_COLUMNS)
            self.feature_labels.append(label)
        value_range = (min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)) if maps else None
        for i, label in enumerate(self.feature_labels):
            label.setVisible(i < len(maps))
            if i < len(maps):
                label.setPixmap(image_pixmap(maps[i], FEATURE_SIZE, lut("viridis"), value_range))
                label.setToolTip(f"channel {i}")
        self.feature_caption.setVisible(bool(maps))
        self.feature_caption.setText(f"Feature maps: channels 0–{len(maps) - 1} of {channels}, one colour scale "
                                     f"({fmt(value_range[0])} to {fmt(value_range[1])})" if value_range else "")


class AttentionSection(QWidget):
    """Attention weights of an attention layer: the mean over heads or one head."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = guard_wheel(QComboBox())
        self.combo.currentIndexChanged.connect(lambda index: self.show_head())
        self.image = QLabel()
        self.text = note()
        box = _column(self, _heading("Attention"), self.combo, self.text)
        box.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        self.report: Any = None

    def show_report(self, report: Any) -> None:
        """The report's attention maps (the head chosen before stays chosen)."""
        self.report = report
        self.combo.blockSignals(True)
        keep = self.combo.currentIndex()
        self.combo.clear()
        self.combo.addItem("Mean over heads")
        self.combo.addItems([f"Head {h + 1}" for h in range(report.attention.shape[0])])
        self.combo.setCurrentIndex(keep if 0 <= keep < self.combo.count() else 0)
        self.combo.blockSignals(False)
        self.show_head()

    def show_head(self) -> None:
        """Draw the chosen head's map."""
        report = self.report
        if report is None or report.attention is None:
            return
        head = self.combo.currentIndex()
        weights = report.attention.mean(0) if head <= 0 else report.attention[head - 1]
        top = max(float(weights.max()), 1e-6)
        self.image.setPixmap(image_pixmap(weights, ATTENTION_SIZE, lut("viridis"), (0.0, top)))
        steps = weights.shape[0]
        self.text.setText(f"Row i: how much step i (0–{steps - 1}, top to bottom) attends to each step "
                          f"(left to right); rows sum to 1. Dark: 0, yellow: {fmt(top)}.")
