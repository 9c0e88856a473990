"""Self-attention written out as matrix products, back onto one Self-Attention layer.

``torch.onnx.export`` decomposes a batch-first ``nn.MultiheadAttention(x, x, x)`` (ViT's
encoder blocks, the app's own Self-Attention) into some forty operators whose exact form
changes between PyTorch versions::

    Transpose(x, perm=[1, 0, 2])                       # (T, N, E): the entry
    MatMul(W_in) + Add(b_in) -> Reshape, Transpose ... # q, k, v and their heads
    MatMul, Softmax, MatMul                            # scaled dot products
    Gemm(W_out, b_out) ... Transpose(perm=[1, 0, 2])   # (N, T, E): the exit

Rather than match every operator, the region (:mod:`.onnx_regions`) from the entry to a
candidate exit is checked by its result: its packed input projection ``(E, 3E)`` and output
projection ``(E, E)`` give the weights, and running the region (ONNX Runtime) must equal
``nn.MultiheadAttention`` with those weights, for some head count, with the causal mask or none
(a causal mask the exporter builds from the shapes, ``Trilu``, ``Equal``, ``Where``, lies inside
the region), on random inputs. Then the region becomes one ``self_attention`` node; otherwise
the entry is offered to :mod:`.onnx_unrolled`, then reported as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.compile.importers.onnx_regions import (ABSORBED, Region, absorb, closed_region, consumers_of, linear_of,
                                                   reachable, run_region, same)
from engine.compile.importers.onnx_unrolled import follow_unrolled


def follow_attention(ctx: Any, node: Any, attrs: dict[str, Any]) -> str | None:
    """Skip nodes of a mapped region; at the first reader of a region's entry, map self-attention there, or
    else an RNN unrolled step by step (:mod:`.onnx_unrolled`; a region of either is one layer)."""
    virtual = ctx.virtual
    kinds = [virtual.get(n, ("",))[0] for n in node.input if n]
    if ABSORBED in kinds or node.output and all(virtual.get(o, ("",))[0] == ABSORBED for o in node.output if o):
        return ""
    if "seq_first" not in kinds or node.op_type in ("LSTM", "GRU", "Shape"):
        return None
    entry = next(n for n in node.input if virtual.get(n, ("",))[0] == "seq_first")
    if entry in ctx.attention_entries:
        return None
    ctx.attention_entries.add(entry)
    source = virtual[entry][1]
    found = _attention_region(ctx, entry)
    if found is not None:
        region, params, tensors = found
        absorb(ctx, region, entry)
        anchor = next((n for n in region.nodes if n.op_type in ("MatMul", "Gemm")), node)
        ctx.values[region.exit] = ctx.place(anchor, "self_attention", params, [source], tensors)
        return ""
    return follow_unrolled(ctx, node, entry, source)


def _attention_region(ctx: Any, entry: str) -> tuple[Region, dict[str, Any], dict[str, np.ndarray]] | None:
    source_dims = ctx.shapes.get(entry, [])
    if ctx.graph is None or len(source_dims) != 3 or not isinstance(source_dims[2], int):
        return None
    order = {id(n): i for i, n in enumerate(ctx.graph.node)}
    consumers = consumers_of(ctx.graph)
    downstream = reachable(entry, consumers)
    candidates = sorted((n for n in downstream if n.op_type == "Transpose"
                         and [int(p) for a in n.attribute if a.name == "perm" for p in a.ints] == [1, 0, 2]),
                        key=lambda n: order[id(n)])
    for exit_node in candidates[:64]:
        region = closed_region(ctx, entry, exit_node, downstream, consumers)
        if region is None:
            continue
        found = _identify(ctx, entry, region, int(source_dims[2]))
        if found is not None:
            return region, *found
    return None


def _identify(ctx: Any, entry: str, region: Region,
              size: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Self-attention parameters and weights whose result equals the region's, if any."""
    weights = _projections(ctx, entry, region.nodes, size)
    if weights is None:
        return None
    in_weight, in_bias, out_weight, out_bias = weights
    bias = in_bias is not None or out_bias is not None
    zeros = np.zeros
    tensors = {"attention.in_proj_weight": in_weight, "attention.out_proj.weight": out_weight}
    if bias:
        tensors["attention.in_proj_bias"] = in_bias if in_bias is not None else zeros(3 * size, np.float32)
        tensors["attention.out_proj.bias"] = out_bias if out_bias is not None else zeros(size, np.float32)
    ran = run_region(ctx, entry, region)
    if ran is None:
        return None
    sample, expected = ran  # batch-first, as the source
    for heads in [h for h in range(1, size + 1) if size % h == 0]:
        for causal in (False, True):
            if same(_attention(sample, tensors, size, heads, causal, bias), expected):
                return {"num_heads": heads, "dropout": 0.0, "bias": bias, "causal": causal}, tensors
    return None


def _projections(ctx: Any, entry: str, region: list[Any],
                 size: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None] | None:
    """(in_proj_weight (3E, E), its bias, out_proj weight (E, E), its bias) read from the region's constants."""
    found_in, found_out = None, None
    for n in region:
        found = linear_of(ctx, n, region)
        if found is None:
            continue
        if n.input[0] == entry and found[0].shape == (3 * size, size):
            found_in = found
        elif found[0].shape == (size, size) and n.input[0] != entry:
            found_out = found
    if found_in is None or found_out is None:
        return None
    return (found_in[0], found_in[1], found_out[0], found_out[1])


def _attention(sample: np.ndarray, tensors: dict[str, np.ndarray], size: int, heads: int, causal: bool,
               bias: bool) -> np.ndarray:
    """``nn.MultiheadAttention`` with these weights on the batch-first ``sample`` (self-attention)."""
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
        return attention(x, x, x, need_weights=False, attn_mask=mask)[0].numpy()
