"""Moving block definitions between projects, and the personal block library on disk.

Merging. Pasting a block into another project, or dropping a library block into one, brings
the definitions it uses. :func:`merge_definitions` adds them to the project's library: a name
the project already holds with the same structure (:func:`same_structure`: node ids, types,
parameters, training options, edges and port order; positions and doc ignored) is reused, a
name it holds with a different definition is renamed (``Bottleneck`` -> ``Bottleneck2``; a name
ending in a digit gets ``_2``: ``Stage1`` -> ``Stage1_2``) and every instance inside the incoming
definitions that names it is rewritten, nested uses included. :func:`plan_merge` computes the
same without touching the library (an undo command adds and removes the very objects it plans).

The personal library is a folder (:func:`default_library_folder`: ``blocks`` in the app's data
folder) with one JSON file per saved definition, ``<Name>.json``::

    {"format": "neural-canvas-block", "version": 1, "name": "Stage",
     "blocks": {"Res": {"doc", "nodes", "edges"}, "Stage": {"doc", "nodes", "edges"}}}

``blocks`` holds the definition and every definition it uses, dependencies first, in the schema
of a project file's ``blocks`` section, and is validated by the same code
(:func:`engine.graph.fileformat.blocks_from_json`): plain JSON, never executed; a cycle, an
unknown layer type or a field of the wrong kind is one line naming the file and the field. Files
are written atomically like projects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from engine.app_data import app_data_dir
from engine.fileio import atomic_write_bytes
from engine.graph.blocks import MAX_NAME, BlockDefinition, BlockError, BlockLibrary, candidate_names
from engine.graph.fileformat import (ProjectFileError, blocks_from_json, blocks_to_json, format_json, parse_json,
                                     read_text_file)
from engine.graph.model import Edge, Graph
from engine.layers.block import BLOCK_TYPE
from engine.layers.params import NAME_PATTERN

#: The ``format`` of a library file.
FORMAT_NAME = "neural-canvas-block"
#: The newest library file version this app reads and the one it writes.
FORMAT_VERSION = 1
#: Environment variable that overrides :func:`default_library_folder` (tests, portable installs).
LIBRARY_ENV = "NEURAL_CANVAS_BLOCKS_DIR"
_SECTIONS = ("format", "version", "name", "blocks")
#: File names Windows reserves for devices (a definition may be called ``CON``; its file may not).
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def default_library_folder() -> Path:
    """The personal library: ``blocks`` in the app's data folder (``NEURAL_CANVAS_BLOCKS_DIR`` overrides).

    The data folder is Qt's ``AppDataLocation`` for the app, computed without Qt
    (:func:`engine.app_data.app_data_dir`), beside the GUI's recovery files and runs.
    """
    override = os.environ.get(LIBRARY_ENV)
    return Path(override) if override else app_data_dir() / "blocks"


# ------------------------------------------------------------------------- merging
def definitions_used(library: Mapping[str, BlockDefinition], names: Iterable[str]) -> dict[str, BlockDefinition]:
    """The named definitions and every definition they use, at any depth, dependencies first.

    Args:
        library: Where names are looked up (a :class:`BlockLibrary` or a plain mapping).
        names: Definitions to start from (e.g. those of the copied instances).

    Returns:
        Name -> definition (the library's own objects), each after the ones it uses.

    Raises:
        BlockError: A name, or a use inside a definition, that ``library`` does not hold, or a
            definition that contains itself (the cycle named).
    """
    roots = []
    for name in names:
        if name not in library:
            raise BlockError(f"no block definition named {name!r}")
        roots.append(library[name])
    return _dependency_order(roots, library)


def _dependency_order(roots: list[BlockDefinition],
                      lookup: Mapping[str, BlockDefinition]) -> dict[str, BlockDefinition]:
    """``roots`` and what they use (found in ``lookup``), each after its dependencies (no recursion)."""
    order: dict[str, BlockDefinition] = {}
    for root in roots:
        if root.name in order:
            continue
        path = [root.name]
        stack: list[tuple[BlockDefinition, Iterator[tuple[str, str]]]] = [(root, iter(root.uses()))]
        while stack:
            definition, uses = stack[-1]
            for node_id, used in uses:
                if used in order:
                    continue
                if used in path:
                    cycle = [*path[path.index(used):], used]
                    raise BlockError(f"block definition {used!r} contains itself: {' -> '.join(cycle)}")
                child = lookup.get(used)
                if child is None:
                    raise BlockError(f"block definition {definition.name!r} (node {node_id}) uses block definition "
                                     f"{used!r}, which is not defined")
                path.append(used)
                stack.append((child, iter(child.uses())))
                break
            else:
                stack.pop()
                path.pop()
                order[definition.name] = definition
    return order


def same_structure(a: BlockDefinition, b: BlockDefinition) -> bool:
    """Whether two definitions compute the same thing: the same node ids with the same types,
    parameters and training options, the same edges, and the same ports in the same order.
    Names, docs, positions, imported module paths and the order of other nodes are ignored."""
    return _signature(a.graph) == _signature(b.graph)


def _signature(graph: Graph) -> tuple[Any, ...]:
    nodes = {n.id: (n.type_id, n.params, n.trainable, n.lr_scale) for n in graph}
    edges = {(e.source, e.source_port, e.target, e.target_port) for e in graph.edges}
    ports = tuple((n.layer.role, n.id) for n in graph if n.layer.role in ("input", "output"))
    return nodes, edges, ports


@dataclass
class MergePlan:
    """What :func:`merge_definitions` does to a library.

    Args:
        renames: Each incoming name -> the name it has in the library (itself when added or
            reused as is).
        added: New definitions (fresh copies, instances inside already renamed), dependencies first.
    """

    renames: dict[str, str] = field(default_factory=dict)
    added: list[BlockDefinition] = field(default_factory=list)


def plan_merge(library: Mapping[str, BlockDefinition], incoming: Mapping[str, BlockDefinition]) -> MergePlan:
    """Plan :func:`merge_definitions` without changing ``library`` or ``incoming``.

    Raises:
        BlockError: An incoming key that differs from its definition's name, an incoming
            definition that uses one not among ``incoming``, or a cycle (one line each).
    """
    for key, definition in incoming.items():
        if key != definition.name:
            raise BlockError(f"block definition {definition.name!r} is given under the name {key!r}")
    ordered = _dependency_order(list(incoming.values()), incoming)
    plan = MergePlan()
    taken: dict[str, BlockDefinition] = dict(library)
    for name, definition in ordered.items():
        candidate = BlockDefinition(name, _renamed_copy(definition.graph, plan.renames), definition.doc)
        for new_name in candidate_names(name):
            existing = taken.get(new_name)
            if existing is None:
                candidate.name = new_name
                taken[new_name] = candidate
                plan.added.append(candidate)
                break
            if same_structure(existing, candidate):
                break
        plan.renames[name] = new_name
    return plan


def merge_definitions(library: BlockLibrary, incoming: Mapping[str, BlockDefinition]) -> dict[str, str]:
    """Add ``incoming`` definitions (and the ones they use, which must be among them) to ``library``.

    A name ``library`` holds with the same structure is reused; one it holds with a different
    definition is renamed (``Bottleneck2``, ``Bottleneck3``, ...; an earlier renamed copy with the
    same structure is reused) and instances inside the added definitions follow. The incoming
    objects are never changed: added definitions are copies. Nothing is added when it raises.

    Args:
        library: The project's definitions (changed).
        incoming: Definitions by name, closed under use (e.g. :attr:`LibraryEntry.definitions`
            or :func:`definitions_used` of the source project).

    Returns:
        Old name -> new name for every incoming definition (identity when added or reused as is):
        rename the pasted instances' ``definition`` parameters with it.

    Raises:
        BlockError: See :func:`plan_merge`.
    """
    plan = plan_merge(library, incoming)
    for definition in plan.added:
        library.add(definition)
    return plan.renames


def _renamed_copy(graph: Graph, renames: Mapping[str, str]) -> Graph:
    """An independent copy of ``graph`` whose block instances name ``renames[old]`` instead of ``old``."""
    clone = Graph()
    for node in graph:
        copy = node.copy()
        if copy.type_id == BLOCK_TYPE:
            copy.params["definition"] = renames.get(copy.params["definition"], copy.params["definition"])
        clone.add_node(copy)
    for edge in graph.edges:
        clone.add_edge(Edge(edge.source, edge.target, edge.target_port, edge.source_port))
    return clone


# ---------------------------------------------------------------- the personal library
@dataclass
class LibraryEntry:
    """One saved definition of the personal library.

    Args:
        name: The definition's name.
        definition: The definition.
        needs: The definitions it uses, at any depth, dependencies first.
        path: The file it was read from.
    """

    name: str
    definition: BlockDefinition
    needs: dict[str, BlockDefinition]
    path: Path

    @property
    def definitions(self) -> dict[str, BlockDefinition]:
        """``needs`` then the definition itself: what :func:`merge_definitions` takes."""
        return {**self.needs, self.name: self.definition}


def library_file_name(name: str) -> str:
    """``<name>.json`` (``<name>-block.json`` for names Windows reserves, such as ``CON``)."""
    return f"{name}-block.json" if name.upper() in _RESERVED else f"{name}.json"


def save_to_library(folder: Path, definition: BlockDefinition, library: Mapping[str, BlockDefinition]) -> Path:
    """Write ``definition`` and every definition it uses into the library folder, atomically.

    The file is ``<Name>.json`` in ``folder`` (created when missing); a saved definition of the
    same name is overwritten, in whatever file holds it. When ``<Name>.json`` holds another
    definition (a case-insensitive file system, a renamed file), ``<Name>-2.json`` is used.

    Args:
        folder: The library folder (:func:`default_library_folder` for the personal library).
        definition: The definition to save (need not be in ``library``).
        library: Where the definitions it uses are looked up (the project's).

    Returns:
        The file written.

    Raises:
        BlockError: A use that ``library`` does not hold, or a definition that contains itself.
        OSError: The folder or file cannot be written (the previous file, if any, is kept).
    """
    order = _dependency_order([definition], library)
    data = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": definition.name,
            "blocks": blocks_to_json(order)}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries, _ = load_library(folder)
    if definition.name in entries:
        target = entries[definition.name].path
    else:
        others = {entry.path.name.lower() for entry in entries.values()}
        stem = library_file_name(definition.name)[:-len(".json")]
        names = (f"{stem}.json" if k == 1 else f"{stem}-{k}.json" for k in range(1, len(others) + 2))
        target = folder / next(n for n in names if n.lower() not in others)
    atomic_write_bytes(target, format_json(data).encode("utf-8"))
    return target


def read_library_file(path: Path) -> LibraryEntry:
    """Read and validate one library file (as strictly as a project file; nothing is executed).

    Raises:
        ProjectFileError: One line: the file, the field and what is wrong.
    """
    path = Path(path)
    source = str(path)
    data = parse_json(_read_text(path), source, "block file")
    problem = _header_problem(data)
    if problem:
        raise ProjectFileError(f"{source}: {problem}")
    library = blocks_from_json(data["blocks"], source)
    name = data["name"]
    if name not in library:
        defined = ", ".join(sorted(library)) or "none"
        raise ProjectFileError(f"{source}: name: block definition {name!r} is not in the file's blocks "
                               f"(it defines {defined})")
    needs = definitions_used(library, [name])
    definition = needs.pop(name)
    return LibraryEntry(name, definition, needs, path)


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, at most the project files' size limit), or :class:`ProjectFileError`."""
    return read_text_file(path, "block file")


def _header_problem(data: Any) -> str | None:
    """``<field>: <problem>`` for the fields around ``blocks``, or ``None`` when they are right."""
    if not isinstance(data, dict):
        return f"(top level): expected an object, got {_kind(data)}"
    kind = data.get("format")
    if kind != FORMAT_NAME:
        if kind == "neural-canvas-project":
            return f"format: a project file, not a block file (expected \"{FORMAT_NAME}\"): open it as a project"
        return f"format: not a Neural Canvas block file (expected \"{FORMAT_NAME}\")"
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"version: expected a positive integer, got {_kind(version)}"
    if version > FORMAT_VERSION:
        return (f"version: block file version {version} was written by a newer Neural Canvas; this version "
                f"reads up to {FORMAT_VERSION}: update the app to use it")
    for key in data:
        if key not in _SECTIONS:
            return f"{_shown(key)}: unknown section (known: {', '.join(_SECTIONS)})"
    name = data.get("name")
    if not isinstance(name, str):
        return f"name: expected a string, got {_kind(name)}"
    if not NAME_PATTERN.match(name):
        return (f"name: {_shown(name)} is not a block definition name (a Python identifier of at most "
                f"{MAX_NAME} characters)")
    if "blocks" not in data:
        return "blocks: missing (the file holds no block definitions)"
    return None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
             int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _shown(key: Any) -> str:
    """A key or name as it may appear in a one-line message (quoted and shortened when unusual)."""
    text = str(key)
    if text.isidentifier() and len(text) <= 40:
        return text
    quoted = ascii(text)
    return quoted if len(quoted) <= 42 else quoted[:38] + "...'"


def _own_file(entry: LibraryEntry) -> bool:
    return entry.path.name == library_file_name(entry.name)


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def load_library(folder: Path) -> tuple[dict[str, LibraryEntry], list[str]]:
    """Read every ``*.json`` file in the library folder.

    A file that cannot be used (corrupt, foreign, invalid, a second file for a name already
    read) is skipped with one problem line naming the file and the field; nothing raises and
    nothing is executed. A missing folder is an empty library.

    Args:
        folder: The library folder.

    Returns:
        Entries by definition name (sorted by name, case-insensitively) and the problem lines
        (in file-name order).
    """
    folder = Path(folder)
    try:
        if not folder.exists():
            return {}, []
        if not folder.is_dir():
            return {}, [_one_line(f"{folder}: not a folder")]
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and not p.name.startswith("."))
    except OSError as exc:
        return {}, [_one_line(f"{folder}: cannot read: {exc.strerror or exc}")]
    read: list[LibraryEntry | str] = []
    for path in paths:
        try:
            read.append(read_library_file(path))
        except ProjectFileError as exc:
            read.append(_one_line(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a library file never stops the app
            read.append(_one_line(f"{path}: cannot be read ({type(exc).__name__}: {exc})"))
    entries: dict[str, LibraryEntry] = {}
    for item in read:  # a name's own file (<Name>.json) wins over copies, else the first file
        if isinstance(item, LibraryEntry):
            current = entries.get(item.name)
            if current is None or _own_file(item) and not _own_file(current):
                entries[item.name] = item
    problems = []
    for item in read:
        if isinstance(item, str):
            problems.append(item)
        elif entries[item.name] is not item:
            problems.append(_one_line(f"{item.path}: name: block definition {item.name!r} is also saved in "
                                      f"{entries[item.name].path.name}; this file is skipped"))
    return dict(sorted(entries.items(), key=lambda item: (item[0].lower(), item[0]))), problems


def delete_from_library(folder: Path, name: str) -> Path | None:
    """Delete the saved definition ``name`` (the file :func:`load_library` reads it from).

    Returns:
        The deleted file, or ``None`` when the library holds no definition of that name.

    Raises:
        OSError: The file cannot be deleted.
    """
    entries, _ = load_library(folder)
    entry = entries.get(name)
    if entry is None:
        return None
    entry.path.unlink(missing_ok=True)
    return entry.path
