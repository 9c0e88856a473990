"""Import an ONNX model: map its operators onto canvas layers, with its weights.

Constants (initializers and ``Constant`` nodes) become layer weights and parameters; every
other value must come from a mapped operator. Supported: Gemm, MatMul (+ Add of a bias),
Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W,
BatchNormalization, LayerNormalization, Relu, LeakyRelu, Elu, Gelu, Sigmoid, Tanh, Softmax,
LogSoftmax, Flatten, Reshape, Transpose, Add, Mul, Concat, Resize, Gather of an embedding
table, Identity and Dropout; also one-layer LSTM / GRU read to their last hidden state and
GELU written out as its Erf formula (:mod:`engine.compile.importers.onnx_symbolic`), with
constant subgraphs folded. Any other operator is listed and nothing is imported.

Not mappable (listed in the error): RNNs (exporters unroll them), stacked, bidirectional or
sequence-returning LSTM / GRU, attention and Transformer blocks (decomposed into reshapes,
masks and matrix products).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.compile.importers.builder import GraphBuilder, ImportProblem
from engine.compile.importers.onnx_ops import OPS, Context

MAX_ONNX_BYTES = 2 * 1024**3


def _load(path: Path) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ImportProblem(f"{path}: no such file")
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise ImportProblem(f"{path}: larger than 2 GiB; external-data ONNX models are not supported")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise ImportProblem(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    if not model.graph.node and not model.graph.input:
        raise ImportProblem(f"{path}: not an ONNX model (no graph)")
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError and others
        raise ImportProblem(f"{path}: not a valid ONNX model: {str(exc).splitlines()[0][:200]}") from None


def _dims(value_info: Any) -> list[Any]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def read_onnx(path: Path) -> tuple[GraphBuilder, str, Any, list[str], list[tuple[str, dict[str, Any]]]]:
    """Map the model at ``path``.

    Returns:
        The filled builder, the model's name, an ONNX Runtime session of the original (for
        the self-check), the graph input names, and each Input node's ``(type_id, params)``.

    Raises:
        ImportProblem: Not an ONNX file, inputs without fixed per-sample shapes, or ONNX
            Runtime cannot run it.
    """
    from onnx import TensorProto, numpy_helper

    model = _load(path)
    graph = model.graph
    builder = GraphBuilder(path.name)
    ctx = Context(builder, {t.name: numpy_helper.to_array(t) for t in graph.initializer})
    ctx.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), ctx.opset)
    for info in [*graph.value_info, *graph.input, *graph.output]:
        ctx.shapes[info.name] = _dims(info)
    feeds, inputs = [], []
    for info in graph.input:
        if info.name in ctx.consts:
            continue
        dims = _dims(info)
        if len(dims) < 2 or not all(isinstance(d, int) and d > 0 for d in dims[1:]):
            raise ImportProblem(f"{path.name}: input {info.name} has shape {dims}: the canvas needs a batch "
                                "dimension first and fixed sizes after it")
        if info.type.tensor_type.elem_type == TensorProto.INT64:
            vocab = ctx.vocabulary_for(info.name, graph)
            params: dict[str, Any] = {"vocab_size": vocab, "seq_len": dims[1]}
            if len(dims) != 2 or vocab is None:
                raise ImportProblem(f"{path.name}: integer input {info.name} must be (batch, steps) token ids "
                                    "feeding a Gather of an embedding table")
            type_id = "token_input"
        elif info.type.tensor_type.elem_type == TensorProto.FLOAT:
            type_id, params = "input", {"shape": [int(d) for d in dims[1:]]}
        else:
            raise ImportProblem(f"{path.name}: input {info.name} is neither float32 nor int64")
        ctx.values[info.name] = builder.add(type_id, info.name, params, [])
        feeds.append(info.name)
        inputs.append((type_id, params))
    for name in [*(i for node in graph.node for i in node.input), *(o.name for o in graph.output)]:
        ctx.consumers[name] = ctx.consumers.get(name, 0) + 1
    for node in graph.node:
        ctx.map_node(node, OPS.get(node.op_type))
    for info in graph.output:
        if info.name in ctx.values:
            builder.add("output", info.name, {}, [ctx.values[info.name]])
        elif not builder.unmapped:
            builder.skip(f"output {info.name} (a constant)")
    return builder, path.stem, _session(path), feeds, inputs


def _session(path: Path) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        raise ImportProblem(f"{path.name}: ONNX Runtime cannot load it: {str(exc).splitlines()[0][:200]}") from None


def as_float(array: np.ndarray) -> np.ndarray:
    """A float32 copy (weights are stored as float32)."""
    return np.ascontiguousarray(array, dtype=np.float32)
