"""Value editors take the mouse wheel only when they have the keyboard focus.

In a scrolling panel the wheel is for scrolling: a spin box or combo box passing under the
pointer must not change its value on the way (momentum 0.9 quietly becoming 0.82). A
guarded editor ignores the wheel until it is clicked or tabbed into; the ignored wheel event
goes on to the scroll area behind it, which scrolls as the person meant.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QWidget

W = TypeVar("W", bound=QWidget)


class _WheelGuard(QObject):
    """Event filter: a wheel over an unfocused editor is passed to its parents."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # not accepted: Qt hands the wheel to the parent (the scroll area)
            return True
        return False


_GUARD: _WheelGuard | None = None


def _guard() -> _WheelGuard:
    global _GUARD
    if _GUARD is None:
        _GUARD = _WheelGuard(QApplication.instance())
    return _GUARD


def guard_wheel(widget: W) -> W:
    """Make ``widget`` (a spin box or combo box) take the wheel only while focused; returns it.

    It also stops taking focus from the wheel (a click or Tab gives it focus).
    """
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_guard())
    return widget


def guard_wheel_in(container: QWidget) -> None:
    """Guard ``container`` and every spin box and combo box inside it (built or rebuilt just now)."""
    editors = container.findChildren(QAbstractSpinBox) + container.findChildren(QComboBox)
    for widget in ([container] if isinstance(container, (QAbstractSpinBox, QComboBox)) else []) + editors:
        guard_wheel(widget)
