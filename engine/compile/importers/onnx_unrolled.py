"""An RNN unrolled step by step, back onto one canvas RNN layer.

``torch.onnx.export`` writes a batch-first ``nn.RNN`` (tanh or relu) not as the ONNX ``RNN``
operator but one step after the other::

    Transpose(x, perm=[1, 0, 2])                   # (T, N, C): the entry
    MatMul(W_ih^T) + Add(b_ih); Slice, Squeeze     # each step's input projection x_t
    Expand(0, Shape(x) ...)                        # h_0: zeros shaped from the batch size
    MatMul(h, W_hh^T) + Add(b_hh) + x_t -> Tanh    # h_t, T times, the same weights each time
    Squeeze, Gather(-1)                            # h_T (output "last"), or
    Concat(h_1 ... h_T), Transpose(perm=[1, 0, 2]) # the sequence (output "sequence")

As for self-attention, the region (:mod:`.onnx_regions`) from the entry to a candidate exit, a
value of shape (N, H) or (N, T, H), is checked by its result: it must hold T activations of one
kind, its matrix products by constants must be one input matrix (read from the entry before any
activation) and one recurrent matrix, and running it must equal ``nn.RNN`` with those weights on
random inputs. Then it becomes one ``rnn`` node (the last such exit: reshapes after the state
belong to it). A region with the T activations that does not check out (a stacked or
bidirectional RNN, unrolled) is refused as a whole, in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.compile.importers.onnx_regions import (Region, absorb, closed_region, consumers_of, linear_of, reachable,
                                                   run_region, same)

#: Activation operators of an RNN step, and the canvas layer's ``nonlinearity``.
_ACTIVATIONS = {"Tanh": "tanh", "Relu": "relu"}
#: Operators that may follow the final state within the region (picking, squeezing or viewing it).
_RESHAPING = frozenset({"Squeeze", "Unsqueeze", "Gather", "Reshape", "Identity", "Flatten"})
#: Most candidate exits tried per entry (a bound on the search).
_MAX_CANDIDATES = 128
Found = tuple[dict[str, Any], dict[str, np.ndarray]]


def follow_unrolled(ctx: Any, node: Any, entry: str, source: Any) -> str | None:
    """At the first reader of a time-major ``entry``: map an unrolled RNN from it to one ``rnn`` node (``""``),
    refuse one that does not check out (its reason, listed once for the whole region), else ``None``."""
    dims = ctx.shapes.get(entry, [])
    if ctx.graph is None or len(dims) != 3 or not all(isinstance(d, int) for d in (dims[0], dims[2])) \
            or dims[0] < 2:
        return None
    steps = dims[0]
    consumers = consumers_of(ctx.graph)
    downstream = reachable(entry, consumers)
    sizes = {ctx.shapes[n.output[0]][-1] for n in downstream if _step(ctx, n)}
    hidden = {d * size for size in sizes if isinstance(size, int) for d in (1, 2)}  # 2: both directions
    mapped: tuple[Region, Found] | None = None
    refused: tuple[Region, str] | None = None
    for exit_node in _candidates(ctx, downstream, steps, hidden):
        region = closed_region(ctx, entry, exit_node, downstream, consumers)
        activations = [n for n in region.nodes if _step(ctx, n)] if region else []
        if region is None or not activations or len(activations) % steps:
            continue
        if mapped is not None and not _extends(mapped[0], region):
            continue
        found = _identify(ctx, entry, region, activations, steps, consumers)
        if not isinstance(found, str):
            mapped = region, found
        elif mapped is None:
            refused = region, found
    if mapped is not None:
        region, (params, tensors) = mapped
        absorb(ctx, region, entry)
        anchor = next((n for n in region.nodes if n.op_type in ("MatMul", "Gemm")), node)
        ctx.values[region.exit] = ctx.place(anchor, "rnn", params, [source], tensors)
        return ""
    if refused is not None:
        absorb(ctx, refused[0], entry)
        return refused[1]
    return None


def _batch(ctx: Any, size: Any) -> bool:
    """Whether a dimension is the batch: symbolic, or the fixed batch size."""
    return not isinstance(size, int) or size == ctx.fixed_batch


def _step(ctx: Any, node: Any) -> bool:
    """Whether ``node`` is the activation of one time step: of a state (N, H) or (1, N, H), no time axis."""
    dims = ctx.shapes.get(node.output[0], []) if node.op_type in _ACTIVATIONS else []
    return len(dims) in (2, 3) and _batch(ctx, dims[-2]) and (len(dims) == 2 or dims[0] == 1)


def _candidates(ctx: Any, downstream: list[Any], steps: int, hidden: set[int]) -> list[Any]:
    """Nodes whose output may be the RNN's: (N, H), or (N, T, H) batch-first, in graph order."""
    order = {id(n): i for i, n in enumerate(ctx.graph.node)}
    found = []
    for n in sorted(downstream, key=lambda n: order[id(n)]):
        dims = ctx.shapes.get(n.output[0] if n.output else "", [])
        if dims and _batch(ctx, dims[0]) and (len(dims) == 2 and dims[1] in hidden
                                              or len(dims) == 3 and dims[1] == steps and dims[2] in hidden):
            found.append(n)
    return found[:_MAX_CANDIDATES]


