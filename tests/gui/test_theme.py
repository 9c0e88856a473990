"""The theme: chosen on the command line or in View, and disabled icons look disabled in both."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon

from gui.app import parse_args
from gui.icons import icon
from gui.main_window import MainWindow


def _max_alpha(qicon: QIcon, mode: QIcon.Mode) -> int:
    image = qicon.pixmap(24, 24, mode).toImage()
    return max(image.pixelColor(x, y).alpha() for x in range(image.width()) for y in range(image.height()))


def test_the_theme_can_be_chosen_on_the_command_line() -> None:
    assert parse_args(["--theme", "dark"]).theme == "dark" and parse_args([]).theme is None


def test_a_disabled_dark_theme_icon_is_faded(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.use_dark_theme()
    undo = window.actions["undo"].icon()
    assert _max_alpha(undo, QIcon.Mode.Disabled) < 0.5 * _max_alpha(undo, QIcon.Mode.Normal)
    assert _max_alpha(icon("undo", "#9DA7B3"), QIcon.Mode.Disabled) < 120
    window.use_light_theme()
    assert window.settings.value("theme") == "light"
