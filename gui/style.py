"""Shared look: category colours, the two themes, and the drag-and-drop MIME type.

Colours are chosen to stay distinguishable in the light and the dark theme and for the
common forms of colour blindness (hue plus lightness differ between neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette

#: MIME type of a palette drag: the payload is the layer type id (UTF-8).
LAYER_MIME = "application/x-neural-canvas-layer"

CATEGORY_COLORS: dict[str, str] = {
    "Input / Output": "#4C9A2A",
    "Core": "#3B7DD8",
    "Convolution": "#D9822B",
    "Pooling": "#C2A01E",
    "Normalization": "#8E6CCF",
    "Activation": "#D64F7A",
    "Recurrent": "#1B998B",
    "Attention": "#B5521B",
    "Merge": "#6B7A8F",
}


def category_color(category: str) -> QColor:
    """The colour of a layer category (grey for unknown categories)."""
    return QColor(CATEGORY_COLORS.get(category, "#777777"))


@dataclass(frozen=True)
class Theme:
    """Colours of one theme."""

    name: str
    canvas: str
    grid_minor: str
    grid_major: str
    node_body: str
    node_text: str
    node_subtle: str
    node_border: str
    selection: str
    error: str
    warning: str
    edge: str
    edge_label: str
    comment: str = "#C9A227"


LIGHT = Theme("light", canvas="#F4F5F7", grid_minor="#E6E8EC", grid_major="#D5D8DE", node_body="#FFFFFF",
              node_text="#1F2328", node_subtle="#5A6270", node_border="#C5CAD3", selection="#2F81F7",
              error="#D1242F", warning="#BF8700", edge="#7D8590", edge_label="#3D444D",
              comment="#C9A227")
DARK = Theme("dark", canvas="#1E2126", grid_minor="#262A30", grid_major="#30353C", node_body="#2B3036",
             node_text="#E6EDF3", node_subtle="#9DA7B3", node_border="#444C56", selection="#4493F8",
             error="#F85149", warning="#D29922", edge="#8B949E", edge_label="#C9D1D9",
             comment="#D4B340")
THEMES = {"light": LIGHT, "dark": DARK}

#: Text of a disabled widget on the dark panels (buttons, fields, labels): dimmer than
#: ``node_subtle``, which is live secondary text, so a disabled Pause or Set LR reads as disabled.
DARK_DISABLED_TEXT = "#6E7681"
#: Status text (a message that something failed, needs attention or worked) on each theme's
#: panels and tooltips; the dark theme's are light enough for 4.5:1 on its dark panels.
STATUS_TEXT = {"light": {"error": "#D1242F", "warning": "#9A6700", "ok": "#1A7F37"},
               "dark": {"error": "#FF7B72", "warning": "#D29922", "ok": "#3FB950"}}


def status_color(kind: str) -> str:
    """The colour of ``kind`` status text (``"error"``, ``"warning"`` or ``"ok"``) for the theme on
    show: the dark one's while the application palette is dark."""
    from PySide6.QtWidgets import QApplication

    dark = QApplication.instance() is not None and \
        QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return STATUS_TEXT["dark" if dark else "light"][kind]


def application_palette(theme: Theme) -> QPalette:
    """The Qt palette for the panels and menus of ``theme`` (the light one is the style's own)."""
    from PySide6.QtWidgets import QApplication

    if theme.name == "light":
        return QApplication.style().standardPalette()
    palette = QPalette()
    role = QPalette.ColorRole
    window, base, text = QColor("#24282E"), QColor(theme.node_body), QColor(theme.node_text)
    for r, c in ((role.Window, window), (role.WindowText, text), (role.Base, base), (role.AlternateBase, window),
                 (role.Text, text), (role.Button, window), (role.ButtonText, text), (role.ToolTipBase, base),
                 (role.ToolTipText, text), (role.Highlight, QColor(theme.selection)),
                 (role.HighlightedText, QColor("#FFFFFF")), (role.PlaceholderText, QColor(theme.node_subtle)),
                 (role.Mid, QColor(theme.node_border)), (role.Dark, QColor("#15181C")),
                 (role.Light, QColor("#3A4048")), (role.Link, QColor(theme.selection))):
        palette.setColor(r, c)
    disabled = QColor(DARK_DISABLED_TEXT)
    for r in (role.Text, role.WindowText, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return palette
