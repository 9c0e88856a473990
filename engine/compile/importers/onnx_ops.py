"""One handler per ONNX operator: map a node onto a canvas layer, or say why not.

A handler returns ``None`` when it added a node (or aliased its output), and a reason
string when the node cannot be mapped exactly; the reason is listed in the import error.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from engine.compile.importers.onnx_context import Context

Handler = Callable[[Context, Any, dict[str, Any]], "str | None"]


def _symmetric(pads: list[int], ndim: int) -> list[int] | None:
    pads = pads or [0] * (2 * ndim)
    return pads[:ndim] if pads[:ndim] == pads[ndim:] else None


def _size(values: list[int]) -> Any:
    return values[0] if len(values) == 1 else list(values)


def gemm(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, w = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if w not in ctx.consts or bias is not None and bias not in ctx.consts or x in ctx.consts:
        return "weights that are not constants"
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        return "transA, alpha or beta"
    weight = ctx.consts[w] if a.get("transB", 0) else ctx.consts[w].T
    out = weight.shape[0]
    if bias is not None and ctx.consts[bias].size != out:
        return "a broadcast bias"
    tensors = {"weight": weight} | ({"bias": ctx.consts[bias].reshape(out)} if bias else {})
    ctx.add(node, "linear", {"out_features": int(out), "bias": bias is not None}, [x], tensors, w)
    return None


def matmul(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, w = node.input
    if w not in ctx.consts or ctx.consts[w].ndim != 2 or x in ctx.consts:
        return "only x @ W with a constant 2-D W maps (to a Linear)"
    node_id = ctx.add(node, "linear", {"out_features": int(ctx.consts[w].shape[1]), "bias": False}, [x],
                      {"weight": ctx.consts[w].T}, w)
    ctx.from_matmul.add(node_id)
    return None


def add_or_mul(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    left, right = node.input
    const = left if left in ctx.consts else right if right in ctx.consts else None
    if const is None:
        type_id = "add" if node.op_type == "Add" else "multiply"
        ctx.add(node, type_id, {"num_inputs": 2}, [left, right])
        return None
    other = right if const == left else left
    target = ctx.values.get(other, "")
    graph = ctx.builder.graph
    if node.op_type == "Add" and target in ctx.from_matmul and ctx.consumers.get(other) == 1:
        linear = graph.nodes[target]
        if ctx.consts[const].size == linear.params["out_features"] and not linear.params["bias"]:
            linear.params["bias"] = True  # x @ W + b: the bias of the Linear
            ctx.builder.weights[f"{target}.bias"] = torch.from_numpy(
                np.array(ctx.consts[const], dtype=np.float32).reshape(-1))
            ctx.values[node.output[0]] = target
            return None
    return "arithmetic with a constant"


def conv(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, w = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if w not in ctx.consts or bias is not None and bias not in ctx.consts:
        return "weights that are not constants"
    weight = ctx.consts[w]
    ndim = weight.ndim - 2
    transposed = node.op_type == "ConvTranspose"
    pads = _symmetric(a.get("pads", []), ndim)
    if ndim not in (1, 2) or pads is None or a.get("auto_pad", "NOTSET") != "NOTSET" or transposed and (
            ndim != 2 or "output_shape" in a):
        return "asymmetric or automatic padding, or an unsupported number of axes"
    groups = int(a.get("group", 1))
    out = weight.shape[1] * groups if transposed else weight.shape[0]
    params: dict[str, Any] = {"out_channels": int(out), "kernel_size": _size(list(weight.shape[2:])),
                              "stride": _size(a.get("strides", [1] * ndim)), "padding": _size(pads),
                              "dilation": _size(a.get("dilations", [1] * ndim)), "groups": groups,
                              "bias": bias is not None}
    if transposed:
        params["output_padding"] = _size(a.get("output_padding", [0] * ndim))
    type_id = "conv_transpose2d" if transposed else f"conv{ndim}d"
    tensors = {"weight": weight} | ({"bias": ctx.consts[bias]} if bias else {})
    ctx.add(node, type_id, params, [x], tensors, w)
    return None


def pool(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    kernel = list(a.get("kernel_shape", []))
    ndim = len(kernel)
    pads = _symmetric(a.get("pads", []), ndim)
    average = node.op_type == "AveragePool"
    if pads is None or a.get("ceil_mode", 0) or a.get("auto_pad", "NOTSET") != "NOTSET" \
            or any(d != 1 for d in a.get("dilations", [1] * ndim)) or a.get("storage_order", 0):
        return "ceil_mode, dilation, automatic or asymmetric padding"
    if average and (ndim != 2 or any(pads) and not a.get("count_include_pad", 0)):
        return "average pooling that excludes padding, or not 2-D"
    if ndim not in (1, 2):
        return "pooling over more than 2 axes"
    type_id = "avgpool2d" if average else f"maxpool{ndim}d"
    params = {"kernel_size": _size(kernel), "stride": _size(a.get("strides", [1] * ndim)), "padding": _size(pads)}
    ctx.add(node, type_id, params, [node.input[0]])
    return None


def global_pool(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    if node.op_type == "ReduceMean":
        axes = a.get("axes")
        if axes is None and len(node.input) > 1:
            axes = ctx.consts.get(node.input[1], np.asarray([])).tolist()
        rank = ctx.rank(node.input[0])
        if rank != 4 or sorted(d % 4 for d in axes or []) != [2, 3]:
            return "a mean over other axes than height and width"
        flatten = not a.get("keepdims", 1)
    else:
        flatten = False
        if ctx.rank(node.input[0]) != 4:
            return "not 2-D"
    ctx.add(node, "adaptive_avgpool2d", {"output_size": [1, 1], "flatten": flatten}, [node.input[0]])
    return None


def batchnorm(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, scale, bias, mean, var = node.input[:5]
    if any(n not in ctx.consts for n in (scale, bias, mean, var)) or a.get("training_mode", 0):
        return "statistics that are not constants"
    rank = ctx.rank(x)
    type_id = "batchnorm2d" if rank == 4 else "batchnorm1d"
    tensors = {"weight": ctx.consts[scale], "bias": ctx.consts[bias], "running_mean": ctx.consts[mean],
               "running_var": ctx.consts[var], "num_batches_tracked": np.asarray(0, dtype=np.int64)}
    params = {"eps": float(a.get("epsilon", 1e-5)), "momentum": round(1.0 - float(a.get("momentum", 0.9)), 6),
              "affine": True}
    ctx.add(node, type_id, params, [x], tensors, scale)
    return None


def layernorm(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, scale = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    rank = ctx.rank(x)
    axis = int(a.get("axis", -1))
    dims = rank - axis if axis >= 0 else -axis
    if scale not in ctx.consts or bias is not None and bias not in ctx.consts or not 1 <= dims < max(rank, 2):
        return "a scale that is not constant, or normalizing the batch axis"
    weight = ctx.consts[scale]
    tensors = {"weight": weight, "bias": ctx.consts[bias] if bias else np.zeros_like(weight)}
    ctx.add(node, "layernorm", {"normalized_dims": dims, "eps": float(a.get("epsilon", 1e-5)),
                                "elementwise_affine": True}, [x], tensors, scale)
    return None


def activation(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    op = node.op_type
    params: dict[str, Any] = {}
    if op == "LeakyRelu":
        params = {"negative_slope": float(a.get("alpha", 0.01))}
    elif op == "Elu":
        params = {"alpha": float(a.get("alpha", 1.0))}
    elif op == "Gelu":
        params = {"approximate": a.get("approximate", "none")}
    elif op in ("Softmax", "LogSoftmax"):
        params = {"dim": int(a.get("axis", -1))}
    type_id = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Elu": "elu", "Gelu": "gelu", "Sigmoid": "sigmoid",
               "Tanh": "tanh", "Softmax": "softmax", "LogSoftmax": "log_softmax"}[op]
    ctx.add(node, type_id, params, [node.input[0]])
    return None


def passthrough(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    if node.input[0] not in ctx.values:
        return "a constant"
    ctx.values[node.output[0]] = ctx.values[node.input[0]]  # Identity, and Dropout in inference
    return None


def flatten(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    if int(a.get("axis", 1)) != 1:
        return "flattening at another axis than 1"
    ctx.add(node, "flatten", {"start_dim": 1, "end_dim": -1}, [node.input[0]])
    return None


def reshape(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    x, shape = node.input
    if shape not in ctx.consts:
        return "a shape computed at run time"
    target = [int(v) for v in ctx.consts[shape].tolist()]
    source = ctx.shapes.get(x, [])
    rest = target[1:]
    if not target or not ctx.is_batch(target[0]) or target[0] == -1 and -1 in rest or 0 in rest:
        return f"target shape {target} does not keep the batch first"
    per_sample = source[1:]
    if len(source) > 2 and all(isinstance(d, int) for d in per_sample) and rest == [math.prod(per_sample)]:
        ctx.add(node, "flatten", {"start_dim": 1, "end_dim": -1}, [x])
    else:
        ctx.add(node, "reshape", {"shape": rest}, [x])
    return None


def transpose(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    perm = list(a.get("perm", []))
    if not perm or perm[0] != 0:
        return "moving the batch axis"
    ctx.add(node, "permute", {"dims": perm}, [node.input[0]])
    return None


def concat(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    if any(n in ctx.consts for n in node.input) or not 2 <= len(node.input) <= 8:
        return "constants or more than 8 inputs"
    ctx.add(node, "concat", {"num_inputs": len(node.input), "dim": int(a.get("axis", 1))}, list(node.input))
    return None


def resize(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    scales = node.input[2] if len(node.input) > 2 else ""
    values = ctx.consts.get(scales, np.asarray([])).tolist()
    mode = a.get("mode", "nearest")
    transform = a.get("coordinate_transformation_mode", "half_pixel")
    if len(values) < 3 or values[:2] != [1.0, 1.0] or len(set(values[2:])) != 1 or not float(values[2]).is_integer():
        return "scales that are not one integer factor"
    if mode == "nearest" and transform == "asymmetric" and a.get("nearest_mode", "round_prefer_floor") == "floor":
        kind = "nearest"
    elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel") and len(values) == 4:
        kind = "bilinear"
    else:
        return f"mode {mode} with {transform} coordinates"
    ctx.add(node, "upsample", {"scale_factor": int(values[2]), "mode": kind}, [node.input[0]])
    return None


def gather(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    table, ids = node.input
    if table not in ctx.consts or ctx.consts[table].ndim != 2 or int(a.get("axis", 0)) != 0 or ids in ctx.consts:
        return "only a lookup in a constant embedding table maps"
    rows, size = ctx.consts[table].shape
    ctx.add(node, "embedding", {"num_embeddings": int(rows), "embedding_dim": int(size)}, [ids],
            {"weight": ctx.consts[table]}, table)
    return None


OPS: dict[str, Handler] = {
    "Gemm": gemm, "MatMul": matmul, "Add": add_or_mul, "Mul": add_or_mul, "Conv": conv, "ConvTranspose": conv,
    "MaxPool": pool, "AveragePool": pool, "GlobalAveragePool": global_pool, "ReduceMean": global_pool,
    "BatchNormalization": batchnorm, "LayerNormalization": layernorm, "Flatten": flatten, "Reshape": reshape,
    "Transpose": transpose, "Concat": concat, "Resize": resize, "Gather": gather, "Identity": passthrough,
    "Dropout": passthrough, **{op: activation for op in ("Relu", "LeakyRelu", "Elu", "Gelu", "Sigmoid", "Tanh",
                                                          "Softmax", "LogSoftmax")},
}
