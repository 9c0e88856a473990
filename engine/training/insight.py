"""Look inside a trained (or training) model: weights, activations, saliency, attributions, attention.

:class:`ModelInsight` opens a run folder, compiles its frozen project, loads the newest weights
(``model.safetensors`` when newer than ``checkpoint.pt``) and the validation split as the trainer
made it (same dataset, seed, split and normalization). Reports run on the CPU for one sample.
Importing this module does not import torch; building a :class:`ModelInsight` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import UserError
from engine.graph.gan import is_noise_input

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.data.base import PreparedData
    from engine.graph.project import Project
    from engine.training.attributions import Attribution

WEIGHT_BINS = 40
ACTIVATION_BINS = 30
MAX_FEATURE_MAPS = 16
SMALL_OUTPUT = 64


@dataclass
class Distribution:
    """Shape, moments, range and histogram of a tensor (``counts`` sum to its finite values)."""

    shape: tuple[int, ...]
    counts: np.ndarray  # (bins,)
    edges: np.ndarray  # (bins + 1,)
    mean: float
    std: float
    min: float
    max: float


@dataclass
class WeightHistogram(Distribution):
    """One parameter tensor of a node, ``name`` as in its submodule (``weight``, ``bias``...)."""

    name: str = ""


@dataclass
class ActivationStats(Distribution):
    """A node's output for one sample (batch dimension removed)."""

    zero_fraction: float = 0.0
    #: For (C, H, W) outputs, the first channels as 2-D arrays (at most MAX_FEATURE_MAPS).
    feature_maps: list[np.ndarray] = field(default_factory=list)
    #: The output itself when it has at most SMALL_OUTPUT values (e.g. a classifier's logits).
    values: np.ndarray | None = None


@dataclass
class NodeReport:
    """What the "Look Inside" panel shows for one node and sample. ``weights`` is empty for weightless
    nodes; ``saliency`` (image classifiers): ``|d logit(predicted) / d input|``, max over channels,
    (H, W); ``predicted_*``, ``probability``: classification; ``attention``: (heads, T, T)."""

    node_id: str
    type_id: str
    title: str
    sample_index: int
    weights: list[WeightHistogram]
    activation: ActivationStats
    saliency: np.ndarray | None = None
    predicted_class: int | None = None
    predicted_name: str | None = None
    probability: float | None = None
    attention: np.ndarray | None = None


def _distribution(array: np.ndarray, bins: int) -> dict[str, Any]:
    finite = array[np.isfinite(array)]
    counts, edges = np.histogram(finite if finite.size else np.zeros(1), bins=bins)
    return {"shape": tuple(array.shape), "counts": counts if finite.size else np.zeros_like(counts), "edges": edges,
            "mean": float(array.mean()), "std": float(array.std()), "min": float(array.min()),
            "max": float(array.max())}


def weight_files_stamp(run_dir: Path) -> tuple[float, float]:
    """Modification times of a run's ``checkpoint.pt`` and ``model.safetensors`` (-1 where missing)."""
    from engine.training.run_dir import CHECKPOINT_FILE, WEIGHTS_FILE

    first, second = (p.stat().st_mtime if p.is_file() else -1.0
                     for p in (Path(run_dir) / CHECKPOINT_FILE, Path(run_dir) / WEIGHTS_FILE))
    return first, second


def read_newest_weights(run_dir: Path, stamp: tuple[float, float] | None = None
                        ) -> tuple[dict[str, torch.Tensor], str]:
    """A run's newest weights, read safely: ``model.safetensors`` when at least as new as
    ``checkpoint.pt`` (the end of the run), else the checkpoint's models (``weights_only``).

    Args:
        run_dir: The run folder.
        stamp: :func:`weight_files_stamp` of the folder, when the caller has it.

    Returns:
        Every tensor keyed as in the whole graph's compiled module, and a few words on the source
        (``model.safetensors (end of run)``, ``checkpoint.pt (epoch 3)``).

    Raises:
        UserError: No weights yet, or a damaged file (named).
    """
    from safetensors.torch import load_file

    from engine.training import checkpoint as ckpt
    from engine.training.run_dir import CHECKPOINT_FILE, WEIGHTS_FILE

    run_dir = Path(run_dir)
    checkpoint, weights = run_dir / CHECKPOINT_FILE, run_dir / WEIGHTS_FILE
    times = stamp if stamp is not None else weight_files_stamp(run_dir)
    if times == (-1.0, -1.0):
        raise UserError(f"{run_dir}: no weights yet; train the model for at least one epoch")
    if times[1] >= times[0]:
        try:
            return load_file(str(weights)), f"{WEIGHTS_FILE} (end of run)"
        except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
            reason = " ".join(str(exc).split())[:200]
            raise UserError(f"{weights}: not readable weights ({reason})") from None
    payload = ckpt.load_checkpoint(checkpoint)
    models = payload.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(m, dict) for m in models.values()):
        raise UserError(f"{checkpoint}: not a readable checkpoint (no models)")
    state = {k: v for model in models.values() for k, v in model.items()}
    return state, f"{CHECKPOINT_FILE} (epoch {payload.get('epoch', '?')})"


