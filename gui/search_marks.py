"""How a searched value looks: a magnifier toggle beside its editor, an accent label, a range note.

The Inspector and the Training Settings panel put a :class:`SearchToggle` beside every value a
search can vary; a click marks or unmarks it. A searched value's label is drawn in the accent
colour (:func:`mark_label`) and a :class:`SearchNote` under its editor says what the search
tries, so a person sees at a glance what a search varies. Colours follow the light and dark
themes, also when the theme changes while they show.
"""

from __future__ import annotations

import weakref
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import QApplication, QCheckBox, QGridLayout, QLabel, QToolButton, QWidget
from shiboken6 import isValid

from gui.icons import icon
from gui.search_edit import range_text

#: The colour of searched values, per theme (4.5:1 or better on the panels of each).
ACCENT = {"light": "#0969DA", "dark": "#58A6FF"}
_PALETTE_EVENTS = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


def search_accent() -> str:
    """The accent colour for the theme on show."""
    app = QApplication.instance()
    dark = app is not None and QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return ACCENT["dark" if dark else "light"]


def _subtle() -> str:
    return QApplication.palette().color(QPalette.ColorRole.PlaceholderText).name()


_MARKED: "weakref.WeakSet[QWidget]" = weakref.WeakSet()
_FOLLOWING = False


def _restyle_all(*_args: Any) -> None:
    """The theme changed: marked widgets take the new accent (a widget with a style sheet gets no
    palette events of its own, so the application's ``paletteChanged`` drives this)."""
    for widget in list(_MARKED):
        if isValid(widget):
            _apply_accent(widget)


def mark_label(label: QLabel | QCheckBox, searched: bool) -> None:
    """Draw ``label`` (a label or a check box's text) in the accent colour while its value is searched
    (its font is left alone: the Settings panel's bold still says a value differs from its default)."""
    global _FOLLOWING
    app = QApplication.instance()
    if not _FOLLOWING and isinstance(app, QApplication):
        app.paletteChanged.connect(_restyle_all)
        _FOLLOWING = True
    label.setProperty("searched", bool(searched))
    _MARKED.add(label)
    _apply_accent(label)


def _apply_accent(widget: QWidget) -> None:
    name = "QCheckBox" if isinstance(widget, QCheckBox) else "QLabel"
    style = f"{name} {{ color: {search_accent()}; }}" if widget.property("searched") else ""
    if widget.styleSheet() != style:
        widget.setStyleSheet(style)


class SearchNote(QLabel):
    """The line under a searched editor: ``Searched: 8 – 64, step 8`` (hidden while not searched)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
        self.setFont(font)
        self.hide()
        mark_label(self, True)

    def show_range(self, spec: Any) -> None:
        """Show what the search tries (``None``: not searched, hidden)."""
        if spec is None:
            self.hide()
            return
        self.setText(f"Searched: {range_text(spec)}")
        self.setToolTip("Set the range in the Search panel; the search overrides this value in each trial")
        self.show()


class SearchToggle(QToolButton):
    """A small magnifier: checked while a value is searched; a click asks to mark or unmark it.

    Connect ``clicked(bool)`` (user clicks only); show the document's state with :meth:`show_range`.

    Args:
        what: The value in words, for the tooltip (``out_channels``, ``the learning rate``).
    """

    def __init__(self, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.what = what
        self.setCheckable(True)
        self.setAutoRaise(True)
        self.setIconSize(QSize(16, 16))
        self.setFixedSize(24, 24)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setAccessibleName(f"Search {what}")
        self._paint_icon()
        self.show_range(None)

    def show_range(self, spec: Any) -> None:
        """Checked (with the range in the tooltip) when ``spec`` is a range, else unchecked."""
        self.blockSignals(True)
        self.setChecked(spec is not None)
        self.blockSignals(False)
        if spec is None:
            self.setToolTip(f"Search {self.what}: let a hyper-parameter search vary it (the range is set "
                            "in the Search panel)")
        else:
            self.setToolTip(f"Searched: {range_text(spec)}\nClick to stop searching {self.what}")

    def _paint_icon(self) -> None:
        off, on = icon("search", _subtle()), icon("search", search_accent())
        both = QIcon()
        for size in (16, 24, 32):
            both.addPixmap(off.pixmap(size, size), QIcon.Mode.Normal, QIcon.State.Off)
            both.addPixmap(on.pixmap(size, size), QIcon.Mode.Normal, QIcon.State.On)
            both.addPixmap(off.pixmap(size, size, QIcon.Mode.Disabled), QIcon.Mode.Disabled, QIcon.State.Off)
            both.addPixmap(on.pixmap(size, size, QIcon.Mode.Disabled), QIcon.Mode.Disabled, QIcon.State.On)
        self.setIcon(both)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() in _PALETTE_EVENTS:
            self._paint_icon()


def searched_field(editor: QWidget, what: str) -> tuple[QWidget, SearchToggle, SearchNote]:
    """``editor`` with a :class:`SearchToggle` at its right and a :class:`SearchNote` under it, as one
    field of a form; returns the field, the toggle and the note."""
    field = QWidget()
    grid = QGridLayout(field)
    grid.setContentsMargins(0, 0, 0, 0)
    grid.setHorizontalSpacing(4)
    grid.setVerticalSpacing(0)
    grid.setColumnStretch(0, 1)
    toggle, note = SearchToggle(what), SearchNote()
    grid.addWidget(editor, 0, 0)
    grid.addWidget(toggle, 0, 1)
    grid.addWidget(note, 1, 0, 1, 2)
    return field, toggle, note
