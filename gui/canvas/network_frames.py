"""Labelled frames around groups of nodes: a GAN's "Generator" and "Discriminator", expanded blocks.

A GAN's graph holds two networks: what leads from the Noise Input to an Output is the
generator, what leads from the data Input to the other Output the discriminator (the rule
the trainer and the exporter use). The canvas draws a dashed frame with the network's name
around each, derived from the graph on every change: nothing is stored and nothing to keep
in step by hand.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from gui.canvas.paint_kit import PaintKit

#: Space between the frame and the cards inside it; the top holds the name.
FRAME_MARGIN, LABEL_SPACE = 22.0, 40.0
#: The name's size on screen (points), whatever the zoom, within the label space.
LABEL_POINTS = 10.0


class NetworkFrame(QGraphicsItem):
    """A dashed, named frame behind the cards of one network (takes no clicks).

    Args:
        name: What the frame says.
        kit: Pens and fonts of the theme.
    """

    def __init__(self, name: str, kit: PaintKit) -> None:
        super().__init__()
        self.name = name
        self.kit = kit
        self.node_ids: list[str] = []
        self._rect = QRectF()
        self.setZValue(-3.0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)

    def set_area(self, cards: QRectF, node_ids: list[str]) -> None:
        """Frame ``cards`` (the union of the network's card rectangles)."""
        self.node_ids = node_ids
        rect = cards.adjusted(-FRAME_MARGIN, -LABEL_SPACE, FRAME_MARGIN, FRAME_MARGIN)
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = rect

    def set_kit(self, kit: PaintKit) -> None:
        """Repaint with another theme."""
        self.kit = kit
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        kit = self.kit
        lod = max(option.levelOfDetailFromTransform(painter.worldTransform()), 1e-3)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(kit.frame_pen)
        painter.setBrush(kit.frame_brush)
        painter.drawRoundedRect(self._rect, 12.0, 12.0)
        font, metrics = kit.scaled_font(min(LABEL_SPACE * 0.55, LABEL_POINTS / lod), bold=True)
        painter.setFont(font)
        painter.setPen(kit.frame_text_pen)
        label = QRectF(self._rect.left() + 14.0, self._rect.top() + 4.0, self._rect.width() - 28.0,
                       LABEL_SPACE - 8.0)
        text = metrics.elidedText(self.name, Qt.TextElideMode.ElideRight, label.width())
        painter.drawText(label, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
