"""Writing the smaller ONNX copy (int8 with ONNX Runtime's quantization tools, or fp16), with
chosen operator types kept in float, and finding the operator type ONNX Runtime cannot run.

ONNX Runtime (1.32) crashes on some converted models while it builds their session, e.g. on
the fp16 form of ``Transpose`` in recurrent networks and Transformers. When the converted model
cannot be run, :func:`find_float_culprit` converts it again with one operator type at a time
kept in float and runs each attempt in a child process: the first type whose float form makes
the model run is named, and kept in float, instead of giving up on the whole model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

#: Samples each attempt of :func:`find_float_culprit` runs through ONNX Runtime.
PROBE_SAMPLES = 2


def write_converted(float_path: Path, out: Path, method: str, calibration_x: np.ndarray, input_name: str,
                    keep_float: Iterable[str] = ()) -> None:
    """Write ``float_path`` converted by ``method`` (``fp16``, ``dynamic`` or ``static`` int8) to ``out``.

    Static quantization writes QDQ with uint8 activations and per-channel int8 weights: ONNX
    Runtime fuses residual additions and pooling only for uint8 activations (int8 ones ran the
    ResNet template at half the float model's speed, uint8 ones at 0.94x, in
    ``bench/quantize_variants.py``); the convolutions reading the input stay float
    (:func:`input_convolutions`).

    Args:
        keep_float: Operator types left in float32.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    keep = set(keep_float)
    if method == "fp16":
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True,
                                         op_block_list=[*DEFAULT_OP_BLOCK_LIST, *sorted(keep)])
        onnx.save(model, str(out))
        return
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + ".prepared.onnx")  # shapes inferred, graph optimized: as ORT advises
    try:
        quant_pre_process(str(float_path), str(prepared))
        if method == "dynamic":
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8,
                             op_types_to_quantize=_quantized_types(method, keep))
        else:
            quantize_static(str(prepared), str(out), _Calibration(calibration_x, input_name),
                            quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QUInt8, op_types_to_quantize=_quantized_types(method, keep),
                            nodes_to_exclude=input_convolutions(prepared))
    finally:
        prepared.unlink(missing_ok=True)


def input_convolutions(path: Path) -> list[str]:
    """Names of the convolutions that read a model input: static quantization leaves them in float.

    The first convolution sees the raw input, which is the most sensitive to rounding, and sums
    few products per output (9 for a 3x3 kernel on one channel), where int8 arithmetic saves less
    than the quantize and dequantize steps around it cost: on the CNN template, leaving it in
    float makes the int8 model faster than the float one instead of slower
    (``bench/quantize_variants.py``), at no cost in size (its weights are a few hundred bytes).
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "Conv" and node.input and node.input[0] in inputs]


def convertible_types(float_path: Path, method: str) -> list[str]:
    """The operator types of the float model that ``method`` converts, most frequent first."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(float_path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return [t for t in sorted(counts, key=lambda t: -counts[t]) if t in _converted_types(method)]


def find_float_culprit(float_path: Path, method: str, calibration_x: np.ndarray, input_name: str,
                       runs: Callable[[Path], bool], folder: Path, complaint: str = "",
                       progress: Callable[[str], None] | None = None) -> str | None:
    """The first operator type whose float form makes the converted model run, or ``None``.

    Args:
        runs: Whether ONNX Runtime loads and runs a model file (without crashing the caller).
        folder: Where the attempts are written (each is deleted after its try).
        complaint: What went wrong: the types it names are tried first.
        progress: Told before each attempt, in one line (``Transpose kept in float: attempt 1 of 14``).
    """
    candidates = convertible_types(float_path, method)
    named = [t for t in candidates if re.search(rf"\b{re.escape(t)}\b", complaint)]
    order = named + [t for t in candidates if t not in named]
    for index, op_type in enumerate(order, start=1):
        if progress is not None:
            progress(f"ONNX Runtime cannot run the {method} model; trying it with {op_type} kept in float "
                     f"(attempt {index} of {len(order)})")
        attempt = folder / f"keep-{op_type}.onnx"
        try:
            write_converted(float_path, attempt, method, calibration_x, input_name, keep_float=(op_type,))
            if runs(attempt):
                return op_type
        except Exception:  # noqa: BLE001 - this attempt's conversion failed too: try the next type
            continue
        finally:
            attempt.unlink(missing_ok=True)
    return None


def _converted_types(method: str) -> set[str]:
    if method == "fp16":
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

        return {schema.name for schema in onnx.defs.get_all_schemas()} - set(DEFAULT_OP_BLOCK_LIST)
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry

    return set(IntegerOpsRegistry if method == "dynamic" else QDQRegistry)


def _quantized_types(method: str, keep: set[str]) -> list[str] | None:
    """``op_types_to_quantize`` for ONNX Runtime's quantizer: ``None`` (every type it knows) unless some are kept."""
    return sorted(_converted_types(method) - keep) if keep else None


class _Calibration:
    """ONNX Runtime's calibration reader over training samples (duck-typed CalibrationDataReader)."""

    def __init__(self, x: np.ndarray, input_name: str) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: x[i:i + 32]} for i in range(0, len(x), 32)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._batches
