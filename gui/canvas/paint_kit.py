"""Pens, brushes, fonts and sizes of the canvas, made once per theme.

Items never allocate a font or a pen while painting: they read them from the scene's
:class:`PaintKit`, which :meth:`CanvasScene.set_theme` replaces as a whole.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen

from gui.canvas.title_wrap import wrap_title
from gui.style import Theme, category_color

#: Node card size in scene units (the auto-layout spaces columns 240 apart).
NODE_WIDTH = 150.0
HEADER_HEIGHT = 26.0
ROW_HEIGHT = 16.0
BODY_PADDING = 7.0
PORT_SPACING = 18.0
PORT_RADIUS = 5.0
CORNER_RADIUS = 7.0
GRID_MINOR = 20.0
GRID_MAJOR_EVERY = 5
SNAP = 10.0

#: Levels of detail (screen pixels per scene unit): at and above LOD_TEXT nodes show every
#: line; down to LOD_COMPACT a card shows its title and shape in type scaled to stay
#: readable; below that nodes are plain coloured blocks. Edge labels need LOD_EDGE_LABEL.
LOD_TEXT = 0.7
LOD_COMPACT = 0.2
LOD_EDGE_LABEL = 0.75


def blend(base: QColor, tint: QColor, amount: float) -> QColor:
    """``base`` moved ``amount`` (0..1) of the way towards ``tint``."""
    return QColor(round(base.red() + (tint.red() - base.red()) * amount),
                  round(base.green() + (tint.green() - base.green()) * amount),
                  round(base.blue() + (tint.blue() - base.blue()) * amount))


def _font(point_size: float, bold: bool = False, family: str | None = None) -> QFont:
    font = QFont(family) if family else QFont()
    font.setPointSizeF(point_size)
    font.setBold(bold)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return font


def _cosmetic(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


class PaintKit:
    """Everything the canvas items paint with, for one theme.

    Args:
        theme: The colours.
        pixel_ratio: Device pixels per logical pixel of the screen painted on.
    """

    def __init__(self, theme: Theme, pixel_ratio: float = 1.0) -> None:
        self.pixel_ratio = pixel_ratio

        def line(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
            # cosmetic widths count device pixels: scale them so lines keep their weight on
            # high-density screens
            return _cosmetic(color, width * pixel_ratio, style)

        self.theme = theme
        c = QColor
        self.canvas = c(theme.canvas)
        self.body = c(theme.node_body)
        self.text = c(theme.node_text)
        self.subtle = c(theme.node_subtle)
        self.border = c(theme.node_border)
        self.selection = c(theme.selection)
        self.error = c(theme.error)
        self.warning = c(theme.warning)
        self.edge = c(theme.edge)
        self.edge_label = c(theme.edge_label)
        self.dark = theme.name == "dark"
        # fonts (point sizes, so text keeps its size on high-density screens)
        self.title_font = _font(9.0, bold=True)
        self.id_font = _font(8.0)
        self.body_font = _font(8.5)
        self.port_font = _font(7.0)
        self.edge_font = _font(7.0)
        self.badge_font = _font(7.5, bold=True)
        self.title_metrics = QFontMetricsF(self.title_font)
        self.id_metrics = QFontMetricsF(self.id_font)
        self.body_metrics = QFontMetricsF(self.body_font)
        self.port_metrics = QFontMetricsF(self.port_font)
        self.edge_metrics = QFontMetricsF(self.edge_font)
        # node pens and brushes
        self.body_brush = QBrush(self.body)
        self.border_pen = line(self.border, 1.0)
        self.selected_pen = line(self.selection, 2.0)
        self.error_pen = line(self.error, 2.0)
        self.warning_pen = line(self.warning, 1.5)
        self.text_pen = QPen(self.text)
        self.subtle_pen = QPen(self.subtle)
        self.error_text_pen = QPen(self.error)
        self.port_pen = line(self.body, 1.5)
        self.port_brush = QBrush(self.edge)
        self.port_free_brush = QBrush(self.selection)
        self.port_replace_pen = line(self.selection, 2.0)
        self.badge_text_pen = QPen(QColor("#FFFFFF"))
        self.error_brush = QBrush(self.error)
        self.warning_brush = QBrush(self.warning)
        self.shadow_brush = QBrush(QColor(0, 0, 0, 60 if self.dark else 22))
        # frozen layers (fine-tuning): an icy badge with a snowflake, and muted header colours
        self.frozen_brush = QBrush(QColor("#8CC4F0" if self.dark else "#3F86C6"))
        self.frozen_pen = line(self.body, 1.3)
        # edges
        self.edge_pen = line(self.edge, 1.6)
        self.edge_hover_pen = line(self.selection, 2.2)
        self.edge_selected_pen = line(self.selection, 2.6)
        self.edge_error_pen = line(self.error, 1.8, Qt.PenStyle.DashLine)
        self.rubber_pen = line(self.selection, 1.8, Qt.PenStyle.DashLine)
        self.edge_label_pen = QPen(self.edge_label)
        self.edge_label_brush = QBrush(blend(self.canvas, self.body, 0.6))
        self.edge_label_border = line(blend(self.canvas, self.border, 0.6), 1.0)
        # frames: the named networks of a GAN, and the comments people put on the canvas
        self.frame_pen = line(self.subtle, 1.2, Qt.PenStyle.DashLine)
        self.frame_brush = QBrush(QColor(self.subtle.red(), self.subtle.green(), self.subtle.blue(),
                                         22 if self.dark else 14))
        self.frame_text_pen = QPen(self.subtle)
        comment = QColor(theme.comment)
        self.comment_brush = QBrush(QColor(comment.red(), comment.green(), comment.blue(), 46 if self.dark else 38))
        self.comment_header_brush = QBrush(QColor(comment.red(), comment.green(), comment.blue(),
                                                  90 if self.dark else 70))
        self.comment_pen = line(comment, 1.2)
        self.comment_selected_pen = line(self.selection, 2.0)
        self.comment_text = self.text
        # grid
        self.grid_minor_pen = line(QColor(theme.grid_minor), 1.0)
        self.grid_major_pen = line(QColor(theme.grid_major), 1.0)

        self._headers: dict[str, tuple[QBrush, QBrush]] = {}
        self._scaled: dict[tuple[bool, float], tuple[QFont, QFontMetricsF]] = {}
        self._wrapped: dict[tuple[str, float, bool, float, int], tuple[str, ...] | None] = {}

    def header_brushes(self, category: str) -> tuple[QBrush, QBrush]:
        """The accent brush of a category and the tinted header fill made from it."""
        brushes = self._headers.get(category)
        if brushes is None:
            accent = category_color(category)
            tint = blend(self.body, accent, 0.30 if self.dark else 0.16)
            brushes = self._headers[category] = (QBrush(accent), QBrush(tint))
        return brushes

    def frozen_brushes(self, category: str) -> tuple[QBrush, QBrush]:
        """The muted accent and header fill of a frozen layer: the category's colour mostly greyed out."""
        key = f"frozen:{category}"
        brushes = self._headers.get(key)
        if brushes is None:
            accent = blend(category_color(category), self.subtle, 0.7)
            tint = blend(self.body, self.subtle, 0.22 if self.dark else 0.12)
            brushes = self._headers[key] = (QBrush(accent), QBrush(tint))
        return brushes

    def wrapped(self, title: str, point_size: float, bold: bool, room: float, max_lines: int) -> tuple[str, ...] | None:
        """``title`` in lines of the font :meth:`scaled_font` gives, each at most ``room`` wide
        (``None`` when it needs more than ``max_lines``); remembered, as cards repaint often."""
        key = (title, round(point_size * 2) / 2, bold, round(room, 1), max_lines)
        if key not in self._wrapped:
            _, metrics = self.scaled_font(point_size, bold)
            lines = wrap_title(title, metrics.horizontalAdvance, room, max_lines)
            self._wrapped[key] = tuple(lines) if lines is not None else None
        return self._wrapped[key]

    def scaled_font(self, point_size: float, bold: bool = False) -> tuple[QFont, QFontMetricsF]:
        """A font of about ``point_size`` (half-point steps, made once) and its metrics."""
        key = (bold, round(point_size * 2) / 2)
        entry = self._scaled.get(key)
        if entry is None:
            font = _font(key[1], bold)
            entry = self._scaled[key] = (font, QFontMetricsF(font))
        return entry
