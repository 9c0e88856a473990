"""Copy, cut, paste and duplicate of nodes, through the system clipboard as text.

A copied selection is a fragment of the project file format (nodes with their params and
positions, and the edges between them) as plain text, so it pastes into another window,
another running app, or a text editor. Pasting validates the fragment like a file, gives the nodes
fresh ids, offsets them, and adds everything as one undo step.

A selection with block instances carries their definitions (and those they use) in a ``blocks``
section; pasting adds the ones the project lacks, reuses identical ones, and renames the
definitions whose name the project already gives to different contents (the pasted instances
follow the new names).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from PySide6.QtGui import QGuiApplication

from engine.graph.block_store import definitions_used, plan_merge
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary
from engine.graph.fileformat import (ProjectFileError, blocks_from_json, blocks_to_json, from_json_fragment,
                                     to_json_fragment)
from engine.graph.model import Edge, Graph
from engine.layers.block import BLOCK_TYPE
from gui.block_commands import LibraryStep
from gui.commands import GraphCommand, add_many

PASTE_OFFSET = 40.0


def copy_nodes(graph: Graph, node_ids: list[str], library: Mapping[str, BlockDefinition] | None = None) -> bool:
    """Put the nodes and the edges among them (and the block definitions they use, from ``library``)
    on the clipboard; False when nothing is selected."""
    if not node_ids:
        return False
    fragment = to_json_fragment(graph, node_ids)
    used = [graph.nodes[n].params["definition"] for n in node_ids if graph.nodes[n].type_id == BLOCK_TYPE]
    if used and library is not None:
        fragment["blocks"] = blocks_to_json(definitions_used(library, [n for n in used if n in library]))
    # plain text only: a Python-made QMimeData handed to the clipboard can be freed twice at exit
    QGuiApplication.clipboard().setText(json.dumps(fragment, indent=1))
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


def paste_command(graph: Graph, fragment: Any, offset: float = PASTE_OFFSET, library: BlockLibrary | None = None,
                  notify: Callable[[], None] = lambda: None) -> tuple[GraphCommand, list[str]]:
    """The command that pastes ``fragment`` with fresh ids, and the new ids.

    Args:
        graph: Where the nodes go.
        fragment: The parsed clipboard text.
        offset: How far the copies sit from the originals.
        library: The project's block definitions (pasted definitions join it; see the module docstring).
        notify: Called when the library changes (:meth:`gui.document.Document.library_changed`).

    Raises:
        ProjectFileError: The fragment is not valid nodes data (message names the field), or
            its blocks are.
    """
    nodes, edges = from_json_fragment(fragment)
    added: list[BlockDefinition] = []
    if isinstance(fragment, dict) and fragment.get("blocks") and library is not None:
        try:
            plan = plan_merge(library, dict(blocks_from_json(fragment["blocks"], "clipboard")))
        except BlockError as exc:
            raise ProjectFileError(f"clipboard: blocks: {exc}") from None
        added = plan.added
        for node in nodes:
            if node.type_id == BLOCK_TYPE:
                node.params["definition"] = plan.renames.get(node.params["definition"], node.params["definition"])
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
    command = add_many(graph, fresh_nodes, fresh_edges, text)
    if added and library is not None:
        command.steps[:0] = [LibraryStep(library, d, True, notify) for d in added]
    return command, [n.id for n in fresh_nodes]


def _fresh_id(prefix: str, taken: set[str]) -> str:
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


__all__ = ["ProjectFileError", "clipboard_fragment", "copy_nodes", "paste_command"]
