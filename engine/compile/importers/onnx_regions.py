"""Regions of an ONNX graph that begin at a time-major sequence, checked by running them.

Exporters write some layers out as dozens of operators whose exact form changes between PyTorch
versions (self-attention, :mod:`.onnx_attention`; an RNN unrolled step by step,
:mod:`.onnx_unrolled`). Rather than match every operator, a pattern delimits a **region**: the
nodes on the paths from the entry (a batch-first sequence transposed to time-major) to a candidate
exit value. It must be closed: no value inside is read from outside (but the exit), and nothing
inside reads a tensor from outside but constants and the entry. Values computed beside it from
constants and the shape of the sequence (an initial state of zeros shaped from the batch size)
belong to it as **side** nodes, which others may read too. The pattern reads its layer's weights
from the region's constants and runs the region (ONNX Runtime) to compare it with the layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Tolerance of a region check, relative to the largest output.
MATCH_TOLERANCE = 1e-4
#: Most nodes one region may hold (a bound on the search).
MAX_REGION = 400
#: The virtual kind of a value inside a region that became one layer (or was refused as a whole).
ABSORBED = "absorbed"


@dataclass
class Region:
    """A closed region from an entry to an exit.

    Attributes:
        nodes: The region's nodes in graph order.
        side: ``id`` of the nodes computed beside the entry from constants and shapes only.
        exit: The value the region computes.
    """

    nodes: list[Any]
    side: set[int] = field(default_factory=set)
    exit: str = ""


def consumers_of(graph: Any) -> dict[str, list[Any]]:
    """Each value's reading nodes."""
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for value in n.input:
            consumers.setdefault(value, []).append(n)
    return consumers


def reachable(entry: str, consumers: dict[str, list[Any]]) -> list[Any]:
    """The nodes downstream of the value ``entry``."""
    seen: dict[int, Any] = {}
    stack = [entry]
    while stack:
        for n in consumers.get(stack.pop(), []):
            if id(n) not in seen:
                seen[id(n)] = n
                stack.extend(o for o in n.output if o)
    return list(seen.values())


def source_of_entry(ctx: Any, entry: str) -> str:
    """The batch-first value that the entry transposes to time-major."""
    return ctx.producers[entry].input[0]


def closed_region(ctx: Any, entry: str, exit_node: Any, downstream: list[Any],
                  consumers: dict[str, list[Any]]) -> Region | None:
    """The nodes on paths from ``entry`` to ``exit_node`` (with their side nodes), if the region is closed."""
    source = source_of_entry(ctx, entry)
    producer = {o: n for n in downstream for o in n.output if o}
    region: dict[int, Any] = {id(exit_node): exit_node}
    side: set[int] = set()
    stack = [i for i in exit_node.input if i]
    while stack:
        value = stack.pop()
        n = producer.get(value)
        if n is None:
            if value == entry or value in ctx.consts or not value:
                continue
            n = ctx.producers.get(value)
            if n is None or value in ctx.values or value == source:
                return None  # reads a tensor from outside the region
            side.add(id(n))
            if n.op_type == "Shape" and n.input[0] == source:
                region[id(n)] = n
                continue
        if id(n) not in region:
            region[id(n)] = n
            stack.extend(i for i in n.input if i)
            if len(region) > MAX_REGION:
                return None
    outputs = {o.name for o in ctx.graph.output}
    for n in region.values():
        if n is exit_node or id(n) in side:
            continue
        for value in n.output:
            if value in outputs or any(id(c) not in region for c in consumers.get(value, [])):
                return None  # something outside reads a value inside
    if any(id(c) not in region for c in consumers.get(entry, [])):
        return None
    order = {id(n): i for i, n in enumerate(ctx.graph.node)}
    return Region(sorted(region.values(), key=lambda n: order[id(n)]), side, exit_node.output[0])


