"""Editors for a data source's declared options (:class:`~engine.data.options.Option`), built from
the declaration: the Data panel shows one per option of the chosen source, and shows new values
in the same editors (:func:`show_value`) after an edit or an undo, so an editor is never deleted
inside its own signal."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget

from engine.data.options import Option

#: What an optional whole number (``limit``, ``max_chars``) shows while it is not set.
UNSET_NUMBER = "(all)"
_INT_MAX = 2**31 - 1


def _optional(option: Option) -> bool:
    return not option.required and option.default is None


def option_editor(option: Option, value: Any, set_option: Callable[[str, Any], None],
                  browse: Callable[[Option], None]) -> QWidget:
    """An editor for one option of a data source, showing ``value``: a spin box (``int``,
    ``float``; an optional whole number's lowest step reads :data:`UNSET_NUMBER` and means not
    set), a combo box (``choice``), two spin boxes (``size``), else a line edit, with a "…" button
    that calls ``browse`` for files and folders. Each change calls ``set_option(name, value)``.
    """
    if option.kind == "int":
        spin = QSpinBox()
        low = int(option.minimum if option.minimum is not None else 0)
        unset = _optional(option)
        spin.setRange(low - 1 if unset else low, int(min(option.maximum if option.maximum is not None else _INT_MAX,
                                                         _INT_MAX)))
        if unset:
            spin.setSpecialValueText(UNSET_NUMBER)  # shown at the minimum, which stands for "not set"
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(
            lambda v, o=option, s=spin: set_option(o.name, None if unset and v == s.minimum() else int(v)))
        show_value(spin, option, value)
        return spin
    if option.kind == "float":
        box = QDoubleSpinBox()
        box.setDecimals(3)
        box.setRange(option.minimum or 0.0, min(option.maximum or 1e6, 1e6))
        box.setKeyboardTracking(False)
        box.valueChanged.connect(lambda v, o=option: set_option(o.name, float(v)))
        show_value(box, option, value)
        return box
    if option.kind == "choice":
        combo = QComboBox()
        if _optional(option):
            combo.addItem("(automatic)", None)
        for choice in option.choices:
            combo.addItem(repr(choice)[1:-1] if choice == "\t" else choice, choice)
        combo.activated.connect(lambda i, o=option, c=combo: set_option(o.name, c.itemData(i)))
        show_value(combo, option, value)
        return combo
    if option.kind == "size":
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        spins = []
        for _ in option.default:
            spin = QSpinBox()
            spin.setRange(int(option.minimum or 1), int(option.maximum or 4096))
            spin.setKeyboardTracking(False)
            spins.append(spin)
            layout.addWidget(spin)
        for spin in spins:
            spin.valueChanged.connect(lambda v, o=option, s=spins: set_option(o.name, [x.value() for x in s]))
        show_value(row, option, value)
        return row
    edit = QLineEdit()
    edit.setPlaceholderText("(automatic)" if not option.required else "required")
    edit.editingFinished.connect(lambda o=option, e=edit: set_option(o.name, e.text().strip() or None))
    show_value(edit, option, value)
    if option.kind in ("file", "folder"):
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("…")
        button.setFixedWidth(28)
        button.setToolTip(f"Choose the {option.kind}")
        button.clicked.connect(lambda checked=False, o=option: browse(o))
        layout.addWidget(edit, 1)
        layout.addWidget(button)
        return row
    return edit


def show_value(editor: QWidget, option: Option, value: Any) -> None:
    """Show ``value`` in an editor :func:`option_editor` made for ``option`` (no edit is made)."""
    if isinstance(editor, QSpinBox):
        with QSignalBlocker(editor):
            editor.setValue(editor.minimum() if value is None else int(value))
    elif isinstance(editor, QDoubleSpinBox):
        with QSignalBlocker(editor):
            editor.setValue(0.0 if value is None else float(value))
    elif isinstance(editor, QComboBox):
        with QSignalBlocker(editor):
            editor.setCurrentIndex(max(0, editor.findData(value)))
    elif isinstance(editor, QLineEdit):
        if not editor.hasFocus() or editor.text().strip() != ("" if value is None else str(value)):
            editor.setText("" if value is None else str(value))
    else:  # a row: the two spin boxes of a size, or a path's line edit and its "…" button
        spins = editor.findChildren(QSpinBox)
        if spins:
            for spin, part in zip(spins, value or option.default):
                with QSignalBlocker(spin):
                    spin.setValue(int(part))
        for edit in editor.findChildren(QLineEdit):
            show_value(edit, option, value)
