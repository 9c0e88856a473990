"""The inspector: the selected node's parameters, shape, counts and problems.

Editors are generated from the layer's :class:`Param` declarations (see
:mod:`gui.param_editors`). Every edit is pushed as :func:`gui.commands.set_param`, so
repeated edits of one parameter merge into one undo step. Changes that arrive from the
model (undo, redo, another view) update the editors silently, without pushing anything.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.graph.events import GraphEvent, NodeRemoved, ParamChanged, TrainingChanged
from engine.graph.model import GraphError
from engine.layers.params import ParamKindError
from engine.shapes import Analysis, Diagnostic
from gui import commands
from engine.layers.block import BLOCK_TYPE
from gui.canvas.labels import node_title
from gui.block_inspector import EDITABLE_BLOCK_PARAMS, BlockSection
from gui.document import Document
from gui.icons import category_icon, icon
from gui.observers import DocumentLink
from gui.inspector_search import NodeSearch
from gui.param_editors import ParamEditor, make_editor, param_summary
from gui.search_marks import SearchNote, SearchToggle
from gui.style import LIGHT, category_color
from gui.training_options import TrainingOptions

HINT = "Select a layer to edit it"
READ_ONLY_PREFIX = "Cannot edit now: "


class _ParamRow:
    """Label, editor, search toggle, search note and inline problem text of one parameter (three grid rows)."""

    def __init__(self, grid: QGridLayout, row: int, editor: ParamEditor) -> None:
        self.editor = editor
        self.label = QLabel(editor.param.name)
        self.label.setToolTip(f"{editor.param.doc}\n({param_summary(editor.param)})")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {LIGHT.error};")
        self.problem.hide()
        self.refused = ""
        self.diagnosed = ""
        self.toggle: SearchToggle | None = SearchToggle(editor.param.name)
        self.note = SearchNote()
        grid.addWidget(self.label, row, 0, Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(editor, row, 1)
        grid.addWidget(self.toggle, row, 2)
        grid.addWidget(self.note, row + 1, 1, 1, 2)
        grid.addWidget(self.problem, row + 2, 1, 1, 2)

    def show_problem(self) -> None:
        """Show the refusal of what was typed, else the analysis' diagnostic of this parameter."""
        text = self.refused or self.diagnosed
        self.problem.setText(text)
        self.problem.setVisible(bool(text))


