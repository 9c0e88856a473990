"""Blocks in the main window: the breadcrumb, opening and leaving blocks, and the Blocks menu.

The controller turns menu commands into :mod:`gui.block_commands` edits of the document's
current level and moves the document between levels (:meth:`gui.document.Document.enter`).
The breadcrumb above the canvas names the level (``Model › layer2.0 (Bottleneck)``); each part
is a button that goes back up to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QInputDialog, QLabel, QToolButton, QVBoxLayout, QWidget

from engine.block_levels import Level, segment_of
from engine.graph.block_store import default_library_folder, save_to_library
from engine.graph.blocks import BlockError
from engine.graph.grouping import plan_group, plan_ungroup
from engine.layers.block import BLOCK_TYPE
from gui import block_commands
from gui.document import Document

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow


class Breadcrumb(QWidget):
    """``Model › layer2.0 (Bottleneck) › downsample (Projection)``: one button per level above.

    Signals:
        level_chosen(tuple): The level of the part clicked.
    """

    level_chosen = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("breadcrumb")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(6, 2, 6, 2)
        self._row.setSpacing(2)
        self.parts: list[QToolButton] = []
        self.setVisible(False)

    def show_level(self, level: Level, titles: tuple[str, ...]) -> None:
        """Show the way to ``level`` (hidden at the top level, where there is nothing to go back to)."""
        while self._row.count():
            item = self._row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.parts = []
        names = ("Model", *titles)
        for depth, name in enumerate(names):
            if depth:
                self._row.addWidget(QLabel("›"))
            button = QToolButton()
            button.setText(name)
            button.setAutoRaise(True)
            last = depth == len(names) - 1
            button.setEnabled(not last)
            button.setToolTip("You are here" if last else f"Back to {name} (Alt+Up goes one level up)")
            button.clicked.connect(lambda _checked=False, target=level[:depth]: self.level_chosen.emit(target))
            self._row.addWidget(button)
            self.parts.append(button)
        self._row.addStretch(1)
        self.setVisible(bool(level))

    def texts(self) -> list[str]:
        """The parts' texts, for tests and accessibility."""
        return [button.text() for button in self.parts]


def canvas_with_breadcrumb(canvas: QWidget, breadcrumb: Breadcrumb) -> QWidget:
    """The central widget: the breadcrumb bar above the canvas."""
    host = QWidget()
    column = QVBoxLayout(host)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    column.addWidget(breadcrumb)
    column.addWidget(canvas, 1)
    return host


