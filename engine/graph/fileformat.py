"""The JSON project file: format, validation on load, atomic save.

A project file is plain JSON; opening one never executes code. The loader checks every
field and reports the first problem with its place in the file, e.g.
``lenet.json: graph.nodes[3].params.out_channels: expected an integer, got str 'x'``.
Values of the right kind but out of bounds load fine and are diagnosed on the canvas:
an invalid graph is still a document.

Layout (version 1)::

    {"format": "neural-canvas-project", "version": 1, "id": "<32 hex digits, optional>",
     "meta": {"name": ..., "family": ..., "task": ..., "description": ...},
     "graph": {"nodes": [{"id", "type", "position": [x, y], "params": {...},
                          "group" (only for imported layers: their module's path, "layer1.0"),
                          "trainable": false (only when frozen), "lr_scale": x (only when not 1)}],
               "edges": [{"source", "target", "port", "source_port" (only when not "out")}]},
     "dataset": {...}, "training": {...},
     "comments": [{"id", "text", "rect": [x, y, w, h]}]}   (optional, see engine.graph.comments)

Version 2 adds block definitions (:mod:`engine.graph.blocks`), after ``graph``::

     "blocks": {"<Name>": {"doc": "<text>", "nodes": [...], "edges": [...]}, ...}

Each definition's ``nodes`` and ``edges`` have the schema of ``graph`` and are validated the
same way; errors name the block (``blocks.Bottleneck.nodes[3].params.stride: ...``). Block
instances are nodes of type ``block`` whose ``params.definition`` names a definition.
A project *with* definitions is saved as version 2; a project without any is saved exactly as
before, as version 1, so version-1 files round-trip byte-identically and older apps still open
them. Version-1 files may not hold ``blocks``. On load a definition that contains itself
(directly or through others) is refused with the cycle named, and an instance of a definition
the file does not hold is refused in one line naming the node and the definition.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from engine.fileio import atomic_write_bytes
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary
from engine.graph.comments import CommentError, comments_from_json, comments_to_json
from engine.graph.model import MAX_COORDINATE, OUT, Edge, Graph, GraphError, Node
from engine.graph.model import TRAINING_OPTIONS, training_option_problem

#: Longest module path kept as a node's group.
MAX_GROUP_LENGTH = 512
from engine.graph.project import Project
from engine.layers import ParamKindError, get_layer
from engine.layers.block import BLOCK_TYPE

FORMAT_NAME = "neural-canvas-project"
#: The newest version this app reads, written for projects with block definitions.
FORMAT_VERSION = 2
#: The version written for projects without block definitions (unchanged since version 1).
BASE_VERSION = 1
#: Block definitions a file may hold.
MAX_BLOCKS = 10_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 100_000
MAX_SETTINGS_DEPTH = 32
_META_KEYS = ("name", "family", "task", "description")


class ProjectFileError(ValueError):
    """A project file cannot be read; the message names the file and the place in it."""


# ------------------------------------------------------------------- saving
def to_json(project: Project) -> dict[str, Any]:
    """The project as plain JSON data (version 1 without block definitions, else version 2)."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION if project.blocks else BASE_VERSION,
        **({"id": project.id} if project.id else {}),  # files without one round-trip unchanged
        "meta": dict(project.meta),
        "graph": _graph_to_json(project.graph),
        **({"blocks": blocks_to_json(project.blocks)} if project.blocks else {}),
        "dataset": project.dataset,
        "training": project.training,
        **({"search": project.search} if project.search else {}),
        **({"comments": comments_to_json(project.comments)} if project.comments else {}),
    }


def blocks_to_json(blocks: Mapping[str, BlockDefinition]) -> dict[str, Any]:
    """The ``blocks`` section: ``{"<Name>": {"doc", "nodes", "edges"}}`` in the mapping's order."""
    return {name: {"doc": d.doc, **_graph_to_json(d.graph)} for name, d in blocks.items()}


