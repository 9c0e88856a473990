"""An imported model's module hierarchy as blocks: definitions shared by identical modules.

Both importers record, per canvas node, the dotted path of the module that made it
(:attr:`Node.group`, ``layer1.0``) and, per module path, the module's class
(``tests.zoo.resnet.Bottleneck``, ``torch.nn.modules.container.Sequential``; torch.fx reads
``named_modules()``, ONNX the dynamo exporter's ``pkg.torch.onnx.class_hierarchy``).
:func:`blocks_from_modules` turns the flat graph into blocks with
:func:`engine.graph.grouping.plan_group`, deepest modules first:

- a module holding at least two layers (or blocks) becomes a block instance, its definition
  named after its class (``Bottleneck``; ``Bottleneck2`` for a structurally different one);
- an ``nn.Sequential`` becomes one only when it holds blocks (a stage: ``layer1`` -> ``Layer1``,
  named from its path); a Sequential of plain layers, a ``ModuleList`` and a ``ModuleDict`` stay
  inline (their layers belong to the enclosing module);
- modules with the same inside (layer types, parameters, wiring; ids compared after renaming)
  share one definition;
- at the top, the plain layers before the first block (two or more) become a ``Stem`` block and
  those after the last block a ``Head`` block.

Inside a definition, ids are relative to the module (``conv1``, ``downsample_0``; a child
called ``0`` is named after its class, ``bottleneck_0``). A module that cannot become a block
(a selection that an outside path leaves and re-enters) stays inline. Every layer keeps its
weights: :attr:`ModuleBlocks.origins` maps each flat id (as :func:`engine.graph.flatten.flatten`
names inner layers) to the imported node it came from.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass, field
from typing import Mapping

import networkx as nx

from engine.compile.importers.builder import sanitize_id
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, instance_node
from engine.graph.flatten import flatten
from engine.graph.grouping import GroupPlan, apply_group, default_name, plan_group, port_input
from engine.graph.layout import layered_layout
from engine.graph.model import Edge, Graph, Node
from engine.layers.block import BLOCK_TYPE
from engine.shapes import Analysis

_CONTAINERS = {"torch.nn.modules.container.Sequential": "sequential",
               "torch.nn.modules.container.ModuleList": "list",
               "torch.nn.modules.container.ModuleDict": "dict"}


@dataclass
class _Instance:
    """What one instance made here stands for: its definition's inner ids -> the imported node (an
    id) or nested instance each came from, and per output port the imported (node, port) it returns."""

    definition: str
    label: str
    inner: dict[str, Member] = field(default_factory=dict)
    outputs: dict[str, tuple[str, str]] = field(default_factory=dict)


Member = str | _Instance


@dataclass
class ModuleBlocks:
    """The result of :func:`blocks_from_modules`.

    Args:
        graph: The top level (laid out).
        library: The definitions (laid out).
        origins: Flat id (flatten's) -> id of the imported node it came from.
    """

    graph: Graph
    library: BlockLibrary
    origins: dict[str, str]


def blocks_from_modules(graph: Graph, classes: Mapping[str, str], analysis: Analysis | None = None) -> ModuleBlocks:
    """Turn the module paths of an imported ``graph`` into blocks (see the module docstring).

    Args:
        graph: The flat imported graph (not changed); its nodes' ``group`` are module paths.
        classes: Module path -> class (``module.QualName``); unknown paths count as custom modules.
        analysis: Shapes of ``graph``: the definitions' Input nodes declare what they receive.

    Returns:
        The top level, the definitions and the flat ids' origins.
    """
    return _Blocks(graph, classes, analysis).run()


class _Blocks:
    def __init__(self, graph: Graph, classes: Mapping[str, str], analysis: Analysis | None) -> None:
        self.work = graph.copy()
        self.classes = classes
        self.analysis = analysis
        self.library = BlockLibrary()
        self.members: dict[str, Member] = {node.id: node.id for node in self.work}
        self.shared: dict[tuple[object, ...], str] = {}

    def run(self) -> ModuleBlocks:
        paths = {".".join(parts[:i]) for node in self.work if node.group
                 for parts in [node.group.split(".")] for i in range(1, len(parts) + 1)}
        first = {}
        for index, node in enumerate(self.work):
            for path in paths:
                if path not in first and _inside(node.group, path):
                    first[path] = index
        ordered = sorted(paths, key=lambda p: (-p.count("."), first.get(p, 0), p))
        for path in ordered:
            if "." in path:
                self._module(path)
        top = [path for path in ordered if "." not in path and self._wanted(path)]
        if len(top) == 1 and _CONTAINERS.get(self.classes.get(top[0], "")) == "sequential":
            top = []  # one Sequential holding the whole model (MobileNet's features): show its parts
        for path in top:
            self._module(path)
        self._ends()
        self.work.move_nodes(layered_layout(self.work, max_columns=8, direction="auto"))
        for definition in self.library.values():
            definition.graph.move_nodes(layered_layout(definition.graph, max_columns=8, direction="auto"))
        return ModuleBlocks(self.work, self.library, self._origins())

    # ----------------------------------------------------------------------- one module
    def _wanted(self, path: str) -> list[str]:
        """The nodes of the module at ``path`` when it should become a block, else []."""
        kind = _CONTAINERS.get(self.classes.get(path, ""))
        members = [n.id for n in self.work if _inside(n.group, path)]
        if kind in ("list", "dict") or len(members) < 2:
            return []
        if kind == "sequential" and not any(self.work.nodes[m].type_id == BLOCK_TYPE for m in members):
            return []
        return members

    def _module(self, path: str) -> None:
        """Make the module at ``path`` a block where it should be one."""
        members = self._wanted(path)
        if members:
            cls = self.classes.get(path, "")
            custom = bool(cls) and cls not in _CONTAINERS
            name = (_identifier(cls.rpartition(".")[2]) if custom else "") or _camel(path)
            self._group(members, path, name, _snake(name).strip("_") or "block" if custom else
                        _CONTAINERS.get(cls, "block"))

    def _group(self, members: list[str], path: str, base: str, label: str) -> bool:
        """Replace ``members`` (the module at ``path``; "" for Stem and Head) with an instance of a
        definition named ``base`` (or a number after it), or of an identical one; ``label`` names the
        instance where its path cannot (``0`` -> ``bottleneck_0``)."""
        try:
            plan = plan_group(self.work, members, self.library, default_name(self.library, base))
        except BlockError:
            return False  # stays inline
        source = plan.definition.graph
        ports_in, ports_out = plan.definition.inputs, plan.definition.outputs
        names: dict[str, str] = {}
        for node in source:
            if node.id not in ports_in and node.id not in ports_out:
                member = self.members[node.id]
                fallback = member.label if isinstance(member, _Instance) else node.layer.id_prefix
                names[node.id] = _unique(_local(node.id, path, fallback or "node"), names.values())
        for port in (*ports_in, *ports_out):
            names[port] = _unique("in" if port in ports_in else "out", names.values(), numbered=True)
        feeds = {e.target_port: (e.source, e.source_port) for e in plan.add_edges if e.target == plan.instance.id}
        inner = Graph()
        for node in source:
            if node.id in ports_in:
                inner.add_node(port_input(names[node.id], self._spec(*feeds[node.id]), node.position))
            elif node.id in ports_out:
                inner.add_node(Node(names[node.id], "output", {}, node.position))
            else:
                inner.add_node(node.copy(id=names[node.id], group=""))
        for edge in source.edges:
            inner.add_edge(Edge(names[edge.source], names[edge.target], edge.target_port, edge.source_port))
        record = _Instance("", label)
        key = _structure(inner)
        if key in self.shared:
            definition = self.library[self.shared[key]]
            pairs = zip(definition.graph, inner)
        else:
            definition = BlockDefinition(plan.definition.name, inner)
            self.library.add(definition)
            self.shared[key] = definition.name
            pairs = zip(inner, inner)
        record.definition = definition.name
        by_new = {new: old for old, new in names.items()}
        for kept, made in pairs:
            old = by_new[made.id]
            if old in self.members and old not in ports_in and old not in ports_out:
                record.inner[kept.id] = self.members[old]
        for port in ports_out:
            edge = next(iter(source.incoming(port).values()))
            record.outputs[names[port]] = self._origin(edge.source, edge.source_port)
        node_id = _unique(sanitize_id(path, label) if path else label, self.work.nodes.keys() - set(members))
        instance = instance_node(node_id, definition, 1, plan.instance.position)
        instance.group = path.rpartition(".")[0]
        edges = [Edge(e.source, node_id, names[e.target_port], e.source_port) if e.target == plan.instance.id
                 else Edge(node_id, e.target, e.target_port, names[e.source_port]) for e in plan.add_edges]
        apply_group(self.work, None, GroupPlan(definition, instance, plan.remove_edges, plan.remove_nodes, edges))
        for member in members:
            del self.members[member]
        self.members[node_id] = record
        return True

    def _ends(self) -> None:
        """``Stem``: the plain layers before the first block; ``Head``: those after the last one."""
        graph = self.work
        order = {node_id: index for index, node_id in enumerate(graph.nodes)}
        try:
            topo = list(nx.lexicographical_topological_sort(graph.nx_graph(), key=order.__getitem__))
        except nx.NetworkXUnfeasible:
            return
        blocks = [i for i, node_id in enumerate(topo) if graph.nodes[node_id].type_id == BLOCK_TYPE]
        if not blocks:
            return

        def plain(ids: list[str]) -> list[str]:
            return [n for n in ids if graph.nodes[n].type_id != BLOCK_TYPE
                    and graph.nodes[n].layer.role not in ("input", "output")]

        stem, head = plain(topo[:blocks[0]]), plain(topo[blocks[-1] + 1:])
        if len(stem) >= 2:
            self._group(stem, "", "Stem", "stem")
        if len(head) >= 2:
            self._group(head, "", "Head", "head")

    # -------------------------------------------------------------------------- origins
    def _origin(self, node_id: str, port: str) -> tuple[str, str]:
        """The imported (node, port) behind output ``port`` of ``node_id`` in the working graph."""
        member = self.members[node_id]
        return member.outputs[port] if isinstance(member, _Instance) else (member, port)

    def _spec(self, node_id: str, port: str):  # type: ignore[no-untyped-def]
        if self.analysis is None:
            return None
        source, source_port = self._origin(node_id, port)
        info = self.analysis.nodes.get(source)
        return info.output_of(source_port) if info is not None else None

    def _origins(self) -> dict[str, str]:
        flat = flatten(self.work, self.library)
        origins = {}
        for flat_id, path in flat.paths.items():
            member: Member = self.members[path.split("/")[0]]
            for part in path.split("/")[1:]:
                assert isinstance(member, _Instance)
                member = member.inner[part]
            assert isinstance(member, str)
            origins[flat_id] = member
        return origins


def _inside(group: str, path: str) -> bool:
    return group == path or group.startswith(path + ".")


def _local(node_id: str, path: str, fallback: str) -> str:
    """``layer1_0_conv1`` inside module ``layer1.0`` -> ``conv1``; a name that would start with a digit
    gets ``fallback`` in front (``0`` -> ``bottleneck_0``)."""
    prefix = sanitize_id(path) + "_" if path else ""
    rest = node_id[len(prefix):] if prefix and node_id.startswith(prefix) and len(node_id) > len(prefix) else node_id
    return sanitize_id(rest, fallback)


def _unique(name: str, taken: object, numbered: bool = False) -> str:
    """``name``, else ``name_2``, ``name_3``, ... (``numbered``: ``name2``, as port ids are) not in ``taken``."""
    used = set(taken)  # type: ignore[call-overload]
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}{n}" if numbered else f"{name[:60]}_{n}"
    return candidate


def _identifier(text: str) -> str:
    """A definition name from a class name (letters, digits, _; not starting with a digit), or ""."""
    name = re.sub(r"[^A-Za-z0-9_]", "", text)[:56]
    return f"Block{name}"[:56] if name[:1].isdigit() else name


def _camel(path: str) -> str:
    """``layer1`` -> ``Layer1``; ``encoder.layers`` -> ``EncoderLayers``; ``features.3`` -> ``Features_3``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    name = "".join(f"_{w}" if w[0].isdigit() else w[:1].upper() + w[1:] for w in words).lstrip("_")
    name = _identifier(name) or "Block"
    return f"{name}Block" if keyword.iskeyword(name) else name


def _snake(name: str) -> str:
    """``TransformerBlock`` -> ``transformer_block``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _structure(graph: Graph) -> tuple[object, ...]:
    """What makes two insides the same block: layer types, parameters, training options and wiring,
    in document order, ids aside (port ids, which name the instance's ports, included)."""
    index = {node.id: i for i, node in enumerate(graph)}
    nodes = tuple((n.type_id, n.id if n.layer.role in ("input", "output") else "",
                   "" if n.layer.role == "input" else json.dumps(n.params, sort_keys=True, default=list),
                   n.trainable, n.lr_scale) for n in graph)
    edges = tuple(sorted((index[e.source], e.source_port, index[e.target], e.target_port) for e in graph.edges))
    return nodes, edges