def _extends(mapped: Region, region: Region) -> bool:
    """Whether ``region`` is ``mapped`` and reshapes of its result only."""
    inner = {id(n) for n in mapped.nodes}
    return inner <= {id(n) for n in region.nodes} and all(n.op_type in _RESHAPING for n in region.nodes
                                                          if id(n) not in inner)


def _identify(ctx: Any, entry: str, region: Region, activations: list[Any], steps: int,
              consumers: dict[str, list[Any]]) -> Found | str:
    """The RNN's parameters and weights when the region computes one, else why not."""
    kinds = {n.op_type for n in activations}
    if len(kinds) > 1 or len(activations) != steps:
        return (f"an RNN unrolled step by step ({len(activations)} {'/'.join(sorted(kinds))} steps over {steps} "
                "time steps): only one layer in one direction maps (stacked or bidirectional, it does not)")
    weights = _weights(ctx, entry, region, consumers)
    if isinstance(weights, str):
        return f"an RNN unrolled step by step with {weights}: only one layer in one direction maps"
    hidden = weights["rnn.weight_hh_l0"].shape[0]
    output = "last" if len(ctx.shapes.get(region.exit, [])) == 2 else "sequence"
    nonlinearity = _ACTIVATIONS[kinds.pop()]
    ran = run_region(ctx, entry, region)
    if ran is None or not same(_rnn(ran[0], weights, nonlinearity, output), ran[1]):
        return ("an RNN unrolled step by step that does not compute nn.RNN with the weights it holds (another "
                "recurrence, or an initial state other than zeros)")
    return {"hidden_size": hidden, "num_layers": 1, "bidirectional": False, "dropout": 0.0, "output": output,
            "nonlinearity": nonlinearity}, weights


def _weights(ctx: Any, entry: str, region: Region, consumers: dict[str, list[Any]]) -> dict[str, np.ndarray] | str:
    """nn.RNN's tensors: the one matrix applied to the input (before any activation) and the one applied to
    the state, with the biases added after them; else what the region holds instead."""
    members = {id(n) for n in region.nodes}
    before, stack = {entry}, [entry]  # values computed from the entry without an activation
    while stack:
        for reader in consumers.get(stack.pop(), []):
            if id(reader) in members and reader.op_type not in _ACTIVATIONS:
                fresh = [o for o in reader.output if o and o not in before]
                before.update(fresh)
                stack.extend(fresh)
    linears: dict[bool, list[tuple[np.ndarray, np.ndarray | None]]] = {True: [], False: []}
    for n in region.nodes:
        found = linear_of(ctx, n, region.nodes)
        if found is not None and id(n) not in region.side:
            linears[n.input[0] in before].append(found)
        elif n.op_type in ("MatMul", "Gemm") and id(n) not in region.side:
            return "a matrix product of two computed values"
    inputs, states = _distinct(linears[True]), _distinct(linears[False])
    if len(inputs) != 1 or len(states) != 1:
        return f"{len(inputs)} input and {len(states)} recurrent weight matrices"
    (w_ih, b_ih), (w_hh, b_hh) = inputs[0], states[0]
    hidden = w_hh.shape[0]
    if w_hh.shape != (hidden, hidden) or w_ih.shape[0] != hidden:
        return f"weights of shapes {tuple(w_ih.shape)} and {tuple(w_hh.shape)}"
    zeros = np.zeros(hidden, dtype=np.float32)
    return {"rnn.weight_ih_l0": w_ih, "rnn.weight_hh_l0": w_hh,
            "rnn.bias_ih_l0": zeros if b_ih is None else b_ih, "rnn.bias_hh_l0": zeros if b_hh is None else b_hh}


def _distinct(linears: list[tuple[np.ndarray, np.ndarray | None]]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The matrices (with their biases) of different values; the first of equal ones."""
    result: list[tuple[np.ndarray, np.ndarray | None]] = []
    for matrix, bias in linears:
        if not any(m.shape == matrix.shape and np.array_equal(m, matrix) for m, _ in result):
            result.append((matrix, bias))
    return result


def _rnn(sample: np.ndarray, tensors: dict[str, np.ndarray], nonlinearity: str, output: str) -> np.ndarray:
    """``nn.RNN`` (batch first) with these weights on ``sample``: its last state, or its output sequence."""
    import torch
    from torch import nn

    hidden, features = tensors["rnn.weight_ih_l0"].shape
    rnn = nn.RNN(features, hidden, nonlinearity=nonlinearity, batch_first=True)
    rnn.load_state_dict({key.removeprefix("rnn."): torch.from_numpy(np.array(value)) for key, value in tensors.items()})
    with torch.no_grad():
        sequence, state = rnn(torch.from_numpy(sample))
    return (state[-1] if output == "last" else sequence).numpy()
