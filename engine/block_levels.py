"""Levels of a graph with blocks: the inside of one block instance, as the canvas shows it.

A *level* is the way down from the top-level graph to the inside of one instance: a tuple of
segments, each the id of an instance in the graph above, followed by ``.k`` for copy ``k`` of
an instance that repeats (``("layer2.0", "downsample")``: instance ``downsample`` inside the
first copy of ``layer2``). The empty tuple is the top level. Joined with ``/`` a level is the
*scope* of the paths inside it (:mod:`engine.graph.flatten`), so a layer ``conv1`` on that
level has the path ``layer2.0/downsample/conv1``.

:func:`resolve_level` finds the graph a level shows (its definition's graph, which every
instance of the definition shares) and :func:`level_analysis` the shapes, counts and problems
*of that one instance*: its Input nodes carry what the instance actually receives, its layers
the results of their flat copies, nested instances their totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import networkx as nx

from engine.block_shapes import BlockAnalysis, instance_info
from engine.graph.blocks import BlockDefinition, BlockLibrary
from engine.graph.flatten import Flattened
from engine.graph.model import Graph
from engine.layers.block import BLOCK_TYPE
from engine.shapes import Analysis, Diagnostic, NodeInfo

Level = tuple[str, ...]


@dataclass(frozen=True)
class LevelView:
    """Where a level leads.

    Args:
        graph: The graph shown at the level (the top-level graph, or a definition's graph).
        definition: The definition shown (``None`` at the top level).
        scope: The level's segments joined by ``/`` (empty at the top).
        instance_path: The path of the instance opened last (without its copy index).
        copy: Which copy of that instance (0 when it does not repeat).
        titles: Per segment, ``"<segment> (<definition>)"``, for a breadcrumb.
    """

    graph: Graph
    definition: BlockDefinition | None
    scope: str
    instance_path: str
    copy: int
    titles: tuple[str, ...]


def split_segment(segment: str) -> tuple[str, int]:
    """``"layer2.1"`` -> ``("layer2", 1)``; ``"stem"`` -> ``("stem", 0)``."""
    node_id, _, copy = segment.partition(".")
    return node_id, int(copy) if copy.isdigit() else 0


def segment_of(node_id: str, repeat: int, copy: int = 0) -> str:
    """The level segment that opens copy ``copy`` of instance ``node_id`` (``layer2.0`` when it repeats)."""
    return f"{node_id}.{copy}" if repeat > 1 else node_id


def resolve_level(top: Graph, library: BlockLibrary, level: Sequence[str]) -> LevelView | None:
    """The graph and definition ``level`` shows, or ``None`` when it no longer leads anywhere
    (an instance was removed, its definition is missing, its repeat shrank below the copy)."""
    graph, definition, titles, scope_parts = top, None, [], []
    instance_path, copy = "", 0
    for segment in level:
        node_id, copy = split_segment(segment)
        node = graph.nodes.get(node_id)
        if node is None or node.type_id != BLOCK_TYPE:
            return None
        definition = library.get(node.params["definition"])
        repeat = node.params["repeat"]
        if definition is None or copy >= repeat or segment != segment_of(node_id, repeat, copy):
            return None
        instance_path = "/".join([*scope_parts, node_id])
        scope_parts.append(segment)
        titles.append(f"{segment} ({definition.name})")
        graph = definition.graph
    return LevelView(graph, definition, "/".join(scope_parts), instance_path, copy, tuple(titles))


def enclosing_definitions(top: Graph, library: BlockLibrary, level: Sequence[str]) -> list[str]:
    """The names of the definitions a level lies inside, outermost first (empty at the top)."""
    names, graph = [], top
    for segment in level:
        node = graph.nodes.get(split_segment(segment)[0])
        definition = library.get(node.params["definition"]) if node is not None and node.type_id == BLOCK_TYPE else None
        if definition is None:
            break
        names.append(definition.name)
        graph = definition.graph
    return names


def nesting_problem(definitions: Mapping[str, BlockDefinition], name: str, enclosing: Sequence[str]) -> str | None:
    """Why an instance of ``name`` cannot be put inside the definitions ``enclosing`` (it is one of
    them, or uses one of them at some depth: the definition would contain itself), else ``None``."""
    if not enclosing:
        return None
    seen, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current in enclosing:
            via = "" if current == name else f" (through {current})"
            return (f"block {name} cannot go inside block {enclosing[-1]}: {name} would contain itself{via}; "
                    "go up to a level outside it")
        if current in seen or current not in definitions:
            continue
        seen.add(current)
        stack += [used for _, used in definitions[current].uses()]
    return None


def level_analysis(result: BlockAnalysis, view: LevelView) -> Analysis:
    """The analysis of the graph a level shows, for the instance the level opened.

    At the top level this is ``result.analysis``. Inside an instance, each layer's entry is that
    of its flat copy, each nested instance's its totals (:func:`instance_info`), each Input node's
    output the tensor the instance receives on that port; diagnostics name the level's node ids.
    """
    if view.definition is None:
        return result.analysis
    flat, flat_analysis = result.flat, result.flat_analysis
    infos = flat_analysis.nodes
    prefix = view.scope + "/"
    ids_by_path = {path: flat_id for flat_id, path in flat.paths.items() if path.startswith(prefix)}
    owned: dict[str, list[str]] = {}
    for path, flat_id in ids_by_path.items():
        child = path[len(prefix):].split("/", 1)[0].split(".", 1)[0]
        owned.setdefault(child, []).append(flat_id)
    instance = flat.instances.get(view.instance_path)
    received = instance.copy_inputs[view.copy] if instance is not None and view.copy < len(instance.copy_inputs) else []
    ports = view.definition.inputs
    nodes: dict[str, NodeInfo] = {}
    in_model: set[str] = set()
    for node in view.graph:
        path = prefix + node.id
        role = node.layer.role
        if role == "input":
            index = ports.index(node.id) if node.id in ports else -1
            source = received[index] if 0 <= index < len(received) else None
            spec = infos[source[0]].output_of(source[1]) if source is not None and source[0] in infos else None
            nodes[node.id] = NodeInfo(spec)
            in_model.add(node.id)
        elif role == "output":
            nodes[node.id] = NodeInfo(None)
            in_model.add(node.id)
        elif node.type_id == BLOCK_TYPE and path in flat.instances:
            inside = owned.get(node.id, [])
            leads = any(f in flat_analysis.in_model for f in inside)
            nodes[node.id] = instance_info(view.graph, node.id, flat.instances[path], inside, flat,
                                           flat_analysis, leads or not inside)
            if leads:
                in_model.add(node.id)
        else:
            nodes[node.id] = _layer_info(node.id, ids_by_path.get(path), flat, infos)
            if ids_by_path.get(path) in flat_analysis.in_model:
                in_model.add(node.id)
    return Analysis(nodes, [], frozenset(in_model), _order(view.graph))


def _layer_info(node_id: str, flat_id: str | None, flat: Flattened, infos: dict[str, NodeInfo]) -> NodeInfo:
    """A layer's entry: its flat copy's, with diagnostics naming ``node_id``."""
    info = infos.get(flat_id) if flat_id is not None else None
    if info is None:
        return NodeInfo(None)
    if flat_id in flat.errors:
        return NodeInfo(None, diagnostics=(Diagnostic(node_id, "error", flat.errors[flat_id]),))
    if not info.diagnostics:
        return info
    diagnostics = tuple(Diagnostic(node_id, d.severity, d.message, d.field) for d in info.diagnostics)
    return NodeInfo(info.output, info.parameters, info.flops, diagnostics, info.port_outputs)


def _order(graph: Graph) -> list[str]:
    """Topological order of ``graph``'s nodes (document order for what lies on a cycle)."""
    try:
        return list(nx.topological_sort(graph.nx_graph()))
    except nx.NetworkXUnfeasible:
        return list(graph.nodes)
