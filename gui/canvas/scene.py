"""The canvas scene: one item per model node and edge, kept in step with a document.

The scene holds no state the model does not have. It builds its items from the graph,
then follows the document: ``graph_event`` adds, removes, moves and re-labels exactly the
items an event touches, and ``analysis_changed`` updates shapes, counts and problem marks
of the nodes whose analysis changed (and their edges).
"""

from __future__ import annotations

from collections.abc import Iterable

import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from engine.graph.events import (EdgeAdded, EdgeRemoved, GraphEvent, NodeAdded, NodeRemoved, NodesMoved,
                                 ParamChanged, TrainingChanged)
from engine.graph.layout import flows_down
from engine.graph.model import Edge, Node
from engine.shapes import Analysis
from gui import commands
from gui.canvas.connect_rules import PortRef
from gui.canvas.edge_item import EdgeItem
from gui.canvas.edge_routes import NodeRects, needs_route, route_area
from gui.canvas.comment_item import CommentItem
from gui.canvas.comment_layer import CommentLayer
from gui.canvas.edge_state import edge_state
from gui.canvas.network_frames import NetworkFrame
from gui.canvas.node_drag import NodeDrag
from gui.canvas.node_item import NodeItem
from gui.canvas.overview_item import OverviewItem
from gui.canvas.paint_kit import PaintKit
from gui.document import Document
from gui.observers import DocumentLink
from gui.style import LIGHT, Theme


#: Up to this many edges are routed against the nodes near each; more against one index of all nodes.
FEW_EDGES = 16


