"""Self-attention written out as matrix products, back onto one Self-Attention layer.

``torch.onnx.export`` decomposes a batch-first ``nn.MultiheadAttention(x, x, x)`` (ViT's
encoder blocks, the app's own Self-Attention) into some forty operators whose exact form
changes between PyTorch versions::

    Transpose(x, perm=[1, 0, 2])                       # (T, N, E): the entry
    MatMul(W_in) + Add(b_in) -> Reshape, Transpose ... # q, k, v and their heads
    MatMul, Softmax, MatMul                            # scaled dot products
    Gemm(W_out, b_out) ... Transpose(perm=[1, 0, 2])   # (N, T, E): the exit

Rather than match every operator, the region is delimited and checked by its result: the
region is what lies on the paths from the entry to a candidate exit, it must be closed (no
value inside is read from outside, nothing inside reads a tensor from outside but
constants), its packed input projection ``(E, 3E)`` and output projection ``(E, E)`` give
the weights, and running the region (ONNX Runtime) must equal ``nn.MultiheadAttention`` with
those weights, for some head count (and causal mask or none), on random inputs. Then the
region becomes one ``self_attention`` node; otherwise it is reported as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Tolerance of the region check, relative to the largest output.
_MATCH_TOLERANCE = 1e-4
_ABSORBED = "absorbed"


def follow_attention(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """Skip nodes of a mapped attention region; map a region at the first reader of its entry."""
    virtual = ctx.virtual
    kinds = [virtual.get(n, ("",))[0] for n in node.input if n]
    if _ABSORBED in kinds:
        return ""
    if "seq_first" not in kinds or node.op_type in ("LSTM", "GRU", "Shape"):
        return None
    entry = next(n for n in node.input if virtual.get(n, ("",))[0] == "seq_first")
    if entry in ctx.attention_entries:
        return None
    ctx.attention_entries.add(entry)
    region = _attention_region(ctx, entry)
    if region is None:
        return None
    nodes, exit_value, params, tensors = region
    source = virtual[entry][1]
    for inner in nodes:
        for value in inner.output:
            if value and value != exit_value:
                virtual[value] = (_ABSORBED,)
    virtual[entry] = (_ABSORBED,)
    anchor = next((n for n in nodes if n.op_type in ("MatMul", "Gemm")), node)
    ctx.values[exit_value] = ctx.place(anchor, "self_attention", params, [source], tensors)
    return ""


def _attention_region(ctx: Any, entry: str) -> tuple[list[Any], str, dict[str, Any], dict[str, np.ndarray]] | None:
    graph = ctx.graph
    if graph is None:
        return None
    order = {id(n): i for i, n in enumerate(graph.node)}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for value in n.input:
            consumers.setdefault(value, []).append(n)
    outputs = {o.name for o in graph.output}
    source_dims = ctx.shapes.get(entry, [])
    if len(source_dims) != 3 or not isinstance(source_dims[2], int):
        return None
    downstream = _reachable(entry, consumers)
    candidates = sorted((n for n in downstream if n.op_type == "Transpose"
                         and [int(p) for a in n.attribute if a.name == "perm" for p in a.ints] == [1, 0, 2]),
                        key=lambda n: order[id(n)])
    for exit_node in candidates[:64]:
        region = _closed_region(ctx, entry, exit_node, downstream, consumers, outputs)
        if region is None:
            continue
        found = _identify(ctx, entry, region, exit_node.output[0], int(source_dims[2]))
        if found is not None:
            return sorted(region, key=lambda n: order[id(n)]), exit_node.output[0], *found
    return None


def _reachable(entry: str, consumers: dict[str, list[Any]]) -> list[Any]:
    seen: dict[int, Any] = {}
    stack = [entry]
    while stack:
        for n in consumers.get(stack.pop(), []):
            if id(n) not in seen:
                seen[id(n)] = n
                stack.extend(o for o in n.output if o)
    return list(seen.values())


def _closed_region(ctx: Any, entry: str, exit_node: Any, downstream: list[Any], consumers: dict[str, list[Any]],
                   outputs: set[str]) -> list[Any] | None:
    """The nodes on paths from ``entry`` to ``exit_node`` (with their shape side branches), if closed."""
    producer = {o: n for n in downstream for o in n.output if o}
    region: dict[int, Any] = {id(exit_node): exit_node}
    stack = [i for i in exit_node.input if i]
    while stack:
        value = stack.pop()
        n = producer.get(value)
        if n is None:
            if value == entry or value in ctx.consts or not value:
                continue
            n = ctx.producers.get(value)
            if n is None or n.op_type != "Constant" and not all(i in ctx.consts for i in n.input if i):
                return None  # reads a tensor from outside the region
        if id(n) not in region:
            region[id(n)] = n
            stack.extend(i for i in n.input if i)
    if len(region) > 400:
        return None
    for n in region.values():
        if n is exit_node:
            continue
        for value in n.output:
            if value in outputs or any(id(c) not in region for c in consumers.get(value, [])):
                return None  # something outside reads a value inside
    inner = [c for c in consumers.get(entry, [])]
    if any(id(c) not in region for c in inner):
        return None
    return list(region.values())


def _identify(ctx: Any, entry: str, region: list[Any], exit_value: str,
              size: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Self-attention parameters and weights whose result equals the region's, if any."""
    weights = _projections(ctx, entry, region, size)
    if weights is None:
        return None
    in_weight, in_bias, out_weight, out_bias = weights
    bias = in_bias is not None or out_bias is not None
    zeros = np.zeros
    tensors = {"attention.in_proj_weight": in_weight, "attention.out_proj.weight": out_weight}
    if bias:
        tensors["attention.in_proj_bias"] = in_bias if in_bias is not None else zeros(3 * size, np.float32)
        tensors["attention.out_proj.bias"] = out_bias if out_bias is not None else zeros(size, np.float32)
    run = _region_runner(ctx, entry, region, exit_value)
    if run is None:
        return None
    steps = ctx.shapes[entry][0]
    if not isinstance(steps, int):
        return None
    sample = np.random.default_rng(0).standard_normal((ctx.fixed_batch or 3, steps, size)).astype(np.float32)
    try:
        expected = run(sample)  # batch-first, as the source
    except Exception:  # noqa: BLE001 - onnxruntime's own errors: the region is not this attention
        return None
    for heads in [h for h in range(1, size + 1) if size % h == 0]:
        for causal in (False, True):
            if _matches(sample, expected, tensors, size, heads, causal, bias):
                return {"num_heads": heads, "dropout": 0.0, "bias": bias, "causal": causal}, tensors
    return None


