"""Expand block instances into ordinary layers: the graph that analysis and compile see.

Paths and ids. A layer inside an instance is named by its *path*: the ids of the enclosing
instances and its own id joined by ``/``, each instance that repeats followed by the copy
index (``layer1.0/conv1``: layer ``conv1`` of copy 0 of instance ``layer1``; nesting gives
``stage2/block1/conv2``). Its flat node id is the path with ``/`` written ``__`` and ``.``
written ``_`` (``layer1_0__conv1``); top-level layers keep their ids. An id that would be
longer than 64 characters or is already taken gets a short hash or a number at the end, so
ids are always valid and unique; :attr:`Flattened.paths` maps every flat id to its path.

A frozen instance (``trainable`` off) freezes every layer inside it, and an instance's
learning-rate multiplier multiplies those of the layers inside it.

Inner Input nodes vanish (their consumers read what feeds the instance's port) and so do
inner Output nodes (what feeds them leaves the instance's port); copy ``k`` of a repeated
instance reads copy ``k - 1``'s outputs, in port order. Everything else is a copy of the
inner node with the same parameters.

With ``strict=True`` (compile) an instance that cannot be expanded raises :class:`BlockError`
with one line; with ``strict=False`` (analysis, which never raises) the instance stays in the
flat graph as a stand-in node and :attr:`Flattened.errors` says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from engine.graph.blocks import BlockDefinition, BlockError, port_problem
from engine.graph.model import LR_SCALE_MAX, Edge, Graph, Node
from engine.layers.block import BLOCK_TYPE

#: An output: (flat node id, output port), or a virtual one ("<copy path>>in" / ">out", port)
#: that stands for an instance copy's boundary until it is resolved.
Source = tuple[str, str]
MAX_ID = 64


@dataclass
class InstanceInfo:
    """Where one block instance (at any depth) ended up in the flat graph.

    Args:
        path: The instance's path (``stage2/block1``).
        definition: Name of its definition.
        copy_inputs: Per copy, the flat source of each input port (``None``: not connected).
        outputs: The flat source of each output port of the last copy (``None``: not connected).
    """

    path: str
    definition: str
    copy_inputs: list[list[Source | None]] = field(default_factory=list)
    outputs: list[Source | None] = field(default_factory=list)


@dataclass
class Flattened:
    """The result of :func:`flatten`; unpacks as ``graph, paths``.

    Args:
        graph: The flat graph (ordinary layers, Inputs and Outputs of the top level).
        paths: Flat node id -> path (``layer1.0/conv1``; a top-level node's path is its id).
        instances: Instance path -> :class:`InstanceInfo`, for every instance at every depth.
        copies: ``(definition name, inner node id)`` -> the flat ids copied from that node,
            so an edit of one parameter inside a definition can be applied to every copy.
        errors: Flat id of a stand-in (an instance that could not be expanded) -> why.
    """

    graph: Graph
    paths: dict[str, str]
    instances: dict[str, InstanceInfo] = field(default_factory=dict)
    copies: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[object]:
        return iter((self.graph, self.paths))

    @staticmethod
    def top_level(path: str) -> str:
        """The id of the top-level node a path lies in (``layer1.0/conv1`` -> ``layer1``)."""
        return path.split("/", 1)[0].split(".", 1)[0]


def flatten(graph: Graph, definitions: Mapping[str, BlockDefinition], strict: bool = True) -> Flattened:
    """Expand every block instance of ``graph`` (recursively, copies included) into layers.

    Args:
        graph: A graph that may hold block instances.
        definitions: Block definitions by name.
        strict: Raise on an instance that cannot be expanded (else keep a stand-in, see above).

    Returns:
        The flat graph, the paths and the bookkeeping of :class:`Flattened`.

    Raises:
        BlockError: (strict) A definition containing itself (the cycle named), an instance of a
            missing definition, ports that do not match the definition, a repeat that cannot
            chain, or invalid instance parameters; one line naming the node by its path.
    """
    return _Flattener(definitions, strict).run(graph)


class _Flattener:
    def __init__(self, definitions: Mapping[str, BlockDefinition], strict: bool) -> None:
        self.definitions = definitions
        self.strict = strict
        self.result = Flattened(Graph(), {})
        self.aliases: dict[Source, Source] = {}
        self.pending: list[tuple[Source, str, str]] = []  # (source, flat target, port)
        self.ids_by_path: dict[str, str] = {}
        self.taken: set[str] = set()
        self.training: tuple[bool, float] = (True, 1.0)  # of the enclosing instances: all trainable, product

    def run(self, graph: Graph) -> Flattened:
        self.taken = set(graph.nodes)  # top-level nodes keep their ids
        self._expand(graph, "", (), "")
        flat = self.result.graph
        for source, target, port in self.pending:
            resolved = self._resolve(source)
            if resolved is not None:
                flat.add_edge(Edge(resolved[0], target, port, resolved[1]))
        for info in self.result.instances.values():
            info.copy_inputs = [[self._resolve(s) if s else None for s in copy] for copy in info.copy_inputs]
            info.outputs = [self._resolve(s) for s in info.outputs]
        return self.result

    # ------------------------------------------------------------ one scope
    def _expand(self, graph: Graph, scope: str, stack: tuple[str, ...], definition: str) -> None:
        """Add the layers of ``graph`` (the top level, or a copy of a definition at ``scope``)."""
        ends: dict[str, Callable[[str], Source]] = {}
        targets: dict[str, Callable[[str], Source | None]] = {}  # node -> port -> virtual target
        for node in graph:
            path = f"{scope}/{node.id}" if scope else node.id
            role = node.layer.role
            if scope and role == "input":
                ends[node.id] = lambda port, n=node.id: (f"{scope}>in", n)
            elif scope and role == "output":
                targets[node.id] = lambda port, n=node.id: (f"{scope}>out", n)
            elif node.type_id == BLOCK_TYPE and not self._problem(node, path, stack):
                outer = self.training
                self.training = (outer[0] and node.trainable, outer[1] * node.lr_scale)
                try:
                    first, last = self._instance(node, path, stack)
                finally:
                    self.training = outer
                ends[node.id] = lambda port, last=last: (f"{last}>out", port)
                targets[node.id] = lambda port, first=first: (f"{first}>in", port)
            else:  # a layer, or a stand-in for an instance that cannot be expanded
                flat_id = self._add(node, path)
                if node.type_id == BLOCK_TYPE:
                    self.result.errors[flat_id] = self._problem(node, path, stack)
                self.result.copies.setdefault((definition, node.id), []).append(flat_id)
                ends[node.id] = lambda port, f=flat_id: (f, port)
        for edge in graph.edges:
            source = ends[edge.source](edge.source_port)
            if edge.target in targets:
                self.aliases[targets[edge.target](edge.target_port)] = source  # type: ignore[index]
            else:
                self.pending.append((source, self.ids_by_path[f"{scope}/{edge.target}" if scope else edge.target],
                                     edge.target_port))

    def _problem(self, node: Node, path: str, stack: tuple[str, ...]) -> str:
        """Why instance ``node`` cannot be expanded (raised when strict), or empty."""
        name = node.params.get("definition")
        problems = node.layer.check_params(node.params)
        definition = self.definitions.get(name) if not problems else None
        if problems:
            message = f"{problems[0][0]} {problems[0][1]}"
        elif definition is None:
            message = f"uses block definition {name!r}, which does not exist"
        elif name in stack:
            message = f"block definition {name!r} contains itself: {' -> '.join((*stack[stack.index(name):], name))}"
        else:
            message = port_problem(node, definition) or self._chain_problem(node, definition) or ""
        if message and self.strict:
            raise BlockError(f"node {path} ({node.layer.title}): {message}")
        return message

    @staticmethod
    def _chain_problem(node: Node, definition: BlockDefinition) -> str | None:
        repeat = node.params["repeat"]
        if repeat > 1 and len(definition.inputs) != len(definition.outputs):
            return (f"repeat {repeat} feeds each copy's outputs to the next copy's inputs, but block definition "
                    f"{definition.name!r} has {len(definition.inputs)} input(s) and "
                    f"{len(definition.outputs)} output(s): set repeat to 1")
        return None

    def _instance(self, node: Node, path: str, stack: tuple[str, ...]) -> tuple[str, str]:
        """Expand every copy of instance ``node``; returns the first and last copy paths."""
        definition = self.definitions[node.params["definition"]]
        repeat = node.params["repeat"]
        copies = [f"{path}.{k}" if repeat > 1 else path for k in range(repeat)]
        info = InstanceInfo(path, definition.name)
        self.result.instances[path] = info
        for k, copy in enumerate(copies):
            if k:
                for port_in, port_out in zip(definition.inputs, definition.outputs):
                    self.aliases[(f"{copy}>in", port_in)] = (f"{copies[k - 1]}>out", port_out)
            info.copy_inputs.append([(f"{copy}>in", port) for port in definition.inputs])
            self._expand(definition.graph, copy, (*stack, definition.name), definition.name)
        info.outputs = [(f"{copies[-1]}>out", port) for port in definition.outputs]
        return copies[0], copies[-1]

    # -------------------------------------------------------------- helpers
    def _add(self, node: Node, path: str) -> str:
        """Add a copy of ``node`` under a fresh flat id for ``path``; returns the id."""
        flat_id = path if "/" not in path and "." not in path else self._fresh_id(path)
        trainable, lr_scale = self.training  # a frozen (or scaled) instance freezes (scales) its inside
        self.result.graph.add_node(node.copy(id=flat_id, trainable=node.trainable and trainable,
                                             lr_scale=min(node.lr_scale * lr_scale, LR_SCALE_MAX)))
        self.result.paths[flat_id] = path
        self.ids_by_path[path] = flat_id
        return flat_id

    def _fresh_id(self, path: str) -> str:
        base = path.replace("/", "__").replace(".", "_")
        if len(base) > MAX_ID:
            base = f"{base[:MAX_ID - 9]}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
        candidate, n = base, 2
        while candidate in self.taken or candidate in self.result.paths:
            suffix = f"_{n}"
            candidate, n = base[:MAX_ID - len(suffix)] + suffix, n + 1
        return candidate

    def _resolve(self, source: Source) -> Source | None:
        """Follow virtual sources to a flat one (``None``: an unconnected port, or a loop of ports)."""
        seen = set()
        while ">" in source[0]:
            if source in seen or source not in self.aliases:
                return None
            seen.add(source)
            source = self.aliases[source]
        return source
