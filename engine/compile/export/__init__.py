"""Export a project or a trained run: ONNX, PyTorch 2 program, safetensors, PyTorch source.

The one entry point, for the CLI and the GUI alike (no Qt, blocking; run it off the GUI
thread)::

    from engine.compile.export import export_model
    result = export_model("runs/cnn-20250101-120000", "onnx", "cnn.onnx")
    print(result.message)     # the lines the CLI prints
    result.paths              # every file written
    result.max_abs_diff       # the self-check's figure, at most result.tolerance

Formats (``out_path`` is a file, except for ``python``, a folder):

========== ============================================================================
onnx       one self-contained ``.onnx`` file, dynamic batch axis (opset 18)
pt2        ``torch.export`` program, dynamic batch axis; ``torch.export.load`` reads it
safetensors ``<out>.safetensors`` plus the project copy ``<out>.json`` that opens with it
python     folder: ``model.py`` (``build_model()``), ``model.safetensors``, ``train.py``
========== ============================================================================

Every export reloads what it wrote, runs the same seeded batch of 3 samples through the
original and the reloaded model, and fails with :class:`ExportError` when the largest
absolute difference exceeds :data:`TOLERANCE` (1e-4). Models fed by a Token Input on a
corpus also get their vocabulary (``<out>.vocab.json``, ``vocab.json`` in a python folder,
and ``metadata_props["vocabulary"]`` in ONNX).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from engine.compile.export.quantize import MODES as QUANTIZE_MODES, QuantizedReport
from engine.compile.export.selfcheck import TOLERANCE, ExportError, SelfCheck, require_within
from engine.compile.export.source import ExportSource, load_source
from engine.compile.weights import non_finite
from engine.graph.project import Project

FORMATS = ("onnx", "pt2", "safetensors", "python")
_SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}


@dataclass(frozen=True)
class FormatInfo:
    """What a file dialog needs to offer one format.

    Args:
        name: The format id (``--format``).
        title: Menu text.
        suffix: File suffix, empty for a folder.
        folder: Whether the output is a folder.
        description: One line for a tooltip.
    """

    name: str
    title: str
    suffix: str
    folder: bool
    description: str


FORMAT_INFO: dict[str, FormatInfo] = {info.name: info for info in (
    FormatInfo("onnx", "ONNX", ".onnx", False, "One self-contained .onnx file for ONNX Runtime and other runtimes."),
    FormatInfo("pt2", "PyTorch 2 program", ".pt2", False, "A torch.export program; load it with torch.export.load."),
    FormatInfo("safetensors", "Weights (safetensors)", ".safetensors", False,
               "The weights, with a copy of the project beside them that opens with them."),
    FormatInfo("python", "PyTorch source", "", True,
               "A folder with model.py, model.safetensors and train.py: plain PyTorch code."),
)}


@dataclass
class ExportResult:
    """What an export wrote and how its self-check went.

    Args:
        format: The format name.
        paths: Every file written, the main one first.
        max_abs_diff: Largest absolute difference between original and reloaded outputs.
        tolerance: The bound it was checked against.
        message: One line per written file and the self-check line (what the CLI prints).
        part: ``"generator"`` / ``"discriminator"`` for GANs, else ``None``.
        origin: Where the weights came from (``"trained run"``, ``"untrained"``, ...).
    """

    format: str
    paths: list[Path]
    max_abs_diff: float
    tolerance: float
    message: str
    part: str | None = None
    origin: str = ""
    lines: list[str] = field(default_factory=list)
    quantized: QuantizedReport | None = None


def _writer(fmt: str) -> Callable[[ExportSource, Path], tuple[list[Path], SelfCheck]]:
    if fmt == "onnx":
        from engine.compile.export.onnx_format import write
    elif fmt == "pt2":
        from engine.compile.export.pt2_format import write
    elif fmt == "safetensors":
        from engine.compile.export.safetensors_format import write
    else:
        from engine.compile.export.python_format import write
    return write


def resolve_out(fmt: str, out_path: str | os.PathLike[str], name: str) -> Path:
    """The file (or folder) to write: a folder given for a file format gets ``<name><suffix>`` inside."""
    out = Path(out_path)
    if fmt != "python" and out.is_dir():
        out = out / f"{name}{_SUFFIX[fmt]}"
    return out


def export_model(source_path: str | os.PathLike[str] | Project, fmt: str, out_path: str | os.PathLike[str],
                 discriminator: bool = False, tolerance: float = TOLERANCE,
                 weights: Mapping[str, torch.Tensor] | None = None,
                 base_dir: str | os.PathLike[str] | None = None, quantize: str | None = None,
                 float_fallback: bool = False, progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export a project file or run directory and check the result.

    Args:
        source_path: A project file (untrained weights seeded by ``training.seed``, or the
            sibling ``<stem>.safetensors`` when present), a run directory (trained weights),
            or a :class:`~engine.graph.project.Project` in memory (an unsaved document).
        fmt: One of :data:`FORMATS`.
        out_path: The file to write (a folder for ``python``); a folder given for a file
            format receives ``model.<suffix>``.
        discriminator: For GANs, export the discriminator instead of the generator.
        tolerance: Largest allowed self-check difference.
        weights: For a Project in memory: its weights (state-dict keys); seeded when omitted.
        base_dir: For a Project in memory: the folder its dataset paths are relative to.
        quantize: ``int8`` or ``fp16`` (ONNX from a trained run only): write the smaller model,
            checked by its metric on the run's validation split (:mod:`.quantize`).
        float_fallback: With ``quantize``: when ONNX Runtime cannot quantize the model, write
            the float model instead of failing (the message says so).
        progress: With ``quantize``: told in one line of each step that takes a while (trying
            operator types in float when ONNX Runtime cannot run the converted model).

    Returns:
        The files written and the self-check figure.

    Raises:
        UserError: Unreadable source, invalid graph, bad format or output path (exit 1).
        ExportError: The exporter refused the model, or the self-check failed (a UserError).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    src = load_source(source_path, discriminator, weights, base_dir)
    bad = non_finite(src.weights)
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise ExportError(f"{fmt}: the {src.origin or 'model'} weights hold NaN or infinite values ({shown}): "
                          "every output would be NaN; export a run that trained without diverging")
    out = resolve_out(fmt, out_path, "model")
    if fmt != "python" and not out.parent.is_dir():
        raise ExportError(f"{fmt}: cannot write {out}: the folder {out.parent} does not exist")
    if quantize is not None:
        from engine.compile.export.quantized_export import export_quantized

        return export_quantized(src, fmt, out, quantize, tolerance, float_fallback, progress)
    paths, check = _writer(fmt)(src, out)
    allowed = require_within(fmt, check, tolerance)
    lines = self_check_lines(fmt, src, paths, check, allowed)
    return ExportResult(fmt, paths, check.diff, allowed, "\n".join(lines), src.part, src.origin, lines)


def self_check_lines(fmt: str, src: ExportSource, paths: list[Path], check: SelfCheck, allowed: float) -> list[str]:
    """One ``written`` line per file and the self-check line."""
    what = f" ({src.part})" if src.part else ""
    lines = [f"{fmt}: {path} written{what if index == 0 else ''}" for index, path in enumerate(paths)]
    lines.append(f"{fmt}: self-check max |diff| {check.diff:.1e} (tolerance {_short(allowed)})")
    return lines


def _short(value: float) -> str:
    """``1e-04`` as ``1e-4``."""
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")


__all__ = ["FORMATS", "FORMAT_INFO", "QUANTIZE_MODES", "TOLERANCE", "FormatInfo", "ExportError", "ExportResult",
           "export_model", "self_check_lines"]
