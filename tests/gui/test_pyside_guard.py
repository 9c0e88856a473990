"""Guard against PySide6 builds that leak references to None on void Qt calls.

PySide6 6.12.0 on CPython 3.11 decrements None's reference count on every call of a void Qt
method; after ~16k calls the count hits zero and the process aborts. Short tests pass, real
use dies. pyproject.toml pins PySide6-Essentials below 6.12; this test catches the bug in any
build that slips through.
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject


def test_pinned_pyside_range() -> None:
    major, minor = (int(part) for part in PySide6.__version__.split(".")[:2])
    assert (6, 8) <= (major, minor) < (6, 12), PySide6.__version__


def test_void_qt_calls_keep_none_refcount() -> None:
    obj = QObject()
    before = sys.getrefcount(None)
    for i in range(20_000):
        obj.setObjectName("guard")  # a void method returning None
        obj.blockSignals(False)
    drift = sys.getrefcount(None) - before
    assert abs(drift) < 1_000, f"None's refcount drifted by {drift} over 40,000 void Qt calls"
