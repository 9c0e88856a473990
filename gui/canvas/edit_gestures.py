"""Mouse gestures that wire the graph: connecting, re-targeting, and quick-add with a link.

The view hands every left-button press to :meth:`EditGestures.press` first. A press on a
port starts a :class:`ConnectionDrag`: from an output forwards, from a free input
backwards, from a connected input by picking up that edge's end. The release decides: a
compatible port connects (one undo step, replacing the edge that held the port), an
incompatible one is refused with the reason at the cursor, empty canvas opens quick-add
(the new node comes connected) or, for a picked-up edge, disconnects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.graph.model import Edge, Node
from engine.layers import LayerType, get_layer
from gui import commands
from gui.canvas.connect_rules import Plan, PortRef, command_for
from gui.canvas.connection_drag import ConnectionDrag, DropResult
from gui.canvas.node_layout import layout_for
from gui.canvas.paint_kit import PORT_RADIUS, SNAP
from gui.canvas.quick_add import QuickAddPopup

if TYPE_CHECKING:  # pragma: no cover
    from gui.canvas.view import CanvasView

#: How close (in screen pixels) the cursor must come to a port to grab it.
PORT_GRAB_PIXELS = 9.0


class EditGestures:
    """The connection gestures of one canvas view.

    Args:
        view: The view whose mouse events are handled.
    """

    def __init__(self, view: "CanvasView") -> None:
        self.view = view
        self.drag: ConnectionDrag | None = None
        self.popup: QuickAddPopup | None = None
        self._press_pos = QPointF()
        self._port_cursor = False

    def tolerance(self) -> float:
        """Port grab distance in scene units at the current zoom."""
        return max(PORT_RADIUS + 3.0, min(PORT_GRAB_PIXELS / self.view.zoom_factor(), 24.0))

    # ------------------------------------------------------------- mouse
    def press(self, event: QMouseEvent) -> bool:
        """Start a connection drag when ``event`` is on a port; True when it was."""
        scene = self.view.canvas_scene()
        document = self.view.document
        if scene is None or document is None:
            return False
        port = scene.port_at(self.view.mapToScene(event.position().toPoint()), self.tolerance())
        if port is None:
            return False
        event.accept()
        if document.edit_lock is not None:
            self.view.show_message(f"Cannot edit: {document.edit_lock}", event.position().toPoint())
            return True
        self.start(port)
        self._press_pos = event.position()
        return True

    def start(self, port: PortRef) -> ConnectionDrag:
        """Begin dragging a connection from ``port`` (the method a port press calls)."""
        self.cancel()
        scene = self.view.canvas_scene()
        assert scene is not None
        moving = None
        anchor = port
        if port.kind == "in":
            moving = scene.document.graph.edge_into(port.node_id, port.port)
            if moving is not None:
                anchor = PortRef(moving.source, "out", moving.source_port)
        self.drag = ConnectionDrag(scene, anchor, moving)
        return self.drag

    def move(self, event: QMouseEvent) -> bool:
        """Follow the cursor during a drag (True), else show a cross over ports (False)."""
        scene_pos = self.view.mapToScene(event.position().toPoint())
        if self.drag is not None:
            if self.drag.stale:  # e.g. an undo from the menu deleted its node
                self.cancel()
            else:
                self.drag.move_to(scene_pos, self.tolerance())
            return True
        scene = self.view.canvas_scene()
        if scene is not None and event.buttons() == Qt.MouseButton.NoButton and not self.view.space_held:
            over_port = scene.port_at(scene_pos, self.tolerance()) is not None
            if over_port != self._port_cursor:
                self._port_cursor = over_port
                if over_port:
                    self.view.viewport().setCursor(Qt.CursorShape.CrossCursor)
                else:
                    self.view.viewport().unsetCursor()
        return False

    def release(self, event: QMouseEvent) -> bool:
        """Finish a drag at ``event``; True when a drag was under way."""
        if self.drag is None:
            return False
        moved = (event.position() - self._press_pos).manhattanLength() >= QApplication.startDragDistance()
        if moved:
            self.finish(self.view.mapToScene(event.position().toPoint()), event.position().toPoint())
        else:
            self.cancel()
        event.accept()
        return True

    def finish(self, scene_pos: QPointF, view_pos: QPoint | None = None) -> DropResult | None:
        """Drop the dragged connection at ``scene_pos`` and carry out what that means."""
        drag = self.drag
        if drag is None:
            return None
        if drag.stale:
            self.cancel()
            return None
        self.drag = None
        result = drag.drop(scene_pos, self.tolerance())
        drag.finish()
        graph = self.view.document.graph  # type: ignore[union-attr]
        if result.empty_canvas:
            if drag.moving is not None:
                self.view.push(commands.disconnect(graph, [drag.moving]))
            else:
                self.open_quick_add(view_pos if view_pos is not None else self.view.mapFromScene(scene_pos),
                                    drag.anchor)
        elif result.plan is not None:
            self.apply(result.plan, view_pos)
        return result

    def apply(self, plan: Plan, view_pos: QPoint | None = None) -> bool:
        """Push an allowed plan, or show why it is refused; True when the graph changed."""
        if plan.reason is not None:
            self.view.show_message(f"Cannot connect: {plan.reason}", view_pos)
            return False
        if not plan.allowed:
            return False
        return self.view.push(command_for(self.view.document.graph, plan))  # type: ignore[union-attr]

    def cancel(self) -> bool:
        """Abandon a drag under way; True when there was one."""
        if self.drag is None:
            return False
        self.drag.finish()
        self.drag = None
        return True

    # ---------------------------------------------------------- quick-add
    def open_quick_add(self, view_pos: QPoint, anchor: PortRef | None = None) -> QuickAddPopup | None:
        """Open quick-add at ``view_pos``; with ``anchor``, the new node comes connected to it."""
        if self.view.document is None:
            return None
        if self.view.document.edit_lock is not None:
            self.view.show_message(f"Cannot edit: {self.view.document.edit_lock}", view_pos)
            return None
        if self.popup is not None:
            self.popup.close()
        scene_pos = self.view.mapToScene(view_pos)
        popup = QuickAddPopup(_fits(anchor), self.view)
        popup.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        popup.layer_chosen.connect(lambda type_id: self.add_connected(type_id, scene_pos, anchor))
        popup.destroyed.connect(lambda _obj=None: self._forget_popup(popup))
        self.popup = popup
        popup.popup_at(self.view.viewport().mapToGlobal(view_pos))
        return popup

    def _forget_popup(self, popup: QuickAddPopup) -> None:
        if self.popup is popup:
            self.popup = None

    def add_connected(self, type_id: str, scene_pos: QPointF, anchor: PortRef | None = None) -> str | None:
        """Add a ``type_id`` node at ``scene_pos``, wired to ``anchor`` when given (one undo step).

        A new node fed by an output gets its first input under ``scene_pos``; one feeding
        an input gets its output there.
        """
        document = self.view.document
        if anchor is None or document is None or anchor.node_id not in document.graph.nodes:
            return self.view.add_node_at(type_id, scene_pos)
        graph = document.graph
        layer = get_layer(type_id)
        layout = layout_for(layer, {})
        node_id = graph.new_id(layer.id_prefix or type_id)
        if anchor.kind == "out" and layout.inputs:
            corner = scene_pos - layout.input_pos(layout.inputs[0])
            edges = [Edge(anchor.node_id, node_id, layout.inputs[0])]
        elif anchor.kind == "in" and layer.has_output and graph.edge_into(anchor.node_id, anchor.port) is None:
            corner = scene_pos - layout.output_pos()
            edges = [Edge(node_id, anchor.node_id, anchor.port)]
        else:
            return self.view.add_node_at(type_id, scene_pos)
        position = (round(corner.x() / SNAP) * SNAP, round(corner.y() / SNAP) * SNAP)
        node = Node(node_id, type_id, {}, position)
        if not self.view.push(commands.add_many(graph, [node], edges, f"Add {layer.title}")):
            return None
        self.view.select_nodes([node_id], center=False)
        return node_id


def _fits(anchor: PortRef | None) -> Callable[[LayerType], bool] | None:
    """Which layers quick-add offers: with inputs after an output, with an output before an input."""
    if anchor is None:
        return None
    if anchor.kind == "out":
        return lambda layer: bool(layer.input_ports(layer.defaults()))
    return lambda layer: layer.has_output