def absorb(ctx: Any, region: Region, entry: str) -> None:
    """Mark the region's values as absorbed (their nodes are skipped), but the exit (a layer's output, or
    left unmapped when the region is refused) and side values that others read too."""
    outside = {o.name for o in ctx.graph.output}
    members = {id(n) for n in region.nodes}
    consumers = consumers_of(ctx.graph)
    for inner in region.nodes:
        for value in inner.output:
            if not value or value == region.exit:
                continue
            if id(inner) in region.side and (value in outside or any(id(c) not in members
                                                                     for c in consumers.get(value, []))):
                continue
            ctx.virtual[value] = (ABSORBED,)
    ctx.virtual[entry] = (ABSORBED,)


def region_runner(ctx: Any, entry: str, region: Region) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function running the region on a batch-first input (with the entry transpose in front)."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    source = source_of_entry(ctx, entry)
    used = {i for n in region.nodes for i in n.input if i in ctx.consts}
    initializers = [numpy_helper.from_array(np.asarray(ctx.consts[name]), name) for name in sorted(used)]
    transpose = helper.make_node("Transpose", [source], [entry], perm=[1, 0, 2])
    dims = ctx.shapes[entry]
    graph = helper.make_graph([transpose, *region.nodes], "region",
                              [helper.make_tensor_value_info(source, TensorProto.FLOAT, [None, dims[0], dims[2]])],
                              [helper.make_tensor_value_info(region.exit, TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.opset)])
    model.ir_version = min(model.ir_version, 10)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a region that fails to run is simply not mapped: no log lines
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - a region onnxruntime cannot run is not mapped
        return None
    return lambda sample: session.run([region.exit], {source: sample})[0]


def run_region(ctx: Any, entry: str, region: Region) -> tuple[np.ndarray, np.ndarray] | None:
    """``(sample, result)``: the region run on a random batch-first sample, or ``None`` when it cannot run."""
    dims = ctx.shapes.get(entry, [])
    run = region_runner(ctx, entry, region)
    if run is None or len(dims) != 3 or not all(isinstance(d, int) for d in (dims[0], dims[2])):
        return None
    sample = np.random.default_rng(0).standard_normal((ctx.fixed_batch or 3, dims[0], dims[2])).astype(np.float32)
    try:
        return sample, run(sample)
    except Exception:  # noqa: BLE001 - onnxruntime's own errors: the region is not this layer
        return None


def same(result: np.ndarray, expected: np.ndarray) -> bool:
    """Whether a layer's ``result`` equals the region's within :data:`MATCH_TOLERANCE` of its largest value."""
    if result.shape != expected.shape:
        return False
    scale = max(1.0, float(np.abs(expected).max()))
    return bool(np.abs(result - expected).max() <= MATCH_TOLERANCE * scale)


def linear_of(ctx: Any, n: Any, region: list[Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(weight (out, in) as nn.Linear stores it, bias or None)`` of a MatMul / Gemm by a constant, with the
    bias a Gemm or an Add in the region applies; ``None`` for any other node."""
    if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2 or n.input[1] not in ctx.consts:
        return None
    weight = np.asarray(ctx.consts[n.input[1]], dtype=np.float32)
    if weight.ndim != 2:
        return None
    trans_b = any(a.name == "transB" and a.i for a in n.attribute)
    matrix = np.ascontiguousarray(weight if trans_b else weight.T)
    return matrix, _bias_of(ctx, n, region, matrix.shape[0])


def _bias_of(ctx: Any, n: Any, region: list[Any], width: int) -> np.ndarray | None:
    if n.op_type == "Gemm" and len(n.input) > 2 and n.input[2] in ctx.consts:
        return np.asarray(ctx.consts[n.input[2]], dtype=np.float32).reshape(-1)
    for other in region:
        if other.op_type == "Add" and n.output[0] in other.input:
            const = next((i for i in other.input if i in ctx.consts), None)
            if const is not None and ctx.consts[const].size == width:
                return np.asarray(ctx.consts[const], dtype=np.float32).reshape(-1)
    return None
