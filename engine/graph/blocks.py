"""Block definitions and the library that names them.

A :class:`BlockDefinition` is a named graph with boundary ports: its Input nodes are the
block's input ports and its Output nodes its output ports, in document order, each port named
by its node's id. The shapes declared on the inner Input nodes only serve to analyse the
definition on its own; an instance's inside is inferred from the tensors that instance actually
receives.

A block *instance* is a node of type ``block`` (:mod:`engine.layers.block`) whose parameters
name the definition and copy its port names; :func:`instance_node` makes one and
:func:`port_problem` says when an instance's ports no longer match its definition.
:class:`BlockLibrary` maps names to definitions and finds definitions that contain themselves
(:meth:`BlockLibrary.cycle`). Expansion into ordinary layers is :mod:`engine.graph.flatten`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from engine.graph.model import Graph, Node
from engine.layers.block import BLOCK_TYPE
from engine.layers.params import NAME_PATTERN


class BlockError(ValueError):
    """A block that cannot be expanded; the message is one line naming the node or definitions."""


@dataclass(eq=False)
class BlockDefinition:
    """A named graph with boundary ports.

    Args:
        name: The definition's name (a Python identifier: it names the class in exported code).
        graph: The inside. Its Input nodes are the input ports and its Output nodes the output
            ports, in document order, named by their node ids.
        doc: What the block computes, shown in the palette.
    """

    name: str
    graph: Graph = field(default_factory=Graph)
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise BlockError(f"block definition name {self.name!r} must be a Python identifier "
                             "of at most 64 characters")

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input port names: the ids of the Input nodes, in document order."""
        return tuple(n.id for n in self.graph if n.layer.role == "input")

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output port names: the ids of the Output nodes, in document order."""
        return tuple(n.id for n in self.graph if n.layer.role == "output")

    def uses(self) -> list[tuple[str, str]]:
        """``(node id, definition name)`` of each block instance directly inside, in document order."""
        return [(n.id, n.params["definition"]) for n in self.graph if n.type_id == BLOCK_TYPE]


class BlockLibrary(Mapping[str, BlockDefinition]):
    """Block definitions by name (a project's, the built-ins, a personal library).

    ``revision`` grows with every :meth:`add` and :meth:`remove`, so a live analysis knows
    when to expand its instances again (edits *inside* a definition are seen through its
    graph's events instead).

    Args:
        definitions: Initial definitions.
    """

    def __init__(self, definitions: Mapping[str, BlockDefinition] | list[BlockDefinition] | None = None) -> None:
        self._definitions: dict[str, BlockDefinition] = {}
        self.revision = 0
        values = definitions.values() if isinstance(definitions, Mapping) else definitions or []
        for definition in values:
            self.add(definition)

    def __getitem__(self, name: str) -> BlockDefinition:
        return self._definitions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def add(self, definition: BlockDefinition, replace: bool = False) -> None:
        """Add ``definition`` under its name.

        Raises:
            BlockError: The name is taken and ``replace`` is false.
        """
        if definition.name in self._definitions and not replace:
            raise BlockError(f"a block definition named {definition.name!r} already exists")
        self._definitions[definition.name] = definition
        self.revision += 1

    def remove(self, name: str) -> BlockDefinition:
        """Remove and return the definition ``name`` (KeyError when there is none)."""
        definition = self._definitions.pop(name)
        self.revision += 1
        return definition

    def cycle(self) -> list[str] | None:
        """Names along a definition that contains itself (``["A", "B", "A"]``), or ``None``.

        Instances of missing definitions are ignored here; :func:`engine.graph.flatten.flatten`
        names them.
        """
        state: dict[str, int] = {}  # 1: on the current path, 2: done

        def visit(name: str, path: list[str]) -> list[str] | None:
            state[name] = 1
            for _, used in self._definitions[name].uses():
                if state.get(used) == 1:
                    return [*path[path.index(used):], used] if used in path else [*path, used]
                if used in self._definitions and used not in state:
                    found = visit(used, [*path, used])
                    if found:
                        return found
            state[name] = 2
            return None

        for name in self._definitions:
            if name not in state:
                found = visit(name, [name])
                if found:
                    return found
        return None


#: Longest definition name (it names a Python class).
MAX_NAME = 64


def candidate_names(name: str) -> Iterator[str]:
    """``name``, then ``name2``, ``name3``, ... (``name_2`` when it ends in a digit), at most 64 characters."""
    yield name
    separator = "_" if name[-1].isdigit() else ""
    k = 2
    while True:
        suffix = f"{separator}{k}"
        yield name[:MAX_NAME - len(suffix)] + suffix
        k += 1


def free_name(taken: Mapping[str, Any], name: str) -> str:
    """The first of :func:`candidate_names` that ``taken`` (a library) does not hold."""
    return next(candidate for candidate in candidate_names(name) if candidate not in taken)


def instance_node(node_id: str, definition: BlockDefinition, repeat: int = 1,
                  position: tuple[float, float] = (0.0, 0.0)) -> Node:
    """A new block instance of ``definition`` (not yet in a graph), its ports copied from it."""
    params: dict[str, Any] = {"definition": definition.name, "repeat": repeat,
                              "inputs": definition.inputs, "outputs": definition.outputs}
    return Node(node_id, BLOCK_TYPE, params, position)


def port_problem(node: Node, definition: BlockDefinition) -> str | None:
    """Why the ports of instance ``node`` do not match ``definition``, or ``None`` when they do."""
    have = (tuple(node.params["inputs"]), tuple(node.params["outputs"]))
    want = (definition.inputs, definition.outputs)
    if have == want:
        return None
    return (f"ports (inputs {', '.join(have[0]) or 'none'}; outputs {', '.join(have[1]) or 'none'}) do not "
            f"match block definition {definition.name!r} (inputs {', '.join(want[0]) or 'none'}; "
            f"outputs {', '.join(want[1]) or 'none'}): update the instance's ports")
