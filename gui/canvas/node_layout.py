"""Geometry of a node card: size, port positions and the shared outline paths.

Computed from the layer declaration and parameter values alone, so the canvas can place a
node before it exists (quick-add puts a new node's first input under the cursor). Cards of
the same height share their painter paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath

from engine.layers import LayerType
from gui.canvas.paint_kit import (BODY_PADDING, CORNER_RADIUS, HEADER_HEIGHT, NODE_WIDTH, PORT_SPACING,
                                  ROW_HEIGHT)

#: Body rows: key parameters, output shape, parameter count.
BODY_ROWS = 3
ACCENT_HEIGHT = 3.0


@dataclass(frozen=True)
class CardPaths:
    """Painter paths of one card size, shared by every card of that size."""

    outline: QPainterPath
    accent: QPainterPath
    header: QPainterPath


@dataclass(frozen=True)
class NodeLayout:
    """Where everything sits on one node card, in item coordinates (top-left is 0, 0).

    Args:
        width: Card width.
        height: Card height.
        inputs: Input port names, top to bottom.
        input_ys: The y of each input port.
        outputs: Output port names, top to bottom (none for Output markers).
        output_ys: The y of each output port.
        vertical: Data flows top to bottom: inputs sit on the top edge and outputs on the bottom
            one, left to right (the graph is laid out in rows), instead of left and right.
    """

    width: float
    height: float
    inputs: tuple[str, ...]
    input_ys: tuple[float, ...]
    outputs: tuple[str, ...] = ("out",)
    output_ys: tuple[float, ...] = ()
    vertical: bool = False

    @property
    def output_y(self) -> float | None:
        """The y of the (first) output port, or ``None`` for nodes without an output."""
        return self.output_ys[0] if self.output_ys else None

    @property
    def rect(self) -> QRectF:
        """The card rectangle."""
        return QRectF(0.0, 0.0, self.width, self.height)

    @property
    def body_center(self) -> float:
        """Vertical centre of the body below the header."""
        return HEADER_HEIGHT + (self.height - HEADER_HEIGHT) / 2

    def input_pos(self, port: str) -> QPointF:
        """Item position of input ``port`` (the first port when the name is unknown)."""
        try:
            index = self.inputs.index(port)
        except ValueError:
            index = 0
        if self.vertical:
            return QPointF(_across(self.width, len(self.inputs), index), 0.0)
        y = self.input_ys[index] if self.input_ys else self.body_center
        return QPointF(0.0, y)

    def output_pos(self, port: str = "out") -> QPointF:
        """Item position of output ``port`` (the first port when the name is unknown; the right
        edge's middle when there is none)."""
        if not self.output_ys:
            return QPointF(self.width / 2, self.height) if self.vertical else QPointF(self.width, self.body_center)
        index = self.outputs.index(port) if port in self.outputs else 0
        if self.vertical:
            return QPointF(_across(self.width, len(self.outputs), index), self.height)
        return QPointF(self.width, self.output_ys[index])

    @property
    def paths(self) -> CardPaths:
        """The shared outline, accent strip and header paths of this card size."""
        return card_paths(self.width, self.height)


def layout_for(layer: LayerType, params: Mapping[str, Any], vertical: bool = False) -> NodeLayout:
    """The card layout of a node of ``layer`` with ``params`` (defaults fill the gaps); ``vertical``
    puts the ports on the top and bottom edges."""
    values = {**layer.defaults(), **params}
    return _layout(layer.input_ports(values), layer.output_ports(values), vertical)


def _across(width: float, count: int, index: int) -> float:
    """The x of port ``index`` of ``count`` spread along a card's top or bottom edge."""
    spacing = min(PORT_SPACING * 2, (width - 2 * CORNER_RADIUS) / max(count, 1))
    return width / 2 + (index - (count - 1) / 2) * spacing


@lru_cache(maxsize=256)
def _layout(inputs: tuple[str, ...], outputs: tuple[str, ...], vertical: bool = False) -> NodeLayout:
    ports = max(len(inputs), len(outputs))
    body = max(2 * BODY_PADDING + BODY_ROWS * ROW_HEIGHT, ports * PORT_SPACING + 2 * BODY_PADDING)
    height = HEADER_HEIGHT + body
    center = HEADER_HEIGHT + body / 2

    def spread(count: int) -> tuple[float, ...]:
        return tuple(center + (i - (count - 1) / 2) * PORT_SPACING for i in range(count))

    if vertical:  # the ports are spread along the edges: the card keeps its usual height
        body = 2 * BODY_PADDING + BODY_ROWS * ROW_HEIGHT
        height = HEADER_HEIGHT + body
        center = HEADER_HEIGHT + body / 2
    return NodeLayout(NODE_WIDTH, height, inputs, spread(len(inputs)), outputs, spread(len(outputs)), vertical)


@lru_cache(maxsize=64)
def card_paths(width: float, height: float) -> CardPaths:
    """Outline, accent strip and header fill of a ``width`` x ``height`` card."""
    outline = QPainterPath()
    outline.addRoundedRect(QRectF(0.0, 0.0, width, height), CORNER_RADIUS, CORNER_RADIUS)
    strip = QPainterPath()
    strip.addRect(QRectF(0.0, 0.0, width, ACCENT_HEIGHT))
    band = QPainterPath()
    band.addRect(QRectF(0.0, ACCENT_HEIGHT, width, HEADER_HEIGHT - ACCENT_HEIGHT))
    return CardPaths(outline, outline.intersected(strip), outline.intersected(band))
