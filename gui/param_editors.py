"""One editor widget per parameter kind, generated from a layer's :class:`Param` declarations.

Spin boxes and combo boxes take the mouse wheel only when focused (they sit in scrolling
panels: see :mod:`gui.wheel_guard`). Every editor shows a value with :meth:`ParamEditor.set_value` (without emitting anything) and
emits ``value_edited(value)`` with a valid, coerced value the user chose, or
``problem_changed(text)`` when what the user typed is refused (``""`` once it is fine
again). Spin boxes make out-of-bounds values impossible; text editors check them with
:meth:`Param.check` and never emit an invalid value.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import QLocale, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from engine.layers.params import Param
from gui.wheel_guard import guard_wheel

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Decimals of float spin boxes; parameters whose values need more get a text editor.
FLOAT_DECIMALS = 4


def param_summary(param: Param) -> str:
    """Kind and bounds in a few words, e.g. ``"integer, 1 to 1,000,000"``."""
    kind = {"int": "integer", "float": "number", "bool": "on / off", "choice": "choice",
            "int_tuple": f"{param.length or ''} integers".strip(), "int_list": "list of integers"}[param.kind]
    if param.kind == "choice":
        return f"{kind}: {', '.join(param.choices)}"
    if param.min is not None and param.max is not None:
        return f"{kind}, {_number(param.min)} to {_number(param.max)}"
    if param.min is not None:
        return f"{kind}, at least {_number(param.min)}"
    if param.max is not None:
        return f"{kind}, at most {_number(param.max)}"
    return kind


def format_value(param: Param, value: Any) -> str:
    """The text a text editor shows for ``value`` (``"1, 28, 28"`` for lists)."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_text(param: Param, text: str) -> tuple[Any, str | None]:
    """Parse what the user typed: ``(value, None)`` when valid, else ``(None, reason)``."""
    text = text.strip()
    if param.kind in ("int_list", "int_tuple"):
        parts = [p for p in re.split(r"[\s,]+", text.strip("()[] ")) if p]
        if not parts:
            return None, "enter integers separated by commas, e.g. 1, 28, 28"
        try:
            value: Any = tuple(int(p) for p in parts)
        except ValueError:
            bad = next(p for p in parts if not re.fullmatch(r"[+-]?\d+", p))
            return None, f"{bad!r} is not an integer; enter integers separated by commas"
    elif param.kind == "int":
        try:
            value = int(text)
        except ValueError:
            return None, "enter a whole number" if text else "enter a value"
    else:
        try:
            value = float(text)
        except ValueError:
            return None, "enter a number, e.g. 0.5 or 1e-5" if text else "enter a value"
        if not math.isfinite(value):
            return None, "enter a finite number"
    problem = param.check(value)
    return (None, problem) if problem else (param.coerce(value), None)


class ParamEditor(QWidget):
    """Base class: a widget editing one parameter."""

    value_edited = Signal(object)
    problem_changed = Signal(str)

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.setToolTip(param.doc)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)

    def set_value(self, value: Any) -> None:
        """Show ``value`` without emitting (a no-op when it is already shown)."""
        raise NotImplementedError

    def can_show(self, value: Any) -> bool:
        """Whether this editor can display ``value`` exactly."""
        return True

    def current_value(self) -> Any:
        """The valid value the editor holds now (``None`` while what is typed is not one)."""
        raise NotImplementedError

    def _emit(self, value: Any) -> None:
        self.value_edited.emit(value)

    def _add(self, widget: QWidget) -> QWidget:
        widget.setToolTip(self.param.doc)
        self._layout.addWidget(widget, 1)
        return widget


def _spin_range(param: Param, value: int) -> tuple[int, int]:
    """Spin box bounds: the declaration's, widened to show an out-of-bounds value from a file."""
    low = int(param.min) if param.min is not None else INT32_MIN
    high = int(param.max) if param.max is not None else INT32_MAX
    return max(INT32_MIN, min(low, value)), min(INT32_MAX, max(high, value))


