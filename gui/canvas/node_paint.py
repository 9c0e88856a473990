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


def paint_port(painter: QPainter, kit: PaintKit, center: QPointF, connected: bool, highlight: str | None,
               radius: float = PORT_RADIUS) -> None:
    """One port: filled when connected, hollow when free, lit while a drag may drop on it."""
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


def paint_frozen_badge(painter: QPainter, kit: PaintKit, center_x: float) -> None:
    """The round snowflake badge on the top edge of a frozen layer's card."""
    center = QPointF(center_x, -1.0)
    painter.setPen(kit.port_pen)
    painter.setBrush(kit.frozen_brush)
    painter.drawEllipse(center, BADGE_RADIUS, BADGE_RADIUS)
    painter.setPen(kit.frozen_pen)
    arm = BADGE_RADIUS - 2.5
    for dx, dy in ((0.0, 1.0), (0.866, 0.5), (0.866, -0.5)):  # three strokes: six arms
        painter.drawLine(QPointF(center.x() - dx * arm, center.y() - dy * arm),
                         QPointF(center.x() + dx * arm, center.y() + dy * arm))


#: On-screen point sizes tried for a zoomed-out title, largest first; the first that fits wins.
COMPACT_TITLE_POINTS = (8.5, 8.0, 7.5, 7.0)
#: The most lines a zoomed-out title may take.
COMPACT_TITLE_LINES = 3


def compact_title(kit: PaintKit, title: str, room: QRectF, lod: float) -> tuple[float, tuple[str, ...]]:
    """The title's font size (scene points) and lines for a zoomed-out card: the largest size
    whose lines fit ``room``; far out, one elided line."""
    for screen in COMPACT_TITLE_POINTS:
        size = min(24.0, screen / lod)
        lines = kit.wrapped(title, size, True, room.width(), COMPACT_TITLE_LINES)
        if lines is not None and len(lines) * kit.scaled_font(size, True)[1].height() <= room.height():
            return size, lines
    size = min(24.0, COMPACT_TITLE_POINTS[-1] / lod)
    metrics = kit.scaled_font(size, True)[1]
    return size, (metrics.elidedText(title, Qt.TextElideMode.ElideRight, room.width()),)


def paint_compact_texts(painter: QPainter, kit: PaintKit, card: QRectF, title: str, shape: str, lod: float) -> None:
    """Zoomed out: the whole title (wrapped, in type scaled to stay readable) and the output dims
    when there is room for them.

    Args:
        painter: Painter in item coordinates.
        kit: Fonts and pens.
        card: The card rectangle.
        title: The layer title.
        shape: Compact output dims (may be empty).
        lod: The level of detail (screen pixels per scene unit).
    """
    rect = card.adjusted(5.0, 4.0, -5.0, -4.0)
    size, lines = compact_title(kit, title, rect, lod)
    title_font, title_metrics = kit.scaled_font(size, bold=True)
    shape_font, shape_metrics = kit.scaled_font(min(20.0, 7.0 / lod))
    line = title_metrics.height()
    block = len(lines) * line
    show_shape = bool(shape) and block + shape_metrics.height() <= rect.height()
    top = rect.center().y() - (block + (shape_metrics.height() if show_shape else 0.0)) / 2
    painter.setFont(title_font)
    painter.setPen(kit.text_pen)
    for index, text in enumerate(lines):
        painter.drawText(QRectF(rect.left(), top + index * line, rect.width(), line), Qt.AlignmentFlag.AlignCenter,
                         text)
    if show_shape:
        painter.setFont(shape_font)
        painter.setPen(kit.subtle_pen)
        shape = shape_metrics.elidedText(shape, Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(QRectF(rect.left(), top + block, rect.width(), shape_metrics.height()),
                         Qt.AlignmentFlag.AlignCenter, shape)
