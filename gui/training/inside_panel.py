"""The "Look Inside" dock: what one layer of a trained (or training) model does to one sample.

For the node selected on the canvas it shows the weight histogram of each parameter tensor,
statistics and a histogram of the node's output for a chosen validation sample, the first
feature maps of image-shaped outputs, per-head attention maps for attention layers, and the
attribution of the model's prediction for the sample by a chosen Captum method (a heat map over
an image, a bar per feature, a colour per token: :mod:`gui.training.attribution_view`).

All torch work runs on one worker thread (a BackgroundCall, so jobs never overlap): opening
the run (the first one imports torch, which takes seconds), reloading weights, computing
reports and attributions. Each result carries the request it answers; results of
superseded requests are dropped, and queued jobs that are already stale do no work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.errors import UserError
from gui.background import BackgroundCall
from gui.scroll_panel import fill_with_scroll
from gui.style import LIGHT, Theme
from gui.training.attribution_view import AttributionView
from gui.training.inside_sections import (
    HINT_WEIGHTLESS,
    ActivationSection,
    AttentionSection,
    SampleChooser,
    WeightsSection,
    escape,
    image_pixmap,
    note,
    theme_plot,
)

__all__ = ["HINT_WEIGHTLESS", "InsidePanel", "image_pixmap"]

HINT_NO_RUN = "Train the model to look inside it: start a run, then select a layer on the canvas."
HINT_LOADING = "Loading…"
HINT_NO_WEIGHTS = "Train the model first: no weights yet."
HINT_SELECT = "Select a layer on the canvas."


class _Failure:
    """A job's error, as the one line shown to the user."""

    def __init__(self, message: str) -> None:
        self.message = message


