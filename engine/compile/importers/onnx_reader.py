"""Import an ONNX model: map its operators onto canvas layers, with its weights.

Constants (initializers and ``Constant`` nodes) become layer weights and parameters; every
other value must come from a mapped operator. Supported: Gemm, MatMul (+ Add of a bias),
Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H and W,
BatchNormalization, LayerNormalization, Relu, LeakyRelu, Elu, Gelu, Sigmoid, Tanh, Softmax,
LogSoftmax, Flatten, Reshape, Transpose, Add, Mul, Concat, Resize, Gather of an embedding
table, Identity and Dropout (and whatever else a layer declares it imports); also adaptive
average pooling written out as a gather of windows (:mod:`.onnx_windows`), one-layer LSTM / GRU read to their last hidden state and
GELU written out as its Erf formula (:mod:`engine.compile.importers.onnx_symbolic`), with
constant subgraphs folded; Softplus with its beta and threshold and tanh-approximate GELU
(:mod:`.onnx_activations`), GroupNorm and LayerNorm2d (:mod:`.onnx_norms`), ChannelShuffle and
1-d adaptive pooling (:mod:`.onnx_reshapes`), ViT's class token (:mod:`.onnx_tokens`),
self-attention with or without its causal mask (:mod:`.onnx_attention`) and a one-layer RNN
unrolled step by step (:mod:`.onnx_unrolled`), each written out as several operators, become
one layer; so does a sequence plus a constant table of its steps (Positional Encoding,
sinusoidal or learned); a strided view (``as_strided``, a Gather of the flattened tensor) that
permutes or reshapes its input becomes a Permute / Reshape (:mod:`.onnx_strided`). Any other
operator is listed and nothing is imported.

Not mappable (listed in the error): stacked or bidirectional RNNs (exporters unroll them; one
line names what was found), and Transformer blocks as one layer (they import as their parts:
LayerNorm, self-attention, Add, Linear...).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.compile.importers.builder import GraphBuilder, ImportProblem
from engine.errors import first_line
from engine.compile.importers.onnx_ops import Context, handlers

MAX_ONNX_BYTES = 2 * 1024**3
#: Largest constant tensor read from a model (values), a bound against absurd dims in a bad file.
MAX_CONSTANT_VALUES = 2**31


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
        raise ImportProblem(f"{path}: not a valid ONNX model: {first_line(exc)}") from None


def _dims(value_info: Any) -> list[Any]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def read_onnx(path: Path) -> tuple[GraphBuilder, str, Any, list[str], list[tuple[str, dict[str, Any]]], int]:
    """Map the model at ``path``.

    Returns:
        The filled builder, the model's name, an ONNX Runtime session of the original (for
        the self-check), the graph input names, each Input node's ``(type_id, params)``, and
        the batch size the self-check runs at (the model's own when it fixes one, else 3).

    Raises:
        ImportProblem: Not an ONNX file, inputs without fixed per-sample shapes, or ONNX
            Runtime cannot run it.
    """
    from onnx import TensorProto

    model = _load(path)
    graph = model.graph
    builder = GraphBuilder(path.name)
    ctx = Context(builder, _constants(graph.initializer, path))
    ctx.graph = graph
    ctx.producers = {output: node for node in graph.node for output in node.output if output}
    ctx.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), ctx.opset)
    for info in [*graph.value_info, *graph.input, *graph.output]:
        ctx.shapes[info.name] = _dims(info)
    feeds, inputs = [], []
    ctx.fixed_batch = _fixed_batch(graph, ctx)
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
        ctx.map_node(node, handlers().get(node.op_type))
    for info in graph.output:
        if info.name in ctx.values:
            builder.add("output", info.name, {}, [ctx.values[info.name]])
        elif info.name in ctx.virtual:
            builder.skip(f"output {info.name}", "an intermediate value of a pattern that spans several operators")
        elif not builder.unmapped:
            builder.skip(f"output {info.name} (a constant)")
    return builder, path.stem, _session(path), feeds, inputs, ctx.fixed_batch or 3


def _fixed_batch(graph: Any, ctx: Context) -> int | None:
    """The batch size every graph input fixes (``torch.onnx.export``'s default), else ``None``.

    Such a model is imported as the batch-free canvas graph; operations that name the batch
    size (a Reshape to ``[1, -1]``) read it as the batch, and the import's self-check runs
    at that size.
    """
    sizes = {_dims(info)[0] for info in graph.input if info.name not in ctx.consts and _dims(info)}
    if len(sizes) == 1:
        (size,) = sizes
        if isinstance(size, int) and size > 0:
            return size
    return None


def _constants(initializers: Any, path: Path) -> dict[str, np.ndarray]:
    """The model's constant tensors, checked before any byte is read.

    External data must lie in a file inside the model's folder (a location such as
    ``../../etc/passwd`` is refused and nothing is read); a tensor's dims must be sane and
    match the bytes it holds.

    Raises:
        ImportProblem: Naming the tensor and what is wrong with it.
    """
    from onnx import TensorProto, external_data_helper, helper, numpy_helper

    folder = path.parent.resolve()
    result = {}
    for tensor in initializers:
        label = f"{path.name}: constant {tensor.name or '(unnamed)'}"
        dims = list(tensor.dims)
        if any(d < 0 for d in dims) or math.prod(dims) > MAX_CONSTANT_VALUES:
            raise ImportProblem(f"{label} has impossible dims {dims[:8]}: the file is damaged")
        if tensor.data_location == TensorProto.EXTERNAL:
            info = {entry.key: entry.value for entry in tensor.external_data}
            location = info.get("location", "")
            target = (folder / location).resolve()
            if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
                raise ImportProblem(f"{label} keeps its data at {location!r}, outside the model's folder: refused "
                                    "(nothing was read)")
            if not target.is_file():
                raise ImportProblem(f"{label} keeps its data in {location}, which is missing beside the model")
            try:
                external_data_helper.load_external_data_for_tensor(tensor, str(folder))
            except (OSError, ValueError) as exc:
                raise ImportProblem(f"{label}: its external data in {location} cannot be read ({exc})") from None
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            raise ImportProblem(f"{label} has an unknown element type {tensor.data_type}") from None
        if tensor.raw_data and len(tensor.raw_data) != math.prod(dims) * item:
            raise ImportProblem(f"{label} declares dims {dims} ({math.prod(dims) * item} bytes) but holds "
                                f"{len(tensor.raw_data)} bytes: the file is damaged")
        try:
            result[tensor.name] = numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as exc:
            raise ImportProblem(f"{label} cannot be read: {first_line(exc)}") from None
    return result


def _session(path: Path) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        raise ImportProblem(f"{path.name}: ONNX Runtime cannot load it: {first_line(exc)}") from None


def as_float(array: np.ndarray) -> np.ndarray:
    """A float32 copy (weights are stored as float32)."""
    return np.ascontiguousarray(array, dtype=np.float32)