class BlockController(QObject):
    """The window's block commands (see the module docstring).

    Signals:
        library_saved(str): A definition was saved to the personal library (the palette re-reads it).
    """

    library_saved = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.breadcrumb = Breadcrumb()
        self.breadcrumb.level_chosen.connect(self.enter)

    @property
    def document(self) -> Document | None:
        return self.window.document

    def _say(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 6000)

    # ------------------------------------------------------------ levels
    def on_level_changed(self, level: Level) -> None:
        """The document shows another level: the canvas shows its graph, the breadcrumb the way there."""
        document = self.document
        if document is None:
            return
        self.breadcrumb.show_level(level, document.view.titles)
        self.window.canvas.set_document(document)
        self.window.inspector.show_nodes([])
        self.window.refresh_edit_actions()
        self.refresh_actions()

    def enter(self, level: Level) -> None:
        """Show ``level``; coming back up, the instance left is selected."""
        document = self.document
        if document is None:
            return
        came_from = document.level
        if document.enter(tuple(level)) and len(came_from) > len(level):
            node_id = came_from[len(level)].split(".", 1)[0]
            self.window.canvas.select_nodes([node_id], center=True)

    def open_node(self, node_id: str) -> bool:
        """Open block instance ``node_id`` of the current level (copy 0 when it repeats); a layer
        shown inside an expanded block opens that block."""
        document = self.document
        if document is not None and document.expanded is not None and node_id in document.expanded.origin:
            return self.open_expanded(node_id)
        if document is None or node_id not in document.graph.nodes:
            return False
        node = document.graph.nodes[node_id]
        if node.type_id != BLOCK_TYPE:
            return False
        segment = segment_of(node_id, node.params["repeat"])
        if not document.enter((*document.level, segment)):
            self._say(f"Cannot open {node_id}: its block definition {node.params['definition']!r} does not exist")
            return False
        return True

    def open_selected(self) -> bool:
        """Open the one selected block (Enter)."""
        ids = self.window.canvas.selected_node_ids()
        if len(ids) == 1 and self.open_node(ids[0]):
            return True
        self._say("Select one block to open it (double-click or Enter)")
        return False

    def go_up(self) -> None:
        """Back to the level above (Alt+Up)."""
        document = self.document
        if document is not None and document.level:
            self.enter(document.level[:-1])

    # ------------------------------------------------------------- edits
    def group_selection(self, name: str | None = None) -> str | None:
        """Group the selected nodes into a new block (Ctrl+G); returns the instance's id."""
        document, canvas = self.document, self.window.canvas
        if document is None:
            return None
        ids = canvas.selected_node_ids()
        try:
            plan = plan_group(document.graph, ids, document.project.blocks, name, document.analysis)
        except BlockError as exc:
            self._say(f"Cannot group: {exc}")
            canvas.show_message(f"Cannot group: {exc}")
            return None
        if not canvas.push(block_commands.group(document.graph, document.project.blocks, plan,
                                                document.library_changed)):
            return None
        canvas.select_nodes([plan.instance.id], center=False)
        self._say(f"Grouped {len(ids)} node(s) into block {plan.definition.name}: Enter opens it, "
                  "Ctrl+Shift+G ungroups it")
        return plan.instance.id

    def ungroup_selection(self) -> list[str]:
        """Replace each selected block by its inside (Ctrl+Shift+G); returns the new nodes' ids."""
        document, canvas = self.document, self.window.canvas
        if document is None:
            return []
        blocks = [n for n in canvas.selected_node_ids() if document.graph.nodes[n].type_id == BLOCK_TYPE]
        if not blocks:
            self._say("Select a block to ungroup")
            return []
        new_ids: list[str] = []
        document.undo_stack.beginMacro(f"Ungroup {', '.join(blocks)}")
        try:
            for node_id in blocks:
                try:
                    plan = plan_ungroup(document.graph, node_id, document.project.blocks)
                except BlockError as exc:
                    self._say(f"Cannot ungroup: {exc}")
                    continue
                if canvas.push(block_commands.ungroup(document.graph, plan)):
                    new_ids += [n.id for n in plan.nodes]
        finally:
            document.undo_stack.endMacro()
        canvas.select_nodes(new_ids, center=False)
        return new_ids

    def make_unique(self) -> str | None:
        """Give the selected block its own copy of its definition; returns the copy's name."""
        document, canvas = self.document, self.window.canvas
        ids = canvas.selected_node_ids() if document is not None else []
        if document is None or len(ids) != 1 or document.graph.nodes[ids[0]].type_id != BLOCK_TYPE:
            self._say("Select one block to make it unique")
            return None
        command = block_commands.make_unique(document.graph, ids[0], document.project.blocks,
                                             document.library_changed)
        if not canvas.push(command):
            return None
        name = document.graph.nodes[ids[0]].params["definition"]
        self._say(f"{ids[0]} now uses its own definition {name}: edits inside it change it alone")
        return name

    def rename(self, node_id: str, new: str | None = None) -> bool:
        """Rename the definition of instance ``node_id`` (asks for the name when ``new`` is not given)."""
        document = self.document
        if document is None or node_id not in document.graph.nodes:
            return False
        old = document.graph.nodes[node_id].params["definition"]
        if new is None:
            new, ok = QInputDialog.getText(self.window, "Rename Block", f"New name for block {old}:", text=old)
            if not ok:
                return False
        new = new.strip()
        if new == old:
            return False
        try:
            command = block_commands.rename_definition(document.project.graph, document.project.blocks, old, new,
                                                       document.library_changed)
        except BlockError as exc:
            self._say(f"Cannot rename: {exc}")
            return False
        if not self.window.canvas.push(command):
            return False
        self.window.inspector.show_nodes([node_id])
        return True

    def toggle_expanded(self) -> None:
        """Expand the selected blocks in place, or collapse the expanded blocks the selection is in (E).

        With nothing selected, collapses every expanded block. Expanded layers are shown, not edited:
        Enter on one opens its block for editing.
        """
        document, canvas = self.document, self.window.canvas
        if document is None:
            return
        expanded = document.expanded
        shown = dict(expanded.members) if expanded is not None else {}
        ids = canvas.selected_node_ids()
        folding = {expanded.origin[n] for n in ids if expanded is not None and n in expanded.origin}
        opening = [n for n in ids if n in document.graph.nodes and document.graph.nodes[n].type_id == BLOCK_TYPE
                   and n not in (expanded.origin if expanded is not None else {})]
        if not ids and not shown:
            self._say("Select a block to expand it in place (E); Enter opens it for editing")
            return
        keep = [] if not ids else [n for n in shown if n not in folding]
        document.set_expanded([*keep, *opening])
        if folding:
            canvas.select_nodes(sorted(folding), center=False)
        elif opening and document.expanded is not None:
            inside = [m for n in opening for m in document.expanded.members.get(n, [])]
            canvas.select_nodes(inside, center=False)
        if document.expanded is not None:
            self._say("Expanded for viewing: E collapses, Enter on a layer opens its block to edit it")

    def open_expanded(self, node_id: str) -> bool:
        """Enter on a layer shown inside an expanded block: open that block with the layer selected."""
        document = self.document
        expanded = document.expanded if document is not None else None
        if expanded is None or node_id not in expanded.origin:
            return False
        instance = expanded.origin[node_id]
        copy, inner = expanded.inner[node_id]
        node = document.level_graph.nodes[instance]  # type: ignore[union-attr]
        if document.enter((*document.level, segment_of(instance, node.params["repeat"], copy))):  # type: ignore[union-attr]
            self.window.canvas.select_nodes([inner], center=True)
        return True

    def save_to_library(self) -> Path | None:
        """Save the selected block's definition (or the open block's) to the personal library."""
        document = self.document
        if document is None:
            return None
        ids = self.window.canvas.selected_node_ids()
        names = [document.graph.nodes[n].params["definition"] for n in ids
                 if document.graph.nodes[n].type_id == BLOCK_TYPE]
        definition = (document.project.blocks.get(names[0]) if len(names) == 1 else
                      document.view.definition if document.level else None)
        if definition is None:
            self._say("Select one block (or open it) to save its definition to your library")
            return None
        folder = default_library_folder()
        try:
            path = save_to_library(folder, definition, document.project.blocks)
        except OSError as exc:
            self._say(f"Cannot save {definition.name} to the library: {exc.strerror or exc}")
            return None
        self.library_saved.emit(definition.name)
        self._say(f"Saved block {definition.name} to your library ({path.name}): it is in the Blocks palette "
                  "of every project")
        return path

    def refresh_actions(self) -> None:
        """Enable the Blocks menu's commands for the selection and level."""
        document, actions = self.document, self.window.actions
        ids = self.window.canvas.selected_node_ids() if document is not None else []
        blocks = [n for n in ids if document is not None and document.graph.nodes[n].type_id == BLOCK_TYPE]
        actions["group"].setEnabled(bool(ids))
        actions["ungroup"].setEnabled(bool(blocks))
        actions["open_block"].setEnabled(len(blocks) == 1 and len(ids) == 1)
        actions["make_unique"].setEnabled(len(blocks) == 1 and len(ids) == 1)
        actions["level_up"].setEnabled(document is not None and bool(document.level))
        if "save_block" in actions:
            actions["save_block"].setEnabled(len(blocks) == 1 and len(ids) == 1 or
                                             (document is not None and bool(document.level)))

