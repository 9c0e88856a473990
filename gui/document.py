"""The open document: a project, its undo stack, its file, and live shape inference.

Views observe the document; they never own state. Every change arrives as an engine event
(re-emitted as the ``graph_event`` signal, so items update at once) and, coalesced to one
per event-loop turn, as a fresh :class:`~engine.shapes.Analysis` (``analysis_changed``),
so shapes, counts and diagnostics follow every edit without recomputing per event.

A document shows one *level* (:mod:`engine.block_levels`): the top-level graph, or the inside
of one block instance. ``graph`` and ``analysis`` are those of the level (what the canvas,
inspector and summary show and edit); ``model_analysis`` is always the whole model's (what
training, the totals and the Problems panel use). Edits at any level go through the one undo
stack; an undo that removes the instance a level opened brings the document back up to the
deepest level that still exists.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.block_levels import (Level, LevelView, enclosing_definitions, level_analysis, nesting_problem,
                                 resolve_level)
from engine.graph.comments import Comment
from engine.graph.events import GraphEvent
from engine.graph.expand_view import ExpandedGraph, expanded_graph
from engine.graph.gan import gan_networks
from engine.graph.model import Graph
from engine.fileio import atomic_write_bytes
from engine.graph.fileformat import load_project, save_project, sibling_weights
from engine.graph.project import Project, new_project_id
from engine.block_shapes import BlockAnalysis, BlockInference, analyze_blocks
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
    search_changed = Signal()
    comments_changed = Signal(str)
    read_only_changed = Signal(object)
    edit_refused = Signal(str)
    level_changed = Signal(object)
    blocks_changed = Signal()

    def __init__(self, project: Project, path: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if not project.id:
            project.id = file_project_id(path) if path is not None else new_project_id()
        self.project = project
        self.path = on_disk(Path(path).absolute()) if path is not None else None  # "my.json" from a shell: absolute
        #: Weights an untitled copy starts from (a template's ``name.safetensors``), kept by its first save.
        self.weights_origin: Path | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self.clean_changed)
        self.undo_stack.indexChanged.connect(lambda _index: self._keep_level())
        self.inference: ShapeInference | BlockInference = self._new_inference()
        self.level: Level = ()
        self.expanded: ExpandedGraph | None = None  # blocks of the level shown opened up, read-only
        self.view: LevelView = resolve_level(project.graph, project.blocks, ())  # type: ignore[assignment]
        self._block_result: BlockAnalysis | None = None
        self._flat_ids: tuple[BlockAnalysis, dict[str, str]] | None = None  # path -> flat id, per result
        self.model_analysis: Analysis = self._analyze()
        self.analysis: Analysis = self.model_analysis
        self.read_only_reason: str | None = None
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.setInterval(0)
        self._pending.timeout.connect(self.refresh_analysis)
        self._unsubscribe = project.graph.subscribe(lambda event: self._on_graph_event(project.graph, event))
        self._definition_unsubscribes: list = []
        self._watched_revision = -1
        self._watch_definitions()

    @property
    def graph(self) -> Graph:
        """The graph of the level shown: the project's graph, or the inside of the opened block."""
        return self.view.graph

    # ----------------------------------------------------------------- levels
    def enter(self, level: Level) -> bool:
        """Show ``level`` (``()``: the top); False when it leads nowhere."""
        view = resolve_level(self.project.graph, self.project.blocks, tuple(level))
        if view is None:
            return False
        self._show(tuple(level), view)
        return True

    def _show(self, level: Level, view: LevelView) -> None:
        changed = (level != self.level or view.graph is not self.view.graph or view.titles != self.view.titles
                   or self.expanded is not None)
        self.level, self.view, self.expanded = level, view, None
        if changed:
            self.analysis = self._level_analysis()
            self.level_changed.emit(level)

    def _keep_level(self) -> None:
        """After an edit, undo or redo: step up to the deepest part of the level that still exists
        (and follow an instance that now uses another definition)."""
        self._watch_definitions()
        level = self.level
        view = resolve_level(self.project.graph, self.project.blocks, level)
        while view is None:
            level = level[:-1]
            view = resolve_level(self.project.graph, self.project.blocks, level)
        self._show(level, view)

    def nesting_problem(self, names: list[str], extra: dict | None = None) -> str | None:
        """Why instances of the definitions ``names`` cannot be added at this level (a definition
        would contain itself), else ``None``; ``extra`` holds definitions about to join the project."""
        enclosing = enclosing_definitions(self.project.graph, self.project.blocks, self.level)
        definitions = {**self.project.blocks, **(extra or {})}
        return next((p for p in (nesting_problem(definitions, n, enclosing) for n in names) if p), None)

    @property
    def edit_lock(self) -> str | None:
        """Why the graph shown cannot be edited now (training, expanded blocks), or ``None``."""
        return self.read_only_reason or self.expanded_reason

    # -------------------------------------------------------------- expanding
    @property
    def expanded_reason(self) -> str | None:
        """Why edits are refused while blocks are expanded (``None`` when none is)."""
        if self.expanded is None:
            return None
        return ("blocks are expanded for viewing: collapse them (E) to edit this graph, "
                "or open a block (Enter) to edit its inside")

    def set_expanded(self, instance_ids: list[str]) -> None:
        """Show the level with ``instance_ids`` opened up in place (an empty list: as it is)."""
        level_view = resolve_level(self.project.graph, self.project.blocks, self.level)
        if level_view is None:
            return
        chosen = [n for n in instance_ids if n in level_view.graph.nodes]
        self.expanded = expanded_graph(level_view.graph, self.project.blocks, chosen) if chosen else None
        if self.expanded is not None and not self.expanded.members:
            self.expanded = None
        graph = self.expanded.graph if self.expanded is not None else level_view.graph
        self.view = LevelView(graph, level_view.definition, level_view.scope, level_view.instance_path,
                              level_view.copy, level_view.titles)
        self.analysis = self._level_analysis()
        self.level_changed.emit(self.level)

    def frames(self) -> dict[str, list[str]]:
        """Named groups of the shown graph's nodes to frame on the canvas: a GAN's two networks,
        and each expanded block (``layer2 · Bottleneck``)."""
        frames = gan_networks(self.view.graph)
        if self.expanded is not None:
            for instance_id, ids in self.expanded.members.items():
                node = self.level_graph.nodes.get(instance_id)
                name = node.params["definition"] if node is not None else "?"
                repeat = node.params["repeat"] if node is not None else 1
                frames[f"{instance_id} · {name}{f' ×{repeat}' if repeat > 1 else ''}"] = ids
        return frames

    @property
    def level_graph(self) -> Graph:
        """The editable graph of the level (the same as ``graph`` unless blocks are expanded)."""
        view = resolve_level(self.project.graph, self.project.blocks, self.level)
        return view.graph if view is not None else self.view.graph

    def _watch_definitions(self) -> None:
        """Follow the events of every definition's graph (again whenever the library changed)."""
        library = self.project.blocks
        if library.revision == self._watched_revision:
            return
        first = self._watched_revision < 0
        for unsubscribe in self._definition_unsubscribes:
            unsubscribe()
        self._definition_unsubscribes = [
            definition.graph.subscribe(lambda event, g=definition.graph: self._on_graph_event(g, event))
            for definition in library.values()]
        self._watched_revision = library.revision
        if not first and not self._pending.isActive():
            self._pending.start()

    def library_changed(self) -> None:
        """A command added or removed block definitions: watch them, re-infer, re-check the level."""
        self._watch_definitions()
        self._keep_level()
        self.blocks_changed.emit()

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
        """Apply an edit through the undo stack; refused (False) while training locks the graph
        or blocks are expanded for viewing."""
        reason = self.edit_lock
        if reason is not None:
            self.edit_refused.emit(reason)
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

    def search_command(self, text: str, fields: dict | None = None, space: dict | None = None) -> QUndoCommand:
        """An undoable change of the ``search`` section: study ``fields`` and ``space`` targets
        (``None`` values remove them); views refresh on ``search_changed`` (:func:`gui.search_edit.search_command`)."""
        from gui.search_edit import search_command

        return search_command(self.project, self.search_changed.emit, text, fields, space)

    def comment_command(self, changes: list[tuple[Comment | None, Comment | None]], text: str,
                        moves: tuple[dict, dict] | None = None) -> QUndoCommand:
        """An undoable change of the project's comments: ``(old, new)`` pairs (``None``: absent),
        optionally with node moves ``(old positions, new positions)`` in the same step."""
        steps = comment_steps(self.project.comments, changes, self.comments_changed.emit)
        if moves is not None and moves[1]:
            steps.append(MoveStep(self.project.graph, dict(moves[0]), dict(moves[1])))
        return GraphCommand(text, steps)

    def _on_graph_event(self, graph: Graph, event: GraphEvent) -> None:
        if graph is self.view.graph:
            self.graph_event.emit(event)
        if not self._pending.isActive():
            self._pending.start()

    def refresh_analysis(self) -> Analysis:
        """Re-infer what changed now (normally done once per event-loop turn); returns the level's analysis."""
        self._pending.stop()
        self._watch_definitions()
        self.model_analysis = self._analyze()
        self.analysis = self._level_analysis()
        self.analysis_changed.emit(self.analysis)
        return self.analysis

    def _new_inference(self) -> ShapeInference | BlockInference:
        """With blocks, each instance is one node with its output shape and totals (its inside
        inferred from what it receives); otherwise the plain incremental inference."""
        if has_blocks(self.project):
            return BlockInference(self.project.graph, self.project.blocks)
        return ShapeInference(self.project.graph)

    def _analyze(self) -> Analysis:
        if isinstance(self.inference, ShapeInference) == has_blocks(self.project):  # blocks came or went
            self.inference.close()
            self.inference = self._new_inference()
        result = self.inference.analyze()
        self._block_result = result if isinstance(result, BlockAnalysis) else None
        return result.analysis if isinstance(result, BlockAnalysis) else result

    def _level_analysis(self) -> Analysis:
        if self.expanded is not None:  # the definitions' own Input shapes inside a block
            return analyze_blocks(self.expanded.graph, self.project.blocks).analysis
        if not self.level or self._block_result is None:
            return self.model_analysis
        return level_analysis(self._block_result, self.view)

    def flat_id(self, node_id: str) -> str | None:
        """The id a node shown at this level has in the compiled (flattened) model, which Look Inside
        reads; ``None`` for a block instance or an unknown node."""
        result = self._block_result
        if result is None:
            return node_id if node_id in self.project.graph.nodes else None
        path = node_id
        expanded = self.expanded
        if expanded is not None and node_id in expanded.origin:
            instance = expanded.origin[node_id]
            copy, inner = expanded.inner[node_id]
            node = self.level_graph.nodes.get(instance)
            repeat = node.params["repeat"] if node is not None else 1
            path = f"{instance}.{copy}/{inner}" if repeat > 1 else f"{instance}/{inner}"
        if self.level:
            path = f"{self.view.scope}/{path}"
        if self._flat_ids is None or self._flat_ids[0] is not result:
            self._flat_ids = (result, {p: f for f, p in result.flat.paths.items()})
        return self._flat_ids[1].get(path)

    @property
    def block_result(self) -> BlockAnalysis | None:
        """The last analysis with its flat graph and paths (``None`` for a project without blocks)."""
        return self._block_result

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: Path, parent: QObject | None = None) -> "Document":
        """Load ``path`` (raises :class:`~engine.graph.fileformat.ProjectFileError`)."""
        return cls(load_project(path), Path(path), parent)

    def start_weights(self) -> Path | None:
        """The weights file training starts from: the one beside the project file, or the one an
        untitled copy came with (a template's); ``None`` when there is none."""
        if self.path is not None:
            return sibling_weights(self.path)
        return self.weights_origin if self.weights_origin is not None and self.weights_origin.is_file() else None

    def save(self, path: Path | None = None) -> None:
        """Save atomically to ``path`` (or the current file) and mark the document clean.

        Saving somewhere new takes the project's weights file along (``name.safetensors`` beside
        it), unless the target already has one: a saved copy of a template or an imported model
        still starts from its pretrained weights.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("an untitled document needs a path to save to")
        weights = self.start_weights()
        save_project(self.project, target)
        destination = Path(target).with_suffix(".safetensors")
        if weights is not None and not destination.exists() and weights.resolve() != destination.resolve():
            atomic_write_bytes(destination, weights.read_bytes())
        target = on_disk(target.absolute())
        if target != self.path:
            self.path = target
            self.path_changed.emit(target)
        self.undo_stack.setClean()

    def close(self) -> None:
        """Stop observing the graph and the definitions."""
        self._unsubscribe()
        for unsubscribe in self._definition_unsubscribes:
            unsubscribe()
        self.inference.close()
