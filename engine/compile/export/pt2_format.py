"""PyTorch 2 ExportedProgram (``.pt2``): ``torch.export.export`` with a dynamic batch axis.

The file loads with ``torch.export.load(path).module()`` without Neural Canvas installed.
"""

from __future__ import annotations

from pathlib import Path

from engine.compile.export.common import (batch_dynamic_shapes, quiet_export, vocabulary_path,
                                          write_vocabulary)
from engine.compile.export.selfcheck import ExportError, SelfCheck, compare, run_module
from engine.compile.export.source import ExportSource
from engine.errors import first_line


def write(src: ExportSource, out: Path) -> tuple[list[Path], SelfCheck]:
    """Export to ``out`` (a ``.pt2`` file), reload it and compare outputs.

    Returns:
        The files written and the self-check's figures.

    Raises:
        ExportError: torch.export refused the model or the file does not reload.
    """
    import torch

    module = src.compiled.module
    try:
        with quiet_export():
            program = torch.export.export(module, src.sample_inputs(batch=2, seed=7),
                                          dynamic_shapes=batch_dynamic_shapes(src))
            torch.export.save(program, str(out))
    except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds
        raise ExportError(f"pt2: the model cannot be exported: {first_line(exc)}") from None
    try:
        with quiet_export():
            reloaded = torch.export.load(str(out)).module()
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"pt2: {out.name} does not reload: {first_line(exc)}") from None
    inputs = src.sample_inputs()
    check = compare(run_module(module, inputs), run_module(reloaded, inputs), "pt2")
    return [out, *write_vocabulary(src, vocabulary_path(out))], check
