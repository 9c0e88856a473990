"""Where the palette's blocks come from: the project's definitions, the built-ins, the personal library.

Each block entry is keyed ``block:<where>:<name>`` (``where`` is ``project``, ``builtin`` or
``library``) and travels in drags as a layer type id does. :class:`BlockCatalogue` lists the
entries and, for a drop, gives the definitions the project must receive (renamed on a clash
with different contents, reused when identical: :func:`engine.graph.block_store.plan_merge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.graph.block_store import LibraryEntry, default_library_folder, definitions_used, load_library
from engine.graph.blocks import BlockDefinition
from engine.graph.builtin_blocks import builtin_library

#: How a palette key of a block starts.
BLOCK_KEY = "block:"
WHERE_TITLES = {"project": "in this project", "builtin": "built in", "library": "in your library"}


@dataclass(frozen=True)
class BlockEntry:
    """One block of the palette.

    Args:
        key: ``block:<where>:<name>``.
        name: The definition's name.
        where: ``project``, ``builtin`` or ``library``.
        layers: How many layers it holds (nested blocks count as one).
        doc: What it computes.
    """

    key: str
    name: str
    where: str
    layers: int
    doc: str

    @property
    def tooltip(self) -> str:
        """The entry's tooltip: name, origin, size and doc."""
        text = f"{self.name} — block {WHERE_TITLES[self.where]}, {self.layers} layer{'s' if self.layers != 1 else ''}"
        return f"{text}\n{self.doc}" if self.doc else text


def split_key(key: str) -> tuple[str, str] | None:
    """``block:builtin:Bottleneck`` -> ``("builtin", "Bottleneck")``; ``None`` for a layer type id."""
    if not key.startswith(BLOCK_KEY):
        return None
    where, _, name = key[len(BLOCK_KEY):].partition(":")
    return (where, name) if where in WHERE_TITLES and name else None


def _entry(where: str, definition: BlockDefinition) -> BlockEntry:
    layers = sum(1 for n in definition.graph if n.layer.role == "layer")
    return BlockEntry(f"{BLOCK_KEY}{where}:{definition.name}", definition.name, where, layers, definition.doc)


class BlockCatalogue:
    """The built-in definitions and the personal library folder's (read again by :meth:`reload`).

    Args:
        folder: The personal library (default: the app's data folder's ``blocks``).
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else default_library_folder()
        self.builtins = builtin_library()
        self.library: dict[str, LibraryEntry] = {}
        self.problems: list[str] = []
        self.reload()

    def reload(self) -> None:
        """Read the personal library folder again (a corrupt file is skipped and listed in ``problems``)."""
        self.library, self.problems = load_library(self.folder)

    def entries(self, project: Mapping[str, BlockDefinition]) -> list[BlockEntry]:
        """The project's definitions, then the personal library's, then the built-ins, each by name."""
        return ([_entry("project", d) for _, d in sorted(project.items())]
                + [_entry("library", e.definition) for _, e in sorted(self.library.items())]
                + [_entry("builtin", d) for _, d in sorted(self.builtins.items())])

    def incoming(self, key: str, project: Mapping[str, BlockDefinition]) -> tuple[dict[str, BlockDefinition], str] | None:
        """For a drop of ``key``: the definitions to merge into the project and the name of the one
        the new instance uses (before renaming); ``None`` when the entry no longer exists."""
        parts = split_key(key)
        if parts is None:
            return None
        where, name = parts
        if where == "project":
            return ({}, name) if name in project else None
        if where == "builtin":
            return (definitions_used(self.builtins, [name]), name) if name in self.builtins else None
        entry = self.library.get(name)
        return (entry.definitions, name) if entry is not None else None
