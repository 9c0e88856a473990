"""safetensors: the weights next to a copy of the project file (``model.safetensors`` + ``model.json``).

The pair follows the sibling convention of :mod:`engine.compile.weights`, so opening
``model.json`` (or exporting it again) uses these weights. The file holds every tensor of
the graph (a GAN's both halves), keyed like the compiled module's state dict.
"""

from __future__ import annotations

from pathlib import Path

from engine.compile.export.common import vocabulary_path, write_vocabulary
from engine.compile.export.selfcheck import SelfCheck, compare, run_module
from engine.compile.export.source import ExportSource, load_source
from engine.compile.weights import save_weights
from engine.graph.fileformat import save_project


def write(src: ExportSource, out: Path) -> tuple[list[Path], SelfCheck]:
    """Write the weights to ``out`` (``.safetensors``) and the project beside it, then reload both.

    Returns:
        The files written and the self-check's figures.
    """
    project_copy = out.with_suffix(".json")
    save_weights(src.weights, out, metadata={"format": "neural-canvas-weights", "project": project_copy.name})
    save_project(src.document or src.project, project_copy)  # blocks stay blocks in the copy
    reloaded = load_source(project_copy, discriminator=src.part == "discriminator")
    inputs = src.sample_inputs()
    check = compare(run_module(src.compiled.module, inputs), run_module(reloaded.compiled.module, inputs),
                        "safetensors")
    return [out, project_copy, *write_vocabulary(src, vocabulary_path(out))], check
