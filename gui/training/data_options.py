"""Editors for a data source's declared options (:class:`~engine.data.options.Option`), built from
the declaration: the Data panel shows one per option of the chosen source."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget

from engine.data.options import Option


def option_editor(option: Option, value: Any, set_option: Callable[[str, Any], None],
                  browse: Callable[[Option], None]) -> QWidget:
    """An editor for one option of a data source, showing ``value``: a spin box (``int``,
    ``float``), a combo box (``choice``), two spin boxes (``size``), else a line edit, with a "…"
    button that calls ``browse`` for files and folders. Each change calls ``set_option(name, value)``.
    """
    if option.kind == "int":
        spin = QSpinBox()
        spin.setRange(int(option.minimum if option.minimum is not None else 0),
                      int(min(option.maximum if option.maximum is not None else 2**31 - 1, 2**31 - 1)))
        spin.setValue(int(value) if value is not None else spin.minimum())
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(lambda v, o=option: set_option(o.name, int(v)))
        return spin
    if option.kind == "float":
        box = QDoubleSpinBox()
        box.setDecimals(3)
        box.setRange(option.minimum or 0.0, min(option.maximum or 1e6, 1e6))
        box.setValue(float(value) if value is not None else 0.0)
        box.setKeyboardTracking(False)
        box.valueChanged.connect(lambda v, o=option: set_option(o.name, float(v)))
        return box
    if option.kind == "choice":
        combo = QComboBox()
        if not option.required and option.default is None:
            combo.addItem("(automatic)", None)
        for choice in option.choices:
            combo.addItem(repr(choice)[1:-1] if choice == "\t" else choice, choice)
        combo.setCurrentIndex(max(0, combo.findData(value)))
        combo.activated.connect(lambda i, o=option, c=combo: set_option(o.name, c.itemData(i)))
        return combo
    if option.kind == "size":
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        spins = []
        for v in (value or option.default):
            spin = QSpinBox()
            spin.setRange(int(option.minimum or 1), int(option.maximum or 4096))
            spin.setValue(int(v))
            spin.setKeyboardTracking(False)
            spins.append(spin)
            layout.addWidget(spin)
        for spin in spins:
            spin.valueChanged.connect(lambda v, o=option, s=spins: set_option(o.name, [x.value() for x in s]))
        return row
    edit = QLineEdit("" if value is None else str(value))
    edit.setPlaceholderText("(automatic)" if not option.required else "required")
    edit.editingFinished.connect(lambda o=option, e=edit: set_option(o.name, e.text().strip() or None))
    if option.kind in ("file", "folder"):
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        browse = QPushButton("…")
        browse.setFixedWidth(28)
        browse.clicked.connect(lambda checked=False, o=option: browse(o))
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        return row
    return edit