def _graph_to_json(graph: Graph) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}`` of a graph (the top level or a block definition)."""
    nodes = []
    for node in graph:
        layer = node.layer
        nodes.append({
            "id": node.id,
            "type": node.type_id,
            "position": [node.position[0], node.position[1]],
            "params": {d.name: d.to_json(node.params[d.name]) for d in layer.params},
            **({"group": node.group} if node.group else {}),
            **_training_json(node),
        })
    edges = [{"source": e.source, "target": e.target, "port": e.target_port,
              **({"source_port": e.source_port} if e.source_port != OUT else {})} for e in graph.edges]
    return {"nodes": nodes, "edges": edges}


FRAGMENT_FORMAT = "neural-canvas-nodes"


def to_json_fragment(graph: Graph, node_ids: list[str]) -> dict[str, Any]:
    """Some nodes and the edges among them, in the file format (for the clipboard)."""
    chosen = set(node_ids)
    sub = Graph()
    sub.extend((n.copy() for n in graph if n.id in chosen),
               (Edge(e.source, e.target, e.target_port, e.source_port) for e in graph.edges
                if e.source in chosen and e.target in chosen))
    data = to_json(Project(graph=sub))["graph"]
    return {"format": FRAGMENT_FORMAT, "version": BASE_VERSION, **data}


def from_json_fragment(data: Any) -> tuple[list[Node], list[Edge]]:
    """Validate a clipboard fragment like a file and return its nodes and edges.

    Raises:
        ProjectFileError: Not a fragment, or a field is wrong (the message names it).
    """
    try:
        _expect(data, dict, "(clipboard)", "an object")
        if data.get("format") != FRAGMENT_FORMAT:
            raise _FieldError("format", "the clipboard holds no Neural Canvas nodes")
        graph = _graph_from_json({k: v for k, v in data.items() if k in ("nodes", "edges")})
    except _FieldError as exc:
        raise ProjectFileError(f"clipboard: {exc.path}: {exc.message}") from None
    except RecursionError:
        raise ProjectFileError("clipboard: nested too deeply") from None
    return list(graph), graph.edges


def dumps(project: Project) -> str:
    """Serialize ``project`` to the file text (stable order, two-space indent).

    Lists of plain values (shapes, positions, kernel sizes) stay on one line for readable diffs.
    """
    return format_json(to_json(project))


def format_json(data: Any) -> str:
    """JSON text of ``data`` as project files are written (two-space indent, lists of plain
    values on one line, a final newline)."""
    return _format(data, "") + "\n"


def _format(value: Any, indent: str) -> str:
    """JSON text like ``json.dumps(indent=2)`` but with lists of scalars on one line."""
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_format(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(_ENCODER.encode(v) for v in value) + "]"
        return "[\n" + ",\n".join(inner + _format(v, inner) for v in value) + "\n" + indent + "]"
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(allow_nan=False)


def save_project(project: Project, path: str | os.PathLike[str]) -> None:
    """Write ``project`` atomically: temp file in the same folder, fsync, rename.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    atomic_write_bytes(path, dumps(project).encode("utf-8"))


