"""Dock panels whose content scrolls: one scroll area filling the panel edge to edge."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


def fill_with_scroll(panel: QWidget, body: QWidget, frameless: bool = False) -> QScrollArea:
    """Make ``body`` the scrolling content of ``panel`` (which gets the layout).

    Args:
        panel: The dock's widget.
        body: What scrolls; it is resized to the panel's width.
        frameless: No frame and no horizontal scroll bar (content that reflows to the width).
    """
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    if frameless:
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(body)
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(scroll)
    return scroll