def _job(latest: dict[str, int], kind: str, work: Callable[[], Any]) -> Callable[[], tuple[str, int, Any]]:
    """``work`` as a background job answering request ``latest[kind]``; it does nothing when a newer
    request of its kind arrived before it started. Returns (kind, token, result or _Failure)."""
    token = latest[kind]

    def run() -> tuple[str, int, Any]:
        if latest[kind] != token:
            return kind, token, None  # superseded while queued
        # One sample is fastest on one thread; more would spin against the training process.
        # A plain import (not sys.modules) waits while another thread is still importing torch.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            result: Any = work()
        except UserError as exc:
            result = _Failure(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown in the panel, never crashes the app
            result = _Failure(f"could not look inside: {type(exc).__name__}: {exc}")
        finally:
            torch.set_num_threads(threads)
        return kind, token, result

    return run


class InsidePanel(QWidget):
    """Weights, activations and attention of the selected node, and attributions, for one sample.

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
        self._latest = {"load": 0, "report": 0, "attribution": 0}
        self._attribution_key: tuple[Any, ...] | None = None  # what the attribution view shows or computes
        self._reload_after_load = False
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
        self._build()
        self.set_theme(theme)
        self._show_state()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        """One widget per section; the names below are the parts tests and callers reach."""
        self.chooser = SampleChooser()
        self.chooser.spin.valueChanged.connect(self._on_sample)
        self.sample_spin, self.preview, self.sample_text = self.chooser.spin, self.chooser.preview, self.chooser.text
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setMinimumHeight(48)
        self.title = note()
        self.weights_box = WeightsSection()
        self.weight_combo, self.weight_plot = self.weights_box.combo, self.weights_box.plot
        self.weight_curve, self.weight_text = self.weights_box.curve, self.weights_box.text
        self.weightless = self.weights_box.weightless
        self.activation_box = ActivationSection()
        self.activation_text, self.activation_curve = self.activation_box.text, self.activation_box.curve
        self.activation_bars, self.activation_plot = self.activation_box.bars, self.activation_box.plot
        self.feature_labels = self.activation_box.feature_labels
        self.attribution_box = AttributionView(self.theme)
        self.attribution_box.requested.connect(self._request_attribution)
        self.attention_box = AttentionSection()
        self.head_combo, self.attention_image = self.attention_box.combo, self.attention_box.image
        content = QWidget()
        column = QVBoxLayout(content)
        for widget in (self.chooser, self.hint, self.title, self.weights_box, self.activation_box,
                       self.attribution_box, self.attention_box):
            column.addWidget(widget)
        column.addStretch(1)
        fill_with_scroll(self, content, frameless=True)

    def set_theme(self, theme: Theme) -> None:
        """Recolour the plots for ``theme``."""
        self.theme = theme
        theme_plot(self.weight_plot, theme)
        theme_plot(self.activation_plot, theme)
        self.attribution_box.set_theme(theme)
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
        self._attribution_key = None
        for kind in self._latest:
            self._latest[kind] += 1
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
        return self.background.busy()

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Block until the worker is idle (for tests and shutdown)."""
        return self.background.wait(msecs)

    # ---------------------------------------------------------------- jobs
    def _submit(self, kind: str, work: Callable[[], Any]) -> None:
        self.background.start(_job(self._latest, kind, work))

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

    def _on_done(self, _ticket: int, answer: tuple[str, int, Any], _error: str) -> None:
        kind, token, result = answer
        if token != self._latest[kind]:
            return  # an answer to a question nobody asks any more
        if kind == "load":
            self._loaded(result)
        elif kind == "attribution":
            self._attributed(result)
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
        self.attribution_box.set_facts(result.attribution_facts)
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
        for box in (self.weights_box, self.activation_box, self.attribution_box, self.attention_box):
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
        self._preview = insight.sample_preview(self.sample_spin.value())
        self.chooser.show_picture(self._preview)
        self._show_sample_text()

    def _show_sample_text(self) -> None:
        preview, report = self._preview, self.report
        true = preview.get("class_name") or preview.get("label")
        true = None if isinstance(true, np.ndarray) else true
        lines = [f"<tt>{escape(preview['text'][:60])}</tt>"] if "text" in preview else []
        if true is not None:
            lines.append(f"True label: <b>{escape(str(true))}</b>")
        if report is not None and report.predicted_name is not None and report.sample_index == preview.get("index"):
            right = true is None or str(true) == report.predicted_name
            mark = "✓" if right else f"<span style='color:{self.theme.error}'>✗</span>"
            lines.append(f"Predicted: <b>{escape(report.predicted_name)}</b> ({report.probability:.1%}) "
                         f"{mark if true is not None else ''}")
        lines.append(f"<span style='color:{self.theme.node_subtle}'>of {self.insight.sample_count()} "
                     f"validation samples</span>" if self.insight is not None else "")
        self.sample_text.setText("<br>".join(lines))

    def _show_report(self, report: Any) -> None:
        source = self.insight.weights_source if self.insight is not None else ""
        self.title.setText(f"<b>{escape(report.node_id)}</b> · {escape(report.title)}"
                           f"<br><span style='color:{self.theme.node_subtle}'>weights: {source}</span>")
        self.weights_box.setVisible(True)
        self.weights_box.show_report(report)
        self.activation_box.setVisible(True)
        self.activation_box.show_stats(report.activation)
        self.attribution_box.setVisible(True)
        self._request_attribution()
        self._show_sample_text()
        if report.attention is not None:
            self.attention_box.setVisible(True)
            self.attention_box.show_report(report)


    # ---------------------------------------------------------- attributions
    def _request_attribution(self) -> None:
        """Compute the chosen attribution of the shown sample's prediction unless it is already shown or on
        its way (a report for another node of the same sample and weights needs no new one)."""
        insight, report = self.insight, self.report
        method, layer, output = self.attribution_box.choice()
        if insight is None or report is None or method is None:
            return
        key = (report.sample_index, method, layer, output, insight.weights_source)
        if key == self._attribution_key:
            return
        self._attribution_key = key
        self._latest["attribution"] += 1
        self.attribution_box.set_busy(True)
        index = report.sample_index
        self._submit("attribution", lambda: insight.attribution(index, method, layer, output))

    def _attributed(self, result: Any) -> None:
        self.attribution_box.set_busy(False)
        if isinstance(result, _Failure):
            self._attribution_key = None  # asking again may work (new weights)
            self.attribution_box.show_problem(result.message)
        elif result is not None:
            same = self._attribution_key is not None and self._attribution_key[0] == self._preview.get("index")
            self.attribution_box.show_attribution(result, self._preview.get("image") if same else None)


def _opener(run_dir: Path, base_dir: Path | None) -> Callable[[], Any]:
    def work() -> Any:
        # building a ModelInsight imports torch: seconds the first time
        from engine.training.insight import ModelInsight

        return ModelInsight.from_run(run_dir, base_dir)

    return work


