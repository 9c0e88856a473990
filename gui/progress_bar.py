"""A progress bar whose text stays on one line: too long for the bar, it ends in "…" and the whole
text is its tooltip (Qt's own bar wraps it onto a second line that the bar's height cuts)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QProgressBar, QToolTip

#: Pixels the style keeps free on each side of the text.
TEXT_MARGIN = 6


class ElidingProgressBar(QProgressBar):
    """:class:`QProgressBar` with its formatted text elided to the bar's width."""

    def full_text(self) -> str:
        """The formatted text before eliding."""
        return super().text()

    def text(self) -> str:  # noqa: D102 - Qt override: what the style paints
        room = max(0, self.width() - 2 * TEXT_MARGIN)
        return self.fontMetrics().elidedText(self.full_text(), Qt.TextElideMode.ElideRight, room)

    def event(self, event: QEvent) -> bool:  # noqa: D102 - Qt override
        if event.type() == QEvent.Type.ToolTip and not self.toolTip() and self.text() != self.full_text():
            QToolTip.showText(event.globalPos(), self.full_text(), self)  # type: ignore[attr-defined]
            return True
        return super().event(event)
