"""ONNX: one self-contained file (weights inside) with a dynamic batch axis.

Written with the dynamo-based ``torch.onnx.export``; checked with ``onnx.checker`` and run
with ONNX Runtime for the self-check. Metadata (``metadata_props``) records the project
name, the weights' origin and, for language models, the vocabulary as a JSON list.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.compile.export.common import (batch_dynamic_shapes, input_names, output_names,
                                          quiet_export, vocabulary_path, write_vocabulary)
from engine.compile.export.selfcheck import ExportError, as_arrays, SelfCheck, compare, run_module
from engine.compile.export.source import ExportSource
from engine.errors import first_line

OPSET = 18


def metadata(src: ExportSource) -> dict[str, str]:
    """The ``metadata_props`` written into the model."""
    props = {"neural_canvas.name": src.name, "neural_canvas.weights": src.origin}
    if src.part:
        props["neural_canvas.part"] = src.part
    if src.vocabulary is not None:
        props["vocabulary"] = json.dumps(src.vocabulary, ensure_ascii=False)
    return props


def write(src: ExportSource, out: Path) -> tuple[list[Path], SelfCheck]:
    """Export to ``out`` (an ``.onnx`` file), check and run it.

    Returns:
        The files written and the self-check's figures.

    Raises:
        ExportError: The exporter, the checker or ONNX Runtime refused the model.
    """
    import onnx
    import onnxruntime
    import torch

    module = src.compiled.module
    example = src.sample_inputs(batch=2, seed=7)
    try:
        with quiet_export():
            torch.onnx.export(module, example, str(out), dynamo=True, external_data=False, opset_version=OPSET,
                              input_names=input_names(src), output_names=output_names(src),
                              dynamic_shapes=batch_dynamic_shapes(src), verbose=False)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
        raise ExportError(f"onnx: the model cannot be exported: {first_line(exc)}") from None
    model = onnx.load(str(out))
    onnx.helper.set_model_props(model, metadata(src))
    onnx.save(model, str(out))
    try:
        onnx.checker.check_model(str(out), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx: {out.name} fails the ONNX checker: {first_line(exc)}") from None
    inputs = src.sample_inputs()
    try:
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        feed = {name: x.numpy() for name, x in zip(input_names(src), inputs)}
        reloaded = [np.asarray(a, dtype=np.float64) for a in session.run(None, feed)]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ExportError(f"onnx: ONNX Runtime cannot run {out.name}: {first_line(exc)}") from None
    check = compare(run_module(module, inputs), as_arrays(reloaded), "onnx")
    return [out, *write_vocabulary(src, vocabulary_path(out))], check
