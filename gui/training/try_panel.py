"""Try It: run the newest trained model on new inputs, as ``python main.py predict`` does.

The panel opens the project's newest finished run (:func:`engine.training.predict.open_predictor`,
off the GUI thread) and takes what the model reads: image files dropped on it or chosen with
Open (each shown with its prediction, and for classifiers its top classes and a saliency map of
where the image drives the prediction), values typed for a table's features (filled from a
validation sample to start from), or a text prompt for the character language model. Every
prediction uses the run's own preprocessing (resize, normalization, vocabulary).
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
from gui.style import status_color
from gui.training.inside_sections import image_pixmap, lut

PREVIEW = 160
TOP_K = 5
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


class TryPanel(QWidget):
    """Predictions of the newest finished run on inputs the user gives (see the module docstring).

    Signals:
        predicted(object): The rows of the last prediction (tests).
    """

    predicted = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.run_dir: Path | None = None
        self.base_dir: Path | None = None
        self.predictor: Predictor | None = None
        self.error = ""
        self.rows: list[Any] = []
        self._arrays: dict[str, np.ndarray] = {}
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
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
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.saliency = QLabel()
        self.saliency.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.answer = QLabel()
        self.answer.setWordWrap(True)
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        pictures = QHBoxLayout()
        for widget, caption in ((self.picture, "input"), (self.saliency, "saliency")):
            column = QVBoxLayout()
            column.addWidget(widget)
            label = QLabel(caption)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(label)
            pictures.addLayout(column)
            setattr(self, f"_{caption}_caption", label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.sample_button)
        buttons.addWidget(self.predict_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.prompt)
        layout.addLayout(self.features)
        layout.addLayout(buttons)
        layout.addLayout(pictures)
        layout.addWidget(self.answer)
        layout.addWidget(self.results, 1)
        self._show_inputs()

    # ------------------------------------------------------------------ the run
    def set_run(self, run_dir: Path | None, base_dir: Path | None) -> None:
        """Use ``run_dir``'s newest weights (``None``: no run yet); opens it in the background."""
        if run_dir == self.run_dir and self.predictor is not None:
            return
        self.run_dir, self.base_dir, self.predictor = run_dir, base_dir, None
        self.results.clear()
        self.rows = []
        if run_dir is None:
            self.status.setText("Train a model (F5), then try it here on new data.")
            self._show_inputs()
            return
        self.status.setText(f"Opening {run_dir.name}…")
        self.background.start(lambda: ("open", open_predictor(run_dir, base_dir, examples=True)))

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the background work is done and shown (tests)."""
        return self.background.wait(msecs)

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        if ticket != self.background.ticket:
            return
        if result is None:
            self.error = error
            self.status.setText(f"<span style='color:{status_color('error')}'>{html.escape(error)}</span>")
            return
        self.error = ""
        kind, value = result
        if kind == "open":
            self.predictor = value
            self._show_inputs()
        else:
            self._show_predictions(value)

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
            what = ("Drop image files here, or Open Images…" if images else
                    "Type the features and Predict" if table else "Type a text and press Enter" if text else
                    "Drop .csv or .npz files here")
            self.status.setText(f"{predictor.run_dir.name} ({predictor.weights}), {self.task.replace('_', ' ')}: "
                                f"{what}")

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
            return predictor.predict_samples(samples, TOP_K)

        self._start(work, arrays)

    def _start(self, work: Any, arrays: dict[str, np.ndarray]) -> None:
        self._arrays = arrays
        self.answer.setText("Predicting…")
        self.background.start(lambda: ("predict", work()))

    # ------------------------------------------------------------------ results
    def _show_predictions(self, predictions: Any) -> None:
        self.rows = list(predictions.rows)
        self.results.clear()
        for row in self.rows:
            confidence = f" ({row.confidence:.0%})" if row.confidence is not None else ""
            item = QListWidgetItem(f"{Path(str(row.input)).name or row.input}: {row.prediction}{confidence}",
                                   self.results)
            item.setToolTip(str(row.input))
        skipped = [Path(str(name)).name for name in getattr(predictions, "skipped", [])]
        if skipped:
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            self.status.setText(f"Skipped {len(skipped)} file(s) that are not images: {', '.join(skipped[:5])}{more}")
        if self.rows:
            self.results.setCurrentRow(0)
        self.predicted.emit(self.rows)

    def _show_row(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            self.answer.clear()
            self.picture.clear()
            self.saliency.clear()
            return
        row = self.rows[index]
        lines = [f"<b>{html.escape(str(row.prediction))}</b>"
                 + (f" — {row.confidence:.1%}" if row.confidence is not None else "")]
        for name, probability in row.top_k[1:]:
            lines.append(f"{html.escape(str(name))}: {probability:.1%}")
        if self.task == "autoencoder":
            lines = [f"reconstruction error <b>{row.prediction:.4g}</b> (mean squared, in the data's units)"]
        self.answer.setText("<br>".join(lines))
        array = self._arrays.get(row.input)
        showing = array is not None and self._images()
        self._input_caption.setVisible(showing)  # type: ignore[attr-defined]
        self._saliency_caption.setVisible(showing and self.task == "classification")  # type: ignore[attr-defined]
        if array is not None and self._images():
            image = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
            self.picture.setPixmap(image_pixmap(image, PREVIEW))
            saliency = self.predictor.saliency(array) if self.predictor is not None else None
            if saliency is not None:
                self.saliency.setPixmap(image_pixmap(saliency, PREVIEW, lut("inferno")))
                self.saliency.setToolTip("Saliency: where the image drives this prediction "
                                         "(the size of the predicted class's gradient at each pixel)")
            else:
                self.saliency.clear()
        else:
            self.picture.clear()
            self.saliency.clear()

    # ------------------------------------------------------------------ drops
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and self.predictor is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.predict(files)
