"""Small pictures of a project's graph, drawn by the canvas itself (for the template gallery).

Nothing is stored: the picture is rendered from the project file each time it is needed (and
cached while the file and the look stay the same), so a template's card always shows its
current graph.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPixmap

from engine.graph.fileformat import ProjectFileError, load_project
from engine.graph.project import Project
from gui.style import Theme

_MARGIN = 30.0
_CACHE: dict[tuple[str, int, str, int, int, float], QPixmap] = {}


def graph_thumbnail(project: Project, size: QSize, theme: Theme, pixel_ratio: float = 1.0) -> QPixmap:
    """``project``'s graph drawn by the canvas scene into ``size`` logical pixels (aspect kept, centred)."""
    from gui.canvas.scene import CanvasScene
    from gui.document import Document

    document = Document(project)
    scene = CanvasScene(document, theme, pixel_ratio=pixel_ratio)
    try:
        pixmap = QPixmap(round(size.width() * pixel_ratio), round(size.height() * pixel_ratio))
        pixmap.setDevicePixelRatio(pixel_ratio)
        pixmap.fill(scene.kit.canvas)
        source = scene.nodes_rect()
        if not source.isEmpty():
            source = source.adjusted(-_MARGIN, -_MARGIN, _MARGIN, _MARGIN)
            scale = min(size.width() / source.width(), size.height() / source.height())
            width, height = source.width() * scale, source.height() * scale
            target = QRectF((size.width() - width) / 2, (size.height() - height) / 2, width, height)  # centred
            painter = QPainter(pixmap)
            painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
            scene.render(painter, target, source, Qt.AspectRatioMode.KeepAspectRatio)
            painter.end()
    finally:
        scene.detach()
        document.close()
    return pixmap


def file_thumbnail(path: Path, size: QSize, theme: Theme, pixel_ratio: float = 1.0) -> QPixmap | None:
    """The thumbnail of a project file (``None`` when it cannot be read); cached per file version."""
    try:
        stamp = Path(path).stat().st_mtime_ns
        key = (str(path), stamp, theme.name, size.width(), size.height(), pixel_ratio)
        if key not in _CACHE:
            _CACHE[key] = graph_thumbnail(load_project(path), size, theme, pixel_ratio)
        return _CACHE[key]
    except (OSError, ProjectFileError):
        return None
