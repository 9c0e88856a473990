"""The node-editor canvas view: the widget the main window shows.

Every edit made here is one undo command pushed on the document (refused edits, e.g. while
training locks the graph, show their reason at the cursor). Mouse: drag a node to move it
(one undo step on release), drag from a port to connect, drag an edge's end off its input
to move or remove it, drag on empty canvas to select, middle button or Space to pan, wheel
to zoom. Keys: Delete/Backspace delete, Tab opens quick-add, F fits all, Ctrl+= / Ctrl+- /
Ctrl+0 zoom, Esc cancels.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QCursor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QGraphicsScene, QGraphicsTextItem, QGraphicsView, QToolTip, QWidget

from engine.graph.comments import Comment, new_comment_id
from engine.graph.block_store import plan_merge
from engine.graph.blocks import BlockError, instance_node
from engine.graph.model import NODE_ID_PATTERN, Node
from engine.layers import get_layer
from gui import block_commands, commands
from gui.block_palette import BlockCatalogue, split_key
from gui.canvas.edit_gestures import EditGestures
from gui.canvas.navigation import ZoomableView
from gui.canvas.paint_kit import LOD_COMPACT, SNAP, PaintKit
from gui.canvas.scene import CanvasScene
from gui.document import Document
from gui.style import LAYER_MIME, LIGHT, Theme


class CanvasView(ZoomableView):
    """The canvas of one document.

    Args:
        document: The document to show (``None``: an empty canvas until :meth:`set_document`).
        parent: Parent widget.

    Signals:
        selection_changed(list): Ids of the selected nodes, in document order.
        status_message(str): A short message for the status bar (refused edits and their reason).
        node_activated(str): A node was double-clicked, or Enter pressed with one node selected.
        layer_dropped(str): A layer dragged from the palette was added; the new node's id.
    """

    selection_changed = Signal(list)
    status_message = Signal(str)
    node_activated = Signal(str)
    layer_dropped = Signal(str)

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._document: Document | None = None
        self._theme: Theme = LIGHT
        self.kit = PaintKit(self._theme)
        self._batch_selection = False
        self._block_catalogue: BlockCatalogue | None = None
        self.last_message = ""
        self.gestures = EditGestures(self)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.viewport().setMouseTracking(True)
        self.setScene(QGraphicsScene(self))
        if document is not None:
            self.set_document(document)

    # ------------------------------------------------------------ document
    @property
    def block_catalogue(self) -> BlockCatalogue:
        """Where palette blocks come from (the window shares its own; read on first use otherwise)."""
        if self._block_catalogue is None:
            self._block_catalogue = BlockCatalogue()
        return self._block_catalogue

    @block_catalogue.setter
    def block_catalogue(self, catalogue: BlockCatalogue) -> None:
        self._block_catalogue = catalogue

    @property
    def document(self) -> Document | None:
        """The document shown, if any."""
        return self._document

    def set_document(self, document: Document | None) -> None:
        """Show ``document`` (``None``: an empty canvas), replacing the scene."""
        self.gestures.cancel()
        old = self.scene()
        if isinstance(old, CanvasScene):
            old.detach()
        self._document = document
        scene = (CanvasScene(document, self._theme, self, self.devicePixelRatioF()) if document is not None
                 else QGraphicsScene(self))
        self.setScene(scene)
        if old is not None:
            old.deleteLater()
        if isinstance(scene, CanvasScene):
            scene.selectionChanged.connect(self._emit_selection)
            scene.refused.connect(self.show_message)
            scene.sceneRectChanged.connect(lambda _rect: self.update_scroll_range())
        self.update_scroll_range()
        self.zoom_changed()
        self.request_fit()
        self.selection_changed.emit([])

    def canvas_scene(self) -> CanvasScene | None:
        """The canvas scene, or ``None`` while no document is shown."""
        scene = self.scene()
        return scene if isinstance(scene, CanvasScene) else None

    def set_theme(self, theme: Theme) -> None:
        """Recolour the canvas, grid, nodes and edges."""
        self._theme = theme
        self.kit = PaintKit(theme, self.devicePixelRatioF())
        scene = self.canvas_scene()
        if scene is not None:
            scene.set_theme(theme, self.devicePixelRatioF())
        self.resetCachedContent()
        self.viewport().update()

    def zoom_changed(self) -> None:
        """Far out, the scene paints one batched overview instead of every item."""
        scene = self.canvas_scene()
        if scene is not None:
            scene.set_overview(self.zoom_factor() < LOD_COMPACT)

    def content_rect(self) -> QRectF:
        """The rectangle around every node, frame and comment (what fit-all frames)."""
        scene = self.canvas_scene()
        return scene.content_rect() if scene is not None else super().content_rect()

    # ----------------------------------------------------------- selection
    def selected_node_ids(self) -> list[str]:
        """Ids of the selected nodes, in document order."""
        scene = self.canvas_scene()
        return scene.selected_node_ids() if scene is not None else []

    def select_nodes(self, ids: list[str], center: bool = True) -> None:
        """Select exactly ``ids`` (unknown ids are skipped) and optionally bring them into view."""
        scene = self.canvas_scene()
        if scene is None:
            return
        self._batch_selection = True
        try:
            scene.clearSelection()
            items = scene.items_of(list(ids))
            for item in items:
                item.setSelected(True)
        finally:
            self._batch_selection = False
        self._emit_selection()
        if center and items:
            rect = items[0].sceneBoundingRect()
            for item in items[1:]:
                rect = rect.united(item.sceneBoundingRect())
            if not self.mapToScene(self.viewport().rect()).boundingRect().contains(rect):
                self.centerOn(rect.center())

    def _emit_selection(self) -> None:
        if not self._batch_selection:
            self.selection_changed.emit(self.selected_node_ids())

    # -------------------------------------------------------------- edits
    def push(self, command: commands.GraphCommand) -> bool:
        """Push an edit; when the document refuses it, say why at the cursor."""
        if self._document is None:
            return False
        if self._document.push(command):
            return True
        self.show_message(f"Cannot edit: {self._document.edit_lock}")
        return False

    def add_node_at(self, type_id: str, scene_pos: QPointF | None = None) -> str | None:
        """Add a node of ``type_id`` with its top-left at ``scene_pos`` (snapped to the grid).

        Args:
            type_id: Registered layer type id.
            scene_pos: Where the node goes; ``None`` centres it in the view (shifted off
                any node already there).

        Returns:
            The new node's id, or ``None`` when refused (unknown type, read-only document);
            the reason is shown.
        """
        if self._document is None:
            return None
        if split_key(type_id) is not None:
            return self.add_block_at(type_id, scene_pos)
        try:
            layer = get_layer(type_id)
        except KeyError:
            self.show_message(f"Cannot add: unknown layer type {type_id!r}")
            return None
        graph = self._document.graph
        if scene_pos is None:
            scene_pos = self.free_spot(self.mapToScene(self.viewport().rect().center()) - QPointF(84.0, 44.0))
        node = Node(graph.new_id(layer.id_prefix or type_id), type_id, {}, _snap(scene_pos))
        if not self.push(commands.add_node(graph, node)):
            return None
        self.select_nodes([node.id], center=False)
        return node.id

    def add_block_at(self, key: str, scene_pos: QPointF | None = None) -> str | None:
        """Add an instance of the palette's block ``key`` (its definitions join the project, renamed
        where the project has different ones of the same name); returns the instance's id."""
        document = self._document
        found = self.block_catalogue.incoming(key, document.project.blocks) if document is not None else None
        if document is None or found is None:
            self.show_message("Cannot add: that block is no longer available")
            return None
        incoming, name = found
        try:
            plan = plan_merge(document.project.blocks, incoming)
        except BlockError as exc:
            self.show_message(f"Cannot add block {name}: {exc}")
            return None
        name = plan.renames.get(name, name)
        definition = next((d for d in plan.added if d.name == name), None) or document.project.blocks[name]
        problem = document.nesting_problem([name], {d.name: d for d in plan.added})
        if problem:
            self.show_message(f"Cannot add: {problem}")
            return None
        if scene_pos is None:
            scene_pos = self.free_spot(self.mapToScene(self.viewport().rect().center()) - QPointF(84.0, 44.0))
        graph = document.graph
        node = instance_node(graph.new_id(name.lower() if NODE_ID_PATTERN.match(name.lower()) else "block"),
                             definition, position=_snap(scene_pos))
        if not self.push(block_commands.add_instance(graph, document.project.blocks, plan.added, node,
                                                     document.library_changed)):
            return None
        self.select_nodes([node.id], center=False)
        return node.id

    def free_spot(self, scene_pos: QPointF) -> QPointF:
        """``scene_pos``, moved down past any node that already sits there."""
        scene = self.canvas_scene()
        pos = QPointF(scene_pos)
        for _ in range(50):
            if scene is None or scene.node_item_at(pos + QPointF(20.0, 20.0)) is None:
                break
            pos += QPointF(30.0, 30.0)
        return pos

    def delete_selection(self) -> bool:
        """Delete the selected nodes (with their edges), edges and comments as one undo step."""
        scene = self.canvas_scene()
        document = self._document
        if scene is None or document is None:
            return False
        ids, edges, notes = scene.selected_node_ids(), scene.selected_edges(), scene.comments.selected_ids()
        if not ids and not edges and not notes:
            return False
        command = commands.remove(document.graph, ids, edges) if ids or edges else None
        if notes:
            gone = [(c, None) for c in document.project.comments if c.id in notes]
            steps = [*(command.steps if command is not None else [])]
            steps += commands.comment_steps(document.project.comments, gone, document.comments_changed.emit)
            text = f"{command.text()} and {len(notes)} comment(s)" if command is not None else \
                f"Delete {len(notes)} comment(s)"
            command = commands.GraphCommand(text, steps)
        return self.push(command)

    def add_comment(self) -> str | None:
        """A comment around the selected layers (a frame), or a note in the middle of the view;
        its text is selected for typing. Returns its id (``None`` when refused)."""
        scene, document = self.canvas_scene(), self._document
        if scene is None or document is None:
            return None
        cards = QRectF()
        for node_id in scene.selected_node_ids():
            item = scene.nodes[node_id]
            cards = cards.united(item.shape().boundingRect().translated(item.pos()))
        if cards.isEmpty():
            centre = self.mapToScene(self.viewport().rect().center())
            cards = QRectF(centre.x() - 110.0, centre.y() - 40.0, 220.0, 80.0)
            rect = cards
        else:
            rect = cards.adjusted(-COMMENT_MARGIN, -COMMENT_MARGIN - COMMENT_BAND, COMMENT_MARGIN, COMMENT_MARGIN)
        x, y = _snap(rect.topLeft())
        width = round(rect.width() / SNAP) * SNAP
        height = round(rect.height() / SNAP) * SNAP
        comment = Comment(new_comment_id({c.id for c in document.project.comments}), "Comment",
                          (x, y, max(width, 60.0), max(height, 60.0)))
        if not self.push(document.comment_command([(None, comment)], "Add comment")):
            return None
        scene.clearSelection()
        item = scene.comments.items[comment.id]
        item.setSelected(True)
        item.start_editing()
        return comment.id

    def open_quick_add(self, view_pos: QPoint | None = None) -> None:
        """Open quick-add at ``view_pos`` (default: the cursor, else the centre); the layer
        chosen is added there."""
        self.gestures.open_quick_add(self._cursor_view_pos() if view_pos is None else view_pos)

    def show_message(self, text: str, view_pos: QPoint | None = None) -> None:
        """Show ``text`` briefly at the cursor (or ``view_pos``) and in the status bar."""
        self.last_message = text
        pos = self._cursor_view_pos() if view_pos is None else view_pos
        QToolTip.showText(self.viewport().mapToGlobal(pos), text, self.viewport(), QRect(), 4000)
        self.status_message.emit(text)

    def _cursor_view_pos(self) -> QPoint:
        pos = self.viewport().mapFromGlobal(QCursor.pos())
        return pos if self.viewport().rect().contains(pos) else self.viewport().rect().center()

    # -------------------------------------------------------------- mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        button = event.button()
        if self.pan_press(event):
            return
        if button == Qt.MouseButton.LeftButton and self.gestures.press(event):
            return
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            event = _with_modifiers(event, event.modifiers() | Qt.KeyboardModifier.ControlModifier)
        scene = self.canvas_scene()
        if scene is not None and button == Qt.MouseButton.LeftButton:
            scene.begin_node_drag()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.continue_pan(event) or self.gestures.move(event):
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.end_pan() or self.gestures.release(event):
            return
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            event = _with_modifiers(event, event.modifiers() | Qt.KeyboardModifier.ControlModifier)
        super().mouseReleaseEvent(event)
        scene = self.canvas_scene()
        if scene is not None:
            command = scene.finish_node_drag()
            if command is not None and not self.push(command):
                scene.restore_positions()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        scene = self.canvas_scene()
        if scene is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseDoubleClickEvent(event)
            return
        item = scene.node_item_at(self.mapToScene(event.position().toPoint()))
        if item is not None:
            self.node_activated.emit(item.node_id)
        elif scene.itemAt(self.mapToScene(event.position().toPoint()), self.transform()) is None:
            self.open_quick_add(event.position().toPoint())
        event.accept()

    # ---------------------------------------------------------------- keys
    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:
            self.set_theme(self._theme)  # line weights follow the screen
        if event.type() == QEvent.Type.ShortcutOverride and self.editing_text():
            event.accept()  # while a comment is edited, F, Delete, Ctrl+A... are typing, not commands
            return True
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Tab:  # type: ignore[attr-defined]
            self.keyPressEvent(event)  # type: ignore[arg-type]
            return True
        return super().event(event)

    def editing_text(self) -> bool:
        """Whether a comment's text is being edited (keys are text then)."""
        scene = self.canvas_scene()
        return scene is not None and isinstance(scene.focusItem(), QGraphicsTextItem)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if self.editing_text():
            super().keyPressEvent(event)  # typing into a comment: every key is text
            return
        if self.navigation_key(event):
            return
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.gestures.cancel()
            self.delete_selection()
        elif key == Qt.Key.Key_Tab:
            self.open_quick_add()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and len(self.selected_node_ids()) == 1:
            self.node_activated.emit(self.selected_node_ids()[0])  # a block opens
        elif key == Qt.Key.Key_Escape:
            if not self.gestures.cancel() and self.canvas_scene() is not None:
                self.scene().clearSelection()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # ----------------------------------------------------- palette drops
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasFormat(LAYER_MIME) and self._document is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        if not event.mimeData().hasFormat(LAYER_MIME):
            event.ignore()
            return
        type_id = bytes(event.mimeData().data(LAYER_MIME).data()).decode("utf-8", "replace").strip()
        scene_pos = self.mapToScene(event.position().toPoint())
        node_id = self.add_node_at(type_id, scene_pos)
        if node_id is not None:
            event.acceptProposedAction()
            self.layer_dropped.emit(node_id)
        else:
            event.ignore()


#: Room around the layers a new frame encloses, and for its text above them.
COMMENT_MARGIN, COMMENT_BAND = 20.0, 30.0


def _snap(pos: QPointF) -> tuple[float, float]:
    return round(pos.x() / SNAP) * SNAP, round(pos.y() / SNAP) * SNAP


def _with_modifiers(event: QMouseEvent, modifiers: Qt.KeyboardModifier) -> QMouseEvent:
    """A copy of ``event`` with other keyboard modifiers (Shift-click acts as Ctrl-click)."""
    return QMouseEvent(event.type(), event.position(), event.scenePosition(), event.globalPosition(),
                       event.button(), event.buttons(), modifiers, event.device())

