"""The "Look Inside" dock: what one layer of a trained (or training) model does to one sample.

For the node selected on the canvas it shows the weight histogram of each parameter tensor,
statistics and a histogram of the node's output for a chosen validation sample, the first
feature maps of image-shaped outputs, a saliency map beside the input for image classifiers,
and per-head attention maps for attention layers.

All torch work runs on one worker thread (a private QThreadPool of one thread, so jobs never
overlap): opening the run (the first one imports torch, which takes seconds), reloading
weights and computing reports. Each result carries the request it answers; results of
superseded requests are dropped, and queued jobs that are already stale do no work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserError
from gui.scroll_panel import fill_with_scroll
from gui.style import LIGHT, Theme

HINT_NO_RUN = "Train the model to look inside it: start a run, then select a layer on the canvas."
HINT_LOADING = "Loading…"
HINT_NO_WEIGHTS = "Train the model first: no weights yet."
HINT_SELECT = "Select a layer on the canvas."
HINT_WEIGHTLESS = "This layer has no weights."
#: Side of the sample preview, the saliency pair and the attention map, in pixels (at most).
PREVIEW_SIZE = 72
PAIR_SIZE = 120
ATTENTION_SIZE = 240
FEATURE_SIZE = 56
FEATURE_COLUMNS = 4
HISTOGRAM_COLOR = "#3B7DD8"
ACTIVATION_COLOR = "#D9822B"


class _Failure:
    """A job's error, as the one line shown to the user."""

    def __init__(self, message: str) -> None:
        self.message = message


class _Signals(QObject):
    done = Signal(str, int, object)  # kind, token, result or _Failure