def _show_int(spin: QSpinBox, param: Param, value: int) -> None:
    """Show ``value`` silently; untouched when already shown, so typing is not disturbed."""
    spin.blockSignals(True)
    low, high = _spin_range(param, value)
    if (spin.minimum(), spin.maximum()) != (low, high):
        spin.setRange(low, high)
    if spin.value() != value:
        spin.setValue(value)
    spin.blockSignals(False)


def _new_spin() -> QSpinBox:
    spin = guard_wheel(QSpinBox())
    spin.setLocale(QLocale.c())
    spin.setAccelerated(True)
    spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    return spin


class IntSpinEditor(ParamEditor):
    """An integer in a spin box (bounds within 32 bits)."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = self._add(_new_spin())
        self.spin.valueChanged.connect(self._emit)

    def can_show(self, value: Any) -> bool:
        return isinstance(value, int) and INT32_MIN <= value <= INT32_MAX

    def set_value(self, value: Any) -> None:
        _show_int(self.spin, self.param, value)

    def current_value(self) -> Any:
        return self.spin.value()


class IntTupleEditor(ParamEditor):
    """A fixed-length tuple as a row of spin boxes."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spins = [self._add(_new_spin()) for _ in range(param.length or 1)]
        for spin in self.spins:
            spin.valueChanged.connect(self._edited)

    def _edited(self) -> None:
        self.value_edited.emit(tuple(spin.value() for spin in self.spins))

    def can_show(self, value: Any) -> bool:
        return (isinstance(value, (list, tuple)) and len(value) == len(self.spins)
                and all(INT32_MIN <= v <= INT32_MAX for v in value))

    def set_value(self, value: Any) -> None:
        for spin, item in zip(self.spins, value):
            _show_int(spin, self.param, item)

    def current_value(self) -> Any:
        return tuple(spin.value() for spin in self.spins)


class FloatSpinEditor(ParamEditor):
    """A number with linear bounds in a spin box (trailing zeros hidden)."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = self._add(guard_wheel(_TrimmedDoubleSpinBox()))
        self.spin.setLocale(QLocale.c())
        self.spin.setAccelerated(True)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setDecimals(FLOAT_DECIMALS)
        self.spin.setRange(float(param.min), float(param.max))
        span = float(param.max) - float(param.min)
        self.spin.setSingleStep(0.01 if span <= 1 else 0.1 if span <= 10 else 1.0)
        self.spin.valueChanged.connect(self._emit)

    def can_show(self, value: Any) -> bool:
        return isinstance(value, float) and round(value, FLOAT_DECIMALS) == value and \
            self.spin.minimum() <= value <= self.spin.maximum()

    def set_value(self, value: Any) -> None:
        if self.spin.value() != value:
            self.spin.blockSignals(True)
            self.spin.setValue(value)
            self.spin.blockSignals(False)

    def current_value(self) -> Any:
        return self.spin.value()


class _TrimmedDoubleSpinBox(QDoubleSpinBox):
    """Shows ``0.1`` rather than ``0.1000``."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        text = f"{value:.{self.decimals()}f}".rstrip("0")
        return text + "0" if text.endswith(".") else text


