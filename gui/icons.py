"""Icons loaded from ``resources/icons`` (SVG, rendered by Qt's SVG icon engine).

Names are the file stems: toolbar actions (``new``, ``open``, ``save``, ``undo``, ``redo``,
``fit``, ``zoom-in``, ``zoom-out``, ``layout``, ``delete``, ``train``, ``pause``, ``stop``,
``search``), severities (``error``, ``warning``, ``ok``), the application icon (``app``) and
one icon per layer category (see :func:`category_icon`). Icons are cached: asking twice
returns the same :class:`QIcon`.

Toolbar icons are drawn in the neutral grey :data:`TOOLBAR_GREY`, which reads on light and
dark backgrounds; ``icon(name, color)`` recolours them (for example to a dark theme's text
colour).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

#: Folder of the SVG icons.
ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"
#: Stroke colour of the toolbar icons as drawn in their files.
TOOLBAR_GREY = "#5A6270"
_TINT_SIZES = (16, 20, 24, 32, 48, 64)
#: Opacity of a recoloured icon's disabled form.
DISABLED_OPACITY = 0.35


def category_slug(category: str) -> str:
    """File stem of a category's icon: ``"Input / Output"`` gives ``"input-output"``."""
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")


def icon_path(name: str) -> Path:
    """Path of the SVG for ``name``.

    Raises:
        KeyError: No icon of that name exists (the message lists the folder searched).
    """
    path = ICON_DIR / f"{name}.svg"
    if not path.is_file():
        raise KeyError(f"no icon {name!r} in {ICON_DIR}")
    return path


@cache
def icon(name: str, color: str | None = None) -> QIcon:
    """The icon ``name`` (a file stem in ``resources/icons``).

    Args:
        name: File stem, e.g. ``"save"``.
        color: Replaces the toolbar grey (``"#RRGGBB"``); ``None`` keeps the file's colours.

    Raises:
        KeyError: No icon of that name exists.
    """
    path = icon_path(name)
    if color is None or color.upper() == TOOLBAR_GREY:
        return QIcon(str(path))
    svg = path.read_text(encoding="utf-8").replace(TOOLBAR_GREY, color)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    tinted = QIcon()
    for size in _TINT_SIZES:
        for mode, opacity in ((QIcon.Mode.Normal, 1.0), (QIcon.Mode.Disabled, DISABLED_OPACITY)):
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setOpacity(opacity)  # Qt's own greying barely shows on a light tint: fade it
            renderer.render(painter, QRectF(0, 0, size, size))
            painter.end()
            tinted.addPixmap(pixmap, mode)
    return tinted


def category_icon(category: str) -> QIcon:
    """The icon of a layer category; an empty icon for an unknown category."""
    try:
        return icon(category_slug(category))
    except KeyError:
        return QIcon()
