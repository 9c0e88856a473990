"""Bookkeeping of a drag of nodes: where each started, so release pushes one move command."""

from __future__ import annotations

from collections.abc import Callable

from engine.graph.model import Graph
from gui import commands


class NodeDrag:
    """Start positions of the nodes the user is dragging.

    Items move freely while the mouse is down; the model learns of the drag only on release,
    as one :func:`gui.commands.move_nodes` command from the recorded starts to where the items
    are then.

    Args:
        refused: Called once per drag with the reason when edits are refused.
    """

    def __init__(self, refused: Callable[[str], None]) -> None:
        self._refused = refused
        self._starts: dict[str, tuple[float, float]] = {}
        self._refusal_shown = False

    def begin(self) -> None:
        """A press that may start a drag: forget any previous one."""
        self._starts = {}
        self._refusal_shown = False

    def note(self, node_id: str, position: tuple[float, float], read_only_reason: str | None) -> bool:
        """Node ``node_id`` at ``position`` is about to move; False when edits are refused."""
        if read_only_reason is not None:
            if not self._refusal_shown:
                self._refusal_shown = True
                self._refused(f"Cannot edit: {read_only_reason}")
            return False
        self._starts.setdefault(node_id, position)
        return True

    def finish(self, graph: Graph, current: Callable[[str], tuple[float, float] | None]) -> commands.GraphCommand | None:
        """End the drag: one move command for the nodes that moved (``current`` gives where
        each node's item is now, ``None`` when it is gone), or ``None``."""
        old, new = {}, {}
        for node_id, start in self._starts.items():
            now = current(node_id)
            if now is not None and now != start and node_id in graph.nodes:
                old[node_id], new[node_id] = start, now
        self._starts = {}
        return commands.move_nodes(graph, old, new) if new else None
