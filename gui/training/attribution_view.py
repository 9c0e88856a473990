"""Attributions of one prediction, shown in Look Inside and Try It.

:class:`AttributionView` offers the Captum methods that apply to the model (the others are
listed, disabled, with the reason), Grad-CAM's convolution layer and a regression's output,
and draws a result of :func:`engine.training.attributions.attribute`: a heat map over the
image, a bar chart of per-feature attributions, a colour per token, or a map of a sequence's
steps, with the method's name and what it means. The panel holding it computes the result
off the GUI thread when :attr:`AttributionView.requested` fires, calling :meth:`set_busy`
while it works and :meth:`show_attribution` (or :meth:`show_problem`) with the answer.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.training.attributions import (
    METHODS,
    ModelFacts,
    explanation,
    method_problem,
)
from gui.style import LIGHT, Theme
from gui.training.inside_sections import PAIR_SIZE, image_pixmap, lut, theme_plot
from gui.wheel_guard import guard_wheel

#: Colours of attributions that raise (positive) and lower (negative) the score.
RAISE, LOWER = (214, 64, 78), (59, 125, 216)
#: Colour of sizes (attributions without a sign) in bars and tokens.
SIZE = (217, 130, 43)
#: Bars drawn at most (the largest by size).
MAX_BARS = 15


def sample_picture(array: np.ndarray | None) -> np.ndarray | None:
    """An image sample (C, H, W) as a picture: (H, W) for one channel, else (H, W, 3); ``None`` for
    anything that is not an image."""
    if array is None or np.ndim(array) != 3:
        return None
    array = np.asarray(array)
    return array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)


def _rgb(color: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*color)


def overlay_pixmap(picture: np.ndarray | None, heat: np.ndarray, signed: bool, size: int) -> QPixmap:
    """``heat`` (H, W) over ``picture`` (H, W or H, W, 3; grey when omitted), as a pixmap ``size`` wide.

    Signed maps colour raising values red and lowering ones blue, unsigned ones through ``inferno``;
    the colour's opacity grows with the square root of the value's size (the largest: 90%), so
    where the map is near zero the low-contrast grey picture shows through.
    """
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    top = float(np.abs(heat).max()) or 1.0
    alpha = (np.sqrt(np.abs(heat) / top) * 0.9)[..., None]  # square root: weak values still show
    if signed:
        colour = np.where(heat[..., None] >= 0, np.array(RAISE, np.float32), np.array(LOWER, np.float32))
    else:
        colour = lut("inferno")[np.clip(heat / top * 255, 0, 255).astype(np.uint8)].astype(np.float32)
    if picture is None or np.shape(picture)[:2] != heat.shape:
        base = np.full((*heat.shape, 3), 128.0, np.float32)
    else:
        image = np.asarray(picture, dtype=np.float32)
        lo, hi = float(image.min()), float(image.max())
        grey = (image - lo) / (hi - lo if hi - lo > 1e-12 else 1.0) * 255
        base = grey if grey.ndim == 3 else np.repeat(grey[..., None], 3, axis=2)
        base = 60 + base.mean(2, keepdims=True).repeat(3, 2) * 0.5  # a low-contrast grey picture under the colours
    return image_pixmap((base * (1 - alpha) + colour * alpha).clip(0, 255), size, value_range=(0.0, 255.0))


def _signed_lut() -> np.ndarray:
    """Blue (lowest) through white (zero) to red (highest), 256 x 3 bytes."""
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    white = np.array([245.0, 245.0, 245.0])
    return np.where(t < 0, white + (np.array(LOWER) - white) * -t, white + (np.array(RAISE) - white) * t).astype(np.uint8)


class AttributionView(QWidget):
    """The method chooser and the attribution of one prediction (see the module docstring).

    Signals:
        requested(): The method, layer or output changed: compute and show that attribution.
    """

    requested = Signal()

    def __init__(self, theme: Theme = LIGHT, picture_size: int = PAIR_SIZE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme, self.picture_size = theme, picture_size
        self.facts: ModelFacts | None = None
        self.result: Any = None
        self._picture: np.ndarray | None = None
        self._problems: list[str] = []
        self._bars_note = ""
        self.method_combo = guard_wheel(QComboBox())
        self.method_combo.setToolTip("Attribution method (Captum)")
        self.layer_combo = guard_wheel(QComboBox())
        self.layer_combo.setToolTip("Grad-CAM: the convolution layer whose feature maps are weighed")
        self.output_spin = guard_wheel(QSpinBox())
        self.output_spin.setPrefix("Output ")
        self.output_spin.setToolTip("Which output value to explain")
        for signal in (self.method_combo.currentIndexChanged, self.layer_combo.currentIndexChanged,
                       self.output_spin.valueChanged):
            signal.connect(self._changed)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: Captum reports no progress
        self.busy.setTextVisible(False)
        self.busy.setFixedHeight(6)
        self.title, self.explanation, self.legend, self.not_offered, self.tokens = (
            self._note() for _ in range(5))
        self.tokens.setTextFormat(Qt.TextFormat.RichText)
        self.input_image, self.heat_image = QLabel(), QLabel()
        self.input_caption, self.heat_caption = QLabel("input"), QLabel()
        self.pair = QWidget()
        pair = QHBoxLayout(self.pair)
        pair.setContentsMargins(0, 0, 0, 0)
        for image, caption in ((self.input_image, self.input_caption), (self.heat_image, self.heat_caption)):
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column = QVBoxLayout()
            column.addWidget(image, 0, Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(caption, 0, Qt.AlignmentFlag.AlignHCenter)
            pair.addLayout(column)
        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x0=[0], y=[0], width=[0], height=0.7)
        self.plot.addItem(self.bars)
        self.zero = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#888888"))
        self.plot.addItem(self.zero)
        choosers = QHBoxLayout()
        choosers.setContentsMargins(0, 0, 0, 0)
        choosers.addWidget(self.method_combo, 1)
        choosers.addWidget(self.layer_combo)
        choosers.addWidget(self.output_spin)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("<b>Attribution</b> (why this prediction)")
        heading.setContentsMargins(0, 6, 0, 0)
        box.addWidget(heading)
        box.addLayout(choosers)
        for widget in (self.busy, self.title, self.explanation, self.pair, self.plot, self.tokens, self.legend,
                       self.not_offered):
            box.addWidget(widget)
        self.set_theme(theme)
        self.set_facts(None)

    @staticmethod
    def _note() -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # ------------------------------------------------------------------ choices
    def set_facts(self, facts: ModelFacts | None) -> None:
        """Offer the methods that apply to the model ``facts`` describes (``None``: no model)."""
        self.facts, self.result = facts, None
        for widget in (self.method_combo, self.layer_combo, self.output_spin):
            widget.blockSignals(True)
        keep = self.method()
        self.method_combo.clear()
        problems = self._problems = []
        reasons: set[str] = set()
        for key, info in METHODS.items():
            problem = method_problem(facts, key) if facts is not None else "no model"
            self.method_combo.addItem(info.title, key)
            if problem is not None:
                entry = self.method_combo.model().item(self.method_combo.count() - 1)  # type: ignore[attr-defined]
                entry.setEnabled(False)
                entry.setToolTip(problem)
                reasons.add(problem)
                text = html.escape(problem)
                problems.append(f"<b>{info.title}</b>{text[len(info.title):]}" if text.startswith(info.title)
                                else f"<b>{info.title}</b>: {text}")
        offered = [i for i in range(self.method_combo.count())
                   if self.method_combo.model().item(i).isEnabled()]  # type: ignore[attr-defined]
        if not offered and len(reasons) == 1:  # one reason for all: said once
            self._problems = [html.escape(reasons.pop()).capitalize()]
        chosen = next((i for i in offered if self.method_combo.itemData(i) == keep), offered[0] if offered else -1)
        self.method_combo.setCurrentIndex(chosen)
        self.method_combo.setEnabled(bool(offered))
        self.layer_combo.clear()
        self.layer_combo.addItems(list(facts.conv_layers) if facts is not None else [])
        self.layer_combo.setCurrentIndex(self.layer_combo.count() - 1)  # the last convolution: Grad-CAM's usual
        outputs = int(np.prod(facts.output_dims)) if facts is not None else 1
        self.output_spin.setRange(0, max(0, outputs - 1))
        for widget in (self.method_combo, self.layer_combo, self.output_spin):
            widget.blockSignals(False)
        self._show_not_offered()
        self._show_choosers()
        self._clear()

    def _show_not_offered(self) -> None:
        """The methods not offered, each with the reason (all of them when none is)."""
        problems, subtle = self._problems, self.theme.node_subtle
        lead = "Not offered for this model: " if problems and self.offered() else ""
        self.not_offered.setText(f"<span style='color:{subtle}'>{lead}{'; '.join(problems)}</span>" if problems else "")

    def offered(self) -> bool:
        """Whether any method applies."""
        return self.method() is not None

    def method(self) -> str | None:
        """The chosen method's key (``None`` when none applies)."""
        key = self.method_combo.currentData()
        return str(key) if key is not None and self.method_combo.isEnabled() else None

    def layer(self) -> str | None:
        """Grad-CAM's convolution (``None`` for the other methods)."""
        return self.layer_combo.currentText() or None if self.method() == "grad_cam" else None

    def output(self) -> int:
        """The output value a regression explains (0 for the other tasks)."""
        return self.output_spin.value() if self.output_spin.isVisibleTo(self) else 0

    def choice(self) -> tuple[str | None, str | None, int]:
        """``(method, layer, output)`` as chosen."""
        return self.method(), self.layer(), self.output()

    def _show_choosers(self) -> None:
        facts = self.facts
        self.layer_combo.setVisible(self.method() == "grad_cam")
        regression = facts is not None and facts.task in ("regression", "forecasting")
        self.output_spin.setVisible(regression and self.output_spin.maximum() > 0)

    def _changed(self) -> None:
        self._show_choosers()
        if self.offered():
            self.requested.emit()

    # ------------------------------------------------------------------ results
    def set_busy(self, busy: bool) -> None:
        """Show (or hide) that an attribution is being computed; the last result stays until the new one
        arrives (no flicker), under a title that says what is being computed."""
        self.busy.setVisible(busy)
        key = self.method()
        if busy and key is not None:
            self.title.setText(f"Computing {METHODS[key].title}…")
            self.explanation.setText(explanation(self.facts, key) if self.facts is not None else "")

    def show_problem(self, message: str) -> None:
        """The attribution could not be computed: ``message`` instead of a result."""
        self._clear()
        self.title.setText(f"<span style='color:{self.theme.error}'>{html.escape(message)}</span>")

    def show_attribution(self, result: Any, picture: np.ndarray | None = None) -> None:
        """Draw ``result`` (an :class:`~engine.training.attributions.Attribution`); ``picture``: the raw
        input image (H, W or H, W, 3) the heat map is laid over."""
        self._clear()
        self.result, self._picture = result, picture
        info, facts = result.info, self.facts
        where = f" on {html.escape(result.layer)}" if result.layer else ""
        self.title.setText(f"<b>{info.title}</b>{where} · explaining {html.escape(result.target_name)}")
        self.explanation.setText(explanation(facts, result.method) if facts is not None else info.explanation)
        values = np.asarray(result.values)
        if result.heat is not None:
            self._show_heat(result, picture)
        elif facts is not None and facts.input_kind == "tokens":
            self._show_tokens(result)
        elif values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1):
            self._show_bars(result, values.ravel(), in_order=facts is not None and facts.input_kind == "sequence")
        else:  # a sequence of several values per step: a map of steps (rows) by values (columns)
            top = float(np.abs(values).max()) or 1.0
            table = _signed_lut() if info.signed else lut("inferno")
            self.heat_image.setPixmap(image_pixmap(values, self.picture_size * 2, table,
                                                   (-top if info.signed else 0.0, top)))
            self.heat_caption.setText("steps (down) by values (across)")
            self.input_image.setVisible(False)
            self.input_caption.setVisible(False)
            self.pair.setVisible(True)
        self.legend.setText(self._legend(result))

    def _show_heat(self, result: Any, picture: np.ndarray | None) -> None:
        self.pair.setVisible(True)
        self.input_image.setVisible(picture is not None)
        self.input_caption.setVisible(picture is not None)
        if picture is not None:
            self.input_image.setPixmap(image_pixmap(picture, self.picture_size))
        self.heat_image.setPixmap(overlay_pixmap(picture, result.heat, result.info.signed, self.picture_size))
        self.heat_caption.setText(f"{result.info.title} over the input")

    def _show_bars(self, result: Any, values: np.ndarray, in_order: bool) -> None:
        """Table features: one horizontal bar each, the largest on top (at most MAX_BARS); a sequence's
        steps (``in_order``): one upright bar per step, in time order."""
        signed, item = result.info.signed, self.plot.getPlotItem()
        self.plot.removeItem(self.bars)
        if in_order:
            brushes = [pg.mkBrush(*((RAISE if v >= 0 else LOWER) if signed else SIZE)) for v in values]
            self.bars = pg.BarGraphItem(x=np.arange(len(values)), height=values, width=0.8, brushes=brushes,
                                        pens=[pg.mkPen(None)] * len(values))
            item.getAxis("left").setTicks(None)
            item.setLabel("bottom", "step")
            self.zero.setAngle(0)
            self.plot.setFixedHeight(170)
            self._bars_note = ""
        else:
            labels = result.labels or [f"x{i}" for i in range(len(values))]
            order = np.argsort(-np.abs(values), kind="stable")[:MAX_BARS]
            shown = values[order][::-1]  # the largest on top
            names = [labels[i] if i < len(labels) else f"x{i}" for i in order][::-1]
            brushes = [pg.mkBrush(*((RAISE if v >= 0 else LOWER) if signed else SIZE)) for v in shown]
            self.bars = pg.BarGraphItem(x0=np.zeros(len(shown)), y=np.arange(len(shown)), width=shown, height=0.7,
                                        brushes=brushes, pens=[pg.mkPen(None)] * len(shown))
            item.getAxis("left").setTicks([[(i, n[:24]) for i, n in enumerate(names)]])
            item.setLabel("bottom", None)
            self.zero.setAngle(90)
            self.plot.setFixedHeight(40 + 18 * len(shown))
            self._bars_note = f"the {len(shown)} largest of {len(values)} features" if len(values) > MAX_BARS else ""
        self.plot.addItem(self.bars)
        item.enableAutoRange()
        self.plot.setVisible(True)

    def _show_tokens(self, result: Any) -> None:
        values = np.asarray(result.values, dtype=np.float64)
        labels = result.labels or [str(i) for i in range(len(values))]
        top = float(np.abs(values).max()) or 1.0
        spans = []
        for label, value in zip(labels, values):
            colour = (RAISE if value >= 0 else LOWER) if result.info.signed else SIZE
            text = html.escape(label).replace(" ", "·").replace("\n", "↵").replace("\t", "→")
            spans.append(f"<span style='background-color: rgba({colour[0]},{colour[1]},{colour[2]},"
                         f"{np.sqrt(abs(value) / top) * 0.85:.2f})'>{text or '∅'}</span>")
        # a zero-width space after each token: the line may wrap anywhere (spaces are shown as dots)
        self.tokens.setText(f"<tt style='font-size: 13px'>{chr(0x200B).join(spans)}</tt>")
        self.tokens.setVisible(True)

    def _legend(self, result: Any) -> str:
        subtle = self.theme.node_subtle
        note = self._bars_note if self.plot.isVisibleTo(self) else ""
        if result.info.signed:
            text = (f"<span style='color:{_rgb(RAISE)}'><b>red</b></span> raised the score of "
                    f"{html.escape(result.target_name)}, <span style='color:{_rgb(LOWER)}'><b>blue</b></span> "
                    f"lowered it; stronger colour = more")
        elif self.plot.isVisibleTo(self) or self.tokens.isVisibleTo(self):
            text = "longer / stronger = the score is more sensitive there"
        else:
            text = "brighter = more"
        return f"<span style='color:{subtle}'>{text}{'; ' + note if note else ''}</span>"

    def _clear(self) -> None:
        self.busy.setVisible(False)
        for widget in (self.pair, self.plot, self.tokens):
            widget.setVisible(False)
        for label in (self.title, self.explanation, self.legend):
            label.clear()
        self._bars_note = ""

    def set_theme(self, theme: Theme) -> None:
        """Recolour the bar chart and the notes for ``theme``."""
        self.theme = theme
        theme_plot(self.plot, theme)
        self._show_not_offered()
        if self.result is not None:
            self.show_attribution(self.result, self._picture)
