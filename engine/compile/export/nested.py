"""PyTorch source of a project with blocks: one ``nn.Module`` class per block definition.

Each definition the model uses becomes a class named after it. Its ``__init__`` builds the
definition's layers from the constructor calls the app compiles (the flat compile's
:func:`~engine.compile.export.codegen.module_calls`, so the source builds exactly what the app
trains) and one attribute per inner instance; its ``forward`` takes the block's inputs in port
order and returns its outputs (a tuple when several). An instance with ``repeat`` N is N
instances in an ``nn.Sequential`` (``Chain``, a small ModuleList, for blocks of several
ports). The model class uses the instances the same way. Definitions that differ only in sizes
(the bottleneck of each ResNet stage, with its own channel counts) share one class, their
sizes passed to ``__init__``, as a hand-written ResNet has one ``Bottleneck``.

The code of a class is one level of its graph compiled by the ordinary compiler, with each
inner instance a call of its submodule (:meth:`engine.layers.block.BlockInstance.emit`) and
the shapes taken from the flat analysis. A constructor argument that differs between the
copies of a definition (a convolution's input channels inferred from what each instance
receives) becomes an argument of the class's ``__init__``, passed by each use.

Weights: a layer's flat id (``stage1_0__block_1__conv1``) is its path (``stage1.0/block.1/conv1``),
which is its module name in the nested classes (``stage1.0.block.1.conv1``); :meth:`NestedSource.weights`
renames the flat state dict accordingly. A project this cannot write as classes (a GAN part,
copies of a definition whose code differs, an inner layer that leads to no output) gets the
flat source instead (:func:`nested_source` returns ``None``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import torch

from engine.compile.export.codegen import (RESERVED, class_name, class_text, forward_lines, model_class_text,
                                           module_calls)
from engine.compile.export.source import ExportSource
from engine.compile.fx_builder import CompiledModel, attribute_name, compile_graph
from engine.graph.blocks import BlockError
from engine.graph.flat_project import has_blocks
from engine.graph.flatten import Flattened, Source, flatten
from engine.graph.model import Graph
from engine.layers.block import BLOCK_TYPE
from engine.layers.calls import ModuleCall, SourceName, literal
from engine.shapes import Analysis, NodeInfo, ancestors_and_self

#: The container of a repeated block with several ports (nn.Sequential takes one tensor).
CHAIN = '''class Chain(nn.ModuleList):
    """Copies of a block in sequence: each copy's outputs are the next copy's inputs."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__(blocks)

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for block in self:
            xs = block(*xs)
        return xs'''


class _Flat(Exception):
    """This project exports as the flat source (see the module docstring)."""


class _Differs(Exception):
    """Definitions of one family whose forward code differs: they get a class each."""


@dataclass
class NestedSource:
    """The classes of a project with blocks and the weight names they use.

    Args:
        classes: Class sources, inner definitions first, the model class last.
        calls: Every layer constructor call the classes use (for the custom module classes).
        names: Flat state-dict prefix (a flat submodule name) -> nested module name.
    """

    classes: list[str]
    calls: list[ModuleCall]
    names: dict[str, str] = field(default_factory=dict)

    def weights(self, flat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The flat state dict ``flat`` keyed by the nested module names."""
        result = {}
        for key, value in flat.items():
            head, _, rest = key.partition(".")
            result[f"{self.names.get(head, head)}.{rest}" if rest else self.names.get(head, head)] = value
        return result


@dataclass
class _Class:
    """A class being written: its name, ``__init__`` arguments and, per copy, their values."""

    name: str
    arguments: list[str] = field(default_factory=list)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # copy path -> argument -> value


def nested_source(src: ExportSource, model_class: str, doc: str) -> NestedSource | None:
    """The classes of ``src``'s model with one class per block definition, or ``None`` for flat source.

    Args:
        src: The export source (its ``document`` holds the blocks).
        model_class: The model class's name.
        doc: Free text for the model class's docstring.
    """
    document = src.document or src.project
    if src.part is not None or not has_blocks(document):
        return None
    try:
        return _Writer(src, model_class, doc).run()
    except (_Flat, BlockError):
        return None


class _Writer:
    def __init__(self, src: ExportSource, model_class: str, doc: str) -> None:
        self.src, self.model_class, self.model_doc = src, model_class, doc
        document = src.document or src.project
        self.graph, self.definitions = document.graph, document.blocks
        self.flat: Flattened = flatten(self.graph, self.definitions)
        if set(self.flat.graph.nodes) != set(src.project.graph.nodes):
            raise _Flat()
        self.analysis = src.compiled.analysis
        self.calls = module_calls(src.project.graph, src.compiled)
        self.ids = {path: flat_id for flat_id, path in self.flat.paths.items()}
        self.inputs = {copy: inputs for info in self.flat.instances.values()
                       for copy, inputs in zip(_copy_paths(info.path, len(info.copy_inputs)), info.copy_inputs)}
        self.taken = set(RESERVED) | {model_class, "Chain"}
        self.classes: dict[str, _Class] = {}
        self._families: dict[str, tuple[Any, ...]] = {}
        self.texts: list[str] = []
        self.chain = False

    def run(self) -> NestedSource:
        order = self._order()
        for name in order:
            if name in self.classes:  # written with its family
                continue
            family = [m for m in order if m not in self.classes and self._family(m) == self._family(name)]
            try:
                self._write(family)
            except _Differs:  # the same layers, but forward code that differs: one class each
                for member in family:
                    self._write([member])
        compiled = self._compile(self.graph, "")
        init = self._init(self.graph, compiled, [""], _Class(""))
        model = model_class_text(compiled, self.model_class, self.model_doc, init)
        if self.chain and self.model_class == "Chain":
            raise _Flat()
        classes = ([CHAIN] if self.chain else []) + self.texts + [model]
        names = {attribute_name(flat_id): _module_name(path) for flat_id, path in self.flat.paths.items()}
        return NestedSource(classes, list(self.calls.values()), names)

    # ----------------------------------------------------------------- names
    def _order(self) -> list[str]:
        """Definitions the model uses, each after the definitions it uses."""
        order: list[str] = []

        def visit(graph: Graph) -> None:
            for node in graph:
                name = node.params.get("definition") if node.type_id == BLOCK_TYPE else None
                if name is not None and name not in order:
                    visit(self.definitions[name].graph)
                    if name not in order:
                        order.append(name)

        visit(self.graph)
        return order

    def _unique(self, name: str) -> str:
        candidate, n = name, 2
        while candidate in self.taken:
            candidate, n = f"{name}{n}", n + 1
        self.taken.add(candidate)
        return candidate

    def _family(self, name: str) -> tuple[Any, ...]:
        """What a definition's class depends on apart from sizes: its nodes' ids and types, its
        wiring, its ports, and the families of the blocks inside it. Definitions of one family (a
        bottleneck of each stage) become one class whose sizes are ``__init__`` arguments."""
        found = self._families.get(name)
        if found is None:
            definition = self.definitions[name]
            graph = definition.graph
            nodes = tuple((n.id, n.type_id, n.layer.role, n.input_ports(), n.output_ports(),
                           (self._family(n.params["definition"]), n.params["repeat"]) if n.type_id == BLOCK_TYPE
                           else None) for n in graph)
            edges = tuple(sorted((e.source, e.source_port, e.target, e.target_port) for e in graph.edges))
            found = self._families[name] = (nodes, edges, definition.inputs, definition.outputs)
        return found

    # ----------------------------------------------------------------- one definition
    def _write(self, family: list[str]) -> None:
        """One class for the definitions of ``family`` (the same layers and wiring, maybe other sizes)."""
        name = family[0]
        definition = self.definitions[name]
        copies = [c for info in self.flat.instances.values() if info.definition in family
                  for c in _copy_paths(info.path, len(info.copy_inputs))]
        cls = _Class(self._unique(class_name(_family_name(family), "Block")))
        compiled, code, seen = None, None, set()
        for info in self.flat.instances.values():  # the code must be the same for every copy (shapes may differ)
            if info.definition not in family:
                continue
            for copy in _copy_paths(info.path, len(info.copy_inputs)):
                key = (info.definition, tuple(str(self._spec(s)) for s in self.inputs[copy]))
                if key in seen:
                    continue
                seen.add(key)
                this = self._compile(self.definitions[info.definition].graph, copy)
                this_code = (forward_lines(this.module), [n for n, _ in this.module.named_children()])
                if code is not None and this_code != code:
                    if len(family) > 1:
                        self.taken.discard(cls.name)
                        raise _Differs()
                    raise _Flat()
                compiled, code = compiled or this, this_code
        assert compiled is not None
        init = self._init(definition.graph, compiled, copies, cls)
        for member in family:
            self.classes[member] = cls
        arguments = ", ".join(f"{a}{_annotation(cls.values[copies[0]][a])}" for a in cls.arguments)
        ports = f"{', '.join(definition.inputs)} -> {', '.join(definition.outputs)}"
        doc = definition.doc or f"Block {name}."
        if len(family) > 1:
            doc = f"{doc} Also blocks {', '.join(family[1:])}: the same layers with other sizes."
        self.texts.append(class_text(cls.name, doc, arguments, init, forward_lines(compiled.module),
                                     len(definition.outputs), f"Run the block: {ports}."))

    def _init(self, graph: Graph, compiled: CompiledModel, copies: list[str], cls: _Class) -> list[str]:
        """``__init__``'s statements; differing values become ``cls``'s arguments (with their values)."""
        by_attribute = {attribute_name(node.id): node for node in graph}
        children = [name for name, _ in compiled.module.named_children()]
        slots: dict[tuple[str, ...], list[Any]] = {}  # where a value goes -> its value in each copy
        shapes: dict[str, Any] = {}
        first: dict[str, ModuleCall] = {}  # attribute -> its layer's call in the first copy
        for copy in copies:
            for attr in children:
                node = by_attribute[attr]
                path = f"{copy}/{node.id}" if copy else node.id
                if node.type_id == BLOCK_TYPE:
                    inner = self.classes[node.params["definition"]]
                    paths = _copy_paths(path, node.params["repeat"])
                    shape: Any = (inner.name, len(paths))
                    for k, p in enumerate(paths):
                        for argument in inner.arguments:
                            slots.setdefault((attr, str(k), argument), []).append(inner.values[p][argument])
                else:
                    call = self.calls.get(attribute_name(self.ids.get(path, "")))
                    if call is None:  # a layer that leads to no output in this use
                        raise _Flat()
                    shape = (call.target, len(call.args), tuple(k for k, _ in call.kwargs))
                    first.setdefault(attr, call)
                    for index, value in enumerate(call.args):
                        slots.setdefault((attr, str(index)), []).append(value)
                    for key, value in call.kwargs:
                        slots.setdefault((attr, key), []).append(value)
                if shapes.setdefault(attr, shape) != shape:
                    raise _Flat()
        names: dict[tuple[Any, ...], str] = {}  # the values in each copy -> the argument carrying them
        bound: dict[tuple[str, ...], Any] = {}
        for slot, values in slots.items():
            if all(v == values[0] for v in values):
                bound[slot] = values[0]
                continue
            vector = tuple(values)
            if vector not in names:
                names[vector] = self._argument(cls, slot, first.get(slot[0]))
                for copy, value in zip(copies, values):
                    cls.values.setdefault(copy, {})[names[vector]] = value
            bound[slot] = SourceName(names[vector])
        for copy in copies:
            cls.values.setdefault(copy, {})
        lines = []
        for attr in children:
            node = by_attribute[attr]
            if node.type_id == BLOCK_TYPE:
                lines.append(f"self.{attr} = {self._instances(attr, node, bound)}")
            else:
                call = first[attr]
                args = tuple(bound[(attr, str(i))] for i in range(len(call.args)))
                kwargs = tuple((k, bound[(attr, k)]) for k, _ in call.kwargs)
                lines.append(f"self.{attr} = {ModuleCall(call.target, args, kwargs).source()}")
        return lines

    def _argument(self, cls: _Class, slot: tuple[str, ...], call: ModuleCall | None) -> str:
        """A fresh ``__init__`` argument name for the value at ``slot`` (of layer ``call``, if one)."""
        attr, *rest = slot
        if call is None:  # an argument of an inner instance's class: its name after the attribute's
            base = f"{attr}_{rest[-1]}"
        else:
            base = f"{attr}_{_argument_name(call, rest[0])}"
        name, n = base, 2
        while name in cls.arguments or name in self.taken or not name.isidentifier():
            name, n = f"{base}_{n}", n + 1
        cls.arguments.append(name)
        return name

    def _instances(self, attr: str, node: Any, bound: dict[tuple[str, ...], Any]) -> str:
        inner = self.classes[node.params["definition"]]
        repeat = node.params["repeat"]
        made = [f"{inner.name}({', '.join(f'{a}={literal(bound[(attr, str(k), a)])}' for a in inner.arguments)})"
                for k in range(repeat)]
        if repeat == 1:
            return made[0]
        container = "nn.Sequential" if len(node.params["outputs"]) == 1 else "Chain"
        self.chain = self.chain or container == "Chain"
        if all(m == made[0] for m in made):
            return f"{container}(*[{made[0]} for _ in range({repeat})])"
        return f"{container}({', '.join(made)})"

    # ----------------------------------------------------------------- one level compiled
    def _spec(self, source: Source | None) -> Any:
        if source is None:
            raise _Flat()
        spec = self.analysis.nodes[source[0]].output_of(source[1])
        if spec is None:
            raise _Flat()
        return spec

    def _compile(self, graph: Graph, copy: str) -> CompiledModel:
        """One level of ``graph`` (the model, or the definition at ``copy``) compiled with the flat shapes."""
        nodes: dict[str, NodeInfo] = {}
        inputs = self.inputs[copy] if copy else []
        index = 0
        for node in graph:
            path = f"{copy}/{node.id}" if copy else node.id
            role = node.layer.role
            if copy and role == "input":
                nodes[node.id] = NodeInfo(self._spec(inputs[index]))
                index += 1
            elif role == "output":
                nodes[node.id] = NodeInfo(None)
            elif node.type_id == BLOCK_TYPE:
                specs = [self._spec(s) for s in self.flat.instances[path].outputs]
                ports = tuple(node.params["outputs"])
                nodes[node.id] = NodeInfo(specs[0], port_outputs=tuple(zip(ports, specs)) if len(specs) > 1 else ())
            elif path in self.ids:
                nodes[node.id] = self.analysis.nodes[self.ids[path]]
            else:
                raise _Flat()
        g = graph.nx_graph()
        outputs = [n.id for n in graph if n.layer.role == "output"]
        in_model = ancestors_and_self(g, outputs)
        if copy:  # every port is an argument of forward, used or not
            in_model |= {n.id for n in graph if n.layer.role == "input"}
        try:
            order = list(nx.topological_sort(g))
        except nx.NetworkXUnfeasible:
            raise _Flat() from None
        return compile_graph(graph, Analysis(nodes, [], frozenset(in_model), order))


def _family_name(family: list[str]) -> str:
    """The class name of a family: its members' common stem (``Layer1``, ``Layer4`` -> ``Layer``), else the first's."""
    if len(family) == 1:
        return family[0]
    stem = os.path.commonprefix(family).rstrip("0123456789_")
    return stem if len(stem) >= 3 else family[0]


def _copy_paths(path: str, repeat: int) -> list[str]:
    return [f"{path}.{k}" for k in range(repeat)] if repeat > 1 else [path]


def _module_name(path: str) -> str:
    """The nested module name of a layer's path: ``stage1.0/block/conv1`` -> ``stage1.0.block.conv1``."""
    parts = []
    for segment in path.split("/"):
        node_id, dot, index = segment.partition(".")
        parts.append(attribute_name(node_id) + (f".{index}" if dot else ""))
    return ".".join(parts)


def _argument_name(call: ModuleCall, position: str) -> str:
    if not position.isdigit():
        return position
    from engine.layers.calls import _defaults

    names = list(_defaults(call.module_class()))
    return names[int(position)] if int(position) < len(names) else f"arg{position}"


def _annotation(value: Any) -> str:
    kinds = {bool: "bool", int: "int", float: "float", str: "str", tuple: "tuple"}
    if isinstance(value, ModuleCall):
        return ": nn.Module"
    return f": {kinds[type(value)]}" if type(value) in kinds else ""