def _projections(ctx: Any, entry: str, region: list[Any],
                 size: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None] | None:
    """(in_proj_weight (3E, E), its bias, out_proj weight (E, E), its bias) read from the region's constants."""
    found_in, found_out = None, None
    for n in region:
        if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2 or n.input[1] not in ctx.consts:
            continue
        weight = np.asarray(ctx.consts[n.input[1]], dtype=np.float32)
        trans_b = any(a.name == "transB" and a.i for a in n.attribute)
        matrix = weight if trans_b else weight.T  # as nn.Linear stores it: (out, in)
        bias = _bias_of(ctx, n, region, matrix.shape[0])
        if n.input[0] == entry and matrix.shape == (3 * size, size):
            found_in = (matrix, bias)
        elif matrix.shape == (size, size) and n.input[0] != entry:
            found_out = (matrix, bias)
    if found_in is None or found_out is None:
        return None
    return (np.ascontiguousarray(found_in[0]), found_in[1], np.ascontiguousarray(found_out[0]), found_out[1])


def _bias_of(ctx: Any, n: Any, region: list[Any], width: int) -> np.ndarray | None:
    if n.op_type == "Gemm" and len(n.input) > 2 and n.input[2] in ctx.consts:
        return np.asarray(ctx.consts[n.input[2]], dtype=np.float32).reshape(-1)
    for other in region:
        if other.op_type == "Add" and n.output[0] in other.input:
            const = next((i for i in other.input if i in ctx.consts), None)
            if const is not None and ctx.consts[const].size == width:
                return np.asarray(ctx.consts[const], dtype=np.float32).reshape(-1)
    return None


def _region_runner(ctx: Any, entry: str, region: list[Any], exit_value: str) -> Any:
    """A function running the region on a batch-first input (with the entry transpose in front)."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    order = {id(n): i for i, n in enumerate(ctx.graph.node)}
    nodes = sorted(region, key=lambda n: order[id(n)])
    used = {i for n in nodes for i in n.input if i in ctx.consts}
    initializers = [numpy_helper.from_array(np.asarray(ctx.consts[name]), name) for name in sorted(used)]
    transpose = helper.make_node("Transpose", ["region_input"], [entry], perm=[1, 0, 2])
    dims = ctx.shapes[entry]
    graph = helper.make_graph([transpose, *nodes], "attention_region",
                              [helper.make_tensor_value_info("region_input", TensorProto.FLOAT,
                                                             [None, dims[0], dims[2]])],
                              [helper.make_tensor_value_info(exit_value, TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ctx.opset)])
    model.ir_version = min(model.ir_version, 10)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a region that fails to run is simply not mapped: no log lines
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - a region onnxruntime cannot run is not mapped
        return None
    return lambda sample: session.run([exit_value], {"region_input": sample})[0]


def _matches(sample: np.ndarray, expected: np.ndarray, tensors: dict[str, np.ndarray], size: int, heads: int,
             causal: bool, bias: bool) -> bool:
    import torch
    from torch import nn

    attention = nn.MultiheadAttention(size, heads, bias=bias, batch_first=True)
    state = {key.removeprefix("attention."): torch.from_numpy(np.array(value)) for key, value in tensors.items()}
    attention.load_state_dict(state)
    attention.eval()
    x = torch.from_numpy(sample)
    steps = sample.shape[1]
    mask = torch.ones(steps, steps, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        result = attention(x, x, x, need_weights=False, attn_mask=mask)[0].numpy()
    if result.shape != expected.shape:
        return False
    scale = max(1.0, float(np.abs(expected).max()))
    return bool(np.abs(result - expected).max() <= _MATCH_TOLERANCE * scale)