class InspectorWidget(QWidget):
    """Edits the parameters of one node of a document.

    Connect the canvas' ``selection_changed(list)`` to :meth:`show_nodes`; call
    :meth:`update_read_only` after changing ``document.read_only_reason``.

    Signals:
        block_open_requested(str): The Open button of a block instance (its id).
        block_unique_requested(str): The Make Unique button of a block instance (its id).
        block_rename_requested(str): The Rename button of a block instance (its id).
    """

    block_open_requested = Signal(str)
    block_unique_requested = Signal(str)
    block_rename_requested = Signal(str)

    def __init__(self, document: Document | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.node_id: str | None = None
        self.rows: dict[str, _ParamRow] = {}
        #: The Training section (trainable, learning-rate multiplier) of a layer, else ``None``.
        self.training: TrainingOptions | None = None
        self._training_title: QLabel | None = None
        #: The node's search marks (magnifiers, "Optional in search", "Search layer type").
        self.search = NodeSearch()
        self._pages = QStackedWidget()
        self.hint = QLabel(HINT)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint.setMargin(16)
        self._scroll = QScrollArea()
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._pages.addWidget(self.hint)
        self._pages.addWidget(self._scroll)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._pages)
        self._link = DocumentLink(graph_event=self._on_graph_event, analysis_changed=self._on_analysis,
                                  search_changed=lambda: self.search.refresh())
        self.set_document(document)

    # ------------------------------------------------------------------ API
    def set_document(self, document: Document | None) -> None:
        """Inspect nodes of ``document`` (``None``: nothing); shows the hint."""
        self.document = self._link.follow(document)
        self.node_id = None
        self.show_node(None)

    def show_nodes(self, node_ids: list[str]) -> None:
        """Show one node, a count of several, or the hint for none."""
        if len(node_ids) > 1:
            self.show_node(None)
            self.hint.setText(f"{len(node_ids)} layers selected\nSelect one layer to edit it")
        else:
            self.show_node(node_ids[0] if node_ids else None)

    def show_node(self, node_id: str | None) -> None:
        """Build the editors of ``node_id`` (``None`` or an unknown id: the hint)."""
        graph = self.document.graph if self.document is not None else None
        if graph is None or node_id not in graph.nodes:
            self.node_id, self.rows = None, {}
            self.search.node_id = None
            self.hint.setText(HINT)
            self._pages.setCurrentWidget(self.hint)
            return
        node = graph.nodes[node_id]
        if node_id == self.node_id and self._pages.currentWidget() is self._scroll and \
                all(row.editor.can_show(node.params[name]) for name, row in self.rows.items()):
            for name, row in self.rows.items():  # same node again: keep the editors (and the focus)
                row.editor.set_value(node.params[name])
            if self.training is not None:
                self.training.show_node(node)
            return
        self.node_id = node_id
        self._build(node)
        self._pages.setCurrentWidget(self._scroll)

    def update_read_only(self) -> None:
        """Enable or disable the editors after ``document.read_only_reason`` changed."""
        reason = self.document.edit_lock if self.document is not None else None
        for row in self.rows.values():
            if reason is None and row.refused.startswith(READ_ONLY_PREFIX):
                row.refused = ""
                row.show_problem()
            row.editor.setEnabled(reason is None)
            for widget in (row.editor, *row.editor.findChildren(QWidget)):
                widget.setToolTip(reason or row.editor.param.doc)
        if self.training is not None:
            self.training.set_editable(reason)
        self.search.set_editable(reason)

    # -------------------------------------------------------------- building
    def _build(self, node: Any) -> None:
        layer = node.layer
        content = QWidget()
        outer = QVBoxLayout(content)
        outer.setContentsMargins(12, 10, 12, 12)
        outer.setSpacing(10)
        outer.addWidget(self._header(node))
        self.rows = {}
        shown = layer.params
        if node.type_id == BLOCK_TYPE and self.document is not None:
            shown = tuple(p for p in layer.params if p.name in EDITABLE_BLOCK_PARAMS)
            section = BlockSection(node, self.document.project.graph, self.document.project.blocks)
            section.open_requested.connect(self.block_open_requested)
            section.make_unique_requested.connect(self.block_unique_requested)
            section.rename_requested.connect(self.block_rename_requested)
            outer.addWidget(_section("Block"))
            outer.addWidget(section)
        if shown:
            grid = QGridLayout()
            grid.setHorizontalSpacing(10)
            grid.setVerticalSpacing(4)
            grid.setColumnStretch(1, 1)
            for index, param in enumerate(shown):
                editor = make_editor(param, node.params[param.name])
                editor.value_edited.connect(lambda value, name=param.name: self._edit(name, value))
                editor.problem_changed.connect(lambda text, name=param.name: self._refused(name, text))
                self.rows[param.name] = _ParamRow(grid, 3 * index, editor)
            outer.addWidget(_section("Parameters"))
            outer.addLayout(grid)
        else:
            outer.addWidget(_subtle("This layer has no parameters."))
        search_section = self.search.attach(self.document, node, self.rows)
        if search_section is not None:
            outer.addWidget(_section("Search"))
            outer.addWidget(search_section)
        self.training = self._training_title = None
        if layer.role == "layer":  # shown once the analysis says the layer has parameters
            self._training_title, self.training = _section("Training"), TrainingOptions()
            self.training.show_node(node)
            self.training.edited.connect(self._edit_training)
            for widget in (self._training_title, self.training):
                widget.hide()
                outer.addWidget(widget)
        outer.addWidget(_section("Result"))
        self._stats = QFormLayout()
        self._stats.setHorizontalSpacing(10)
        self._stats.setVerticalSpacing(3)
        self._stats.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self._output, self._parameters, self._flops = QLabel(), QLabel(), QLabel()
        for label, value in (("Output", self._output), ("Parameters", self._parameters), ("FLOPs", self._flops)):
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._stats.addRow(label, value)
        outer.addLayout(self._stats)
        self._problems = QVBoxLayout()
        self._problems.setSpacing(4)
        outer.addLayout(self._problems)
        outer.addStretch(1)
        old = self._scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self._scroll.setWidget(content)
        self.update_read_only()
        if self.document is not None:
            self._on_analysis(self.document.analysis)

    def _header(self, node: Any) -> QWidget:
        layer = node.layer
        color = category_color(layer.category).name()
        header = QWidget()
        row = QHBoxLayout(header)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(10)
        stripe = QFrame()
        stripe.setFixedWidth(4)
        stripe.setStyleSheet(f"background: {color}; border-radius: 2px;")
        row.addWidget(stripe)
        box = QVBoxLayout()
        box.setContentsMargins(0, 2, 0, 2)
        box.setSpacing(3)
        row.addLayout(box, 1)
        top = QHBoxLayout()
        top.setSpacing(6)
        glyph = QLabel()
        glyph.setPixmap(category_icon(layer.category).pixmap(20, 20))
        title = QLabel(f"<b>{html.escape(node_title(layer, node.params))}</b>")
        title.setStyleSheet("font-size: 14pt;")
        title.setWordWrap(True)
        top.addWidget(glyph, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(title, 1)
        box.addLayout(top)
        ident = _subtle(f"{node.id} · {layer.category}" + (f" · in {node.group}" if node.group else ""))
        if node.group:
            ident.setToolTip(f"Imported from the module {node.group}")
        ident.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(ident)
        doc = QLabel(layer.doc)
        doc.setWordWrap(True)
        box.addWidget(doc)
        return header

    # ---------------------------------------------------------------- edits
    def _edit(self, name: str, value: Any) -> None:
        """Push one parameter edit; refused pushes restore the model's value."""
        document, node_id, row = self.document, self.node_id, self.rows.get(name)
        if document is None or node_id is None or row is None:
            return
        current = document.graph.nodes[node_id].params[name]
        if value == current and type(value) is type(current):
            return
        try:
            command = commands.set_param(document.graph, node_id, name, value)
        except ParamKindError as exc:
            row.refused = f"{name} {exc}"
        else:
            if document.push(command):
                return
            row.refused = f"{READ_ONLY_PREFIX}{document.edit_lock}"
        row.editor.set_value(current)
        row.show_problem()

    def _edit_training(self, name: str, value: Any) -> None:
        """Push a change of the node's ``trainable`` or ``lr_scale``; a refused one restores the editors."""
        document, node_id = self.document, self.node_id
        if document is None or node_id is None or self.training is None:
            return
        node = document.graph.nodes[node_id]
        if getattr(node, name) == value:
            return
        try:
            pushed = document.push(commands.set_training(document.graph, node_id, name, value))
        except GraphError:
            pushed = False
        if not pushed:
            self.training.show_node(node)

    def _refused(self, name: str, text: str) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.refused = text
            row.show_problem()

    # ------------------------------------------------------------ observing
    def _on_graph_event(self, event: GraphEvent) -> None:
        if isinstance(event, ParamChanged) and event.node_id == self.node_id:
            row = self.rows.get(event.name)
            if row is None:
                return
            if row.editor.can_show(event.new):
                row.editor.set_value(event.new)
                row.refused = ""
                row.show_problem()
            else:  # e.g. undo back to a value only a text editor shows
                node_id, self.node_id = self.node_id, None
                self.show_node(node_id)
        elif isinstance(event, TrainingChanged) and event.node_id == self.node_id and self.training is not None:
            assert self.document is not None
            node = self.document.graph.nodes[event.node_id]
            self.training.show_node(node)
            self.training.set_editable(self.document.edit_lock)
            self._show_training(node, self.document.analysis)
        elif isinstance(event, NodeRemoved) and event.node.id == self.node_id:
            self.show_node(None)

    def _on_analysis(self, analysis: Analysis) -> None:
        if self.node_id is None or self.document is None:
            return
        info = analysis.nodes.get(self.node_id)
        node = self.document.graph.nodes[self.node_id]
        if info is None:
            return
        if info.output is not None:
            self._output.setText(str(info.output))
        else:
            self._output.setText("none (marks a model output)" if not node.layer.has_output else "unknown")
        frozen = " (frozen)" if not node.trainable and info.parameters else ""
        self._parameters.setText(f"{info.parameters:,}{frozen}")
        self._show_training(node, analysis)
        self._flops.setText(f"{info.flops:,} per sample")
        for name, row in self.rows.items():
            messages = [d.message.removeprefix(f"{name} ") for d in info.diagnostics if d.field == name]
            row.diagnosed = "; ".join(messages)
            row.show_problem()
        self._show_problems([d for d in info.diagnostics if d.field not in self.rows])

    def _show_training(self, node: Any, analysis: Analysis) -> None:
        """Show the Training section for a layer with parameters (or one frozen or scaled already)."""
        if self.training is None or self._training_title is None:
            return
        info = analysis.nodes.get(node.id)
        visible = bool(info is not None and info.parameters) or not node.trainable or node.lr_scale != 1.0
        self._training_title.setVisible(visible)
        self.training.setVisible(visible)

    def _show_problems(self, diagnostics: list[Diagnostic]) -> None:
        while self._problems.count():
            item = self._problems.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for diagnostic in diagnostics:
            self._problems.addWidget(_problem_label(diagnostic.severity, diagnostic.message))


def _problem_label(severity: str, message: str) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(6)
    glyph = QLabel()
    glyph.setPixmap(icon(severity).pixmap(16, 16))
    row.addWidget(glyph, 0, Qt.AlignmentFlag.AlignTop)
    text = QLabel(message)
    text.setWordWrap(True)
    row.addWidget(text, 1)
    return box


def _section(title: str) -> QLabel:
    label = QLabel(title.upper())
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    font = label.font()  # a font, not a style sheet: a styled label does not follow a theme switch
    font.setWeight(QFont.Weight.DemiBold)
    font.setPointSizeF(8)
    label.setFont(font)
    label.setContentsMargins(0, 4, 0, 0)
    return label


def _subtle(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label
