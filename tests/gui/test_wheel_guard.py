"""The mouse wheel over a value editor in a scrolling panel scrolls the panel; it changes the
value only once the editor has the focus."""

from __future__ import annotations


import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QWidget

from gui.main_window import MainWindow


def _wheel(widget: QWidget, notches: int = -1) -> bool:
    """Turn the wheel over ``widget``; returns whether the widget took the event."""
    centre = QPointF(widget.rect().center())
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(QPoint(0, 0))) + centre, QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_scrolling_over_the_settings_leaves_momentum_alone(window: MainWindow) -> None:
    settings = window.training.settings_panel
    spin = settings.editors["momentum"].spin
    assert spin.value() == pytest.approx(0.9)
    assert not _wheel(spin, -1) and not _wheel(spin, -4)  # passed on to the scroll area
    assert spin.value() == pytest.approx(0.9)
    assert window.document.project.training.get("momentum") is None  # nothing was written
    combo = settings.editors["optimizer"].combo
    before = combo.currentText()
    assert not _wheel(combo, 1) and combo.currentText() == before
    assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus  # a click or Tab focuses it, the wheel does not


def test_every_spin_and_combo_box_in_the_scrolling_panels_is_guarded(window: MainWindow) -> None:
    window.canvas.select_nodes(["conv1"])
    window.training.data_panel._choose("csv")  # options with line edits, combo boxes and spin boxes
    window.training.data_panel._choose("digits")
    for panel in (window.inspector, window.training.settings_panel, window.training.data_panel,
                  window.training.inside):
        editors = panel.findChildren(QAbstractSpinBox) + panel.findChildren(QComboBox)
        assert editors, type(panel).__name__
        for editor in editors:
            if editor.isEnabled():
                assert not _wheel(editor), f"{type(panel).__name__}: {type(editor).__name__}"
