"""Try It: run the newest trained model on new inputs, as ``python main.py predict`` does.

The panel opens the project's newest finished run (:func:`engine.training.predict.open_predictor`,
off the GUI thread) and takes what the model reads: image files dropped on it or chosen with
Open (each shown with its prediction, and for classifiers its top classes), values typed for a
table's features (filled from a validation sample to start from), or a text prompt for the
character language model. Every prediction uses the run's own preprocessing (resize,
normalization, vocabulary). The chosen row's prediction is explained by a Captum attribution
(:mod:`gui.training.attribution_view`), computed in the background like the predictions.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from engine.training.predict import Predictor, open_predictor
from gui.background import BackgroundCall
from gui.scroll_panel import fill_with_scroll
from gui.style import LIGHT, Theme, status_color
from gui.training.attribution_view import AttributionView, sample_picture

PREVIEW = 128
#: Height of the list of inputs tried, in pixels at most.
RESULTS_HEIGHT = 120
TOP_K = 5
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


class TryPanel(QWidget):
    """Predictions of the newest finished run on inputs the user gives (see the module docstring).

    Signals:
        predicted(object): The rows of the last prediction (tests).
    """

    predicted = Signal(object)

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.run_dir: Path | None = None
        self.base_dir: Path | None = None
        self.predictor: Predictor | None = None
        self.error = ""
        self.rows: list[Any] = []
        self._arrays: dict[str, np.ndarray] = {}
        self._attributed: str | None = None  # the input of the row the attribution explains
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
        self._latest: dict[str, int] = {}  # per kind of job (open, predict, attribution): its newest ticket
        self._kinds: dict[int, str] = {}  # ticket -> kind of job
        self.status = QLabel("Train a model (F5), then try it here on new data.")
        self.status.setWordWrap(True)
        self.open_button = QPushButton("Open Images…")
        self.open_button.clicked.connect(self.choose_images)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Type a text; the model continues it")
        self.prompt.returnPressed.connect(lambda: self.predict([self.prompt.text()]))
        self.features = QFormLayout()
        self.feature_editors: list[QDoubleSpinBox] = []
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(self.predict_typed)
        self.sample_button = QPushButton("Use a Validation Sample")
        self.sample_button.clicked.connect(self.fill_sample)
        self.results = QListWidget()
        self.results.currentRowChanged.connect(self._show_row)
        self.attribution = AttributionView(theme, PREVIEW)
        self.attribution.requested.connect(self._request_attribution)
        self.picture, self.saliency = self.attribution.input_image, self.attribution.heat_image
        self.answer = QLabel()
        self.answer.setWordWrap(True)
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.sample_button)
        buttons.addWidget(self.predict_button)
        buttons.addStretch(1)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.status)
        layout.addWidget(self.prompt)
        layout.addLayout(self.features)
        layout.addLayout(buttons)
        layout.addWidget(self.results)  # the inputs; the chosen one's answer and attribution below
        layout.addWidget(self.answer)
        layout.addWidget(self.attribution)
        layout.addStretch(1)
        self.results.setFixedHeight(RESULTS_HEIGHT // 2)
        fill_with_scroll(self, content, frameless=True)  # a long attribution (many features) scrolls
        self._show_inputs()

    # ------------------------------------------------------------------ the run
    def set_run(self, run_dir: Path | None, base_dir: Path | None) -> None:
        """Use ``run_dir``'s newest weights (``None``: no run yet); opens it in the background."""
        if run_dir == self.run_dir and self.predictor is not None:
            return
        self.run_dir, self.base_dir, self.predictor = run_dir, base_dir, None
        self.results.clear()
        self.rows = []
        self.attribution.set_facts(None)
        self.attribution.setVisible(False)
        if run_dir is None:
            self.status.setText("Train a model (F5), then try it here on new data.")
            self._show_inputs()
            return
        self.status.setText(f"Opening {run_dir.name}…")
        self._start_job("open", lambda: _opened(open_predictor(run_dir, base_dir, examples=True)))

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the background work is done and shown (tests)."""
        return self.background.wait(msecs)

    def set_theme(self, theme: Theme) -> None:
        """Recolour the attribution view for ``theme``."""
        self.attribution.set_theme(theme)

    def _start_job(self, kind: str, work: Any) -> None:
        """Run ``work`` in the background as the newest job of ``kind`` (opening a run also outdates the
        predictions and attributions of the one before)."""
        ticket = self.background.start(work)
        self._kinds[ticket] = kind
        self._latest[kind] = ticket
        if kind == "open":
            self._latest.pop("predict", None)
            self._latest.pop("attribution", None)

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        kind = self._kinds.pop(ticket, "")
        if ticket != self._latest.get(kind):
            return
        if kind == "attribution":
            self.attribution.set_busy(False)
            if result is None:
                self.attribution.show_problem(error)
            else:
                array = self._arrays.get(self._attributed)
                self.attribution.show_attribution(result, sample_picture(array) if self._images() else None)
            return
        if result is None:
            self.error = error
            self.status.setText(f"<span style='color:{status_color('error')}'>{html.escape(error)}</span>")
            if kind == "predict":
                self.answer.clear()  # not "Predicting…" forever
            return
        self.error = ""
        if kind == "open":
            self.predictor = result
            self.attribution.set_facts(result.attribution_facts)
            self._show_inputs()
        else:
            self._show_predictions(result)

    # ------------------------------------------------------------------ inputs
    @property
    def task(self) -> str:
        return self.predictor.task_name if self.predictor is not None else ""

    def _images(self) -> bool:
        return self.predictor is not None and self.predictor.dataset.image_shape is not None

    def _table(self) -> bool:
        return (self.predictor is not None and not self._images() and self.task != "language_model"
                and len(self.predictor.dataset.sample_dims) == 1)

    def _show_inputs(self) -> None:
        predictor = self.predictor
        images, table, text = self._images(), self._table(), self.task == "language_model"
        self.open_button.setVisible(images)
        self.prompt.setVisible(text)
        self.sample_button.setVisible(table and predictor is not None and
                                      len(predictor.data.val_index) + len(predictor.data.train_index) > 0)
        self.predict_button.setVisible(table or text)
        while self.features.rowCount():
            self.features.removeRow(0)
        self.feature_editors = []
        if table and predictor is not None:
            names = predictor.dataset.feature_names or [f"x{i}" for i in range(predictor.dataset.sample_dims[0])]
            for name in names:
                editor = QDoubleSpinBox()
                editor.setRange(-1e9, 1e9)
                editor.setDecimals(4)
                self.feature_editors.append(editor)
                self.features.addRow(name, editor)
            self.fill_sample()
        if predictor is not None:
            self.status.setText(self._ready_text())

    def _ready_text(self) -> str:
        """The status line of an open run: which weights, the task, and what to give."""
        predictor = self.predictor
        if predictor is None:
            return "Train a model (F5), then try it here on new data."
        what = ("Drop image files here, or Open Images…" if self._images() else
                "Type the features and Predict" if self._table() else
                "Type a text and press Enter" if self.task == "language_model" else "Drop .csv or .npz files here")
        return f"{predictor.run_dir.name} ({predictor.weights}), {self.task.replace('_', ' ')}: {what}"

    def fill_sample(self, index: int = 0) -> None:
        """Fill the feature editors with a validation sample's values (in the data's units), or the training
        mean when the training data cannot be read."""
        predictor = self.predictor
        if predictor is None or not self.feature_editors:
            return
        rows = predictor.data.val_index if len(predictor.data.val_index) else predictor.data.train_index
        if len(rows):
            values = predictor.dataset.x[int(rows[index % len(rows)])]  # an array, or rows streamed from disk
        else:  # the training data is not at hand (only its preprocessing record): its mean row
            norm = predictor.data.x_normalization
            values = np.broadcast_to(norm.mean, predictor.dataset.sample_dims) if norm is not None else \
                np.zeros(predictor.dataset.sample_dims)
        for editor, value in zip(self.feature_editors, values):
            editor.setValue(float(value))

    def choose_images(self) -> None:
        """Pick image files and predict on them."""
        files, _ = QFileDialog.getOpenFileNames(self, "Try the model on images", str(self.base_dir or ""),
                                                IMAGE_FILTER)
        if files:
            self.predict(files)

    def predict_typed(self) -> None:
        """Predict on the typed feature values or prompt."""
        if self.task == "language_model":
            self.predict([self.prompt.text()])
        elif self.predictor is not None and self.feature_editors:
            values = np.array([e.value() for e in self.feature_editors], dtype=np.float32)
            self._start(lambda p=self.predictor: p.predict_samples(p.samples_of(["typed values"], [values]), TOP_K),
                        {"typed values": values})

    def predict(self, inputs: list[str]) -> None:
        """Predict on files, folders or text (as the ``predict`` command reads them)."""
        predictor = self.predictor
        if predictor is None:
            self.status.setText("Train a model first (F5): there is no finished run to try yet.")
            return
        arrays: dict[str, np.ndarray] = {}

        def work() -> Any:
            samples = predictor.read_inputs(inputs)
            arrays.update(zip(samples.names, samples.arrays))
            arrays.update(samples.texts)  # a language model's prompts: their token ids
            return predictor.predict_samples(samples, TOP_K)

        self._start(work, arrays)

    def _start(self, work: Any, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = arrays
        self.answer.setText("Predicting…")
        self._start_job("predict", work)

    # ------------------------------------------------------------------ results
    def _show_predictions(self, predictions: Any) -> None:
        self.rows = list(predictions.rows)
        self.results.clear()
        for row in self.rows:
            confidence = f" ({row.confidence:.0%})" if row.confidence is not None else ""
            item = QListWidgetItem(f"{Path(str(row.input)).name or row.input}: {row.prediction}{confidence}",
                                   self.results)
            item.setToolTip(str(row.input))
        rows_height = sum(self.results.sizeHintForRow(i) for i in range(self.results.count()))
        self.results.setFixedHeight(max(28, min(RESULTS_HEIGHT, rows_height + 2 * self.results.frameWidth() + 4)))
        skipped = [Path(str(name)).name for name in getattr(predictions, "skipped", [])]
        if skipped:
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self.status.setText(f"Skipped {len(skipped)} file(s) that are not images or cannot be read: "
                                f"{', '.join(skipped[:5])}{more}")
        else:
            self.status.setText(self._ready_text())  # an earlier error or skip list is over
        if self.rows:
            self.results.setCurrentRow(0)
        self.predicted.emit(self.rows)

    def _show_row(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            self.answer.clear()
            self.attribution.setVisible(False)
            return
        row = self.rows[index]
        lines = [f"<b>{html.escape(str(row.prediction))}</b>"
                 + (f" — {row.confidence:.1%}" if row.confidence is not None else "")]
        for name, probability in row.top_k[1:]:
            lines.append(f"{html.escape(str(name))}: {probability:.1%}")
        if self.task == "autoencoder":
            lines = [f"reconstruction error <b>{row.prediction:.4g}</b> (mean squared, in the data's units)"]
        self.answer.setText("<br>".join(lines))
        self._attributed = row.input
        self._request_attribution()

    def _request_attribution(self) -> None:
        """Explain the chosen row's prediction with the chosen method, in the background."""
        predictor, sample = self.predictor, self._arrays.get(self._attributed)
        method, layer, output = self.attribution.choice()
        self.attribution.setVisible(predictor is not None and sample is not None)
        if predictor is None or sample is None or method is None:
            return
        self.attribution.set_busy(True)
        self._start_job("attribution", lambda: predictor.attribution(sample, method, layer, output))

    # ------------------------------------------------------------------ drops
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and self.predictor is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.predict(files)


def _opened(predictor: Predictor) -> Predictor:
    """``predictor`` once its attribution facts are known (worked out off the GUI thread)."""
    _ = predictor.attribution_facts
    return predictor


