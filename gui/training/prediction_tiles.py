"""A grid of small images or sparklines with captions, drawn with QPainter.

The grid lays its tiles out for the size it has (as large as fits, square pixels, integer
zoom for small images so they stay crisp), frames wrong predictions in red, and shows each
tile's tooltip on hover. Updating it replaces a list of tiles and schedules one repaint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QHelpEvent,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from gui.style import LIGHT, Theme
from gui.training.prediction_common import WRONG_COLOR, finite, plot_background

MARGIN, GAP, INNER = 6.0, 10.0, 2.0
SERIES_ASPECT = 1.6


@dataclass
class Tile:
    """One cell of a :class:`TileGrid`.

    Attributes:
        image: The picture, or ``None`` for a sparkline tile.
        series: ``(values, colour)`` lines drawn in the tile (sparkline tiles).
        caption: ``(primary, secondary)``, shown as ``primary (secondary)`` or on two lines.
        wrong: Frame and caption in red.
        tooltip: Shown on hover.
    """

    image: QImage | None = None
    series: tuple[tuple[np.ndarray, str], ...] = ()
    caption: tuple[str, str] | None = None
    wrong: bool = False
    tooltip: str = ""


@dataclass
class _Layout:
    tile_w: float
    tile_h: float
    columns: int
    caption_lines: int
    left: float
    top: float


class TileGrid(QWidget):
    """Tiles in groups (e.g. input beside reconstruction), groups in rows, headers on top."""

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.theme = theme
        self.tiles: list[Tile] = []
        self.group = 1
        self.headers: tuple[str, ...] = ()
        self.series_range = (0.0, 1.0)
        self._rects: list[QRectF] = []
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(self._font.pointSizeF() - 0.5, 7.0))
        self._bold = QFont(self._font)
        self._bold.setBold(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 80)

    @property
    def wrong_count(self) -> int:
        """How many tiles are marked wrong."""
        return sum(tile.wrong for tile in self.tiles)

    def set_tiles(self, tiles: Sequence[Tile], group: int = 1, headers: Sequence[str] = (),
                  series_range: tuple[float, float] = (0.0, 1.0)) -> None:
        """Show ``tiles``; ``group`` consecutive tiles sit side by side under ``headers``.

        Args:
            tiles: The tiles, in reading order.
            group: Tiles per group (1: a plain grid).
            headers: One title per tile of a group, drawn above the first row.
            series_range: The value range of sparkline tiles (shared, so they compare).
        """
        self.tiles = list(tiles)
        self.group = max(int(group), 1)
        self.headers = tuple(headers)
        low, high = series_range
        self.series_range = (low, high) if high - low > 1e-12 else (low - 0.5, low + 0.5)
        self.update()

    def clear(self) -> None:
        """Show nothing."""
        self.set_tiles([])

    def set_theme(self, theme: Theme) -> None:
        """Recolour for ``theme``."""
        self.theme = theme
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(360, 300)

    def _tile_aspect(self) -> tuple[float, QSize | None]:
        image = self.tiles[0].image if self.tiles else None
        if image is None or image.isNull():
            return SERIES_ASPECT, None
        return image.width() / image.height(), image.size()

    def _layout(self, metrics: QFontMetricsF) -> _Layout:
        """The largest tiles that fit; captions on one line where they fit, else on two."""
        aspect, pixels = self._tile_aspect()
        groups = math.ceil(len(self.tiles) / self.group)
        line = metrics.height()
        header_h = line + 2 if self.headers else 0.0
        if any(t.caption for t in self.tiles):
            best = self._snapped(self._fit(groups, aspect, header_h, line, 1), pixels)
            if not self._captions_fit(metrics, best.tile_w + GAP - 2):  # judged on the tiles as drawn
                best = self._snapped(self._fit(groups, aspect, header_h, line, 2), pixels)
        else:
            best = self._snapped(self._fit(groups, aspect, header_h, line, 0), pixels)
        rows = math.ceil(groups / best.columns) if groups else 0
        caption_h = best.caption_lines * line + (3 if best.caption_lines else 0)
        used_w = best.columns * (self.group * best.tile_w + (self.group - 1) * INNER) + (best.columns - 1) * GAP
        used_h = header_h + rows * (best.tile_h + caption_h) + max(rows - 1, 0) * GAP
        best.left = max((self.width() - used_w) / 2, MARGIN)
        best.top = max((self.height() - used_h) / 2, MARGIN) + header_h
        return best

    @staticmethod
    def _snapped(layout: _Layout, pixels: QSize | None) -> _Layout:
        """``layout`` with its tiles shrunk to a whole number of screen pixels per image pixel (from 2x up)."""
        if pixels is not None and layout.tile_w > 0:
            scale = layout.tile_w / pixels.width()
            scale = math.floor(scale) if scale >= 2 else scale
            layout.tile_w, layout.tile_h = scale * pixels.width(), scale * pixels.height()
        return layout

    def _fit(self, groups: int, aspect: float, header_h: float, line: float, lines: int) -> _Layout:
        """The column count giving the widest tiles with ``lines`` caption lines."""
        caption_h = lines * line + (3 if lines else 0)
        best = _Layout(0, 0, 1, lines, MARGIN, MARGIN)
        for columns in range(1, groups + 1):
            rows = math.ceil(groups / columns)
            free_w = self.width() - 2 * MARGIN - (columns - 1) * GAP - columns * (self.group - 1) * INNER
            free_h = self.height() - 2 * MARGIN - header_h - rows * caption_h - (rows - 1) * GAP
            tile_w = min(free_w / (columns * self.group), free_h / rows * aspect)
            if tile_w > best.tile_w:
                best = _Layout(tile_w, tile_w / aspect, columns, lines, MARGIN, MARGIN)
        return best

    def _captions_fit(self, metrics: QFontMetricsF, width: float) -> bool:
        return all(metrics.horizontalAdvance(f"{t.caption[0]} ({t.caption[1]})") <= width
                   for t in self.tiles if t.caption)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(plot_background(self.theme)))
        self._rects = []
        if not self.tiles:
            return
        painter.setFont(self._font)
        metrics = QFontMetricsF(self._font)
        layout = self._layout(metrics)
        if layout.tile_w < 2:
            return
        line = metrics.height()
        caption_h = layout.caption_lines * line + (3 if layout.caption_lines else 0)
        group_w = self.group * layout.tile_w + (self.group - 1) * INNER
        headers_fit = all(metrics.horizontalAdvance(h) <= layout.tile_w + INNER for h in self.headers)
        for index, tile in enumerate(self.tiles):
            group, member = divmod(index, self.group)
            row, column = divmod(group, layout.columns)
            x = layout.left + column * (group_w + GAP) + member * (layout.tile_w + INNER)
            y = layout.top + row * (layout.tile_h + caption_h + GAP)
            rect = QRectF(x, y, layout.tile_w, layout.tile_h)
            self._rects.append(rect)
            self._draw_tile(painter, tile, rect)
            if tile.caption and layout.caption_lines:
                self._draw_caption(painter, tile, QRectF(x - GAP / 2 + 1, y + layout.tile_h + 2,
                                                         layout.tile_w + GAP - 2, caption_h), layout.caption_lines)
            if row == 0 and member < len(self.headers) and headers_fit:
                painter.setPen(QColor(self.theme.node_subtle))
                painter.drawText(QRectF(x - INNER / 2, y - line - 2, layout.tile_w + INNER, line),
                                 Qt.AlignmentFlag.AlignCenter, self.headers[member])
        if self.headers and not headers_fit:  # tiles too small for a word each: one line says the order
            painter.setPen(QColor(self.theme.node_subtle))
            order = " | ".join(self.headers)  # e.g. "input | output": the order within each group
            painter.drawText(QRectF(MARGIN, layout.top - line - 2, self.width() - 2 * MARGIN, line),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             metrics.elidedText(order, Qt.TextElideMode.ElideRight, self.width() - 2 * MARGIN))

    def _draw_tile(self, painter: QPainter, tile: Tile, rect: QRectF) -> None:
        if tile.image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(rect, tile.image)
        else:
            self._draw_series(painter, tile, rect)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if tile.wrong:
            painter.setPen(QPen(QColor(WRONG_COLOR), 2.5))
            painter.drawRect(rect.adjusted(-1.5, -1.5, 1.5, 1.5))
        else:
            painter.setPen(QPen(QColor(self.theme.node_border), 1.0))
            painter.drawRect(rect.adjusted(-0.5, -0.5, 0.5, 0.5))

    def _draw_series(self, painter: QPainter, tile: Tile, rect: QRectF) -> None:
        painter.fillRect(rect, QColor(self.theme.canvas))
        low, high = self.series_range
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        inner = rect.adjusted(2, 3, -2, -3)
        for values, color in tile.series:
            count = len(values)
            if count == 0:
                continue
            xs = inner.left() + (np.arange(count) + 0.5) * (inner.width() / count)
            ys = inner.bottom() - (np.clip(values, low, high) - low) / (high - low) * inner.height()
            painter.setPen(QPen(QColor(color), 1.4))
            if count == 1:
                painter.drawEllipse(QPointF(xs[0], ys[0]), 1.5, 1.5)
            else:
                painter.drawPolyline(QPolygonF([QPointF(a, b) for a, b in zip(xs.tolist(), ys.tolist())]))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)

    def _draw_caption(self, painter: QPainter, tile: Tile, rect: QRectF, lines: int) -> None:
        assert tile.caption is not None
        primary, secondary = tile.caption
        secondary = f"({secondary})"
        main_color = QColor(WRONG_COLOR if tile.wrong else self.theme.node_text)
        main_font = self._bold if tile.wrong else self._font
        metrics, bold_metrics = QFontMetricsF(self._font), QFontMetricsF(main_font)
        if lines == 1:
            first_w = bold_metrics.horizontalAdvance(primary + " ")
            total = first_w + metrics.horizontalAdvance(secondary)
            x = rect.left() + max((rect.width() - total) / 2, 0)
            painter.setFont(main_font)
            painter.setPen(main_color)
            painter.drawText(QPointF(x, rect.top() + bold_metrics.ascent()), primary)
            painter.setFont(self._font)
            painter.setPen(QColor(self.theme.node_subtle))
            painter.drawText(QPointF(x + first_w, rect.top() + metrics.ascent()), secondary)
            return
        width = rect.width()
        top = QRectF(rect.left(), rect.top(), width, metrics.height())
        painter.setFont(main_font)
        painter.setPen(main_color)
        painter.drawText(top, Qt.AlignmentFlag.AlignCenter,
                         bold_metrics.elidedText(primary, Qt.TextElideMode.ElideRight, width))
        painter.setFont(self._font)
        painter.setPen(QColor(self.theme.node_subtle))
        painter.drawText(top.translated(0, metrics.height()), Qt.AlignmentFlag.AlignCenter,
                         metrics.elidedText(secondary, Qt.TextElideMode.ElideRight, width))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            position = QPointF(event.pos())
            for rect, tile in zip(self._rects, self.tiles):
                if rect.contains(position) and tile.tooltip:
                    QToolTip.showText(event.globalPos(), tile.tooltip, self)
                    return True
            QToolTip.hideText()
            event.ignore()
            return True
        return super().event(event)


def series_tile(values: Any, *others: tuple[Any, str], color: str, caption: tuple[str, str] | None = None,
                tooltip: str = "") -> Tile:
    """A sparkline tile: ``values`` in ``color`` plus ``(values, colour)`` ``others``, flattened."""
    series = [(np.ravel(finite(values)), color)] + [(np.ravel(finite(v)), c) for v, c in others]
    return Tile(series=tuple(series), caption=caption, tooltip=tooltip)
