"""The Inspector's search marks: a magnifier beside each parameter a search can vary, and a Search
section with "Optional in search" and "Search layer type" for the layers that allow them.

A click marks the value with :func:`gui.search_edit.default_range` (one undo step) or unmarks it;
the range is then edited in the Search panel. Marks follow the document's ``search_changed``.
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from engine.graph.model import Node
from gui.document import Document
from gui.search_edit import (can_be_optional, default_range, entry_problem, node_target, range_text, searchable,
                             space_of, type_choices)
from gui.search_marks import SearchNote, SearchToggle, mark_label
from gui.style import status_color


class ParamRowLike(Protocol):
    """What :class:`NodeSearch` needs of an Inspector row."""

    editor: Any
    label: QLabel
    note: SearchNote
    toggle: SearchToggle | None
    refused: str

    def show_problem(self) -> None: ...


class NodeSearch:
    """The search marks of the node an Inspector shows."""

    def __init__(self) -> None:
        self.document: Document | None = None
        self.node_id: str | None = None
        self.rows: dict[str, ParamRowLike] = {}
        self.optional: QCheckBox | None = None
        self.layer_type: QCheckBox | None = None
        self._type_note: SearchNote | None = None
        self._problem: QLabel | None = None

    def attach(self, document: Document | None, node: Node, rows: dict[str, ParamRowLike]) -> QWidget | None:
        """Wire the rows' toggles of ``node``; returns the Search section (``None`` when it has nothing)."""
        self.document, self.node_id, self.rows = document, node.id, rows
        self.optional = self.layer_type = self._type_note = self._problem = None
        for name, row in rows.items():
            if row.toggle is not None:
                if document is None or node_target(document, node.id, name) is None or \
                        not searchable(row.editor.param):
                    row.toggle.hide()
                row.toggle.clicked.connect(lambda on, n=name: self._mark_param(n, on))
        section = self._section(document, node) if document is not None else None
        self.refresh()
        return section

    def _section(self, document: Document, node: Node) -> QWidget | None:
        if node_target(document, node.id) is None:
            return None
        optional = can_be_optional(document.project, node)
        types = type_choices(document.project, node)
        if not optional and not types:
            return None
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        if optional:
            self.optional = QCheckBox("Optional in search")
            self.optional.setToolTip("Let a search try the network with and without this layer (its input then "
                                     "feeds the next layers directly)")
            self.optional.clicked.connect(self._mark_optional)
            layout.addWidget(self.optional)
        if types:
            self.layer_type = QCheckBox("Search layer type")
            self.layer_type.setToolTip(f"Let a search try this layer as each of: {', '.join(types)}")
            self.layer_type.clicked.connect(lambda on, t=types: self._mark_type(on, t))
            layout.addWidget(self.layer_type)
            self._type_note = SearchNote()
            layout.addWidget(self._type_note)
        self._problem = QLabel()
        self._problem.setWordWrap(True)
        self._problem.hide()
        layout.addWidget(self._problem)
        return box

    # ------------------------------------------------------------ showing
    def refresh(self) -> None:
        """Show which of the node's values are searched, and how."""
        document, node_id = self.document, self.node_id
        if document is None or node_id is None:
            return
        space = space_of(document.project)
        for name, row in self.rows.items():
            target = node_target(document, node_id, name)
            spec = space.get(target) if target is not None else None
            if row.toggle is not None:
                row.toggle.show_range(spec)
            row.note.show_range(spec)
            mark_label(row.label, spec is not None)
        if self.optional is not None:
            self.optional.setChecked(f"nodes.{node_id}" in space)
            mark_label(self.optional, self.optional.isChecked())
        if self.layer_type is not None and self._type_note is not None:
            spec = space.get(f"nodes.{node_id}.type")
            self.layer_type.setChecked(spec is not None)
            mark_label(self.layer_type, spec is not None)
            self._type_note.show_range(spec)

    def set_editable(self, reason: str | None) -> None:
        """Enable the marks (``reason``: why nothing can be edited now, shown as the tooltip)."""
        for row in self.rows.values():
            if row.toggle is not None:
                row.toggle.setEnabled(reason is None)
        for box in (self.optional, self.layer_type):
            if box is not None:
                box.setEnabled(reason is None)

    # -------------------------------------------------------------- edits
    def _mark_param(self, name: str, on: bool) -> None:
        document, node_id, row = self.document, self.node_id, self.rows.get(name)
        if document is None or node_id is None or row is None:
            return
        target = node_target(document, node_id, name)
        if target is None:
            return
        spec = default_range(row.editor.param, document.graph.nodes[node_id].params[name]) if on else None
        problem = entry_problem(document.project, target, spec) if spec is not None else None
        if problem:
            row.refused = problem
            row.show_problem()
        elif self._push(target, spec, name):
            row.refused = ""
            row.show_problem()
        self.refresh()

    def _mark_optional(self, on: bool) -> None:
        if self.document is not None and self.node_id is not None:
            self._push_checked(f"nodes.{self.node_id}", {"optional": True} if on else None, "optional")

    def _mark_type(self, on: bool, types: list[str]) -> None:
        if self.document is not None and self.node_id is not None:
            self._push_checked(f"nodes.{self.node_id}.type", {"choices": list(types)} if on else None, "layer type")

    def _push_checked(self, target: str, spec: dict | None, what: str) -> None:
        assert self.document is not None
        problem = entry_problem(self.document.project, target, spec) if spec is not None else None
        if not problem:
            self._push(target, spec, what)
        if self._problem is not None:
            self._problem.setText(problem or "")
            self._problem.setStyleSheet(f"color: {status_color('error')};")
            self._problem.setVisible(bool(problem))
        self.refresh()

    def _push(self, target: str, spec: dict | None, what: str) -> bool:
        assert self.document is not None and self.node_id is not None
        text = f"Search {self.node_id}.{what} ({range_text(spec)})" if spec is not None else \
            f"Stop searching {self.node_id}.{what}"
        return self.document.push(self.document.search_command(text, space={target: spec}))

