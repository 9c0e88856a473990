"""File chores of the main window: the unsaved-changes prompt, where file dialogs start, the
recent projects, and canvas image export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QGraphicsItem, QGraphicsScene, QMessageBox

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow

EXPORT_MARGIN = 40.0
#: Projects File > Open Recent lists.
MAX_RECENT = 10
#: QSettings key of the recent projects (newest first).
RECENT_KEY = "recent_files"
#: QSettings key of the folder a project was last opened from, saved to or exported to.
LAST_FOLDER_KEY = "last_folder"


def save_guard(window: "MainWindow") -> bool:
    """Before unsaved changes could be lost: ask Save / Discard / Cancel. True means go ahead."""
    doc = window.document
    if doc is None or not doc.dirty:
        return True
    answer = QMessageBox.question(
        window, "Unsaved changes", f"Save the changes to {doc.title} before closing it?",
        QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Save)
    if answer == QMessageBox.StandardButton.Save:
        return window.save()
    return answer == QMessageBox.StandardButton.Discard


def start_folder(window: MainWindow) -> Path:
    """Where Save As, Open and the export dialogs start: the project's folder, else the folder
    used last (remembered across sessions), else the home folder."""
    doc = window.document
    if doc is not None and doc.path is not None:
        return doc.path.parent
    last = str(window.settings.value(LAST_FOLDER_KEY, "") or "")
    return Path(last) if last and Path(last).is_dir() else Path.home()


def remember_folder(window: MainWindow, path: Path) -> None:
    """Remember the folder that holds ``path`` (a file or an export folder) for the next dialog."""
    window.settings.setValue(LAST_FOLDER_KEY, str(path.resolve().parent))


def recent_projects(window: MainWindow) -> list[str]:
    """The projects opened or saved last (absolute paths, newest first)."""
    value = window.settings.value(RECENT_KEY, [])
    return [value] if isinstance(value, str) else list(value or [])


def remember_project(window: MainWindow, path: Path) -> None:
    """Put ``path`` first in File > Open Recent and remember its folder for the next dialog."""
    entry = str(path.resolve())
    window.settings.setValue(RECENT_KEY, [entry, *(p for p in recent_projects(window) if p != entry)][:MAX_RECENT])
    remember_folder(window, path)
    refresh_recent_menu(window)


def refresh_recent_menu(window: MainWindow) -> None:
    """File > Open Recent from the settings (each entry asks about unsaved changes first)."""
    menu = window.recent_menu
    menu.clear()
    for entry in recent_projects(window):
        action = menu.addAction(entry)
        action.triggered.connect(lambda checked=False, p=entry: window.training.confirm_leave() and save_guard(window)
                                 and window.open_project(Path(p)))
    menu.setEnabled(bool(recent_projects(window)))


def scene_bounds(scene: QGraphicsScene) -> QRectF:
    """The area the items cover, with a margin."""
    rect = scene.itemsBoundingRect()
    return rect.adjusted(-EXPORT_MARGIN, -EXPORT_MARGIN, EXPORT_MARGIN, EXPORT_MARGIN)


def render_png(scene: QGraphicsScene, path: Path, scale: float = 2.0) -> bool:
    """Render every item to a PNG at ``scale`` pixels per scene unit (2 = crisp on HiDPI)."""
    source = scene_bounds(scene)
    image = QImage(QSize(max(1, int(source.width() * scale)), max(1, int(source.height() * scale))),
                   QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(scene.backgroundBrush().color() if scene.backgroundBrush().style() != Qt.BrushStyle.NoBrush
               else Qt.GlobalColor.white)
    painter = QPainter(image)
    painter.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    scene.render(painter, QRectF(image.rect()), source)
    painter.end()
    return image.save(str(path))


def render_svg(scene: QGraphicsScene, path: Path) -> bool:
    """Render every item to an SVG drawing (vector text and shapes)."""
    source = scene_bounds(scene)
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(int(source.width()), int(source.height())))
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    generator.setTitle("Neural Canvas graph")
    painter = QPainter()
    if not painter.begin(generator):
        return False
    cached = [(item, item.cacheMode()) for item in scene.items()
              if item.cacheMode() != QGraphicsItem.CacheMode.NoCache]
    for item, _ in cached:  # cached items would land in the SVG as bitmaps: draw them as vectors
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()
        for item, mode in cached:
            item.setCacheMode(mode)
    return path.is_file()


def export_canvas(window: "MainWindow", fmt: str) -> None:
    """Ask for a file name and export the canvas as ``png`` or ``svg``."""
    doc = window.document
    stem = (doc.path.stem if doc and doc.path else (doc.project.name if doc else "") or "canvas").replace(" ", "_")
    start = str(start_folder(window) / f"{stem}.{fmt}")
    name, _ = QFileDialog.getSaveFileName(window, f"Export Canvas as {fmt.upper()}", start,
                                          f"{fmt.upper()} files (*.{fmt})")
    if not name:
        return
    scene = window.canvas.scene()
    ok = render_png(scene, Path(name)) if fmt == "png" else render_svg(scene, Path(name))
    if ok:
        remember_folder(window, Path(name))
        window.statusBar().showMessage(f"Exported {name}", 4000)
    else:
        QMessageBox.critical(window, "Export failed", f"Could not write {name}.")
