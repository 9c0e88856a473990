"""A merge node with many inputs (DenseNet concatenates up to 33 tensors) keeps every port apart."""

from __future__ import annotations

from engine.layers import get_layer
from gui.canvas.node_layout import layout_for
from gui.canvas.paint_kit import BODY_PADDING, HEADER_HEIGHT, PORT_RADIUS, PORT_SPACING


def test_64_input_ports_are_spaced_like_two() -> None:
    layout = layout_for(get_layer("concat"), {"num_inputs": 64})
    assert layout.inputs == tuple(f"in{i}" for i in range(1, 65))
    gaps = {round(b - a, 6) for a, b in zip(layout.input_ys, layout.input_ys[1:])}
    assert gaps == {PORT_SPACING} and PORT_SPACING > 2 * PORT_RADIUS  # no two ports touch
    assert HEADER_HEIGHT < layout.input_ys[0] and layout.input_ys[-1] < layout.height  # all on the card
    assert layout.height == HEADER_HEIGHT + 64 * PORT_SPACING + 2 * BODY_PADDING  # grows 18 px a port
    two = layout_for(get_layer("concat"), {"num_inputs": 2})
    assert round(two.input_ys[1] - two.input_ys[0], 6) == PORT_SPACING
