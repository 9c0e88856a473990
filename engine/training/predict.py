"""Predict with a trained run on new data: image files or folders, CSV tables, ``.npz`` arrays, text.

:func:`open_predictor` opens a run folder (or a source export of one): the newest weights read
safely, the preprocessing from the folder's ``preprocessing.json`` (the normalization the model
trained with and the data's description; runs from before that record load their training data
and split it again from ``split.npz``), the flattened project compiled by the engine's compiler
on the CPU. :meth:`Predictor.predict` reads every input first (so a bad one stops the
command before anything is computed or written), preprocesses it as training did
(:mod:`engine.training.predict_inputs`) and runs the model in eval mode in batches. Classifiers give the class, its probability and the top-k; regression and
forecasting the value(s) in the data's units; autoencoders the reconstruction error; character
language models the next character.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import UserError
from engine.training.attribution_cache import AttributionCache
from engine.training.predict_inputs import InputReader, Samples
from engine.training.predict_table import PredictionRow, Predictions

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.data.base import ArrayDataset, PreparedData
    from engine.training.attributions import Attribution, ModelFacts
    from engine.training.tasks.base import Task

#: Tasks :func:`open_predictor` accepts.
PREDICT_TASKS = ("classification", "regression", "forecasting", "autoencoder", "language_model")
#: Classes (or characters) listed per row unless ``top_k`` says otherwise.
DEFAULT_TOP_K = 3


class Predictor:
    """A run's model with its newest weights and its training preprocessing, ready to predict.

    Args:
        run_dir: The run folder.
        task_name: The run's task (one of :data:`PREDICT_TASKS`).
        task: The task object holding the compiled model with the run's weights (CPU).
        data: The run's split, for its normalizations.
        spec: The project's ``dataset`` section (delimiter of CSV inputs).
        weights: Where the weights came from.
    """

    def __init__(self, run_dir: Path, task_name: str, task: Task, data: PreparedData, spec: dict[str, Any],
                 weights: str) -> None:
        self.run_dir = run_dir
        self.task_name = task_name
        self.task = task
        self.data = data
        self.dataset: ArrayDataset = data.dataset
        self.spec = spec
        self.weights = weights
        self._facts: ModelFacts | None = None
        self._attributions = AttributionCache()

    # ------------------------------------------------------------------ predicting
    def read_inputs(self, inputs: list[str]) -> Samples:
        """Read and preprocess every input (files, folders, text) before any prediction
        (:class:`~engine.training.predict_inputs.InputReader`).

        Raises:
            UserError: A missing file, an input of a kind this model does not read, or bad data.
        """
        return InputReader(self.task_name, self.dataset, self.spec).read(inputs)

    def predict(self, inputs: list[str], top_k: int = DEFAULT_TOP_K) -> Predictions:
        """Predict on every input.

        Args:
            inputs: Image files or folders, ``.csv``, ``.npz`` or ``.txt`` files, or text (language models).
            top_k: Classes (characters) listed per row for classifiers (language models); at least 1.

        Returns:
            One row per sample, in input order.

        Raises:
            UserError: Bad input or ``top_k`` (nothing is computed then).
        """
        if top_k < 1:
            raise UserError(f"--top-k: must be at least 1, got {top_k}")
        return self.predict_samples(self.read_inputs(inputs), top_k)

    def predict_samples(self, samples: Samples, top_k: int = DEFAULT_TOP_K) -> Predictions:
        """Predict on samples already read (:meth:`read_inputs`, or values typed in the app: :meth:`samples_of`)."""
        rows: list[PredictionRow] = []
        if samples.arrays:
            x = np.stack(samples.arrays)
            norm = self.data.x_normalization
            x_model = norm.apply(x) if norm is not None else x
            output = self._outputs(x_model)
            rows = self._rows(output, x, samples, top_k)
        rows += [self._next_character(name, ids, top_k) for name, ids in samples.texts]
        return Predictions(self.run_dir, self.task_name, self.weights, rows, samples.skipped)

    def samples_of(self, names: list[str], arrays: list[np.ndarray]) -> Samples:
        """Samples given as arrays of the training per-sample shape, un-normalized (a table row typed in)."""
        shape = self.dataset.sample_dims
        for name, array in zip(names, arrays):
            if tuple(np.shape(array)) != shape:
                raise UserError(f"{name}: expected a sample of shape {shape}, got {tuple(np.shape(array))}")
        return Samples(list(names), [np.asarray(a, dtype=self.dataset.x.dtype) for a in arrays], [None] * len(names))

    @property
    def attribution_facts(self) -> ModelFacts:
        """What decides which attribution methods apply to this model (:mod:`engine.training.attributions`)."""
        from engine.training.attributions import model_facts

        task: Any = self.task
        if self._facts is None:
            self._facts = model_facts(task.compiled, task.project.graph, self.task_name,
                                      self.dataset.image_shape is not None)
        return self._facts

    def attribution(self, sample: np.ndarray, method: str, layer: str | None = None, output: int = 0) -> Attribution:
        """Captum's attribution of the model's prediction for one sample (un-normalized, the training
        per-sample shape; a language model's token ids, of which the last window is read); cached per
        (weights, sample, method, layer, output).

        Raises:
            UserError: A method, layer or output that does not apply (the reason).
        """
        import torch

        from engine.training.attribution_cache import eval_mode, sample_key, weights_version
        from engine.training.attributions import attribute, choice

        facts, task = self.attribution_facts, self.task
        method, layer, output = choice(facts, method, layer, output)
        tokens = facts.input_kind == "tokens"
        if self.task_name == "language_model":
            sample = sample[-getattr(task, "seq_len", len(sample)):]
        norm = self.data.x_normalization
        x = sample[None] if tokens or norm is None else norm.apply(sample[None])
        tensor = torch.from_numpy(np.ascontiguousarray(x))
        names = self.dataset.vocabulary if self.task_name == "language_model" else self.dataset.class_names
        vocabulary = self.dataset.vocabulary
        labels = [vocabulary[int(t)] for t in sample] if tokens and vocabulary else \
            (self.dataset.feature_names if facts.input_kind == "features" else None)
        model: Any = getattr(task, "model")
        key = (weights_version(model), sample_key(x), method, layer, output)
        with eval_mode(model):
            return self._attributions.get(key, lambda: attribute(model, [tensor.long() if tokens else tensor.float()], facts,
                                                    method, layer, output, names, labels))

    def _outputs(self, x: np.ndarray) -> torch.Tensor:
        """The model's outputs for prepared inputs, in eval mode, in batches, without training-time noise."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(x))
        tensor = tensor.float() if tensor.is_floating_point() else tensor.long()
        task: Any = self.task
        with task.evaluating():
            return torch.cat([task.model(xb).float() for xb, _ in task.eval_batches(tensor, None)])

    def _rows(self, output: torch.Tensor, raw: np.ndarray, samples: Samples, top_k: int) -> list[PredictionRow]:
        names, truth = samples.names, samples.truth
        if self.task_name == "classification":
            task: Any = self.task
            ranked = _ranked(task.probabilities(output), top_k)
            classes = self.dataset.class_names or [str(i) for i in range(task.num_classes)]
            return [PredictionRow(n, classes[ids[0]], probs[0], [(classes[i], p) for i, p in zip(ids, probs)], t)
                    for n, (ids, probs), t in zip(names, ranked, truth)]
        values = output.detach().cpu().numpy().reshape(len(raw), -1)
        if self.task_name == "autoencoder":
            norm = self.data.x_normalization
            recon = norm.invert(values.reshape(raw.shape)) if norm is not None else values.reshape(raw.shape)
            errors = ((recon - raw) ** 2).reshape(len(raw), -1).mean(axis=1)
            return [PredictionRow(n, round(float(e), 8), None, [], t) for n, e, t in zip(names, errors, truth)]
        norm = self.data.y_normalization
        values = norm.invert(values) if norm is not None else values
        return [PredictionRow(n, _value(v), None, [], t) for n, v, t in zip(names, values, truth)]

    def _next_character(self, name: str, ids: np.ndarray, top_k: int) -> PredictionRow:
        """The likeliest next characters after a text (its last ``seq_len`` characters)."""
        import torch

        task: Any = self.task
        window = torch.from_numpy(ids[-task.seq_len:])[None]
        with task.evaluating():
            logits = task.model(window)[0, -1].float()
        (order, probs), = _ranked(torch.softmax(logits, dim=0)[None], top_k)
        vocabulary = task.vocabulary
        return PredictionRow(name, vocabulary[order[0]], probs[0], [(vocabulary[i], p) for i, p in zip(order, probs)])


def _ranked(probabilities: torch.Tensor, top_k: int) -> list[tuple[list[int], list[float]]]:
    """Per row, the ``top_k`` likeliest ids and their probabilities, likeliest first."""
    import torch

    values, ids = torch.topk(probabilities.float(), min(top_k, probabilities.shape[1]), dim=1)
    return [([int(i) for i in row_ids], [round(float(p), 6) for p in row_values])
            for row_ids, row_values in zip(ids.tolist(), values.tolist())]


def _value(array: np.ndarray) -> Any:
    items = [float(v) for v in array]
    return items[0] if len(items) == 1 else items


def open_predictor(run_dir: Path, base_dir: Path | None = None, examples: bool = False) -> Predictor:
    """Open a run folder, or a folder ``export --format python`` wrote from a run, for prediction.

    The preprocessing comes from the folder's ``preprocessing.json`` when it has one (runs and
    exports since the file exists): the training data is then not read at all. Older runs load
    their training data and rebuild its split to refit the normalization.

    Args:
        run_dir: The run folder ``train`` wrote, or an exported source folder.
        base_dir: Folder relative dataset paths resolve against; default the one in ``run.json``.
        examples: Load a table's training rows too when they can be found (the Try It panel fills
            its feature editors with one); without them the predictor still predicts.

    Returns:
        The predictor (model on the CPU, eval mode when predicting).

    Raises:
        UserError: No such folder, not a run folder, no weights yet, weights that do not fit, the
            training data gone or changed (older runs), or a task that does not predict (GAN).
    """
    import torch

    from engine.graph.flat_project import flat_project
    from engine.settings import training_config
    from engine.training.exported_model import is_exported_source, read_exported
    from engine.training.insight import load_run_weights, read_newest_weights
    from engine.training.preprocessing_file import read_preprocessing
    from engine.training.run_dir import read_run
    from engine.training.tasks import make_task, resolve_task
    from engine.training.tasks.base import unwrap

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder; give the folder `train` wrote (see `train --out`) or one "
                        f"`export --format python` wrote")
    if is_exported_source(run_dir):
        project, state, source = read_exported(run_dir)
        overrides: dict[str, Any] = {}
        data = read_preprocessing(run_dir)
        assert data is not None  # is_exported_source checked the file is there
    else:
        info, project = read_run(run_dir)
        overrides = info.get("config") or {}
        state, source = read_newest_weights(run_dir)
        base_dir = base_dir or (Path(info["base_dir"]) if info.get("base_dir") else None)
        data = read_preprocessing(run_dir)
        if data is None or (examples and len(data.dataset.sample_dims) == 1 and data.dataset.image_shape is None):
            data = _training_data(run_dir, project, overrides, base_dir, fallback=data)
    config = training_config(project.training, overrides)
    flat = flat_project(project)
    task_name = resolve_task(config, flat, data.dataset)
    if task_name not in PREDICT_TASKS:
        raise UserError(f"{run_dir}: a {task_name.replace('_', ' ')} run generates samples rather than predicting "
                        f"on inputs; predict works on {', '.join(t.replace('_', ' ') for t in PREDICT_TASKS)} runs")
    task = make_task(task_name, flat, data, config, torch.device("cpu"), None)
    for module in task.modules.values():
        load_run_weights(unwrap(module), state, run_dir)
    return Predictor(run_dir, task_name, task, data, dict(project.dataset), source)


def _training_data(run_dir: Path, project: Any, overrides: dict[str, Any], base_dir: Path | None,
                   fallback: PreparedData | None) -> PreparedData:
    """The run's training data split as it trained; ``fallback`` (the recorded preprocessing) when the
    data cannot be read and there is one, else the reason as a UserError."""
    from engine.data import load_dataset
    from engine.settings import training_config
    from engine.training.evaluate import rebuild_split

    try:
        dataset = load_dataset(project.dataset, base_dir)
        return rebuild_split(run_dir, dataset, training_config(project.training, overrides))
    except UserError:
        if fallback is None:
            raise
        return fallback


def predict_run(run_dir: Path, inputs: list[str], top_k: int = DEFAULT_TOP_K,
                base_dir: Path | None = None) -> Predictions:
    """:func:`open_predictor` then :meth:`Predictor.predict`."""
    return open_predictor(run_dir, base_dir).predict(inputs, top_k)