def load_run_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], run_dir: Path) -> None:
    """Load a run's weights into ``module`` (keys it lacks are ignored: another module of the task's).

    Raises:
        UserError: The weights do not fit the module, or lack some of its tensors.
    """
    try:
        missing = module.load_state_dict(state, strict=False).missing_keys
    except RuntimeError as exc:
        raise UserError(f"{run_dir}: the weights do not fit the graph ({' '.join(str(exc).split())[:200]})") from None
    if missing:
        raise UserError(f"{run_dir}: the weights lack {', '.join(missing[:3])}: they fit another graph")


class ModelInsight:
    """A run's model with its newest weights and its validation data, prepared as the trainer
    prepared it; ``task`` is the task name. Not thread-safe."""

    def __init__(self, run_dir: Path, project: Project, data: PreparedData, task: str) -> None:
        from engine.compile import compile_graph
        from engine.graph.flat_project import flat_project

        project = flat_project(project)  # blocks are looked into as their layers
        self.run_dir, self.project, self.data, self.task = Path(run_dir), project, data, task
        self.compiled = compile_graph(project.graph)
        self.module: torch.nn.Module = self.compiled.module.eval()
        self.weights_source, self._stamp = "", (-1.0, -1.0)
        self._probes: dict[str, tuple[torch.nn.Module, list[str]]] = {}
        self._saliency: dict[int, tuple[np.ndarray | None, int, float]] = {}
        from engine.training.attribution_cache import AttributionCache
        from engine.training.attributions import model_facts

        #: What decides which attribution methods apply (:mod:`engine.training.attributions`).
        self.attribution_facts = model_facts(self.compiled, project.graph, task, data.dataset.image_shape is not None)
        self._attributions = AttributionCache()
        if not self.reload():
            raise UserError(f"{self.run_dir}: no weights yet; train the model for at least one epoch")

    @classmethod
    def from_run(cls, run_dir: Path, base_dir: Path | None = None) -> ModelInsight:
        """Open a run folder and its validation data, with the settings in ``run.json`` (the
        command-line overrides included); relative dataset paths resolve against ``base_dir``,
        by default the folder recorded in ``run.json``.

        Raises:
            UserError: Not a run folder, unreadable files, no weights yet, or data that cannot load.
        """
        from engine.data import load_dataset, prepare_data
        from engine.settings import training_config
        from engine.training.run_dir import read_run
        from engine.training.tasks import resolve_task

        info, project = read_run(Path(run_dir))
        config = training_config(project.training, info.get("config") or {})
        base_dir = base_dir or (Path(info["base_dir"]) if info.get("base_dir") else None)
        dataset = load_dataset(project.dataset, base_dir)
        data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize,
                            config.test_fraction)
        return cls(run_dir, project, data, resolve_task(config, project, dataset))

    def reload(self) -> bool:
        """Load the newest weights if the files changed since the last load; True when loaded."""
        times = weight_files_stamp(self.run_dir)
        if times == self._stamp:  # unchanged, or still no weights
            return False
        state, source = read_newest_weights(self.run_dir, times)
        load_run_weights(self.module, state, self.run_dir)
        self._stamp, self.weights_source = times, source
        self._saliency.clear()
        self._attributions.clear()
        return True

    def sample_count(self) -> int:
        """Number of validation samples."""
        return len(self.data.val_x)

    def check_index(self, index: int) -> None:
        """Raise :class:`UserError` unless ``index`` is a validation sample."""
        if not 0 <= index < self.sample_count():
            raise UserError(f"sample {index} does not exist: choose 0 to {self.sample_count() - 1}")

    def sample_preview(self, index: int) -> dict[str, Any]:
        """The raw (un-normalized) validation sample ``index`` for display.

        Returns:
            ``image`` (H x W, or H x W x C for colour) for images, else ``values`` (the sample),
            ``text`` for text; ``label`` (class id, values or ``None``), ``class_name`` or ``None``.
        """
        self.check_index(index)
        dataset, row = self.data.dataset, int(self.data.val_index[index])
        raw, shape, names = np.asarray(dataset.x[row]), dataset.image_shape, dataset.class_names
        label = None if dataset.y is None else dataset.y[row]
        classes = dataset.target_kind == "classes" and label is not None
        preview: dict[str, Any] = {"index": index, "label": int(label) if classes else label,
                                   "class_name": names[int(label)] if classes and names else None}
        if shape is not None and raw.size == int(np.prod(shape)):
            image = raw.reshape(shape).astype(np.float32)
            preview["image"] = image[0] if shape[0] == 1 else np.moveaxis(image, 0, -1)
        else:
            preview["values"] = raw
        if dataset.vocabulary is not None and np.issubdtype(raw.dtype, np.integer):
            preview["text"] = "".join(dataset.vocabulary[int(t)] for t in raw.ravel())
        return preview

    def node_report(self, node_id: str, sample_index: int) -> NodeReport:
        """Weights, activations, saliency and attention of ``node_id`` for one validation sample;
        :class:`UserError` for an unknown node, one outside the model or a bad sample index."""
        import torch

        from engine.compile import attribute_name
        from engine.layers.modules import SelfAttention

        graph = self.project.graph
        if node_id not in graph.nodes:
            raise UserError(f"node {node_id} is not in the trained project; select a layer of this run's graph")
        node = graph.nodes[node_id]
        value_id = graph.incoming(node_id)["in"].source if node.layer.role == "output" else node_id
        if value_id not in self.compiled.analysis.in_model:
            raise UserError(f"node {node_id} ({node.layer.title}) does not lead to an Output: it was not trained")
        self.check_index(sample_index)
        module = getattr(self.module, attribute_name(node_id), None) if value_id == node_id else None
        weights = [WeightHistogram(**_distribution(p.detach().float().numpy(), WEIGHT_BINS), name=name)
                   for name, p in (module.named_parameters() if module is not None else ())]
        attends = isinstance(module, (SelfAttention, torch.nn.TransformerEncoderLayer))
        sources = [value_id] + ([graph.incoming(node_id)["in"].source] if attends else [])
        with torch.no_grad():
            outputs = self._probe(sources)(*self._inputs(sample_index, sources))
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            attention = _attention_weights(module, outputs[1]) if attends else None  # type: ignore[arg-type]
        array = outputs[0].float().numpy()[0]
        maps = [array[c] for c in range(min(MAX_FEATURE_MAPS, len(array)))] if array.ndim == 3 else []
        activation = ActivationStats(**_distribution(array, ACTIVATION_BINS), feature_maps=maps,
                                     zero_fraction=float(np.mean(array == 0)),
                                     values=array.copy() if array.size <= SMALL_OUTPUT else None)
        report = NodeReport(node_id, node.type_id, node.layer.title, sample_index, weights, activation,
                            attention=attention)  # saliency and prediction: below, for classifiers
        if self.task == "classification":
            report.saliency, predicted, report.probability = self._explain(sample_index)
            names = self.data.dataset.class_names or []
            report.predicted_class, report.predicted_name = predicted, (names[predicted] if predicted < len(names)
                                                                        else str(predicted))
        return report

    def attribution(self, index: int, method: str, layer: str | None = None, output: int = 0) -> Attribution:
        """Captum's attribution of the prediction for validation sample ``index`` (see
        :func:`engine.training.attributions.attribute`); cached per (weights, sample, method, layer, output).

        Raises:
            UserError: A bad sample index, or a method, layer or output that does not apply (why).
        """
        from engine.training.attributions import attribute, choice

        self.check_index(index)
        method, layer, output = choice(self.attribution_facts, method, layer, output)
        dataset = self.data.dataset
        names = dataset.vocabulary if self.task == "language_model" else dataset.class_names
        labels = dataset.feature_names if self.attribution_facts.input_kind == "features" else None
        if self.attribution_facts.input_kind == "tokens" and dataset.vocabulary is not None:
            labels = [dataset.vocabulary[int(t)] for t in np.ravel(self.data.val_x[index])]
        return self._attributions.get(
            (self._stamp, index, method, layer, output),
            lambda: attribute(self.module, self._inputs(index), self.attribution_facts, method, layer, output,
                              names, labels))

    def _probe(self, node_ids: list[str]) -> torch.nn.Module:
        """A module returning the values of ``node_ids`` (sharing the model's submodules)."""
        from engine.compile import compile_graph
        from engine.graph import Edge, Node

        key = ",".join(node_ids)
        if key not in self._probes:
            graph = self.project.graph.copy()
            outputs = []
            for node_id in node_ids:
                name = next(n for k in range(len(graph) + 1) if (n := f"probe{len(outputs)}_{k}") not in graph.nodes)
                graph.add_node(Node(name, "output", {}))
                graph.add_edge(Edge(node_id, name, "in", graph.nodes[node_id].output_ports()[0]))
                outputs.append(name)
            probe = compile_graph(graph, outputs=outputs)
            for name, _ in list(probe.module.named_children()):
                setattr(probe.module, name, getattr(self.module, name))
            self._probes[key] = (probe.module.eval(), probe.input_ids)
        return self._probes[key][0]

    def _inputs(self, index: int, node_ids: list[str] | None = None) -> list[torch.Tensor]:
        """Model inputs for sample ``index``: the sample, or seeded noise for Noise Inputs."""
        import torch

        input_ids = self._probes[",".join(node_ids)][1] if node_ids else self.compiled.input_ids
        from engine.data.streaming import is_lazy

        if is_lazy(self.data.val_x):  # streamed images: decoded and normalized as training feeds them
            from engine.training.streamed import normalized_rows

            sample = normalized_rows(self.data.val_x, self.data.x_normalization, [index])
        else:
            sample = torch.from_numpy(np.ascontiguousarray(self.data.val_x[index:index + 1]))
        sample = sample.float() if sample.is_floating_point() else sample.long()
        noise = torch.Generator().manual_seed(index)
        specs = self.compiled.analysis.nodes
        return [torch.randn(1, *specs[i].output.dims, generator=noise)  # type: ignore[union-attr]
                if is_noise_input(self.project.graph.nodes[i]) else sample for i in input_ids]

    def _explain(self, index: int) -> tuple[np.ndarray | None, int, float]:
        """Saliency (image inputs only), predicted class and its probability; cached per sample."""
        if index in self._saliency:
            return self._saliency[index]
        self._saliency[index] = explain(self.module, self._inputs(index), self.data.dataset.image_shape is not None)
        return self._saliency[index]


