"""Moving around the canvas: zoom, pan, fit, and the grid behind the nodes.

:class:`ZoomableView` is the part of the canvas view that knows nothing about documents:
the wheel zooms towards the cursor (clamped to 0.1x..4x), the middle button or Space with
the left button pans, and :meth:`ZoomableView.fit_all` frames every node.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QResizeEvent, QShowEvent, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QWidget

from gui.canvas.paint_kit import GRID_MAJOR_EVERY, GRID_MINOR, PaintKit

MIN_ZOOM = 0.1
MAX_ZOOM = 4.0
ZOOM_STEP = 1.25
#: The largest zoom fit-all picks: small graphs are framed at 100%, not blown up.
FIT_MAX_ZOOM = 1.0
#: The smallest zoom a document opens at: layer titles read in full from here on. A graph too
#: big to fit at it opens at its start (top left); F still fits everything.
OPEN_MIN_ZOOM = 0.5
FIT_MARGIN = 40.0
#: Grid lines closer than this on screen are left out (too dense to help, slow to draw).
_GRID_MIN_PIXELS = 9.0
#: How far past the nodes the view may scroll, in scene units (enough at the lowest zoom).
_SCROLL_MARGIN = 20000.0


class ZoomableView(QGraphicsView):
    """A graphics view with clamped zoom, panning and a themed grid.

    Subclasses provide :meth:`content_rect` (what fit-all frames) and :attr:`kit`.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kit: PaintKit | None = None
        self._pan_from: QPointF | None = None
        self._fit_pending = False
        self.space_held = False
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)

    # ---------------------------------------------------------------- zoom
    def zoom_factor(self) -> float:
        """The current scale: 1.0 is 100%."""
        return self.transform().m11()

    def set_zoom(self, factor: float, view_anchor: QPoint | None = None) -> None:
        """Zoom to ``factor`` (clamped to 0.1..4), keeping ``view_anchor`` (default: the centre) fixed."""
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        current = self.zoom_factor()
        if math.isclose(factor, current, rel_tol=1e-9):
            return
        anchor = view_anchor if view_anchor is not None else self.viewport().rect().center()
        before = self.mapToScene(anchor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor / current, factor / current)
        shift = self.mapFromScene(before) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + shift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + shift.y())
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.zoom_changed()

    def zoom_changed(self) -> None:
        """Called after every zoom change (override)."""

    def zoom_in(self) -> None:
        """One step closer, about the centre of the view."""
        self.set_zoom(self.zoom_factor() * ZOOM_STEP)

    def zoom_out(self) -> None:
        """One step further, about the centre of the view."""
        self.set_zoom(self.zoom_factor() / ZOOM_STEP)

    def zoom_reset(self) -> None:
        """Back to 100%, about the centre of the view."""
        self.set_zoom(1.0)

    def content_rect(self) -> QRectF:
        """What fit-all frames (override)."""
        return QRectF()

    def fit_all(self) -> None:
        """Frame every node with a margin, at most at 100%."""
        rect = self.content_rect()
        if rect.isEmpty():
            self.set_zoom(1.0)
            self.centerOn(0.0, 0.0)
            return
        rect = rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        view = self.viewport().rect()
        factor = min(view.width() / rect.width(), view.height() / rect.height()) if view.width() > 0 else 1.0
        self.set_zoom(min(FIT_MAX_ZOOM, factor))
        self.centerOn(rect.center())

    def fit_readable(self) -> None:
        """Frame every node, but never below :data:`OPEN_MIN_ZOOM`: a larger graph shows its start."""
        self.fit_all()
        rect = self.content_rect()
        if rect.isEmpty() or self.zoom_factor() >= OPEN_MIN_ZOOM:
            return
        self.set_zoom(OPEN_MIN_ZOOM)
        view = self.viewport().rect()
        start = rect.topLeft() - QPointF(FIT_MARGIN, FIT_MARGIN)
        self.centerOn(start + QPointF(view.width() / 2 / OPEN_MIN_ZOOM, view.height() / 2 / OPEN_MIN_ZOOM))

    def request_fit(self) -> None:
        """Fit (readably, see :meth:`fit_readable`) now, or as soon as the view is shown and has its size."""
        self._fit_pending = not self.isVisible()
        if not self._fit_pending:
            self.fit_readable()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._fit_pending:
            self._fit_pending = False
            self.fit_readable()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit_pending and self.isVisible():
            self._fit_pending = False
            self.fit_readable()

    def update_scroll_range(self) -> None:
        """Let the view scroll well past the content (panning is never stopped by an edge)."""
        scene = self.scene()
        if scene is None:
            return
        rect = scene.itemsBoundingRect() if scene.items() else QRectF(0, 0, 1, 1)
        self.setSceneRect(rect.adjusted(-_SCROLL_MARGIN, -_SCROLL_MARGIN, _SCROLL_MARGIN, _SCROLL_MARGIN))

    # ------------------------------------------------------------ keys, pan
    def navigation_key(self, event: QKeyEvent) -> bool:
        """Space (hold to pan), Ctrl+= / Ctrl+- / Ctrl+0 zoom, F fit all; True when handled."""
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif ctrl and key in (Qt.Key.Key_Equal, Qt.Key.Key_Plus):
            self.zoom_in()
        elif ctrl and key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif ctrl and key == Qt.Key.Key_0:
            self.zoom_reset()
        elif key == Qt.Key.Key_F and not (mods & ~Qt.KeyboardModifier.KeypadModifier):
            self.fit_all()
        else:
            return False
        event.accept()
        return True

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_held = False
            if not self.end_pan():
                self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def pan_press(self, event: QMouseEvent) -> bool:
        """Start panning on a middle press or Space + left press; True when it did."""
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self.space_held):
            self.start_pan(event)
            event.accept()
            return True
        return False

    def start_pan(self, event: QMouseEvent) -> None:
        """Begin panning with the mouse at ``event``'s position."""
        self._pan_from = event.position()
        self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def continue_pan(self, event: QMouseEvent) -> bool:
        """Pan by the mouse movement; False when no pan is under way."""
        if self._pan_from is None:
            return False
        delta = event.position() - self._pan_from
        self._pan_from = event.position()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        return True

    def end_pan(self) -> bool:
        """Stop panning; False when no pan was under way."""
        if self._pan_from is None:
            return False
        self._pan_from = None
        self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self.space_held else Qt.CursorShape.ArrowCursor)
        return True

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom_factor() * ZOOM_STEP ** steps, event.position().toPoint())
        event.accept()

    # ---------------------------------------------------------------- grid
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        kit = self.kit
        painter.fillRect(rect, kit.canvas if kit is not None else QColor("#F4F5F7"))
        if kit is None:
            return
        scale = self.zoom_factor()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        major = GRID_MINOR * GRID_MAJOR_EVERY
        if GRID_MINOR * scale >= _GRID_MIN_PIXELS:
            painter.setPen(kit.grid_minor_pen)
            painter.drawLines(_grid_lines(rect, GRID_MINOR, skip_every=GRID_MAJOR_EVERY))
        if major * scale >= _GRID_MIN_PIXELS:
            painter.setPen(kit.grid_major_pen)
            painter.drawLines(_grid_lines(rect, major))


def _grid_lines(rect: QRectF, spacing: float, skip_every: int = 0) -> list[QLineF]:
    """Vertical and horizontal lines every ``spacing`` across ``rect`` (every n-th left out)."""
    lines = []
    first_x = math.floor(rect.left() / spacing)
    first_y = math.floor(rect.top() / spacing)
    for i in range(first_x, math.ceil(rect.right() / spacing) + 1):
        if not skip_every or i % skip_every:
            lines.append(QLineF(i * spacing, rect.top(), i * spacing, rect.bottom()))
    for j in range(first_y, math.ceil(rect.bottom() / spacing) + 1):
        if not skip_every or j % skip_every:
            lines.append(QLineF(rect.left(), j * spacing, rect.right(), j * spacing))
    return lines
