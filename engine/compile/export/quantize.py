"""Smaller ONNX models for small devices: int8 with ONNX Runtime's quantization tools, or fp16.

* int8 for convolution networks: static quantization (QDQ, per-channel int8 weights and
  activations), calibrated on the run's own training samples;
* int8 for the others (linear, recurrent, attention): dynamic quantization of the weights;
* fp16: every float tensor converted, inputs and outputs kept float32.

The quantized model's check is not element-wise (int8 outputs differ by design): the task's
metric on the run's validation split, float against quantized, with file sizes and the median
CPU latency at batch 1 (one thread), reported as one table. A classifier that loses more than
:data:`MAX_ACCURACY_DROP` points of accuracy, or a model whose error grows by more than
:data:`MAX_ERROR_GROWTH`, fails the export, and the table says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.compile.export.onnx_measure import measure_apart
from engine.compile.export.run_samples import RunSamples
from engine.compile.export.selfcheck import ExportError
from engine.errors import first_line

MODES = ("int8", "fp16")
#: Largest accepted loss of validation accuracy, in percentage points.
MAX_ACCURACY_DROP = 0.5
#: Largest accepted relative growth of the validation error (regression, autoencoders).
MAX_ERROR_GROWTH = 0.05
#: Batch-1 forward passes timed per model (after as many warm-up passes).
LATENCY_ROUNDS = 200


@dataclass(frozen=True)
class QuantizedReport:
    """Float against quantized: what the export reports.

    Args:
        mode: ``int8`` or ``fp16``.
        method: ``static`` (calibrated), ``dynamic`` or ``fp16``.
        metric: The metric's name (``accuracy`` in %, ``mae``, ``mse``).
        float_metric: The float model's metric on the validation split.
        quantized_metric: The quantized model's.
        float_bytes: The float file's size.
        quantized_bytes: The quantized file's size.
        float_ms: The float model's median latency at batch 1 (ms).
        quantized_ms: The quantized model's.
    """

    mode: str
    method: str
    metric: str
    float_metric: float
    quantized_metric: float
    float_bytes: int
    quantized_bytes: int
    float_ms: float
    quantized_ms: float

    def lines(self) -> list[str]:
        """The table: one row per figure, float and quantized side by side."""
        unit = "%" if self.metric == "accuracy" else ""
        rows = [("file size", f"{self.float_bytes / 1024:,.1f} KiB", f"{self.quantized_bytes / 1024:,.1f} KiB",
                 f"{self.float_bytes / max(self.quantized_bytes, 1):.2f}x smaller"),
                (f"validation {self.metric}", f"{self.float_metric:.4g}{unit}", f"{self.quantized_metric:.4g}{unit}",
                 self._change()),
                ("latency, batch 1", f"{self.float_ms:.4f} ms", f"{self.quantized_ms:.4f} ms", self._speed())]
        prefix = f"{self.mode}:" if self.method == self.mode else f"{self.mode} ({self.method}):"
        head = f"{prefix} {'':<20}{'float':>12}{self.mode:>12}"
        return [head] + [f"{prefix} {name:<20}{a:>12}{b:>12}   {note}" for name, a, b, note in rows]

    def _speed(self) -> str:
        ratio = self.float_ms / max(self.quantized_ms, 1e-12)
        return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"

    def _change(self) -> str:
        if self.metric == "accuracy":
            return f"{self.quantized_metric - self.float_metric:+.2f} points"
        return f"{(self.quantized_metric / self.float_metric - 1) * 100 if self.float_metric else 0.0:+.1f}%"

    def problem(self) -> str | None:
        """Why the quantized model is not good enough, or ``None``."""
        if self.metric == "accuracy":
            drop = self.float_metric - self.quantized_metric
            if drop > MAX_ACCURACY_DROP:
                return (f"{self.mode}: validation accuracy drops {drop:.2f} points ({self.float_metric:.2f}% -> "
                        f"{self.quantized_metric:.2f}%), more than the {MAX_ACCURACY_DROP} allowed")
        elif self.quantized_metric > self.float_metric * (1 + MAX_ERROR_GROWTH) + 1e-12:
            return (f"{self.mode}: validation {self.metric} grows from {self.float_metric:.4g} to "
                    f"{self.quantized_metric:.4g}, more than {MAX_ERROR_GROWTH:.0%}")
        return None


def quantize(float_path: Path, out: Path, mode: str, convolutional: bool, samples: RunSamples,
             input_name: str) -> QuantizedReport:
    """Write the quantized copy of ``float_path`` to ``out`` and measure both.

    Raises:
        ExportError: ONNX Runtime cannot quantize or run the model (the message names its
            complaint, often the operator).
    """
    method = "fp16" if mode == "fp16" else "static" if convolutional else "dynamic"
    try:
        _write(float_path, out, method, samples, input_name)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - the quantizer raises many kinds
        raise ExportError(f"{mode}: ONNX Runtime cannot quantize this model ({method}): {first_line(exc)}") from None
    metric = _metric_name(samples)
    try:
        results = measure_apart([float_path, out], input_name, samples.val_x, samples.val_y, metric, LATENCY_ROUNDS,
                                float_path.parent)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own types, or the child's crash
        out.unlink(missing_ok=True)  # a model ONNX Runtime cannot run is no export
        raise ExportError(f"{mode}: the {mode} model cannot be checked: {first_line(exc)}") from None
    return QuantizedReport(mode, method, metric, results[0][0], results[1][0], float_path.stat().st_size,
                           out.stat().st_size, results[0][1], results[1][1])


def _write(float_path: Path, out: Path, method: str, samples: RunSamples, input_name: str) -> None:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save(convert_float_to_float16(onnx.load(str(float_path)), keep_io_types=True), str(out))
        return
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + ".prepared.onnx")  # shapes inferred, graph optimized: as ORT advises
    try:
        quant_pre_process(str(float_path), str(prepared))
        if method == "dynamic":
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)
        else:
            quantize_static(str(prepared), str(out), _Calibration(samples.calibration_x, input_name),
                            quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)


class _Calibration:
    """ONNX Runtime's calibration reader over training samples (duck-typed CalibrationDataReader)."""

    def __init__(self, x: np.ndarray, input_name: str) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = iter(
            [{input_name: x[i:i + 32]} for i in range(0, len(x), 32)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._batches


def _metric_name(samples: RunSamples) -> str:
    if samples.task == "classification":
        return "accuracy"
    return "mae" if samples.val_y is not None and samples.task != "autoencoder" else "mse"