def explain(module: torch.nn.Module, inputs: list[torch.Tensor], image_data: bool) -> tuple[np.ndarray | None, int, float]:
    """A classifier's prediction for one sample and, for image inputs, its saliency (Captum's ``Saliency``).

    Args:
        module: The model (in eval mode).
        inputs: One tensor per model input, batch of one, normalized as in training.
        image_data: Whether the dataset holds images ((C, H, W), or (H, W) for one channel).

    Returns:
        ``(saliency, predicted class, its probability)``; the saliency is ``|d logit / d input|`` of the
        predicted class (a single logit: of that logit), the maximum over channels, ``(H, W)`` (``None``
        for inputs that are not images).
    """
    import torch

    from engine.training.attributions import ModelFacts, attribute

    x, dims = inputs[0], inputs[0].dim() - 1
    image = x.is_floating_point() and (dims == 3 or (dims == 2 and image_data))
    with torch.no_grad():
        out = module(*inputs)
        logits = (out[0] if isinstance(out, tuple) else out).float()[0]
    if logits.numel() == 1:  # one logit: binary cross-entropy
        predicted = int(logits[0] > 0)
        probability = float(torch.sigmoid(logits[0] if predicted else -logits[0]))
    else:
        probabilities = torch.softmax(logits, 0)
        predicted = int(probabilities.argmax())
        probability = float(probabilities[predicted])
    if not image:
        return None, predicted, probability
    facts = ModelFacts("classification", "image", tuple(x.shape[1:]), tuple(logits.shape))
    with torch.enable_grad():
        saliency = attribute(module, inputs, facts, "saliency").heat
    return saliency, predicted, probability


def _attention_weights(module: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Per-head attention weights of ``module`` on its input ``x`` (1, T, E) -> (heads, T, T)."""
    from engine.layers.modules import SelfAttention

    if isinstance(module, SelfAttention):
        attention = module.attention
    else:  # nn.TransformerEncoderLayer: a pre-norm block attends over the normalized input
        attention, x = module.self_attn, (module.norm1(x) if module.norm_first else x)
    mask = getattr(module, "mask", None)  # causal variants
    _, weights = attention(x, x, x, need_weights=True, average_attn_weights=False,
                           attn_mask=None if mask is None else mask[:x.size(1), :x.size(1)])
    return weights[0].float().numpy()
