"""The state of one ONNX import: constants, mapped values, shapes and symbolic values."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from engine.compile.importers.builder import GraphBuilder
from engine.compile.importers.onnx_symbolic import PATTERNS, VIRTUAL_AWARE, fold, follow

#: Operators asked of the symbolic rules even when no input is symbolic: those that may receive a
#: symbolic value, and those that begin a multi-operator pattern (its ``starts``).
FOLLOWED = VIRTUAL_AWARE.union(*(getattr(pattern, "starts", ()) for pattern in PATTERNS))


class Context:
    """The mapping state: constants, produced values (tensor name -> node id) and shapes."""

    def __init__(self, builder: GraphBuilder, consts: dict[str, np.ndarray]) -> None:
        self.builder = builder
        self.consts = consts
        self.values: dict[str, Any] = {}  # ONNX value -> node id, or (node id, output port)
        self.shapes: dict[str, list[Any]] = {}
        self.consumers: dict[str, int] = {}
        self.from_matmul: set[str] = set()
        #: Values followed symbolically around recurrent layers (see onnx_symbolic).
        self.virtual: dict[str, tuple[Any, ...]] = {}
        self.opset = 18
        #: The batch size a fixed-batch model's inputs declare (``None``: a dynamic batch).
        self.fixed_batch: int | None = None
        #: The ONNX graph being read, and the node producing each value (patterns look ahead).
        self.graph: Any = None
        self.producers: dict[str, Any] = {}
        #: Time-major values already tried as the entry of a region (self-attention, an unrolled RNN).
        self.attention_entries: set[str] = set()
        #: Module paths that hold others, from the TorchScript exporter's node names (made when first needed).
        self._holders: frozenset[str] | None = None

    def is_batch(self, size: int) -> bool:
        """Whether ``size`` as a leading dimension means "the batch": -1 or 0 (keep), or the fixed batch."""
        return size in (-1, 0) or (self.fixed_batch is not None and size == self.fixed_batch)

    def vocabulary_for(self, name: str, graph: Any) -> int | None:
        """Rows of the embedding table that a Gather reads with the input ``name``."""
        for node in graph.node:
            if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] == name \
                    and node.input[0] in self.consts and self.consts[node.input[0]].ndim == 2:
                return int(self.consts[node.input[0]].shape[0])
        return None

    def map_node(self, node: Any, handler: Callable[[Context, Any, dict[str, Any]], str | None] | None) -> None:
        """Map one node; record it as unmapped when there is no handler or it refuses."""
        from onnx import helper, numpy_helper

        if node.op_type == "Constant" and node.attribute:
            self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t) \
                if node.attribute[0].name == "value" else np.asarray(helper.get_attribute_value(node.attribute[0]))
            return
        where = node.name or node.output[0]
        if fold(self, node, self.opset):
            return
        if any(n and n not in self.values and n not in self.consts and n not in self.virtual for n in node.input) \
                and (handler is not None or node.op_type in VIRTUAL_AWARE):
            return  # fed by an unmapped node, which is reported (an operator no layer knows is listed too)
        attrs = {a.name: _decode(helper.get_attribute_value(a)) for a in node.attribute}
        if node.op_type in FOLLOWED or any(n in self.virtual for n in node.input):
            reason = follow(self, node, attrs)
            if reason is not None:
                if reason:
                    self.builder.skip(where, f"{node.op_type}: {reason}")
                return
        if handler is None:
            self.builder.skip(where, node.op_type)
            return
        if any(n and n not in self.values and n not in self.consts for n in node.input):
            return  # fed by an unmapped node, which is reported
        reason = handler(self, node, attrs)
        if reason:
            self.builder.skip(where, f"{node.op_type}: {reason}")

    def add(self, node: Any, type_id: str, params: dict[str, Any], inputs: list[str],
            tensors: dict[str, np.ndarray] | None = None, name_from: str | None = None) -> str:
        """Add a layer fed by the tensors ``inputs``; ``node``'s outputs now come from it (one per
        output port, in order, for a layer with several)."""
        node_id = self.place(node, type_id, params, [self.values[i] for i in inputs], tensors, name_from)
        ports = self.builder.graph.nodes[node_id].output_ports()
        if len(ports) > 1:
            for output, port in zip(node.output, ports):
                self.values[output] = (node_id, port)
        else:
            self.values[node.output[0]] = node_id
        return node_id

    def place(self, node: Any, type_id: str, params: dict[str, Any], sources: list[Any],
              tensors: dict[str, np.ndarray] | None = None, name_from: str | None = None) -> str:
        """Add a layer for the ONNX ``node`` fed by canvas ``sources`` (node ids or ``(node id,
        port)``), named and grouped after the module that exported it; the caller maps the outputs."""
        scope = module_scope(node)
        if scope is None:
            scope = self._named_scope(node)
            if scope is not None and not (name_from and "." in name_from and "::" not in name_from):
                name_from = None  # the module path says more than a tensor name the exporter made up
        name = _name(node, name_from) if name_from or scope is None else scope.name
        if scope is not None:
            self.builder.module_classes.update(scope.classes)
        weights = {k: torch.from_numpy(np.array(v)) for k, v in (tensors or {}).items()}
        return self.builder.add(type_id, name, params, sources, weights, group=scope.group if scope else "")

    def _named_scope(self, node: Any) -> ModuleScope | None:
        """The module scope written into ``node``'s name by the TorchScript exporter, if any."""
        path = named_scope_path(getattr(node, "name", ""))
        if path is None:
            return None
        if self._holders is None:
            paths = {named_scope_path(n.name) for n in getattr(self.graph, "node", ())}
            self._holders = frozenset(".".join(parts[:i]) for p in paths if p
                                      for parts in [p.split(".")] for i in range(1, len(parts)))
        return scope_of_path(path, node.name.rsplit("/", 1)[1], path in self._holders)

    def rank(self, name: str) -> int:
        return len(self.shapes.get(name, []))


