"""Copy, cut, paste and duplicate of nodes, through the system clipboard as text.

A copied selection is a fragment of the project file format (nodes with their params and
positions, and the edges between them) as plain text, so it pastes into another window,
another running app, or a text editor. Pasting validates the fragment like a file, gives the nodes
fresh ids, offsets them, and adds everything as one undo step.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtGui import QGuiApplication

from engine.graph.fileformat import ProjectFileError, from_json_fragment, to_json_fragment
from engine.graph.model import Edge, Graph
from gui.commands import GraphCommand, add_many

PASTE_OFFSET = 40.0


def copy_nodes(graph: Graph, node_ids: list[str]) -> bool:
    """Put the nodes and the edges among them on the clipboard; False when nothing is selected."""
    if not node_ids:
        return False
    # plain text only: a Python-made QMimeData handed to the clipboard can be freed twice at exit
    QGuiApplication.clipboard().setText(json.dumps(to_json_fragment(graph, node_ids), indent=1))
    return True


def clipboard_fragment() -> Any | None:
    """The parsed fragment on the clipboard, or ``None`` when it holds none."""
    raw = QGuiApplication.clipboard().text()
    if not raw.lstrip().startswith("{"):
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def paste_command(graph: Graph, fragment: Any, offset: float = PASTE_OFFSET) -> tuple[GraphCommand, list[str]]:
    """The command that pastes ``fragment`` with fresh ids, and the new ids.

    Raises:
        ProjectFileError: The fragment is not valid nodes data (message names the field).
    """
    nodes, edges = from_json_fragment(fragment)
    renamed: dict[str, str] = {}
    taken = set(graph.nodes)
    fresh_nodes = []
    for node in nodes:
        prefix = node.layer.id_prefix or node.type_id
        new_id = node.id if node.id not in taken else _fresh_id(prefix, taken)
        taken.add(new_id)
        renamed[node.id] = new_id
        fresh_nodes.append(node.copy(id=new_id, position=(node.position[0] + offset, node.position[1] + offset)))
    fresh_edges = [Edge(renamed[e.source], renamed[e.target], e.target_port, e.source_port) for e in edges]
    text = f"Paste {len(fresh_nodes)} node(s)"
    return add_many(graph, fresh_nodes, fresh_edges, text), [n.id for n in fresh_nodes]


def _fresh_id(prefix: str, taken: set[str]) -> str:
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


__all__ = ["ProjectFileError", "clipboard_fragment", "copy_nodes", "paste_command"]
