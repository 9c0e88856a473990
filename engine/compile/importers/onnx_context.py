"""The state of one ONNX import: constants, mapped values, shapes and symbolic values."""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import torch

from engine.compile.importers.builder import GraphBuilder
from engine.compile.importers.onnx_symbolic import VIRTUAL_AWARE, fold, follow


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
        attrs = {a.name: _decode(helper.get_attribute_value(a)) for a in node.attribute}
        if node.op_type in VIRTUAL_AWARE or any(n in self.virtual for n in node.input):
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
        name = _name(node, name_from)
        weights = {k: torch.from_numpy(np.array(v)) for k, v in (tensors or {}).items()}
        node_id = self.builder.add(type_id, name, params, [self.values[i] for i in inputs], weights)
        ports = self.builder.graph.nodes[node_id].output_ports()
        if len(ports) > 1:
            for output, port in zip(node.output, ports):
                self.values[output] = (node_id, port)
        else:
            self.values[node.output[0]] = node_id
        return node_id

    def rank(self, name: str) -> int:
        return len(self.shapes.get(name, []))


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
