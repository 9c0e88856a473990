"""What an export starts from: a project file or a run directory, compiled with its weights.

* A run directory (``run.json``, ``project.json``, ``model.safetensors``): the trained weights.
* A project file with a sibling ``<stem>.safetensors`` (written by the importers and by
  ``export --format safetensors``): those weights.
* Any other project file: fresh weights initialised with the project's training seed, as the
  trainer initialises them.

A GAN (a graph with a Noise Input) exports its generator, the part of the graph that
leads from the Noise Input to an Output; ``discriminator=True`` picks the other part.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from engine.compile.fx_builder import CompiledModel, GraphInvalidError, compile_graph
from engine.compile.weights import apply_weights, load_weights, sibling_weights
from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.graph.flat_project import flat_project
from engine.graph.gan import gan_parts
from engine.graph.model import Graph
from engine.graph.project import Project

RUN_FILE, RUN_PROJECT, RUN_WEIGHTS = "run.json", "project.json", "model.safetensors"


@dataclass
class ExportSource:
    """A compiled model ready to export, with what the exporters write beside it.

    Args:
        project: The project.
        project_path: The project file (a run's ``project.json`` for runs).
        compiled: The exported part, in eval mode, holding its weights.
        weights: Every tensor of the whole graph (keys as in the compiled module).
        origin: Where the weights come from, for messages (``"trained run"``, ...).
        part: ``"generator"`` or ``"discriminator"`` for GANs, else ``None``.
        vocabulary: Token of each id for models fed by a Token Input on a corpus, else ``None``.
        base_dir: The folder the project's dataset paths are relative to.
        document: The project as saved, with its block definitions (``project`` is its model
            with blocks flattened into layers, which the exporters compile); ``None``: ``project``.
        run_dir: The run folder when the source is a trained run, else ``None``.
    """

    project: Project
    project_path: Path
    compiled: CompiledModel
    weights: dict[str, torch.Tensor]
    origin: str
    part: str | None
    vocabulary: list[str] | None
    base_dir: Path
    document: Project | None = None
    run_dir: Path | None = None

    @property
    def name(self) -> str:
        """Display name: the project's name, else the file's stem."""
        return self.project.name or self.project_path.stem

    def sample_inputs(self, batch: int = 3, seed: int = 1234) -> tuple[torch.Tensor, ...]:
        """The self-check batch: seeded random values, token ids spread over the vocabulary."""
        generator = torch.Generator().manual_seed(seed)
        result = []
        for spec in self.compiled.input_specs:
            if spec.dtype == "long":
                result.append(torch.randint(0, spec.vocab or 2, (batch, *spec.dims), generator=generator))
            else:
                result.append(torch.randn(batch, *spec.dims, generator=generator))
        return tuple(result)


def _choose_outputs(graph: Graph, discriminator: bool) -> tuple[list[str] | None, str | None]:
    parts = gan_parts(graph)
    generator_outs, discriminator_outs = parts.generator_outputs, parts.discriminator_outputs
    if not generator_outs:
        if discriminator:
            raise UserError("--discriminator applies to GANs only: this graph has no Noise Input")
        return None, None
    if discriminator:
        if not discriminator_outs:
            raise UserError("this GAN has no discriminator: no Output is reached from a data Input")
        return discriminator_outs, "discriminator"
    return generator_outs, "generator"


def initial_weights(project: Project) -> dict[str, torch.Tensor]:
    """Weights of the whole graph initialised as the trainer does (``torch.manual_seed(seed)``).

    Raises:
        UserError: The graph is invalid (the message names the first problem).
    """
    seed = project.training.get("seed", 0)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _compile(flat_project(project).graph, None).module
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _compile(graph: Graph, outputs: list[str] | None) -> CompiledModel:
    try:
        return compile_graph(graph, outputs=outputs)
    except GraphInvalidError as exc:
        raise UserError(str(exc)) from None


def _vocabulary(project: Project, base_dir: Path) -> list[str] | None:
    if not any(node.type_id == "token_input" for node in project.graph):
        return None
    from engine.data import DataError, load_dataset

    try:
        return load_dataset(project.dataset, base_dir).vocabulary
    except DataError:
        return None  # the model still exports; its ids just have no names


def load_source(path: str | os.PathLike[str] | Project, discriminator: bool = False,
                weights: Mapping[str, torch.Tensor] | None = None,
                base_dir: str | os.PathLike[str] | None = None) -> ExportSource:
    """Read a project file or run directory and compile the part to export, with its weights.

    Args:
        path: A project file (``.json``), a run directory, or a :class:`Project` in memory
            (e.g. the GUI's unsaved document).
        discriminator: For GANs, export the discriminator instead of the generator.
        weights: For a Project in memory, its weights (keys as the compiled graph's state
            dict); seeded fresh weights when omitted.
        base_dir: For a Project in memory, the folder its dataset paths are relative to.

    Returns:
        The source, its module in eval mode.

    Raises:
        UserError: Unreadable file, not a run folder, invalid graph, weights that do not fit.
    """
    weights_file: Path | None = None
    if isinstance(path, Project):
        project, folder = path, Path(base_dir) if base_dir is not None else Path.cwd()
        project_path = folder / "model.json"
        origin = "weights in memory" if weights is not None else "untrained"
    elif Path(path).is_dir():
        target = Path(path)
        if not (target / RUN_FILE).is_file():
            raise UserError(f"{target}: not a run folder (no {RUN_FILE}) and not a project file")
        project_path = target / RUN_PROJECT
        project = load_project(project_path)
        weights_file = target / RUN_WEIGHTS
        if not weights_file.is_file():
            raise UserError(f"{target}: the run has no {RUN_WEIGHTS} yet (it has not finished an epoch)")
        origin = "trained run"
        folder = _run_base_dir(target)
    else:
        project_path = Path(path)
        project = load_project(project_path)
        weights_file = sibling_weights(project_path)
        origin = f"weights from {weights_file.name}" if weights_file else "untrained"
        folder = project_path.parent
    document, project = project, flat_project(project)  # blocks compile as their layers
    outputs, part = _choose_outputs(project.graph, discriminator)
    compiled = _compile(project.graph, outputs)
    if weights_file is not None:
        tensors = load_weights(weights_file)
        if origin != "trained run":
            tensors, origin = _where_they_fit(document, tensors, weights_file.name, origin)
    else:
        tensors = dict(weights) if weights is not None else initial_weights(project)
    apply_weights(compiled.module, tensors, str(weights_file or project_path))
    compiled.module.eval()
    run_dir = project_path.parent if origin == "trained run" else None
    return ExportSource(project, project_path, compiled, tensors, origin, part, _vocabulary(project, folder),
                        folder, document, run_dir)


def _where_they_fit(project: Project, tensors: dict[str, torch.Tensor], source: str,
                    origin: str) -> tuple[dict[str, torch.Tensor], str]:
    """A project's own weights as a training run starts from them: the seeded initial weights
    with every tensor of the file whose name and shape still fit (a replaced last layer starts
    fresh). Weights that fit entirely, or not at all, are returned as they are (the latter then
    fail to apply, naming the file).

    Returns:
        The weights and their origin for messages.
    """
    initial = initial_weights(project)
    fit = [key for key, tensor in initial.items()
           if key in tensors and tuple(tensors[key].shape) == tuple(tensor.shape)]
    if not fit or len(fit) == len(initial):
        return tensors, origin
    merged = {**initial, **{key: tensors[key] for key in fit}}
    return merged, f"weights from {source} where they fit ({len(fit)} of {len(initial)} tensors, the rest initialized)"


def _run_base_dir(run: Path) -> Path:
    """The folder a run's dataset paths are relative to (``base_dir`` in run.json), else the run."""
    try:
        info = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return run
    base = info.get("base_dir") if isinstance(info, dict) else None
    return Path(base) if isinstance(base, str) and Path(base).is_dir() else run
