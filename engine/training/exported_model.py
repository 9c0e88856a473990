"""Read a source export (``export --format python`` of a run) back for prediction, without running its code.

A source export from a run holds ``model.py``, ``model.safetensors`` and ``train.py`` for people,
plus ``project.json`` (the run's project, its training overrides folded in) and
``preprocessing.json`` (:mod:`engine.training.preprocessing_file`) for Neural Canvas. Predicting
on the folder compiles ``project.json`` with the engine's own compiler and loads the weights file
read safely: ``model.py`` is never imported, so opening an export executes nothing from it.

A project with blocks exports one class per block definition, so its weights are keyed by the
nested module names (``layer1.0.conv1.weight``); they are renamed back to the flat graph's keys
with the names the exporter used (:func:`engine.compile.export.nested.nested_source`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserError
from engine.training.preprocessing_file import PREPROCESSING_FILE

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.graph.project import Project

EXPORT_PROJECT, EXPORT_WEIGHTS = "project.json", "model.safetensors"


def is_exported_source(folder: Path) -> bool:
    """Whether ``folder`` is a source export that records its preprocessing (not a run folder)."""
    folder = Path(folder)
    return (not (folder / "run.json").exists() and (folder / "model.py").is_file()
            and (folder / EXPORT_PROJECT).is_file() and (folder / PREPROCESSING_FILE).is_file())


def read_exported(folder: Path) -> tuple[Project, dict[str, torch.Tensor], str]:
    """The exported project, its weights keyed as the flat graph's compiled module, and their origin.

    Raises:
        UserError: A missing or damaged file, or weights that fit neither the flat nor the nested names.
    """
    from engine.compile.export.codegen import class_name
    from engine.compile.export.nested import nested_source
    from engine.compile.export.source import load_source
    from engine.compile.weights import load_weights
    from engine.graph.fileformat import load_project

    folder = Path(folder)
    weights_path = folder / EXPORT_WEIGHTS
    if not weights_path.is_file():
        raise UserError(f"{folder}: no {EXPORT_WEIGHTS}; export the run again with --format python")
    project = load_project(folder / EXPORT_PROJECT)
    tensors = load_weights(weights_path)
    source = load_source(project, base_dir=folder)
    flat_keys = set(source.compiled.module.state_dict())
    if flat_keys <= set(tensors):
        return project, tensors, f"{EXPORT_WEIGHTS} (exported)"
    nested = nested_source(source, class_name(source.name), source.name)
    if nested is None:
        raise UserError(f"{weights_path}: its tensors do not fit {EXPORT_PROJECT} (no "
                        f"{min(flat_keys - set(tensors))}); export the run again")
    return project, flat_names(tensors, nested.names), f"{EXPORT_WEIGHTS} (exported)"


def flat_names(tensors: dict[str, torch.Tensor], names: dict[str, str]) -> dict[str, torch.Tensor]:
    """``tensors`` keyed by nested module names, renamed to the flat graph's keys.

    Args:
        tensors: Weights as the exported classes name them.
        names: Flat submodule name -> nested module name (:attr:`NestedSource.names`).
    """
    by_nested = sorted(((nested, flat) for flat, nested in names.items()), key=lambda pair: -len(pair[0]))
    result = {}
    for key, value in tensors.items():
        for nested, flat in by_nested:  # the longest nested name that is a whole-segment prefix
            if key == nested or key.startswith(nested + "."):
                key = flat + key[len(nested):]
                break
        result[key] = value
    return result