class _Job(QRunnable):
    """Runs ``work`` on the pool unless ``latest[kind]`` moved past ``token`` before it started."""

    def __init__(self, signals: _Signals, latest: dict[str, int], kind: str, work: Callable[[], Any]) -> None:
        super().__init__()
        self.signals, self.latest, self.kind, self.token, self.work = signals, latest, kind, latest[kind], work

    def run(self) -> None:
        if self.latest[self.kind] != self.token:
            return  # superseded while queued
        # One sample is fastest on one thread; more would spin against the training process.
        # A plain import (not sys.modules) waits while another thread is still importing torch.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result: Any = self.work()
        except UserError as exc:
            result = _Failure(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never crashes the app
            result = _Failure(f"could not look inside: {type(exc).__name__}: {exc}")
        finally:
            torch.set_num_threads(threads)
        try:
            self.signals.done.emit(self.kind, self.token, result)
        except RuntimeError:  # the panel was closed meanwhile
            pass


@functools.cache
def _lut(name: str) -> np.ndarray:
    return pg.colormap.get(name).getLookupTable(nPts=256, mode=pg.ColorMap.BYTE)[:, :3].astype(np.uint8)


def image_pixmap(array: np.ndarray, size: int, lut: np.ndarray | None = None,
                 value_range: tuple[float, float] | None = None) -> QPixmap:
    """A 2-D array (or H x W x 3 colour image) as a pixmap at most ``size`` pixels on its long side.

    Every array element becomes a square block of pixels (nearest-neighbour scaling), so small
    images stay crisp and undistorted. Values map linearly from ``value_range`` (default: the
    array's own range) through ``lut`` (256 x 3 bytes; grayscale when omitted).
    """
    data = np.nan_to_num(np.asarray(array, dtype=np.float32))
    lo, hi = value_range if value_range is not None else (float(data.min()), float(data.max()))
    scaled = np.clip((data - lo) / (hi - lo if hi - lo > 1e-12 else 1.0), 0.0, 1.0)
    if data.ndim == 3:
        rgb = (scaled * 255).astype(np.uint8)
    else:
        index = (scaled * 255).astype(np.uint8)
        rgb = lut[index] if lut is not None else np.repeat(index[..., None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    factor = size / max(height, width)
    mode = Qt.TransformationMode.FastTransformation if factor >= 1 else Qt.TransformationMode.SmoothTransformation
    factor = max(1, int(factor)) if factor >= 1 else factor
    return QPixmap.fromImage(image.scaled(max(1, round(width * factor)), max(1, round(height * factor)),
                                          Qt.AspectRatioMode.IgnoreAspectRatio, mode))


def _fmt(value: float) -> str:
    return f"{value:.3g}".replace("-", "−")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape) or "scalar"


def _section(title: str) -> QLabel:
    label = QLabel(f"<b>{title}</b>")
    label.setContentsMargins(0, 6, 0, 0)
    return label


def _note() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class InsidePanel(QWidget):
    """Weights, activations, saliency and attention of the selected node for one sample.

    Call :meth:`set_run` when a run starts or is opened, :meth:`show_node` when the canvas
    selection changes and :meth:`refresh` when a new checkpoint is written.
    """

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.run_dir: Path | None = None
        self._stale = ""  # "run" or "report": work deferred while hidden
        self._seen: bool | None = None  # set by the dock holding the panel
        self.base_dir: Path | None = None
        self.node_id: str | None = None
        self.insight: Any = None  # engine.training.insight.ModelInsight once loaded
        self.report: Any = None  # the NodeReport shown
        self.state = "no_run"  # no_run | loading | no_weights | failed | ready
        self._preview: dict[str, Any] = {}
        self._latest = {"load": 0, "report": 0}
        self._reload_after_load = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._build()
        self.set_theme(theme)
        self._show_state()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.sample_spin = QSpinBox()
        self.sample_spin.setPrefix("Sample ")
        self.sample_spin.setToolTip("Which validation sample to run through the model")
        self.sample_spin.valueChanged.connect(self._on_sample)
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_SIZE, PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_text = _note()
        chooser = QGridLayout()
        chooser.addWidget(self.sample_spin, 0, 0)
        chooser.addWidget(self.sample_text, 1, 0)
        chooser.addWidget(self.preview, 0, 1, 2, 1)
        chooser.setColumnStretch(0, 1)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setMinimumHeight(48)
        self.title = _note()

        self.weights_box = QWidget()
        self.weight_combo = QComboBox()
        self.weight_combo.currentIndexChanged.connect(self._show_weight)
        self.weight_plot, self.weight_curve = self._histogram_plot(HISTOGRAM_COLOR)
        self.weight_text = _note()
        self.weightless = QLabel(HINT_WEIGHTLESS)
        box = QVBoxLayout(self.weights_box)
        box.setContentsMargins(0, 0, 0, 0)
        for widget in (_section("Weights"), self.weight_combo, self.weight_plot, self.weight_text, self.weightless):
            box.addWidget(widget)

        self.activation_box = QWidget()
        self.activation_text = _note()
        self.activation_plot, self.activation_curve = self._histogram_plot(ACTIVATION_COLOR)
        self.activation_bars = pg.BarGraphItem(x=[0], height=[0], width=0.8, pen=pg.mkPen(ACTIVATION_COLOR),
                                               brush=pg.mkBrush(ACTIVATION_COLOR + "99"))
        self.activation_plot.addItem(self.activation_bars)
        self.activation_caption = _note()
        self.feature_caption = _note()
        self.feature_grid = QGridLayout()
        self.feature_grid.setSpacing(3)
        self.feature_labels: list[QLabel] = []
        box = QVBoxLayout(self.activation_box)
        box.setContentsMargins(0, 0, 0, 0)
        for widget in (_section("Activation (output for this sample)"), self.activation_text,
                       self.activation_caption, self.activation_plot,
                       self.feature_caption):
            box.addWidget(widget)
        box.addLayout(self.feature_grid)

        self.saliency_box = QWidget()
        self.input_image, self.saliency_image = QLabel(), QLabel()
        self.saliency_text = _note()
        self.saliency_pair = QWidget()
        self.saliency_pair.setToolTip("Saliency: how strongly each input pixel moves the predicted class's score "
                                      "(|gradient|, brighter = more)")
        pair = QHBoxLayout(self.saliency_pair)
        pair.setContentsMargins(0, 0, 0, 0)
        for label, caption in ((self.input_image, "input"), (self.saliency_image, "saliency")):
            column = QVBoxLayout()
            column.addWidget(label, 0, Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(QLabel(caption), 0, Qt.AlignmentFlag.AlignHCenter)
            pair.addLayout(column)
        box = QVBoxLayout(self.saliency_box)
        box.setContentsMargins(0, 0, 0, 0)
        for widget in (_section("Saliency"), self.saliency_text, self.saliency_pair):
            box.addWidget(widget)

        self.attention_box = QWidget()
        self.head_combo = QComboBox()
        self.head_combo.currentIndexChanged.connect(self._show_attention)
        self.attention_image = QLabel()
        self.attention_text = _note()
        box = QVBoxLayout(self.attention_box)
        box.setContentsMargins(0, 0, 0, 0)
        for widget in (_section("Attention"), self.head_combo, self.attention_text):
            box.addWidget(widget)
        box.addWidget(self.attention_image, 0, Qt.AlignmentFlag.AlignHCenter)

        content = QWidget()
        column = QVBoxLayout(content)
        column.addLayout(chooser)
        column.addWidget(self.hint)
        column.addWidget(self.title)
        for widget in (self.weights_box, self.activation_box, self.saliency_box, self.attention_box):
            column.addWidget(widget)
        column.addStretch(1)
        fill_with_scroll(self, content, frameless=True)

    def _histogram_plot(self, color: str) -> tuple[pg.PlotWidget, pg.PlotDataItem]:
        plot = pg.PlotWidget()
        item = plot.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        plot.setFixedHeight(130)
        curve = plot.plot([0.0, 1.0], [0.0], stepMode="center", fillLevel=0, pen=pg.mkPen(color, width=1.5),
                          brush=pg.mkBrush(color + "66"))
        return plot, curve

    def set_theme(self, theme: Theme) -> None:
        """Recolour the plots for ``theme``."""
        self.theme = theme
        for plot in (self.weight_plot, self.activation_plot):
            plot.setBackground(theme.node_body)
            for name in ("left", "bottom"):
                axis = plot.getPlotItem().getAxis(name)
                axis.setPen(pg.mkPen(theme.node_border))
                axis.setTextPen(pg.mkPen(theme.node_subtle))
        self.hint.setStyleSheet(f"color: {theme.node_subtle};")

    # -------------------------------------------------------------- interface
    def set_run(self, run_dir: Path | None, base_dir: Path | None = None) -> None:
        """Look inside the run in ``run_dir`` (``None``: no run); opens it off the GUI thread.

        A hidden panel only remembers the run and opens it when shown: opening imports torch
        and loads the data, work that would otherwise compete with a training run for the CPU.
        """
        if not self.active and run_dir is not None:
            self.run_dir, self.base_dir, self._stale = Path(run_dir), base_dir, "run"
            return
        self._stale = ""
        self.run_dir, self.base_dir = (Path(run_dir) if run_dir is not None else None), base_dir
        self.insight, self.report, self._preview = None, None, {}
        self._latest["load"] += 1
        self._latest["report"] += 1
        self._reload_after_load = False
        if self.run_dir is None:
            self.state = "no_run"
        else:
            self.state = "loading"
            self._submit("load", _opener(self.run_dir, base_dir))
        self._show_state()

    def show_node(self, node_id: str | None) -> None:
        """Show ``node_id`` (the canvas selection; ``None`` when nothing or several are selected)."""
        if node_id == self.node_id:
            return
        self.node_id = node_id
        if not self.active:
            self._stale = self._stale or "report"
            return
        self._request_report()

    def refresh(self) -> None:
        """New weights were written: reload them and recompute what is shown."""
        if self.run_dir is None:
            return
        if not self.active:
            self._stale = self._stale or "report"
            return
        if self.state == "loading":
            self._reload_after_load = True
        elif self.insight is None:
            self.set_run(self.run_dir, self.base_dir)
        else:
            self._request_report(always=True)

    @property
    def active(self) -> bool:
        """Whether the panel can be seen (a dock in a background tab cannot, though Qt calls it visible)."""
        return self.isVisible() if self._seen is None else self._seen and self.isVisible()

    def set_seen(self, seen: bool) -> None:
        """The dock holding the panel came to the front (True) or went behind another tab (False)."""
        self._seen = seen
        if seen:
            self._catch_up()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._catch_up()

    def _catch_up(self) -> None:
        """Do what was deferred while the panel could not be seen."""
        if not self.active:
            return
        stale, self._stale = self._stale, ""
        if stale == "run" or (stale and self.insight is None and self.state != "loading"):
            self.set_run(self.run_dir, self.base_dir)
        elif stale:
            self._request_report(always=True)

    def busy(self) -> bool:
        """Whether a job is running."""
        return self._pool.activeThreadCount() > 0

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Block until the worker is idle (for tests and shutdown)."""
        return self._pool.waitForDone(msecs)

    # ---------------------------------------------------------------- jobs
    def _submit(self, kind: str, work: Callable[[], Any]) -> None:
        self._pool.start(_Job(self._signals, self._latest, kind, work))

    def _request_report(self, always: bool = False) -> None:
        """Compute the report of the selected node and sample (``always``: even with no node,
        to pick up new weights)."""
        self._latest["report"] += 1
        insight, node_id, index = self.insight, self.node_id, self.sample_spin.value()
        if insight is None:
            self._show_state()
            return
        if node_id is None and not always:
            self.report = None
            self._show_state()
            return

        def work() -> Any:
            insight.reload()  # two stat() calls when nothing changed; a skipped refresh is not lost
            return insight.node_report(node_id, index) if node_id is not None else None

        self._submit("report", work)

    def _on_done(self, kind: str, token: int, result: Any) -> None:
        if token != self._latest[kind]:
            return  # an answer to a question nobody asks any more
        if kind == "load":
            self._loaded(result)
        elif isinstance(result, _Failure):
            self.report = None
            self._show_state(result.message)
        else:
            self.report = result
            self._show_state()

    def _loaded(self, result: Any) -> None:
        if isinstance(result, _Failure):
            self.state = "no_weights" if "no weights yet" in result.message else "failed"
            self._show_state(result.message)
            if self._reload_after_load and self.state == "no_weights":
                self.set_run(self.run_dir, self.base_dir)
            return
        self.insight, self.state = result, "ready"
        self.sample_spin.blockSignals(True)
        self.sample_spin.setRange(0, max(0, result.sample_count() - 1))
        self.sample_spin.blockSignals(False)
        self._show_preview()
        self._reload_after_load = False
        self._request_report()

    def _on_sample(self, _value: int) -> None:
        self._show_preview()
        self._request_report()

    # -------------------------------------------------------------- drawing
    def _show_state(self, message: str = "") -> None:
        """Show the hint that applies, or the report."""
        ready = self.state == "ready"
        report = self.report if ready else None
        hint = {"no_run": HINT_NO_RUN, "loading": HINT_LOADING, "no_weights": HINT_NO_WEIGHTS}.get(self.state, "")
        if ready:
            hint = message or ("" if self.node_id is not None else HINT_SELECT)
            if not message and report is None and self.node_id is not None:
                hint = "Computing…"
        elif self.state == "failed":
            hint = message
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.sample_spin.setEnabled(ready)
        self.preview.setVisible(ready)
        self.sample_text.setVisible(ready)
        for box in (self.weights_box, self.activation_box, self.saliency_box, self.attention_box):
            box.setVisible(False)
        self.title.setVisible(report is not None)
        if report is not None:
            self._show_report(report)
        elif ready and self._preview:
            self._show_sample_text()

    def _show_preview(self) -> None:
        """The chosen sample: its picture, true label and, once computed, the model's answer."""
        insight = self.insight
        if insight is None:
            return
        preview = self._preview = insight.sample_preview(self.sample_spin.value())
        if "image" in preview:
            self.preview.setPixmap(image_pixmap(preview["image"], PREVIEW_SIZE))
        else:
            self.preview.clear()
        self._show_sample_text()

    def _show_sample_text(self) -> None:
        preview, report = self._preview, self.report
        true = preview.get("class_name") or preview.get("label")
        true = None if isinstance(true, np.ndarray) else true
        lines = [f"<tt>{_escape(preview['text'][:60])}</tt>"] if "text" in preview else []
        if true is not None:
            lines.append(f"True label: <b>{_escape(str(true))}</b>")
        if report is not None and report.predicted_name is not None and report.sample_index == preview.get("index"):
            right = true is None or str(true) == report.predicted_name
            mark = "✓" if right else f"<span style='color:{self.theme.error}'>✗</span>"
            lines.append(f"Predicted: <b>{_escape(report.predicted_name)}</b> ({report.probability:.1%}) "
                         f"{mark if true is not None else ''}")
        lines.append(f"<span style='color:{self.theme.node_subtle}'>of {self.insight.sample_count()} "
                     f"validation samples</span>" if self.insight is not None else "")
        self.sample_text.setText("<br>".join(lines))

    def _show_report(self, report: Any) -> None:
        source = self.insight.weights_source if self.insight is not None else ""
        self.title.setText(f"<b>{_escape(report.node_id)}</b> · {_escape(report.title)}"
                           f"<br><span style='color:{self.theme.node_subtle}'>weights: {source}</span>")
        self.weights_box.setVisible(True)
        has_weights = bool(report.weights)
        for widget in (self.weight_combo, self.weight_plot, self.weight_text):
            widget.setVisible(has_weights)
        self.weightless.setVisible(not has_weights)
        self.weight_combo.blockSignals(True)
        previous = self.weight_combo.currentText()
        self.weight_combo.clear()
        for weight in report.weights:
            self.weight_combo.addItem(f"{weight.name}  ({_shape(weight.shape)})")
        found = self.weight_combo.findText(previous)
        self.weight_combo.setCurrentIndex(max(found, 0))
        self.weight_combo.blockSignals(False)
        self._show_weight()
        self._show_activation(report.activation)
        if report.saliency is not None:
            self._show_saliency(report)
        self._show_sample_text()
        if report.attention is not None:
            self.attention_box.setVisible(True)
            self.head_combo.blockSignals(True)
            keep = self.head_combo.currentIndex()
            self.head_combo.clear()
            self.head_combo.addItem("Mean over heads")
            self.head_combo.addItems([f"Head {h + 1}" for h in range(report.attention.shape[0])])
            self.head_combo.setCurrentIndex(keep if 0 <= keep < self.head_combo.count() else 0)
            self.head_combo.blockSignals(False)
            self._show_attention()

    def _show_weight(self) -> None:
        report = self.report
        index = self.weight_combo.currentIndex()
        if report is None or not 0 <= index < len(report.weights):
            return
        weight = report.weights[index]
        self.weight_curve.setData(weight.edges, weight.counts.astype(np.float64))
        self.weight_text.setText(f"{int(np.prod(weight.shape)):,} values · mean {_fmt(weight.mean)} · "
                                 f"std {_fmt(weight.std)}<br>min {_fmt(weight.min)} · max {_fmt(weight.max)}")

    def _show_activation(self, stats: Any) -> None:
        self.activation_box.setVisible(True)
        self.activation_text.setText(f"shape {_shape(stats.shape)} · mean {_fmt(stats.mean)} · std {_fmt(stats.std)}"
                                     f"<br>min {_fmt(stats.min)} · max {_fmt(stats.max)} · "
                                     f"zeros {stats.zero_fraction:.0%}")
        values = stats.values
        per_unit = values is not None and values.ndim == 1
        self.activation_curve.setVisible(not per_unit)
        self.activation_bars.setVisible(per_unit)
        if per_unit:  # few values (e.g. logits): show each one
            self.activation_bars.setOpts(x=np.arange(len(values)), height=values, width=0.8)
            self.activation_caption.setText("Value of each output unit:")
        else:
            self.activation_curve.setData(stats.edges, stats.counts.astype(np.float64))
            self.activation_caption.setText("Histogram of the output values:")
        self.activation_plot.getPlotItem().enableAutoRange()
        maps = stats.feature_maps
        while len(self.feature_labels) < len(maps):
            label = QLabel()
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            index = len(self.feature_labels)
            self.feature_grid.addWidget(label, index // FEATURE_COLUMNS, index % FEATURE_COLUMNS)
            self.feature_labels.append(label)
        value_range = (min(float(m.min()) for m in maps), max(float(m.max()) for m in maps)) if maps else None
        lut = _lut("viridis")
        for i, label in enumerate(self.feature_labels):
            label.setVisible(i < len(maps))
            if i < len(maps):
                label.setPixmap(image_pixmap(maps[i], FEATURE_SIZE, lut, value_range))
                label.setToolTip(f"channel {i}")
        channels = stats.shape[0] if maps else 0
        self.feature_caption.setVisible(bool(maps))
        self.feature_caption.setText(f"Feature maps: channels 0–{len(maps) - 1} of {channels}, one colour scale "
                                     f"({_fmt(value_range[0])} to {_fmt(value_range[1])})" if value_range else "")

    def _show_saliency(self, report: Any) -> None:
        self.saliency_box.setVisible(True)
        self.saliency_text.setText(f"Brighter pixels change the score of “{_escape(str(report.predicted_name))}” "
                                   "the most.")
        if "image" in self._preview:
            self.input_image.setPixmap(image_pixmap(self._preview["image"], PAIR_SIZE))
        self.saliency_image.setPixmap(image_pixmap(report.saliency, PAIR_SIZE, _lut("inferno"),
                                                   (0.0, float(report.saliency.max()))))

    def _show_attention(self) -> None:
        report = self.report
        if report is None or report.attention is None:
            return
        head = self.head_combo.currentIndex()
        weights = report.attention.mean(0) if head <= 0 else report.attention[head - 1]
        top = max(float(weights.max()), 1e-6)
        self.attention_image.setPixmap(image_pixmap(weights, ATTENTION_SIZE, _lut("viridis"), (0.0, top)))
        steps = weights.shape[0]
        self.attention_text.setText(f"Row i: how much step i (0–{steps - 1}, top to bottom) attends to each step "
                                    f"(left to right); rows sum to 1. Dark: 0, yellow: {_fmt(top)}.")


def _opener(run_dir: Path, base_dir: Path | None) -> Callable[[], Any]:
    def work() -> Any:
        # building a ModelInsight imports torch: seconds the first time
        from engine.training.insight import ModelInsight

        return ModelInsight.from_run(run_dir, base_dir)

    return work


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
