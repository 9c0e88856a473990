"""The live prediction view of the training dashboard.

A :class:`PredictionView` draws the payload of each ``PredictionSnapshot`` event on the page
for its ``view`` kind (classification samples and confusion matrix, a decision boundary,
regression and forecast fits, reconstructions, GAN samples, generated text). Pages are built
the first time their kind arrives and then updated in place, so a snapshot every couple of
seconds costs a few milliseconds. A malformed payload never raises: the view shows a short
message instead.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from gui.style import LIGHT, Theme
from gui.training.prediction_common import PredictionPage
from gui.training.prediction_images import (
    ClassificationPage,
    GanImagesPage,
    ReconstructionPage,
)
from gui.training.prediction_plots import (
    DecisionBoundaryPage,
    ForecastPage,
    GanPointsPage,
    RegressionPage,
    TextPage,
)

log = logging.getLogger(__name__)

#: The page class of each snapshot ``view`` kind.
PAGES: dict[str, Callable[[Theme], PredictionPage]] = {
    "classification": ClassificationPage,
    "decision_boundary": DecisionBoundaryPage,
    "regression": RegressionPage,
    "forecast": ForecastPage,
    "reconstruction": ReconstructionPage,
    "gan_points": GanPointsPage,
    "gan_images": GanImagesPage,
    "text": TextPage,
}
EMPTY_MESSAGE = "Predictions appear here while the model trains."


def describe_error(error: Exception) -> str:
    """A one-line account of what was wrong with a payload."""
    if isinstance(error, KeyError):
        return f"the payload has no '{error.args[0] if error.args else '?'}'"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 160 else text[:159] + "…"


class PredictionView(QWidget):
    """A header line ("Epoch N · what is shown") over one page per snapshot kind.

    Args:
        theme: The colours (see :func:`set_theme`).
        parent: The Qt parent.
    """

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setContentsMargins(4, 2, 4, 2)
        self.header.setWordWrap(True)  # a long summary wraps: it never widens the dashboard
        self.message = QLabel(EMPTY_MESSAGE)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.pages: dict[str, PredictionPage] = {}
        #: The view kind on show (``None``: the empty or the error message).
        self.current_view: str | None = None
        self._last: tuple[str, dict[str, Any], int] | None = None
        self._header_plain = ""
        self._header_parts: tuple[str, str] = ("", "")
        self._run_epoch: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.stack, 1)
        self._style_message()

    def show_snapshot(self, view: str, payload: dict[str, Any], epoch: int) -> None:
        """Draw ``payload`` on the page of ``view``; a bad payload shows a message instead.

        Args:
            view: The payload kind (a key of :data:`PAGES`).
            payload: The snapshot's plain data.
            epoch: The epoch the snapshot was taken in, for the header.
        """
        self._last = (view, payload, epoch)
        factory = PAGES.get(view)
        if factory is None:
            self._show_message(_when(epoch), f"No view for '{view}' predictions.")
            return
        try:
            page = self.page(view)
            if not isinstance(payload, dict):
                raise TypeError(f"the payload is a {type(payload).__name__}, not a dict")
            summary = page.show_payload(payload)
        except Exception as error:  # no payload may take the window down
            log.debug("cannot show %s snapshot", view, exc_info=True)
            title = str(getattr(factory, "title", view))
            self._show_message(f"{_when(epoch)} · {title}",
                               f"Cannot show this snapshot: {describe_error(error)}.")
            return
        self.stack.setCurrentWidget(page)
        self.current_view = view
        self._set_header(f"{_when(epoch)} · {page.title}", summary)

    def set_run_epoch(self, epochs_done: int | None) -> None:
        """How many epochs the run has completed (``None``: unknown); the header says when the
        snapshot on show is older (snapshots come at most every ``snapshot_seconds``)."""
        if epochs_done != self._run_epoch:
            self._run_epoch = epochs_done
            self._set_header(*self._header_parts)

    def epochs_behind(self) -> int:
        """How many epochs the run is ahead of the snapshot on show (0 when none is shown)."""
        if self._last is None or self._run_epoch is None or self.current_view is None:
            return 0
        return max(0, self._run_epoch - self._last[2])

    def page(self, view: str) -> PredictionPage:
        """The page of ``view``, built on first use.

        Raises:
            KeyError: Unknown view kind.
        """
        page = self.pages.get(view)
        if page is None:
            page = self.pages[view] = PAGES[view](self.theme)
            self.stack.addWidget(page)
        return page

    def clear(self) -> None:
        """Forget every snapshot and show the empty message."""
        self._last = None
        for page in self.pages.values():
            page.clear()
        self._show_message("", EMPTY_MESSAGE)

    def set_theme(self, theme: Theme) -> None:
        """Recolour every page for ``theme`` and redraw the last snapshot."""
        self.theme = theme
        for page in self.pages.values():
            page.set_theme(theme)
        self._style_message()
        if self._last is not None and self.current_view is not None:
            self.show_snapshot(*self._last)

    def export_png(self, path: str | Path) -> bool:
        """Save what the view shows as a PNG; ``False`` when it could not be written."""
        return bool(self.grab().save(str(path), "PNG"))

    @property
    def message_text(self) -> str:
        """The message on show (empty while a page is on show)."""
        return self.message.text() if self.stack.currentWidget() is self.message else ""

    @property
    def header_text(self) -> str:
        """The header line as plain text."""
        return self._header_plain

    def _set_header(self, title: str, summary: str = "") -> None:
        self._header_parts = (title, summary)
        behind = self.epochs_behind()
        lag = f"{behind} epoch{'s' if behind != 1 else ''} behind the run" if behind else ""
        self._header_plain = title + (f" ({lag})" if lag else "") + (f" — {summary}" if summary else "")
        rest = f" — {html.escape(summary)}" if summary else ""
        note = f" <span style='color:{self.theme.warning}'>({lag})</span>" if lag else ""
        self.header.setText(f"<b>{html.escape(title)}</b>{note}{rest}")
        self.header.setToolTip("The run has moved on since this snapshot: snapshots come at most every "
                               "snapshot_seconds (Settings); the next one shows the newer model." if lag else "")

    def _show_message(self, header: str, message: str) -> None:
        self._set_header(header)
        self.message.setText(message)
        self.stack.setCurrentWidget(self.message)
        self.current_view = None

    def _style_message(self) -> None:
        self.message.setStyleSheet(f"color: {self.theme.node_subtle};")


def _when(epoch: int) -> str:
    """Snapshots carry the number of epochs completed when they were taken."""
    return "Before the first epoch ends" if epoch <= 0 else f"After epoch {epoch}"
