"""Shared look: category colours, the two themes, and the drag-and-drop MIME type.

Colours are chosen to stay distinguishable in the light and the dark theme and for the
common forms of colour blindness (hue plus lightness differ between neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

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


LIGHT = Theme("light", canvas="#F4F5F7", grid_minor="#E6E8EC", grid_major="#D5D8DE", node_body="#FFFFFF",
              node_text="#1F2328", node_subtle="#5A6270", node_border="#C5CAD3", selection="#2F81F7",
              error="#D1242F", warning="#BF8700", edge="#7D8590", edge_label="#3D444D")
DARK = Theme("dark", canvas="#1E2126", grid_minor="#262A30", grid_major="#30353C", node_body="#2B3036",
             node_text="#E6EDF3", node_subtle="#9DA7B3", node_border="#444C56", selection="#4493F8",
             error="#F85149", warning="#D29922", edge="#8B949E", edge_label="#C9D1D9")
THEMES = {"light": LIGHT, "dark": DARK}
