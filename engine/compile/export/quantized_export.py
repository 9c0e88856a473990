"""``export --format onnx --quantize int8|fp16``: the float export, then the smaller copy
checked on the run's validation split (see :mod:`engine.compile.export.quantize`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine.compile.export.common import input_names, vocabulary_path, write_vocabulary
from engine.compile.export.quantize import MODES, quantize
from engine.compile.export.run_samples import run_samples
from engine.compile.export.selfcheck import ExportError, require_within
from engine.compile.export.source import ExportSource

if TYPE_CHECKING:  # pragma: no cover
    from engine.compile.export import ExportResult


def export_quantized(src: ExportSource, fmt: str, out: Path, mode: str, tolerance: float,
                     float_fallback: bool, progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export ``src`` as float ONNX, quantize it to ``out`` and report float against quantized
    (``progress``: told of each attempt of the search for an operator to keep in float).

    Raises:
        ExportError: Not ONNX, not a trained run, more than one input, a GAN part, a model
            ONNX Runtime cannot quantize (unless ``float_fallback``), or a quantized model
            whose validation metric is off by more than the limit (the file is kept).
    """
    from engine.compile.export import ExportResult, self_check_lines
    from engine.compile.export.onnx_format import write

    if mode not in MODES:
        raise ExportError(f"--quantize: must be one of {', '.join(MODES)}, got {mode!r}")
    if fmt != "onnx":
        raise ExportError(f"--quantize: only ONNX models are quantized; use --format onnx, not {fmt}")
    if src.run_dir is None:
        raise ExportError(f"--quantize: give a trained run folder, not a project file: the quantized model is "
                          f"checked by its metric on the run's validation split ({src.project_path})")
    if src.part is not None:
        raise ExportError(f"--quantize: a GAN's {src.part} has no validation metric to check a quantized copy by")
    if len(src.compiled.input_ids) != 1:
        raise ExportError(f"--quantize: the model has {len(src.compiled.input_ids)} inputs; quantization is checked "
                          f"on models with one input")
    samples = run_samples(src.run_dir, src.base_dir)
    convolutional = any(node.type_id.startswith(("conv", "depthwise")) for node in src.project.graph)
    with tempfile.TemporaryDirectory(prefix="neural-canvas-quantize-") as tmp:
        float_path = Path(tmp) / "float.onnx"
        _, check = write(src, float_path)
        allowed = require_within(fmt, check, tolerance)
        try:
            report = quantize(float_path, out, mode, convolutional, samples, input_names(src)[0], progress)
        except ExportError as exc:
            if not float_fallback:
                raise ExportError(f"{exc}; add --float-fallback to write the float model instead") from None
            shutil.copyfile(float_path, out)
            paths = [out, *write_vocabulary(src, vocabulary_path(out))]
            lines = self_check_lines(fmt, src, paths, check, allowed)
            lines.append(f"{mode}: not quantized ({exc}); the float model was written instead (--float-fallback)")
            return ExportResult(fmt, paths, check.diff, allowed, "\n".join(lines), None, src.origin, lines)
    paths = [out, *write_vocabulary(src, vocabulary_path(out))]
    lines = self_check_lines(fmt, src, paths, check, allowed)
    lines[-1] = lines[-1].replace("self-check", "float self-check")
    lines += report.lines()
    problem = report.problem()
    if problem:
        raise ExportError(f"{problem}; the file is kept for inspection: {out} ({' | '.join(report.lines()[1:])})")
    return ExportResult(fmt, paths, check.diff, allowed, "\n".join(lines), None, src.origin, lines, report)
