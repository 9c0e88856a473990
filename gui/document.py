"""The open document: a project, its undo stack, its file, and live shape inference.

Views observe the document; they never own state. Every change arrives as an engine event
(re-emitted as the ``graph_event`` signal, so items update at once) and, coalesced to one
per event-loop turn, as a fresh :class:`~engine.shapes.Analysis` (``analysis_changed``),
so shapes, counts and diagnostics follow every edit without recomputing per event.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.graph.comments import Comment
from engine.graph.events import GraphEvent
from engine.graph.fileformat import load_project, save_project
from engine.graph.project import Project, new_project_id
from engine.block_shapes import BlockAnalysis, BlockInference
from engine.graph.flat_project import has_blocks
from engine.shapes import Analysis, ShapeInference
from gui.commands import GraphCommand, MoveStep, comment_steps, set_settings


def display_name(path: Path | None, project: Project) -> str:
    """How every window title and prompt names a document: its file's name, else its project's
    name, else "Untitled"."""
    if path is not None:
        return path.name
    return project.name or "Untitled"


def on_disk(path: Path) -> Path:
    """``path`` with its file name spelled as its folder lists it.

    On a case-insensitive file system ``My.json`` may name the file ``my.json``: the window
    shows the file's own name, not the spelling typed into a dialog.
    """
    path = Path(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return path
    if path.name in names:
        return path
    same = [name for name in names if name.casefold() == path.name.casefold()]
    return path.with_name(same[0]) if len(same) == 1 else path


def file_project_id(path: Path) -> str:
    """The id of a project file written before projects had ids: the same for every opening
    of that file (so its runs are found again before it is first saved), different for copies."""
    return uuid.uuid5(uuid.NAMESPACE_URL, Path(path).resolve().as_uri()).hex


class Document(QObject):
    """One project being edited.

    A project without an id gets one here (a new document: a fresh one; a file from before
    ids: one derived from its path); it is written with the next save and follows the
    project through Save As, so its runs stay its own.

    Args:
        project: The project (the document takes ownership).
        path: Its file, or ``None`` for an untitled document.
    """

    graph_event = Signal(object)
    analysis_changed = Signal(object)
    path_changed = Signal(object)
    clean_changed = Signal(bool)
    settings_changed = Signal()
    comments_changed = Signal(str)
    read_only_changed = Signal(object)
    edit_refused = Signal(str)

    def __init__(self, project: Project, path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if not project.id:
            project.id = file_project_id(path) if path is not None else new_project_id()
        self.project = project
        self.path = on_disk(Path(path).absolute()) if path is not None else None  # "my.json" from a shell: absolute
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self.clean_changed)
        # With blocks, each instance is one node with its output shape and totals (its inside
        # inferred from what it receives); otherwise the plain incremental inference.
        self.inference: ShapeInference | BlockInference = (
            BlockInference(project.graph, project.blocks) if has_blocks(project) else ShapeInference(project.graph))
        self.analysis: Analysis = self._analyze()
        self.read_only_reason: str | None = None
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.refresh_analysis)
        self._unsubscribe = project.graph.subscribe(self._on_graph_event)

    @property
    def graph(self):  # noqa: ANN201 - engine Graph
        """The project's graph."""
        return self.project.graph

    @property
    def title(self) -> str:
        """File name, project name, or "Untitled" (:func:`display_name`)."""
        return display_name(self.path, self.project)

    @property
    def dirty(self) -> bool:
        """Unsaved changes exist."""
        return not self.undo_stack.isClean()

    # ------------------------------------------------------------------ edits
    def push(self, command: QUndoCommand) -> bool:
        """Apply an edit through the undo stack; refused (False) while training locks the graph."""
        if self.read_only_reason is not None:
            self.edit_refused.emit(self.read_only_reason)
            return False
        self.undo_stack.push(command)
        return True

    def set_read_only(self, reason: str | None) -> None:
        """Lock (with the reason shown to whoever tries to edit) or unlock every edit."""
        if reason != self.read_only_reason:
            self.read_only_reason = reason
            self.read_only_changed.emit(reason)

    def undo(self) -> None:
        """Undo the last edit, unless the document is locked."""
        if self.read_only_reason is not None:
            self.edit_refused.emit(self.read_only_reason)
        else:
            self.undo_stack.undo()

    def redo(self) -> None:
        """Redo the last undone edit, unless the document is locked."""
        if self.read_only_reason is not None:
            self.edit_refused.emit(self.read_only_reason)
        else:
            self.undo_stack.redo()

    def settings_command(self, section: str, changes: dict, text: str) -> QUndoCommand:
        """An undoable change of the ``dataset`` or ``training`` section (``None`` values reset)."""
        target = self.project.dataset if section == "dataset" else self.project.training
        return set_settings(target, changes, self.settings_changed.emit, text)

    def comment_command(self, changes: list[tuple[Comment | None, Comment | None]], text: str,
                        moves: tuple[dict, dict] | None = None) -> QUndoCommand:
        """An undoable change of the project's comments: ``(old, new)`` pairs (``None``: absent),
        optionally with node moves ``(old positions, new positions)`` in the same step."""
        steps = comment_steps(self.project.comments, changes, self.comments_changed.emit)
        if moves is not None and moves[1]:
            steps.append(MoveStep(self.project.graph, dict(moves[0]), dict(moves[1])))
        return GraphCommand(text, steps)

    def _on_graph_event(self, event: GraphEvent) -> None:
        self.graph_event.emit(event)
        if not self._pending.isActive():
            self._pending.start()

    def refresh_analysis(self) -> Analysis:
        """Re-infer what changed now (normally done once per event-loop turn)."""
        self._pending.stop()
        self.analysis = self._analyze()
        self.analysis_changed.emit(self.analysis)
        return self.analysis

    def _analyze(self) -> Analysis:
        result = self.inference.analyze()
        return result.analysis if isinstance(result, BlockAnalysis) else result

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: Path, parent: QObject | None = None) -> "Document":
        """Load ``path`` (raises :class:`~engine.graph.fileformat.ProjectFileError`)."""
        return cls(load_project(path), Path(path), parent)

    def save(self, path: Path | None = None) -> None:
        """Save atomically to ``path`` (or the current file) and mark the document clean."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("an untitled document needs a path to save to")
        save_project(self.project, target)
        target = on_disk(target.absolute())
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.undo_stack.setClean()

    def close(self) -> None:
        """Stop observing the graph."""
        self._unsubscribe()
        self.inference.close()
