"""The Inspector's part for a block instance: its definition, how many use it, open and make unique.

A block instance's own parameters are its definition's name and ports (kept in step by the
block commands, not typed by hand) and its ``repeat``; the Inspector edits ``repeat`` like
any parameter and shows this section for the rest.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.graph.blocks import BlockLibrary
from engine.graph.model import Graph, Node
from engine.layers.block import BLOCK_TYPE

#: The parameters of a block instance the Inspector lets a person edit.
EDITABLE_BLOCK_PARAMS = ("repeat",)


def instances_of(name: str, top: Graph, library: BlockLibrary) -> int:
    """How many instances, at the top level and inside every definition, use definition ``name``."""
    graphs = [top, *(d.graph for d in library.values())]
    return sum(1 for graph in graphs for node in graph if node.type_id == BLOCK_TYPE
               and node.params["definition"] == name)


class BlockSection(QWidget):
    """Definition, use count, and the Open / Make Unique buttons of one instance.

    Signals:
        open_requested(str): Open the instance (its id).
        make_unique_requested(str): Give the instance its own definition (its id).
        rename_requested(str): Rename the instance's definition (the instance's id).
    """

    open_requested = Signal(str)
    make_unique_requested = Signal(str)
    rename_requested = Signal(str)

    def __init__(self, node: Node, top: Graph, library: BlockLibrary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        name = node.params["definition"]
        definition = library.get(name)
        uses = instances_of(name, top, library)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(6)
        if definition is None:
            text = f"Definition <b>{name}</b> is missing from this project."
        else:
            layers = sum(1 for n in definition.graph if n.layer.role == "layer")
            shared = f"shared by {uses} instances: editing it changes all of them" if uses > 1 else "used once"
            text = (f"Definition <b>{name}</b> · {layers} layer{'s' if layers != 1 else ''} · {shared}"
                    + (f"<br>{definition.doc}" if definition.doc else ""))
        self.summary = QLabel(text)
        self.summary.setWordWrap(True)
        column.addWidget(self.summary)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Edit the inside (double-click the block or press Enter)")
        self.open_button.setEnabled(definition is not None)
        self.unique_button = QPushButton("Make Unique")
        self.unique_button.setToolTip("Give this block its own copy of the definition, so edits change it alone")
        self.unique_button.setEnabled(definition is not None and uses > 1)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setToolTip("Rename the definition (every instance follows)")
        self.rename_button.setEnabled(definition is not None)
        self.rename_button.clicked.connect(lambda: self.rename_requested.emit(node.id))
        self.open_button.clicked.connect(lambda: self.open_requested.emit(node.id))
        self.unique_button.clicked.connect(lambda: self.make_unique_requested.emit(node.id))
        row.addWidget(self.open_button)
        row.addWidget(self.unique_button)
        row.addWidget(self.rename_button)
        row.addStretch(1)
        column.addLayout(row)