class TextEditor(ParamEditor):
    """A line edit for lists, log-scale numbers and integers beyond 32 bits.

    The text is checked as the user types; a valid value is emitted when editing finishes
    (Enter or leaving the field). Up / Down step integers by one and multiply or divide
    numbers by ten.
    """

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.edit = self._add(_SteppingLineEdit(self))
        self.edit.setPlaceholderText({"int_list": "e.g. 1, 28, 28", "int_tuple": "e.g. 3, 3",
                                      "float": "e.g. 1e-5"}.get(param.kind, ""))
        self.edit.textEdited.connect(self._check)
        self.edit.editingFinished.connect(self._commit)
        self._shown: Any = None

    def _check(self, text: str) -> None:
        _, problem = parse_text(self.param, text)
        self.problem_changed.emit(problem or "")

    def _commit(self) -> None:
        value, problem = parse_text(self.param, self.edit.text())
        self.problem_changed.emit(problem or "")
        if problem is None and value != self._shown:
            self._shown = value
            self.value_edited.emit(value)

    def set_value(self, value: Any) -> None:
        self._shown = self.param.coerce(value)
        text = format_value(self.param, value)
        if self.edit.text() != text:
            self.edit.setText(text)
        self.problem_changed.emit("")

    def current_value(self) -> Any:
        value, problem = parse_text(self.param, self.edit.text())
        return None if problem else value

    def step(self, steps: int) -> None:
        """Step the value (Up / Down keys) when the text holds a valid number."""
        value, problem = parse_text(self.param, self.edit.text())
        if problem is not None or self.param.kind not in ("int", "float"):
            return
        stepped = value + steps if self.param.kind == "int" else value * 10.0 ** steps
        if self.param.check(stepped) is None:
            self.edit.setText(format_value(self.param, self.param.coerce(stepped)))
            self._commit()


class _SteppingLineEdit(QLineEdit):
    def __init__(self, owner: TextEditor) -> None:
        super().__init__()
        self._owner = owner

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self._owner.step(1 if event.key() == Qt.Key.Key_Up else -1)
            return
        super().keyPressEvent(event)


class BoolEditor(ParamEditor):
    """A check box."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = self._add(QCheckBox())
        self.check.toggled.connect(self._emit)

    def can_show(self, value: Any) -> bool:
        return isinstance(value, bool)

    def set_value(self, value: Any) -> None:
        self.check.blockSignals(True)
        self.check.setChecked(bool(value))
        self.check.blockSignals(False)

    def current_value(self) -> Any:
        return self.check.isChecked()


class ChoiceEditor(ParamEditor):
    """A combo box of the declared choices (plus a value from a file that is not one of them)."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.combo = self._add(guard_wheel(QComboBox()))
        self.combo.addItems(list(param.choices))
        self.combo.activated.connect(self._chosen)

    def _chosen(self, index: int) -> None:
        choice = self.combo.itemText(index)
        if choice in self.param.choices:
            self.value_edited.emit(choice)

    def set_value(self, value: Any) -> None:
        self.combo.blockSignals(True)
        while self.combo.count() > len(self.param.choices):
            self.combo.removeItem(self.combo.count() - 1)
        if value not in self.param.choices:
            self.combo.addItem(str(value))
        self.combo.setCurrentText(str(value))
        self.combo.blockSignals(False)

    def current_value(self) -> Any:
        text = self.combo.currentText()
        return text if text in self.param.choices else None


def make_editor(param: Param, value: Any, parent: QWidget | None = None) -> ParamEditor:
    """The editor for ``param`` that can show ``value`` exactly; it shows ``value``."""
    editor: ParamEditor
    if param.kind == "bool":
        editor = BoolEditor(param, parent)
    elif param.kind == "choice":
        editor = ChoiceEditor(param, parent)
    elif param.kind == "int" and _fits_int32(param):
        editor = IntSpinEditor(param, parent)
    elif param.kind == "int_tuple":
        editor = IntTupleEditor(param, parent)
    elif param.kind == "float" and _linear_float(param):
        editor = FloatSpinEditor(param, parent)
    else:
        editor = TextEditor(param, parent)
    if not isinstance(editor, TextEditor) and not editor.can_show(value):
        editor.deleteLater()
        editor = TextEditor(param, parent)
    editor.set_value(value)
    return editor


def _fits_int32(param: Param) -> bool:
    return all(bound is None or INT32_MIN <= bound <= INT32_MAX for bound in (param.min, param.max))


def _linear_float(param: Param) -> bool:
    """Bounded numbers whose smallest meaningful value shows in :data:`FLOAT_DECIMALS` decimals."""
    if param.min is None or param.max is None or abs(param.max) > 1e6:
        return False
    return param.min == 0 or abs(param.min) >= 10.0 ** -FLOAT_DECIMALS


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"
