"""A project: the graph plus its dataset, training settings and descriptive metadata."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from engine.graph.blocks import BlockLibrary
from engine.graph.comments import Comment
from engine.graph.model import Graph


def new_project_id() -> str:
    """A fresh project id: 32 hex digits (a random UUID)."""
    return uuid.uuid4().hex


@dataclass
class Project:
    """Everything a project file holds.

    Args:
        graph: The network.
        dataset: Dataset settings (schema owned by engine.data).
        training: Training settings (schema owned by engine.training).
        meta: Descriptive fields: ``name``, ``family``, ``task``, ``description``.
        id: Stable identity of the project across Save As and renames (empty: none yet;
            files written before ids existed, templates). Runs store it in their frozen
            ``project.json``, so they can be matched to their project whatever its file name.
        comments: Notes and frames on the canvas (not part of the model).
        blocks: The project's block definitions, by name (instances in ``graph`` and inside
            definitions name them). Empty for projects without blocks (saved as format version 1).
        search: The hyper-parameter and architecture search (schema owned by engine.search):
            ``space`` (what is searched and over which range), objectives, sampler, pruner,
            trials. Empty for projects that define no search.
    """

    graph: Graph = field(default_factory=Graph)
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    id: str = ""
    comments: list[Comment] = field(default_factory=list)
    blocks: BlockLibrary = field(default_factory=BlockLibrary)
    search: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Display name (``meta.name``), empty when unset."""
        return self.meta.get("name", "")
