"""The Edit and Arrange commands of the main window: clipboard, duplicate, freeze, delete, comment,
select all, automatic layout and alignment. Each change is one undo step of the window's document;
a command that cannot act says why in the status bar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.graph.blocks import BlockError
from engine.graph.fileformat import ProjectFileError
from engine.graph.layout import layered_layout
from engine.layers.block import BLOCK_TYPE
from gui import clipboard, commands
from gui.block_commands import LibraryStep
from gui.commands import AddNodeStep

if TYPE_CHECKING:  # pragma: no cover
    from gui.main_window import MainWindow


class EditController:
    """Edit and Arrange commands acting on ``window``'s document and canvas selection."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def _message(self, text: str, msecs: int) -> None:
        self.window.statusBar().showMessage(text, msecs)

    # ---------------------------------------------------------------- edit
    def undo(self) -> None:
        """Undo the last edit."""
        if self.window.document is not None:
            self.window.document.undo()

    def redo(self) -> None:
        """Redo the last undone edit."""
        if self.window.document is not None:
            self.window.document.redo()

    def copy(self) -> bool:
        """Copy the selected nodes (and the edges among them) to the clipboard."""
        doc = self.window.document
        return doc is not None and clipboard.copy_nodes(doc.graph, self.window.canvas.selected_node_ids(),
                                                        doc.project.blocks)

    def cut(self) -> None:
        """Copy, then delete the selection."""
        if self.copy():
            self.delete_selection()

    def paste(self) -> None:
        """Paste nodes from the clipboard (from this or another window)."""
        doc, fragment = self.window.document, clipboard.clipboard_fragment()
        if doc is None or fragment is None:
            self._message("The clipboard holds no layers to paste", 4000)
            return
        try:
            command, new_ids = clipboard.paste_command(doc.graph, fragment, library=doc.project.blocks,
                                                       notify=doc.library_changed)
            added = {step.definition.name: step.definition for step in command.steps
                     if isinstance(step, LibraryStep)}
            names = [step.node.params["definition"] for step in command.steps
                     if isinstance(step, AddNodeStep) and step.node.type_id == BLOCK_TYPE]
            problem = doc.nesting_problem(names, added)
            if problem:
                raise BlockError(problem)
        except (ProjectFileError, BlockError) as exc:
            self._message(f"Cannot paste: {exc}", 6000)
            return
        if doc.push(command):
            self.window.canvas.select_nodes(new_ids, center=False)

    def duplicate(self) -> None:
        """Copy and paste the selection in one go."""
        if self.copy():
            self.paste()

    def freeze_selection(self, trainable: bool = False) -> None:
        """Freeze the selected layers (``trainable=True``: unfreeze them) in one undo step."""
        doc = self.window.document
        if doc is None:
            return
        graph, infos = doc.graph, doc.analysis.nodes
        # layers with parameters (freezing a ReLU would mean nothing); unfreezing takes any frozen node
        chosen = [n for n in self.window.canvas.selected_node_ids() if n in infos and infos[n].parameters > 0
                  or trainable and n in graph.nodes and not graph.nodes[n].trainable]
        command = commands.freeze(graph, chosen, trainable)
        if command is None:
            self._message(f"Select layers that are not {'trainable' if trainable else 'frozen'} yet", 4000)
            return
        doc.push(command)

    def delete_selection(self) -> None:
        """Delete the selected nodes and edges."""
        self.window.canvas.delete_selection()

    def add_comment(self) -> None:
        """A note on the canvas, or a frame around the selected layers (undoable, saved in the project)."""
        self.window.canvas.add_comment()

    def select_all(self) -> None:
        """Select every node."""
        if self.window.document is not None:
            self.window.canvas.select_nodes(list(self.window.document.graph.nodes), center=False)

    # ------------------------------------------------------------- arrange
    def auto_layout(self, direction: str = "auto") -> None:
        """Lay the graph out by topological generation (undoable): ``auto`` flows top to bottom for
        deep, narrow graphs and left to right otherwise; ``right`` and ``down`` force a direction."""
        doc = self.window.document
        if doc is None or not len(doc.graph):
            return
        new = layered_layout(doc.graph, direction=direction)  # type: ignore[arg-type]
        old = {node_id: doc.graph.nodes[node_id].position for node_id in new}
        if doc.push(commands.move_nodes(doc.graph, old, new, "Auto layout")):
            self.window.canvas.fit_all()

    def align(self, axis: int, how: str) -> None:
        """Give the selected layers one x (``axis`` 0) or y (1): the smallest (``min``) or the mean."""
        doc, ids = self.window.document, self.window.canvas.selected_node_ids()
        if doc is None or len(ids) < 2:
            self._message("Select two or more layers to align", 3000)
            return
        values = [doc.graph.nodes[i].position[axis] for i in ids]
        target = min(values) if how == "min" else sum(values) / len(values)
        old = {i: doc.graph.nodes[i].position for i in ids}
        new = {i: (target, p[1]) if axis == 0 else (p[0], target) for i, p in old.items()}
        doc.push(commands.move_nodes(doc.graph, old, new, "Align"))