class CanvasScene(QGraphicsScene):
    """Items for one document's graph.

    Args:
        document: The document shown.
        theme: The colours to paint with.
        parent: Owner of the scene.
        pixel_ratio: Device pixels per logical pixel of the view's screen.

    Signals:
        refused(str): An edit the user attempted was refused; the argument says why.
    """

    refused = Signal(str)

    def __init__(self, document: Document, theme: Theme = LIGHT, parent=None,  # noqa: ANN001
                 pixel_ratio: float = 1.0) -> None:
        super().__init__(parent)
        self.document = document
        self.kit = PaintKit(theme, pixel_ratio)
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self._edges_at: dict[str, set[EdgeItem]] = {}
        self.snap_to_grid = True
        self.applying_model = False
        self.node_drag = NodeDrag(self.refused.emit)
        self.overview_mode = False
        self.vertical = flows_down(document.graph)  # ports on top and bottom when the graph runs downwards
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.overview = OverviewItem(self)
        self.addItem(self.overview)
        self.setBackgroundBrush(self.kit.canvas)  # what exports render behind the graph
        for node in document.graph:
            self._add_node(node)
        self._routed: set[EdgeItem] = set()  # edges whose path depends on the nodes around them
        self._deferred: set[EdgeItem] | None = None  # while _place moves many nodes: edges to route after
        for edge in document.graph.edges:
            self._add_edge(edge, route=False)
        self._route_all(self.edges.values())
        self.frames: dict[str, NetworkFrame] = {}
        self._frames_timer = QTimer(self)
        self._frames_timer.setSingleShot(True)
        self._frames_timer.setInterval(0)
        self._frames_timer.timeout.connect(self.update_frames)
        self._apply_analysis(document.analysis, force=True)
        self.update_frames()
        self.comments = CommentLayer(self)
        self._link = DocumentLink(graph_event=self._on_graph_event, analysis_changed=self._on_analysis,
                                  comments_changed=self.comments.changed)
        self._link.follow(document)
        self.selectionChanged.connect(self._on_selection_changed)

    def detach(self) -> None:
        """Stop following the document (before the scene is dropped or the document closes)."""
        self._link.follow(None)

    # ------------------------------------------------------------------ theme
    def set_theme(self, theme: Theme, pixel_ratio: float | None = None) -> None:
        """Repaint every item with ``theme`` (and line weights for ``pixel_ratio``, if given)."""
        self.kit = PaintKit(theme, self.kit.pixel_ratio if pixel_ratio is None else pixel_ratio)
        for item in self.nodes.values():
            item.set_kit(self.kit)
        for edge_item in self.edges.values():
            edge_item.set_kit(self.kit)
        for frame in self.frames.values():
            frame.set_kit(self.kit)
        self.comments.set_kit(self.kit)
        self.overview.mark_dirty()
        self.setBackgroundBrush(self.kit.canvas)
        self.update()

    def set_vertical(self, vertical: bool) -> None:
        """Put every card's ports on its top and bottom edges (``True``) or on its sides."""
        if vertical == self.vertical:
            return
        self.vertical = vertical
        for item in self.nodes.values():
            item.set_vertical(vertical)
        for edge_item in self.edges.values():
            edge_item.vertical = vertical
        self._route_all(self.edges.values())
        self.overview.mark_dirty()

    # ------------------------------------------------------ level of detail
    def set_overview(self, on: bool) -> None:
        """Far out, paint the whole graph as one batched picture (items still take input)."""
        if on == self.overview_mode:
            return
        self.overview_mode = on
        flag = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
        for item in self.nodes.values():
            item.setFlag(flag, on)
        for edge_item in self.edges.values():
            edge_item.setFlag(flag, on)
        self.overview.setVisible(on)
        self.overview.mark_dirty()  # visible first, so the index learns its new bounds

    def render(self, painter: QPainter, target: QRectF | None = None, source: QRectF | None = None,
               mode: Qt.AspectRatioMode = Qt.AspectRatioMode.KeepAspectRatio) -> None:
        """Render with full item detail (exports do not depend on the view's zoom)."""
        overview = self.overview_mode
        self.set_overview(False)
        try:
            super().render(painter, target if target is not None else QRectF(),
                           source if source is not None else QRectF(), mode)
        finally:
            self.set_overview(overview)

    # ------------------------------------------------------------- model events
    def _on_graph_event(self, event: GraphEvent) -> None:
        if isinstance(event, NodeAdded):
            self._add_node(event.node)
        elif isinstance(event, NodeRemoved):
            item = self.nodes.pop(event.node.id, None)
            self._edges_at.pop(event.node.id, None)
            if item is not None:
                self.removeItem(item)
            self.overview.mark_dirty()
        elif isinstance(event, EdgeAdded):
            self._add_edge(event.edge)
        elif isinstance(event, EdgeRemoved):
            self._remove_edge(event.edge)
        elif isinstance(event, NodesMoved):
            self._place({node_id: new for node_id, (_, new) in event.moves.items()})
            if len(event.moves) > 1 and len(event.moves) * 2 >= len(self.nodes):  # a layout (or its undo)
                self.set_vertical(flows_down(self.document.graph))
        elif isinstance(event, ParamChanged):
            item = self.nodes.get(event.node_id)
            if item is not None:
                item.refresh_params()
                self.node_item_moved(item)
        elif isinstance(event, TrainingChanged):  # frozen look, learning-rate note
            item = self.nodes.get(event.node_id)
            if item is not None:
                item.refresh_params()

    def _on_selection_changed(self) -> None:
        if shiboken6.isValid(self.overview):  # not while the scene is being torn down
            self.overview.mark_dirty()

    def _on_analysis(self, analysis: Analysis) -> None:
        self._apply_analysis(analysis)
        self._frames_timer.start()  # the networks may have changed

    # ----------------------------------------------------------- frames
    def update_frames(self) -> None:
        """Frame and name the document's groups of nodes: a GAN's networks, expanded blocks."""
        self._frames_timer.stop()
        networks = self.document.frames()
        for name in [name for name in self.frames if name not in networks]:
            self.removeItem(self.frames.pop(name))
        for name, node_ids in networks.items():
            frame = self.frames.get(name)
            if frame is None:
                frame = self.frames[name] = NetworkFrame(name, self.kit)
                self.addItem(frame)
            cards = QRectF()
            for node_id in node_ids:
                item = self.nodes.get(node_id)
                if item is not None:
                    cards = cards.united(_body(item))
            frame.set_area(cards, node_ids)

    def _add_node(self, node: Node) -> None:
        item = NodeItem(node, self.kit, self.vertical)
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, self.overview_mode)
        self.nodes[node.id] = item
        self._edges_at[node.id] = set()
        self.addItem(item)
        self.overview.mark_dirty()

    def _add_edge(self, edge: Edge, route: bool = True) -> None:
        source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
        if source is None or target is None:
            return
        item = EdgeItem(edge, self.kit)
        item.vertical = self.vertical
        item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, self.overview_mode)
        self.edges[edge] = item
        self._edges_at[edge.source].add(item)
        self._edges_at[edge.target].add(item)
        self.addItem(item)
        if route:  # else the caller routes it with many others (_route_all)
            self._route(item)
        self._refresh_ports(edge.source)
        self._refresh_ports(edge.target)
        self._refresh_edge(item)
        self.overview.mark_dirty()

    def _remove_edge(self, edge: Edge) -> None:
        item = self.edges.pop(edge, None)
        if item is None:
            return
        self._routed.discard(item)
        for node_id in (edge.source, edge.target):
            self._edges_at.get(node_id, set()).discard(item)
            self._refresh_ports(node_id)
        self.removeItem(item)
        self.overview.mark_dirty()

    def _refresh_ports(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is None:
            return
        edges = self._edges_at.get(node_id, ())
        inputs = frozenset(e.edge.target_port for e in edges if e.edge.target == node_id)
        item.set_connections(inputs, frozenset(e.edge.source_port for e in edges if e.edge.source == node_id))

    def _apply_analysis(self, analysis: Analysis, force: bool = False) -> None:
        changed = []
        for node_id, item in self.nodes.items():
            info = analysis.nodes.get(node_id)
            input_shape = None
            if not item.node.layer.has_output:
                feeding = next((e for e in self._edges_at[node_id] if e.edge.target == node_id), None)
                source = analysis.nodes.get(feeding.edge.source) if feeding else None
                if feeding is not None:
                    input_shape = str(source.output) if source is not None and source.output else "?"
            if force or info != item.info or input_shape != item.input_shape:
                item.set_info(info, input_shape)
                changed.append(node_id)
        for node_id in changed:
            for edge_item in self._edges_at.get(node_id, ()):
                self._refresh_edge(edge_item)
        if changed:
            self.overview.mark_dirty()

    def _refresh_edge(self, item: EdgeItem) -> None:
        edge = item.edge
        source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
        if source is not None and target is not None:
            state = edge_state(self.document.graph, edge, source.info, target.info)
            item.set_state(state.label, state.error, state.tooltip)

    # ------------------------------------------------------------ item moves
    def node_item_moved(self, item: NodeItem) -> None:
        """Re-route the edges of one node (it moved or its ports changed)."""
        edges = self._edges_at.get(item.node_id, ())
        if self._deferred is not None:  # _place routes them once all its nodes have moved
            self._deferred.update(edges)
        else:
            for edge_item in edges:
                self._route(edge_item)
        self.overview.mark_dirty()
        if self.frames:
            self._frames_timer.start()

    def _route(self, edge_item: EdgeItem, rects: NodeRects | None = None) -> None:
        """Put an edge between its ports; return routes and long bends look at the nodes around.

        ``rects`` is an index of every node for many edges at once; without it the few
        nodes near this edge are asked of the scene.
        """
        edge = edge_item.edge
        source, target = self.nodes.get(edge.source), self.nodes.get(edge.target)
        if source is None or target is None:
            return
        start, end = source.output_scene_pos(edge.source_port), target.input_scene_pos(edge.target_port)
        if self.vertical or not needs_route(start, end):
            self._routed.discard(edge_item)
            edge_item.set_ends(start, end)
            return
        self._routed.add(edge_item)
        if rects is None:
            rects = NodeRects(_body(item) for item in self.items(route_area(start, end)) if isinstance(item, NodeItem))
        edge_item.set_ends(start, end, *rects.route(start, end))

    def _route_all(self, edge_items: Iterable[EdgeItem]) -> None:
        """Route many edges against one index of all nodes (a few each against the nodes near it)."""
        edge_items = list(edge_items)
        rects = NodeRects(_body(item) for item in self.nodes.values()) if len(edge_items) > FEW_EDGES else None
        for edge_item in edge_items:
            self._route(edge_item, rects)

    def _place(self, positions: dict[str, tuple[float, float]]) -> None:
        """Move items to model positions (no drag bookkeeping, no snapping)."""
        self.applying_model = True
        moved: list[QRectF] = []
        self._deferred = set()
        try:
            for node_id, position in positions.items():
                item = self.nodes.get(node_id)
                if item is not None:
                    moved.append(item.sceneBoundingRect())
                    item.setPos(QPointF(*position))
                    moved.append(item.sceneBoundingRect())
            # the moved nodes' edges, and routes that run where the nodes were or are now
            near = {item for rect in moved for item in self.items(rect) if item in self._routed}
            edges, self._deferred = self._deferred | near, None
            self._route_all(edges)  # type: ignore[arg-type]
            if self.frames:
                self._frames_timer.start()
        finally:
            self._deferred = None
            self.applying_model = False

    def user_moves(self, item: NodeItem) -> bool:
        """The user drags ``item``; False when edits are refused (said once per drag)."""
        return self.node_drag.note(item.node_id, (item.pos().x(), item.pos().y()), self.document.edit_lock)

    def begin_node_drag(self) -> None:
        """A press that may start dragging nodes."""
        self.node_drag.begin()

    def finish_node_drag(self) -> commands.GraphCommand | None:
        """End a drag: one move command for the nodes that moved, or ``None``."""
        def current(node_id: str) -> tuple[float, float] | None:
            item = self.nodes.get(node_id)
            return (item.pos().x(), item.pos().y()) if item is not None else None

        return self.node_drag.finish(self.document.graph, current)

    def push(self, command: commands.GraphCommand) -> bool:
        """Push an edit made on an item; a refusal (training locks the graph) is announced."""
        if self.document.push(command):
            return True
        self.refused.emit(f"Cannot edit: {self.document.edit_lock}")
        return False

    def nodes_inside(self, item: "CommentItem") -> dict[str, tuple[float, float]]:
        """The unselected layers inside a comment, with their positions (see :class:`CommentLayer`)."""
        return self.comments.nodes_inside(item)

    def carry_nodes(self, carried: dict[str, tuple[float, float]], delta: QPointF) -> None:
        """Move the layers a dragged comment carries (see :class:`CommentLayer`)."""
        self.comments.carry_nodes(carried, delta)

    def restore_positions(self) -> None:
        """Put every node item back where the model has it (after a refused move)."""
        self._place({node_id: node.position for node_id, node in self.document.graph.nodes.items()})

    # --------------------------------------------------------------- queries
    def node_item_at(self, scene_pos: QPointF) -> NodeItem | None:
        """The topmost node item under ``scene_pos``."""
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def port_at(self, scene_pos: QPointF, tolerance: float) -> PortRef | None:
        """The port nearest ``scene_pos`` within ``tolerance`` scene units."""
        area = QRectF(scene_pos.x() - tolerance, scene_pos.y() - tolerance, 2 * tolerance, 2 * tolerance)
        for item in self.items(area):
            if isinstance(item, NodeItem):
                hit = item.port_at(scene_pos, tolerance)
                if hit is not None:
                    return PortRef(item.node_id, hit[0], hit[1])  # type: ignore[arg-type]
        return None

    def port_scene_pos(self, port: PortRef) -> QPointF:
        """Scene position of ``port``."""
        item = self.nodes[port.node_id]
        return item.output_scene_pos(port.port) if port.kind == "out" else item.input_scene_pos(port.port)

    def selected_node_ids(self) -> list[str]:
        """Selected nodes in document order."""
        selected = {item.node_id for item in self.selectedItems() if isinstance(item, NodeItem)}
        return [node_id for node_id in self.document.graph.nodes if node_id in selected]

    def selected_edges(self) -> list[Edge]:
        """Selected edges in document order."""
        selected = {item.edge for item in self.selectedItems() if isinstance(item, EdgeItem)}
        return [edge for edge in self.document.graph.edges if edge in selected]

    def nodes_rect(self) -> QRectF:
        """The rectangle around all node cards (empty when there are none)."""
        rect = QRectF()
        for item in self.nodes.values():
            rect = rect.united(item.sceneBoundingRect())
        return rect

    def content_rect(self) -> QRectF:
        """Cards, network frames and comments: what fit-all frames."""
        rect = self.nodes_rect().united(self.comments.rect())
        for frame in self.frames.values():
            rect = rect.united(frame.sceneBoundingRect())
        return rect

    def items_of(self, ids: list[str]) -> list[QGraphicsItem]:
        """The node items of ``ids`` that exist."""
        return [self.nodes[i] for i in ids if i in self.nodes]


def _body(item: NodeItem) -> QRectF:
    """A node's drawn body in scene coordinates (its bounding rect also holds ports and the selection glow)."""
    return item.shape().boundingRect().translated(item.pos())