# ------------------------------------------------------------------ loading
def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate a project file.

    Raises:
        ProjectFileError: The file is missing, unreadable, not JSON, or not a valid project.
    """
    target = Path(path)
    return loads(read_text_file(target, "project file"), source=str(target))


def read_text_file(path: Path, kind: str) -> str:
    """The UTF-8 text of ``path`` (at most :data:`MAX_FILE_BYTES`), for a ``kind`` ("project file").

    Raises:
        ProjectFileError: Missing, too big, a folder, unreadable, or not UTF-8 (one line naming the file).
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ProjectFileError(f"{path}: file is {size // 2**20} MiB; {kind}s are at most "
                                   f"{MAX_FILE_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProjectFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ProjectFileError(f"{path}: is a folder, not a {kind}") from None
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(f"{path}: not a text file (invalid UTF-8 at byte {exc.start})") from None


def loads(text: str, source: str = "<text>") -> Project:
    """Parse and validate project file text.

    Args:
        text: The file content.
        source: File name used in error messages.

    Raises:
        ProjectFileError: With ``source``, the place in the file and what is wrong.
    """
    return _validated(from_json, parse_json(text, source), source, "invalid project file")


def parse_json(text: str, source: str = "<text>", what: str = "project file") -> Any:
    """Parse JSON text as strictly as a project file: no NaN or Infinity, no number too large
    for a float, nesting within the parser's depth.

    Args:
        text: The file content.
        source: File name used in error messages.
        what: What the file is, in the message about nesting (``invalid project file: ...``).

    Raises:
        ProjectFileError: With ``source`` and the line and column of the problem.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise ProjectFileError(f"{source}: {_where(text, _first_bad_number(text))}invalid JSON: {exc}") from None
    except RecursionError:
        raise ProjectFileError(f"{source}: {_where(text, _first_too_deep(text))}invalid {what}: JSON nested "
                               f"more than {JSON_DEPTH_SHOWN} levels deep") from None


#: JSON tokens that matter for locating a problem: strings (skipped whole), the constants JSON
#: does not allow, numbers, and brackets.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d[\d.eE+-]*|[\[\]{}]')
#: The nesting depth named when a file is nested too deeply for the parser.
JSON_DEPTH_SHOWN = 500


def _where(text: str, index: int | None) -> str:
    """``"line L, column C: "`` for a character index of ``text`` (``""`` when unknown)."""
    if index is None:
        return ""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}: "


def _first_bad_number(text: str) -> int | None:
    """Index of the first NaN / Infinity constant or number too large for a float."""
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] in "NI-" and token.lstrip("-") in ("NaN", "Infinity"):
            return match.start()
        if token[0] in "-0123456789":
            try:
                if not math.isfinite(float(token)):
                    return match.start()
            except ValueError:
                continue
    return None


def _first_too_deep(text: str) -> int | None:
    """Index of the first bracket nested deeper than :data:`JSON_DEPTH_SHOWN`."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > JSON_DEPTH_SHOWN:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


def _depth(value: Any) -> int:
    """Nesting depth of JSON data, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large for a number")
    return value


def _key(key: Any) -> str:
    """A key as it may appear in a one-line message (quoted and shortened when unusual)."""
    text = str(key)
    if text.isidentifier() and len(text) <= 40:
        return text
    quoted = json.dumps(text)
    return quoted if len(quoted) <= 42 else quoted[:38] + '..."'



class _FieldError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _expect(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _FieldError(path, f"expected {what}, got {_kind_name(value)}")
    return value


def _kind_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
             int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def from_json(data: Any) -> Project:
    """Validate parsed JSON data and build the project.

    Raises:
        _FieldError: Internal; :func:`loads` turns it into :class:`ProjectFileError`.
    """
    _expect(data, dict, "(top level)", "an object")
    if data.get("format") != FORMAT_NAME:
        raise _FieldError("format", f"not a Neural Canvas project (expected \"{FORMAT_NAME}\")")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _FieldError("version", f"expected a positive integer, got {_kind_name(version)}")
    if version > FORMAT_VERSION:
        raise _FieldError("version", f"format version {version} was written by a newer Neural Canvas; this "
                                     f"version reads up to {FORMAT_VERSION}: update the app to open it")
    known = {"format", "version", "id", "meta", "graph", "blocks", "dataset", "training", "search", "comments"}
    for key in data:
        if key not in known:
            raise _FieldError(_key(key), "unknown section")
    meta = _expect(data.get("meta", {}), dict, "meta", "an object")
    for key, value in meta.items():
        if key not in _META_KEYS:
            raise _FieldError(f"meta.{_key(key)}", f"unknown field (known: {', '.join(_META_KEYS)})")
        _expect(value, str, f"meta.{_key(key)}", "a string")
    dataset = _expect(data.get("dataset", {}), dict, "dataset", "an object")
    training = _expect(data.get("training", {}), dict, "training", "an object")
    search = _expect(data.get("search", {}), dict, "search", "an object")
    for section, value in (("dataset", dataset), ("training", training), ("search", search)):
        if _depth(value) > MAX_SETTINGS_DEPTH:
            raise _FieldError(section, f"nested more than {MAX_SETTINGS_DEPTH} levels deep")
    graph = _graph_from_json(_expect(data.get("graph", {}), dict, "graph", "an object"))
    if "blocks" in data and version < FORMAT_VERSION:
        raise _FieldError("blocks", f"block definitions need format version {FORMAT_VERSION} (the file says "
                                    f"{version})")
    blocks = _blocks_from_json(data.get("blocks", {}))
    _check_block_uses(graph, "graph", blocks)
    try:
        comments = comments_from_json(data.get("comments", []))
    except CommentError as exc:
        raise _FieldError(exc.path, exc.message) from None
    return Project(graph=graph, dataset=dataset, training=training, meta=dict(meta),
                   id=_project_id(data.get("id", "")), comments=comments, blocks=blocks, search=search)


_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _project_id(value: Any) -> str:
    """The optional ``id``: 1 to 64 letters, digits, ``-`` or ``_`` (new ids are 32 hex digits)."""
    if value == "":
        return ""
    if not isinstance(value, str) or not _PROJECT_ID.fullmatch(value):
        shown = _kind_name(value) if not isinstance(value, str) else _key(value)
        raise _FieldError("id", f"expected up to 64 letters, digits, '-' or '_', got {shown}")
    return value


def _graph_from_json(data: dict[str, Any], where: str = "graph", extra: tuple[str, ...] = ()) -> Graph:
    """Validate ``{"nodes", "edges"}`` (at ``where``: ``graph`` or ``blocks.<Name>``) into a graph."""
    for key in data:
        if key not in ("nodes", "edges", *extra):
            raise _FieldError(f"{where}.{_key(key)}", "unknown field")
    nodes = _expect(data.get("nodes", []), list, f"{where}.nodes", "a list")
    edges = _expect(data.get("edges", []), list, f"{where}.edges", "a list")
    if len(nodes) > MAX_NODES:
        raise _FieldError(f"{where}.nodes", f"{len(nodes)} nodes; at most {MAX_NODES} are supported")
    graph = Graph()
    for index, raw in enumerate(nodes):
        path = f"{where}.nodes[{index}]"
        node = _node_from_json(raw, path)
        try:
            graph.add_node(node)
        except GraphError as exc:
            raise _FieldError(f"{path}.id", str(exc)) from None
    for index, raw in enumerate(edges):
        path = f"{where}.edges[{index}]"
        _expect(raw, dict, path, "an object")
        for key in raw:
            if key not in ("source", "target", "port", "source_port"):
                raise _FieldError(f"{path}.{_key(key)}", "unknown field")
        fields = [_expect(raw.get(k), str, f"{path}.{k}", "a string") for k in ("source", "target", "port")]
        source_port = _expect(raw.get("source_port", OUT), str, f"{path}.source_port", "a string")
        problem = graph.connection_problem(*fields, source_port)
        if problem:
            raise _FieldError(path, problem)
        graph.add_edge(Edge(*fields, source_port))
    return graph


def blocks_from_json(data: Any, source: str = "<text>") -> BlockLibrary:
    """Validate a ``blocks`` section on its own, exactly as in a project file (a block library file).

    Raises:
        ProjectFileError: ``<source>: blocks.<Name>.<field>: <problem>`` (a cycle named, an
            instance of a definition the section does not hold, any field of the wrong kind).
    """
    return _validated(_blocks_from_json, data, source, "blocks")


def _validated(read: Any, data: Any, source: str, what: str) -> Any:
    """``read(data)``, its field errors as one-line :class:`ProjectFileError` led by ``source``."""
    try:
        return read(data)
    except _FieldError as exc:
        raise ProjectFileError(f"{source}: {exc.path}: {exc.message}") from None
    except RecursionError:
        raise ProjectFileError(f"{source}: {what}: nested too deeply") from None


def _blocks_from_json(data: Any) -> BlockLibrary:
    """Validate the ``blocks`` section into a library (no cycles, no missing definitions)."""
    _expect(data, dict, "blocks", "an object")
    if len(data) > MAX_BLOCKS:
        raise _FieldError("blocks", f"{len(data)} block definitions; at most {MAX_BLOCKS} are supported")
    library = BlockLibrary()
    for name, raw in data.items():
        where = f"blocks.{_key(name)}"
        _expect(raw, dict, where, "an object")
        doc = _expect(raw.get("doc", ""), str, f"{where}.doc", "a string")
        graph = _graph_from_json(raw, where, extra=("doc",))
        try:
            library.add(BlockDefinition(name, graph, doc))
        except BlockError as exc:
            raise _FieldError(where, str(exc)) from None
    cycle = library.cycle()
    if cycle:
        raise _FieldError(f"blocks.{_key(cycle[0])}", f"block definition {cycle[0]!r} contains itself: "
                                                      f"{' -> '.join(cycle)}")
    for name, definition in library.items():
        _check_block_uses(definition.graph, f"blocks.{_key(name)}", library)
    return library


def _check_block_uses(graph: Graph, where: str, library: BlockLibrary) -> None:
    """Refuse an instance in ``graph`` of a definition ``library`` does not hold (one line naming both)."""
    for index, node in enumerate(graph):
        if node.type_id == BLOCK_TYPE and node.params["definition"] not in library:
            known = f" (it defines {', '.join(sorted(library))})" if library else " (it defines none)"
            raise _FieldError(f"{where}.nodes[{index}].params.definition",
                              f"node {node.id} uses block definition {node.params['definition']!r}, which the file "
                              f"does not define{known}")


def _node_from_json(raw: Any, path: str) -> Node:
    _expect(raw, dict, path, "an object")
    for key in raw:
        if key not in ("id", "type", "position", "params", "group", *TRAINING_OPTIONS):
            raise _FieldError(f"{path}.{_key(key)}", "unknown field")
    group = _expect(raw.get("group", ""), str, f"{path}.group", "a string")
    if len(group) > MAX_GROUP_LENGTH or not group.isprintable():
        raise _FieldError(f"{path}.group", f"expected a module path of at most {MAX_GROUP_LENGTH} printable characters")
    node_id = _expect(raw.get("id"), str, f"{path}.id", "a string")
    type_id = _expect(raw.get("type"), str, f"{path}.type", "a string")
    position = _expect(raw.get("position", [0, 0]), list, f"{path}.position", "a list [x, y]")
    if len(position) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
                                      abs(v) <= MAX_COORDINATE for v in position):
        raise _FieldError(f"{path}.position", f"expected two numbers [x, y] within +-{MAX_COORDINATE:g}")
    params = _expect(raw.get("params", {}), dict, f"{path}.params", "an object")
    try:
        layer = get_layer(type_id)
    except KeyError:
        raise _FieldError(f"{path}.type", f"unknown layer type {_key(type_id)}") from None
    values = {}
    for name, value in params.items():
        try:
            decl = layer.param(name)
        except KeyError:
            raise _FieldError(f"{path}.params.{_key(name)}", f"{layer.title} has no such parameter") from None
        try:
            values[name] = decl.coerce(value)
        except ParamKindError as exc:
            raise _FieldError(f"{path}.params.{name}", str(exc)) from None
    options = _training_from_json(raw, path)
    return Node(node_id, type_id, values, (float(position[0]), float(position[1])), group, **options)


def _training_json(node: Node) -> dict[str, Any]:
    """A node's training options that differ from the defaults (old files round-trip unchanged)."""
    return {name: getattr(node, name) for name, default in TRAINING_OPTIONS.items() if getattr(node, name) != default}


def _training_from_json(raw: dict[str, Any], path: str) -> dict[str, Any]:
    """``trainable`` and ``lr_scale`` of a node object, validated (one line naming the field)."""
    options = {}
    for name, default in TRAINING_OPTIONS.items():
        value = raw.get(name, default)
        problem = training_option_problem(name, value)
        if problem:
            raise _FieldError(f"{path}.{name}", problem)
        options[name] = value if name == "trainable" else float(value)
    return options


#: Suffix of the weights file that may sit beside a project file (``lenet.json`` + ``lenet.safetensors``).
WEIGHTS_SUFFIX = ".safetensors"


def sibling_weights(project_path: str | os.PathLike[str]) -> Path | None:
    """The weights file that belongs to a project file (``x.json`` -> ``x.safetensors``), if any.

    Importers and ``export --format safetensors`` write it; training starts from it
    (``use_project_weights``). Reading it needs torch: :mod:`engine.compile.weights`.

    Args:
        project_path: The project file.

    Returns:
        The existing sibling weights file, or ``None``.
    """
    candidate = Path(project_path).with_suffix(WEIGHTS_SUFFIX)
    return candidate if candidate.is_file() else None
