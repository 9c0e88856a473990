"""Painting pieces of a node card that do not depend on the item: ports, the problem badge,
and the zoomed-out title block."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter

from gui.canvas.paint_kit import PORT_RADIUS, PaintKit

#: Port highlight while a connection is dragged: a free compatible port, or an occupied one
#: whose edge the drop would replace.
FREE, REPLACE = "free", "replace"
BADGE_RADIUS = 7.5


def paint_port(painter: QPainter, kit: PaintKit, center: QPointF, connected: bool, highlight: str | None) -> None:
    """One port: filled when connected, hollow when free, lit while a drag may drop on it."""
    radius = PORT_RADIUS
    if highlight == FREE:
        painter.setPen(kit.port_pen)
        painter.setBrush(kit.port_free_brush)
        radius += 1.5
    elif highlight == REPLACE:
        painter.setPen(kit.port_replace_pen)
        painter.setBrush(kit.body_brush)
        radius += 1.0
    else:
        painter.setPen(kit.port_pen if connected else kit.edge_pen)
        painter.setBrush(kit.port_brush if connected else kit.body_brush)
    painter.drawEllipse(center, radius, radius)


def paint_badge(painter: QPainter, kit: PaintKit, card_width: float, error: bool) -> None:
    """The round "!" on the top-right corner of a card with an error (or a warning)."""
    center = QPointF(card_width - 4.0, -1.0)
    painter.setPen(kit.port_pen)
    painter.setBrush(kit.error_brush if error else kit.warning_brush)
    painter.drawEllipse(center, BADGE_RADIUS, BADGE_RADIUS)
    painter.setPen(kit.badge_text_pen)
    painter.setFont(kit.badge_font)
    box = QRectF(center.x() - BADGE_RADIUS, center.y() - BADGE_RADIUS, 2 * BADGE_RADIUS, 2 * BADGE_RADIUS)
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "!")


def paint_compact_texts(painter: QPainter, kit: PaintKit, card: QRectF, title: str, shape: str, lod: float) -> None:
    """Zoomed out: the title and the output dims, in type scaled to stay readable.

    Args:
        painter: Painter in item coordinates.
        kit: Fonts and pens.
        card: The card rectangle.
        title: The layer title.
        shape: Compact output dims (may be empty).
        lod: The level of detail (screen pixels per scene unit).
    """
    rect = card.adjusted(6.0, 4.0, -6.0, -4.0)
    title_font, title_metrics = kit.scaled_font(min(24.0, 8.5 / lod), bold=True)
    shape_font, shape_metrics = kit.scaled_font(min(20.0, 7.5 / lod))
    title_height, shape_height = title_metrics.height(), shape_metrics.height() if shape else 0.0
    top = rect.center().y() - (title_height + shape_height) / 2
    painter.setFont(title_font)
    painter.setPen(kit.text_pen)
    title = title_metrics.elidedText(title, Qt.TextElideMode.ElideRight, rect.width())
    painter.drawText(QRectF(rect.left(), top, rect.width(), title_height), Qt.AlignmentFlag.AlignCenter, title)
    if shape:
        painter.setFont(shape_font)
        painter.setPen(kit.subtle_pen)
        shape = shape_metrics.elidedText(shape, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(QRectF(rect.left(), top + title_height, rect.width(), shape_height),
                         Qt.AlignmentFlag.AlignCenter, shape)
