"""The theme: chosen on the command line or in View, and disabled icons look disabled in both."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from gui.app import parse_args
from gui.icons import icon
from gui.main_window import MainWindow
from gui.style import STATUS_TEXT, status_color


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


def _contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_dark_disabled_controls_look_disabled_and_status_text_reads(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    """In the dark theme a disabled Pause, Stop or Set LR looked enabled (its text was the live grey of
    secondary text), and the export, import and tooltip status lines kept the light theme's red and
    green, under 3:1 on the dark panels."""
    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.use_dark_theme()
    palette, role, group = QApplication.palette(), QPalette.ColorRole, QPalette.ColorGroup
    button = palette.color(role.Button)
    for text in (role.ButtonText, role.WindowText, role.Text):
        enabled, disabled = palette.color(group.Active, text), palette.color(group.Disabled, text)
        assert _contrast(enabled, button) >= 3 * _contrast(disabled, button)  # clearly dimmer ...
        assert _contrast(disabled, button) >= 3  # ... and still legible
    for kind in ("error", "warning", "ok"):
        for background in (role.Window, role.ToolTipBase):
            assert _contrast(QColor(status_color(kind)), palette.color(background)) >= 4.5, kind
    window.use_light_theme()
    for kind in ("error", "warning", "ok"):
        assert _contrast(QColor(status_color(kind)), QApplication.palette().color(role.Base)) >= 4.5, kind


def test_a_layer_tooltip_takes_the_theme_s_error_colour(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from engine.shapes import Diagnostic, NodeInfo
    from engine.templates import default_template

    window = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.use_light_theme()
    window.open_project(default_template(), untitled=True)
    item = next(iter(window.canvas.canvas_scene().nodes.values()))
    item.set_info(NodeInfo(None, diagnostics=(Diagnostic(item.node_id, "error", "broken"),)))
    assert STATUS_TEXT["light"]["error"] in item.toolTip()
    window.use_dark_theme()  # switching recolours the tooltip already made
    assert STATUS_TEXT["dark"]["error"] in item.toolTip() and STATUS_TEXT["light"]["error"] not in item.toolTip()


def test_view_menu_checks_the_active_theme(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    """View > Light / Dark Theme did not show which theme was on: they are one checked pair."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("theme", "dark")
    window = MainWindow(settings)
    qtbot.addWidget(window)
    light, dark = window.actions["theme_light"], window.actions["theme_dark"]
    assert light.isCheckable() and dark.isCheckable()
    assert dark.isChecked() and not light.isChecked()
    light.trigger()
    assert window.theme.name == "light" and light.isChecked() and not dark.isChecked()
    light.trigger()  # choosing the active theme again keeps it checked
    assert light.isChecked() and not dark.isChecked()
    window.use_dark_theme()
    assert dark.isChecked() and not light.isChecked()
