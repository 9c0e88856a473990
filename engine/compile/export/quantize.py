"""Smaller ONNX models for small devices: int8 with ONNX Runtime's quantization tools, or fp16.

* int8 for convolution networks: static quantization (QDQ, per-channel int8 weights, uint8
  activations, the convolution reading the input left in float), calibrated on the run's own
  training samples;
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
from typing import Callable

from engine.compile.export.onnx_measure import measure_apart
from engine.compile.export.quantize_write import PROBE_SAMPLES, find_float_culprit, write_converted
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
        kept_float: Operator types left in float because ONNX Runtime could not run their converted form.
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
    kept_float: tuple[str, ...] = ()

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
        lines = [head] + [f"{prefix} {name:<20}{a:>12}{b:>12}   {note}" for name, a, b, note in rows]
        if self.kept_float:
            lines.append(f"{prefix} kept in float: {', '.join(self.kept_float)} (ONNX Runtime cannot run its "
                         f"{self.mode} form)")
        return lines

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
             input_name: str, progress: Callable[[str], None] | None = None) -> QuantizedReport:
    """Write the quantized copy of ``float_path`` to ``out`` and measure both (``progress`` hears of
    each attempt when an operator type has to be kept in float).

    Raises:
        ExportError: ONNX Runtime cannot quantize or run the model (the message names its
            complaint, often the operator).
    """
    method = "fp16" if mode == "fp16" else "static" if convolutional else "dynamic"
    metric = _metric_name(samples)
    folder = float_path.parent

    def measured(kept: tuple[str, ...]) -> list[tuple[float, float]]:
        try:
            write_converted(float_path, out, method, samples.calibration_x, input_name, kept)
        except Exception as exc:  # noqa: BLE001 - the quantizer raises many kinds
            raise ExportError(f"{mode}: ONNX Runtime cannot quantize this model ({method}): {first_line(exc)}") \
                from None
        return measure_apart([float_path, out], input_name, samples.val_x, samples.val_y, metric, LATENCY_ROUNDS,
                             folder)

    kept: tuple[str, ...] = ()
    try:
        results = measured(kept)
    except (RuntimeError, ExportError) as exc:  # the quantizer's or ONNX Runtime's complaint, or the child's crash
        culprit = find_float_culprit(float_path, method, samples.calibration_x, input_name,
                                     lambda path: _runs(path, input_name, samples, metric), folder, str(exc),
                                     progress)
        if culprit is None:
            out.unlink(missing_ok=True)  # a model ONNX Runtime cannot run is no export
            message = str(exc) if isinstance(exc, ExportError) else f"{mode}: the {mode} model cannot be checked: " \
                                                                    f"{first_line(exc)}"
            raise ExportError(f"{message} (keeping any one operator type in float does not help)") from None
        kept = (culprit,)
        try:
            results = measured(kept)
        except RuntimeError as again:  # it ran with a few samples, not with all of them
            out.unlink(missing_ok=True)
            raise ExportError(f"{mode}: the {mode} model cannot be checked: {first_line(again)}") from None
    return QuantizedReport(mode, method, metric, results[0][0], results[1][0], float_path.stat().st_size,
                           out.stat().st_size, results[0][1], results[1][1], kept)


def _runs(path: Path, input_name: str, samples: RunSamples, metric: str) -> bool:
    """Whether ONNX Runtime loads ``path`` and runs a few validation samples through it (in a child process)."""
    y = None if samples.val_y is None else samples.val_y[:PROBE_SAMPLES]
    try:
        measure_apart([path], input_name, samples.val_x[:PROBE_SAMPLES], y, metric, 1, path.parent, timeout=120.0)
    except RuntimeError:
        return False
    return True


def _metric_name(samples: RunSamples) -> str:
    if samples.task == "classification":
        return "accuracy"
    return "mae" if samples.val_y is not None and samples.task != "autoencoder" else "mse"