@dataclass(frozen=True)
class ModuleScope:
    """Where ``torch.onnx.export`` says an operator came from.

    Attributes:
        name: The module path of the operation (``layer1.0.conv1``, or ``layer1.0.add`` for an
            operation in a module's own ``forward``).
        group: The path of the module that holds it (``layer1.0``); "" at the top.
        classes: ``(module path, class)`` of the modules around it, outermost first, without the
            root (``("layer1", "torch.nn.modules.container.Sequential")``), where the file says.
    """

    name: str
    group: str
    classes: tuple[tuple[str, str], ...] = ()


#: Longest scope metadata read from a node (a bound against absurd files).
_MAX_SCOPE_TEXT = 8192


def module_scope(node: Any) -> ModuleScope | None:
    """The module scope recorded in ``node``'s metadata by the dynamo exporter, if any.

    ``pkg.torch.onnx.name_scopes`` lists the module paths from the root down to the
    operation (``['', 'layer1', 'layer1.0', 'layer1.0.relu', 'relu_2']``);
    ``pkg.torch.onnx.class_hierarchy`` their classes. A ``torch.nn`` module other than a
    container is a layer of its own: the operation takes its path and belongs to its parent.
    """
    props = {p.key: p.value for p in getattr(node, "metadata_props", ())}
    scopes, classes = (_literal_list(props.get(key, "")) for key in ("pkg.torch.onnx.name_scopes",
                                                                      "pkg.torch.onnx.class_hierarchy"))
    if len(scopes) < 2:
        return None
    paths, operation = scopes[:-1], scopes[-1]
    known = len(classes) == len(scopes)
    leaf = known and len(paths) > 1 and classes[-2].startswith("torch.nn.modules.") \
        and ".container." not in classes[-2]
    held = paths[:-1] if leaf else paths
    around = tuple((p, c) for p, c in zip(held, classes) if p) if known else ()
    if leaf:
        return ModuleScope(paths[-1], paths[-2], around)
    base, _, counter = operation.rpartition("_")
    operation = base if base and counter.isdigit() else operation
    return ModuleScope(f"{paths[-1]}.{operation}" if paths[-1] else operation, paths[-1], around)


def named_scope_path(name: str) -> str | None:
    """The module path in a TorchScript exporter's node name: ``/layer1/layer1.0/conv1/Conv`` ->
    ``layer1.0.conv1`` (each part names a child of the previous one, a Sequential's children as
    ``layer1.0``, ``downsample.0``); ``None`` for any other name."""
    if not name.startswith("/") or len(name) > _MAX_SCOPE_TEXT:
        return None
    parts = name[1:].split("/")[:-1]
    if not parts or not all(parts):
        return None
    path: list[str] = []
    for previous, part in zip(["", *parts], parts):
        path.append(part[len(previous) + 1:] if previous and part.startswith(previous + ".") else part)
    return ".".join(path)


def scope_of_path(path: str, operation: str, holds_modules: bool) -> ModuleScope:
    """The scope of an operation named in module ``path``: a module that holds others ran it in its own
    ``forward`` (``layer1.0`` -> ``layer1.0.add``, group ``layer1.0``); else the module is a layer of
    its own (``layer1.0.conv1``, group ``layer1.0``)."""
    if holds_modules:
        base = re.sub(r"_\d+$", "", operation).lower() or "op"
        return ModuleScope(f"{path}.{base}", path)
    return ModuleScope(path, path.rpartition(".")[0])


def _literal_list(text: str) -> list[str]:
    """A list of strings written as a Python literal, or [] when it is anything else."""
    if not text or len(text) > _MAX_SCOPE_TEXT:
        return []
    try:
        value = ast.literal_eval(text)  # literals only: never executes code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    return [str(v) for v in value] if isinstance(value, list) and all(isinstance(v, str) for v in value) else []


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _name(node: Any, weight: str | None) -> str:
    if weight and "." in weight:
        return weight.rsplit(".", 1)[0]
    name = node.name.removeprefix("node_")
    return re.sub(r"_\d+$", "", name).lower() or node.output[0]
