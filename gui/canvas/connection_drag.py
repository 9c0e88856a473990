"""A connection being dragged: the rubber edge, the lit-up ports, and what a drop means.

The view creates a :class:`ConnectionDrag` when the mouse goes down on a port, feeds it the
cursor while it moves, and asks it for the :class:`DropResult` on release. Everything it
decides comes from :mod:`gui.canvas.connect_rules`; it only draws and hit-tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsPathItem

from engine.graph.model import Edge
from gui.canvas.connect_rules import Plan, PortRef, candidate_ports, plan_for_ports
from gui.canvas.edge_item import bezier_path, vertical_bezier_path
from gui.canvas.node_item import FREE, REPLACE
from gui.canvas.scene import CanvasScene


@dataclass(frozen=True)
class DropResult:
    """The outcome of releasing a dragged connection.

    Args:
        plan: What dropping on a port or node does (``None`` when dropped on empty canvas).
        empty_canvas: Dropped where there is no node.
    """

    plan: Plan | None
    empty_canvas: bool


class ConnectionDrag:
    """One drag of a connection.

    Args:
        scene: The canvas scene.
        anchor: The fixed end: the output a forward drag leaves, the input a backward drag
            enters, or the source output of an edge whose target end was picked up.
        moving: The existing edge being re-targeted, if any (shown dimmed while dragged).
    """

    def __init__(self, scene: CanvasScene, anchor: PortRef, moving: Edge | None = None) -> None:
        self.scene = scene
        self.anchor = anchor
        self.moving = moving
        self.candidates = candidate_ports(scene.document.graph, anchor, moving)
        self._rubber = QGraphicsPathItem()
        self._rubber.setPen(scene.kit.rubber_pen)
        self._rubber.setZValue(3.0)
        scene.addItem(self._rubber)
        self._moving_item = scene.edges.get(moving) if moving is not None else None
        if self._moving_item is not None:
            self._moving_item.setOpacity(0.25)
        self._lit: list[str] = []
        for node_id, ports in self.candidates.items():
            item = scene.nodes.get(node_id)
            if item is None:
                continue
            if anchor.kind == "out":
                item.set_highlights({p: REPLACE if plan.replaces else FREE for p, plan in ports.items()})
            else:
                item.set_highlights({}, frozenset(ports))
            self._lit.append(node_id)
        self.move_to(scene.port_scene_pos(anchor))

    def move_to(self, scene_pos: QPointF, tolerance: float = 12.0) -> None:
        """Follow the cursor; the free end snaps onto a port it can drop on."""
        target = self.scene.port_at(scene_pos, tolerance)
        if target is not None and target.port in self.candidates.get(target.node_id, {}):
            scene_pos = self.scene.port_scene_pos(target)
        fixed = self.scene.port_scene_pos(self.anchor)
        curve = vertical_bezier_path if self.scene.vertical else bezier_path
        path = curve(fixed, scene_pos) if self.anchor.kind == "out" else curve(scene_pos, fixed)
        self._rubber.setPath(path)

    def drop(self, scene_pos: QPointF, tolerance: float = 12.0) -> DropResult:
        """What releasing at ``scene_pos`` means (the caller then calls :meth:`finish`)."""
        graph = self.scene.document.graph
        port = self.scene.port_at(scene_pos, tolerance)
        if port is not None:
            return DropResult(plan_for_ports(graph, self.anchor, port, self.moving), False)
        node = self.scene.node_item_at(scene_pos)
        if node is None:
            return DropResult(None, True)
        return DropResult(self._plan_for_node(node.node_id, scene_pos), False)

    def _plan_for_node(self, node_id: str, scene_pos: QPointF) -> Plan:
        """A drop on a node's body connects to its nearest compatible port."""
        graph = self.scene.document.graph
        node = graph.nodes[node_id]
        if self.anchor.kind == "in":  # the nearest output that may connect
            item = self.scene.nodes[node_id]
            plans = {out: plan_for_ports(graph, self.anchor, PortRef(node_id, "out", out), self.moving)
                     for out in node.output_ports()}
            if not plans:
                return Plan(reason=f"node {node_id} ({node.layer.title}) has no output")
            allowed = [out for out, plan in plans.items() if plan.allowed] or list(plans)
            return plans[min(allowed, key=lambda out: abs(item.output_scene_pos(out).y() - scene_pos.y()))]
        inputs = node.input_ports()
        if not inputs:
            return Plan(reason=f"node {node_id} ({node.layer.title}) has no inputs")
        plans = {port: plan_for_ports(graph, self.anchor, PortRef(node_id, "in", port), self.moving)
                 for port in inputs}
        allowed = [p for p, plan in plans.items() if plan.allowed]
        free = [p for p in allowed if not plans[p].replaces] or allowed
        if not free:
            return plans[inputs[0]]
        item = self.scene.nodes[node_id]
        return plans[min(free, key=lambda p: abs(item.input_scene_pos(p).y() - scene_pos.y()))]

    @property
    def stale(self) -> bool:
        """The graph changed under the drag: its anchor node or the edge it moves is gone."""
        graph = self.scene.document.graph
        return self.anchor.node_id not in graph.nodes or (
            self.moving is not None and graph.edge_into(self.moving.target, self.moving.target_port) != self.moving)

    def finish(self) -> None:
        """Remove the rubber edge and the highlights."""
        if self._moving_item is not None and self._moving_item.scene() is not None:
            self._moving_item.setOpacity(1.0)
        for node_id in self._lit:
            item = self.scene.nodes.get(node_id)
            if item is not None:
                item.set_highlights({})
        self._lit.clear()
        if self._rubber.scene() is not None:
            self.scene.removeItem(self._rubber)
