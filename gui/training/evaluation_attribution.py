"""The Evaluate window's attribution pane: why the model predicted what it did for the sample
chosen in the samples table (the same Captum methods and view as Look Inside and Try It),
computed off the GUI thread from the run's predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gui.background import BackgroundCall
from gui.style import LIGHT, Theme
from gui.training.attribution_view import AttributionView, sample_picture

PICTURE = 120
HINT = "Choose a sample in the table to see why the model predicted what it did."


class EvaluationAttribution(QWidget):
    """Attribution of one evaluated sample.

    Args:
        run_dir: The run (its predictor explains the samples).
        base_dir: Where relative dataset paths resolve.
        theme: Colours of the view.
    """

    def __init__(self, run_dir: Path, base_dir: Path | None, theme: Theme = LIGHT,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir, self.base_dir = run_dir, base_dir
        self.predictor: Any = None
        self.sample: np.ndarray | None = None
        self.view = AttributionView(theme, PICTURE)
        self.view.requested.connect(self._request)
        self.view.setVisible(False)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.view)
        layout.addStretch(1)
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
        self._opening = False

    def show_sample(self, sample: np.ndarray | None) -> None:
        """Explain ``sample`` (the dataset's row, as the table shows it), opening the run's predictor first."""
        self.sample = sample
        if sample is None:
            self.view.setVisible(False)
            self.hint.setVisible(True)
            return
        self.hint.setVisible(False)
        self.view.setVisible(True)
        if self.predictor is None:
            if not self._opening:
                self._opening = True
                self.view.set_busy(True)
                self.background.start(self._open)
            return
        self._request()

    def _open(self) -> Any:
        from engine.training.predict import open_predictor

        predictor = open_predictor(self.run_dir, self.base_dir)
        _ = predictor.attribution_facts  # worked out here, off the GUI thread
        return predictor

    def _request(self) -> None:
        predictor, sample = self.predictor, self.sample
        method, layer, output = self.view.choice()
        if predictor is None or sample is None or method is None:
            return
        self.view.set_busy(True)
        self.background.start(lambda: ("attribution", predictor.attribution(sample, method, layer, output)))

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        if ticket != self.background.ticket:
            return  # a newer sample or method was asked for
        self.view.set_busy(False)
        if result is None:
            self._opening = False
            self.view.show_problem(error)
            return
        if isinstance(result, tuple) and result and result[0] == "attribution":
            self.view.show_attribution(result[1], sample_picture(self.sample))
            return
        self.predictor, self._opening = result, False
        self.view.set_facts(result.attribution_facts)
        self._request()

    def set_theme(self, theme: Theme) -> None:
        """Recolour the view."""
        self.view.set_theme(theme)

