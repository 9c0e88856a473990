"""Evaluate a trained run on its held-out test split (or its validation split).

:func:`evaluate_run` opens a run folder, reads its newest weights safely (``model.safetensors``,
else ``checkpoint.pt`` with ``weights_only``), rebuilds the run's split from ``split.npz`` (same
rows, same training-set normalization) and computes the task's metrics with the task's own code,
so they are the numbers the trainer reports for validation. Classifiers add per-class precision,
recall, F1 and support (scikit-learn), the confusion matrix, and one row per sample with its
file name where the dataset knows one; regression and forecasting add one row per sample with
the true and predicted values in the data's units. Everything runs on the CPU in fp32.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engine.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.data.base import ArrayDataset, PreparedData
    from engine.layers.base import Params
    from engine.training.tasks.base import Task

Split = Literal["test", "val"]
SPLITS: tuple[str, ...] = ("test", "val")
#: Tasks whose evaluation lists every sample.
ROW_TASKS = ("classification", "regression", "forecasting")
#: Misclassified samples the text report lists (``--csv`` writes them all).
SHOWN_ERRORS = 20
#: Classes up to which the text report draws the confusion matrix.
SHOWN_CLASSES = 20


@dataclass
class ClassScores:
    """Precision, recall, F1 and support of one class."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class SampleRow:
    """One sample of the split: its dataset row, file, target and prediction.

    Classifiers give class names and ``confidence`` (the predicted class's probability) and
    ``correct``; regression and forecasting give values (a list for several outputs) in the
    data's units and leave ``confidence`` and ``correct`` ``None``.
    """

    index: int
    file: str | None
    true: Any
    prediction: Any
    confidence: float | None = None
    correct: bool | None = None


@dataclass
class Evaluation:
    """What :func:`evaluate_run` found.

    Args:
        run_dir: The run folder.
        split: ``test`` or ``val``.
        task: The run's task.
        weights: Where the weights came from (``model.safetensors (end of run)``...).
        samples: Samples in the split.
        metrics: The task's metrics, as the trainer reports them (``loss``, ``accuracy``...).
        class_names: Classifiers: the class names, index = class id.
        per_class: Classifiers: scores per class.
        macro: Classifiers: unweighted means of precision, recall and F1 over the classes.
        confusion: Classifiers: counts, rows the true class, columns the predicted one.
        rows: Every sample (classification, regression, forecasting), in dataset row order.
        images: For image data, each row's image as the dataset holds it (for thumbnails; not in JSON).
        inputs: Each row's input as the dataset holds it (images or table rows; for attributions of
            single samples; not in JSON).
    """

    run_dir: Path
    split: str
    task: str
    weights: str
    samples: int
    metrics: dict[str, float]
    class_names: list[str] = field(default_factory=list)
    per_class: list[ClassScores] = field(default_factory=list)
    macro: dict[str, float] = field(default_factory=dict)
    confusion: np.ndarray | None = None
    rows: list[SampleRow] = field(default_factory=list)
    images: np.ndarray | None = None
    inputs: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """Everything as plain JSON (non-finite numbers become ``null``).

        Keys: ``run``, ``split``, ``task``, ``weights``, ``samples``, ``metrics``, ``rows`` (objects
        with ``index``, ``file``, ``true``, ``prediction`` and, for classifiers, ``confidence`` and
        ``correct``); classifiers add ``classes``, ``per_class`` (objects with ``class``,
        ``precision``, ``recall``, ``f1``, ``support``), ``macro_avg`` and ``confusion``.
        """
        data: dict[str, Any] = {"run": str(self.run_dir), "split": self.split, "task": self.task,
                                "weights": self.weights, "samples": self.samples,
                                "metrics": {k: finite_json(v) for k, v in self.metrics.items()}}
        if self.task == "classification":
            data["classes"] = list(self.class_names)
            data["per_class"] = [{"class": s.name, "precision": s.precision, "recall": s.recall, "f1": s.f1,
                                  "support": s.support} for s in self.per_class]
            data["macro_avg"] = dict(self.macro)
            data["confusion"] = self.confusion.tolist() if self.confusion is not None else []
        classifier = self.task == "classification"
        data["rows"] = [{"index": r.index, "file": r.file, "true": finite_json(r.true), "prediction": finite_json(r.prediction),
                         **({"confidence": r.confidence, "correct": r.correct} if classifier else {})}
                        for r in self.rows]
        return data

    def csv_text(self) -> str:
        """The per-sample table as CSV: ``index,file,true,prediction`` (+ ``confidence,correct`` for
        classifiers); several values in one cell are separated by spaces."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        classifier = self.task == "classification"
        writer.writerow(["index", "file", "true", "prediction", *(["confidence", "correct"] if classifier else [])])
        for r in self.rows:
            cells = [r.index, r.file or "", csv_cell(r.true), csv_cell(r.prediction)]
            if classifier:
                cells += [f"{r.confidence:.6f}" if r.confidence is not None else "", int(bool(r.correct))]
            writer.writerow(cells)
        return buffer.getvalue()

    def write_csv(self, path: Path) -> None:
        """Write :meth:`csv_text` to ``path`` (atomically).

        Raises:
            UserError: The task has no per-sample table, or the file cannot be written.
        """
        from engine.fileio import atomic_write_bytes

        if self.task not in ROW_TASKS:
            raise UserError(f"--csv: the per-sample table exists for {', '.join(ROW_TASKS)} runs; this run is "
                            f"{self.task.replace('_', ' ')}")
        try:
            atomic_write_bytes(Path(path), self.csv_text().encode("utf-8"))
        except OSError as exc:
            raise UserError(f"{path}: cannot write the table ({exc.strerror or exc})") from None

    def report(self) -> str:
        """A readable text report: metrics, per-class scores, confusion matrix, misclassified samples."""
        what = {"test": "test split", "val": "validation split"}[self.split]
        lines = [(f"{self.run_dir}: {what}, {self.samples} samples, {self.task.replace('_', ' ')}, "
                  f"weights {self.weights}"),
                 "  ".join(f"{k} {_metric_text(k, v)}" for k, v in self.metrics.items())]
        if self.task == "classification":
            lines += ["", *self._class_table(), "", *self._confusion_lines(), "", *self._errors()]
        elif self.rows:
            lines += ["", f"--csv FILE writes every sample's true and predicted values ({len(self.rows)} rows)"]
        return "\n".join(lines)

    def _class_table(self) -> list[str]:
        width = max([len("macro avg"), *(len(s.name) for s in self.per_class)])
        lines = [f"{'class':<{width}}  precision  recall      f1  support"]
        for s in self.per_class:
            lines.append(f"{s.name:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:6.3f}  {s.support:7d}")
        m = self.macro
        lines.append(f"{'macro avg':<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:6.3f}  "
                     f"{self.samples:7d}")
        return lines

    def _confusion_lines(self) -> list[str]:
        if self.confusion is None:
            return []
        if len(self.class_names) > SHOWN_CLASSES:
            return [f"confusion matrix: {len(self.class_names)} classes, see --json"]
        names = [n[:8] for n in self.class_names]
        width = max(4, *(len(n) for n in names), len(str(int(self.confusion.max(initial=0)))))
        lines = ["confusion matrix (rows: true class, columns: predicted)",
                 " " * width + " " + " ".join(f"{n:>{width}}" for n in names)]
        for name, counts in zip(names, self.confusion):
            lines.append(f"{name:>{width}} " + " ".join(f"{int(c):>{width}d}" for c in counts))
        return lines

    def _errors(self) -> list[str]:
        wrong = [r for r in self.rows if not r.correct]
        if not wrong:
            return [f"every one of the {len(self.rows)} samples is classified correctly"]
        shown = wrong[:SHOWN_ERRORS]
        head = f"misclassified: {len(wrong)} of {len(self.rows)}"
        head += f" (the first {len(shown)} below; --csv FILE writes every sample)" if len(wrong) > len(shown) \
            else " (--csv FILE writes every sample)"
        lines = [head, "  index  true -> predicted (confidence)  file"]
        for r in shown:
            lines.append(f"  {r.index:5d}  {r.true} -> {r.prediction} ({r.confidence:.2f})  {r.file or ''}".rstrip())
        return lines


def finite_json(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` (strict JSON), lists element by element."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value


def csv_cell(value: Any) -> str:
    """A table or CSV cell: 6 significant digits, several values separated by spaces."""
    if isinstance(value, list):
        return " ".join(csv_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _metric_text(name: str, value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2%}" if name.endswith("accuracy") else f"{value:.4g}"


# --------------------------------------------------------------------------------------- evaluation
def rebuild_split(run_dir: Path, dataset: ArrayDataset, config: Params) -> PreparedData:
    """The run's parts as the trainer made them: from ``split.npz`` when the run has one (checking the
    data is unchanged), else drawn again with the run's seed and fractions (runs from before the file).

    Raises:
        UserError: The split record is damaged or the data changed since the run trained.
    """
    from engine.data import apply_split, prepare_data
    from engine.training.split_file import check_same_data, read_split

    recorded = read_split(run_dir)
    if recorded is None:
        return prepare_data(dataset, config.validation_fraction, config.seed, config.normalize, config.test_fraction)
    check_same_data(recorded, dataset, run_dir)
    return apply_split(dataset, recorded.train, recorded.val, recorded.test, config.normalize)


def no_test_split_message(run_dir: Path) -> str:
    """The line for ``--split test`` on a run that held no test split out."""
    return (f"{run_dir}: this run has no test split (it trained with test_fraction 0); set training.test_fraction "
            f"(e.g. 0.2) in the project and train again, or evaluate the validation split with --split val")


def evaluate_run(run_dir: Path, split: Split = "test", base_dir: Path | None = None) -> Evaluation:
    """Evaluate a run's newest weights on one of its held-out splits.

    Args:
        run_dir: The run folder (``run.json``, ``project.json``, weights, ``split.npz``).
        split: ``test`` (never seen in training or early stopping) or ``val``.
        base_dir: Folder relative dataset paths resolve against; default the one in ``run.json``.

    Returns:
        The metrics, per-class scores and per-sample rows.

    Raises:
        UserError: Not a run folder, damaged files, no weights yet, no test split, changed data,
            or a split with no samples (one line each).
    """
    import torch

    from engine.data import load_dataset
    from engine.graph.flat_project import flat_project
    from engine.settings import training_config
    from engine.training.insight import read_newest_weights
    from engine.training.run_dir import read_run
    from engine.training.split_file import read_split
    from engine.training.tasks import make_task, resolve_task

    if split not in SPLITS:
        raise UserError(f"--split: must be one of {', '.join(SPLITS)}, got {split!r}")
    run_dir = Path(run_dir)
    info, project = read_run(run_dir)
    config = training_config(project.training, info.get("config") or {})
    recorded = read_split(run_dir)  # before the data loads: a run without a test split is told at once
    if split == "test" and (len(recorded.test) == 0 if recorded is not None else config.test_fraction == 0):
        raise UserError(no_test_split_message(run_dir))
    state, source = read_newest_weights(run_dir)
    base_dir = base_dir or (Path(info["base_dir"]) if info.get("base_dir") else None)
    dataset = load_dataset(project.dataset, base_dir)
    data = rebuild_split(run_dir, dataset, config)
    rows = data.test_index if split == "test" else data.val_index
    if len(rows) == 0:
        raise (UserError(no_test_split_message(run_dir)) if split == "test" else
               UserError(f"{run_dir}: this run has no validation samples; evaluate --split test"))
    project = flat_project(project)
    task_name = resolve_task(config, project, dataset)
    task = make_task(task_name, project, data, config, torch.device("cpu"), None)
    _load(task, state, run_dir)
    x, y = (data.test_x, data.test_y) if split == "test" else (data.val_x, data.val_y)
    x_t, y_t = split_tensor(x, data), _as_tensor(y)
    torch.manual_seed(config.seed)  # tasks that sample (GAN noise) repeat their numbers
    metrics = task.evaluate(x_t, y_t)
    result = Evaluation(run_dir, split, task_name, source, len(rows), metrics)
    files = dataset.extras.get("files")
    names = [str(files[int(i)]) if files is not None else None for i in rows]
    if task_name in ROW_TASKS:  # thumbnails and single-sample attributions in the app's sample table
        result.inputs = np.asarray(dataset.x[np.asarray(rows)])  # a streamed folder decodes just these rows
        result.images = result.inputs if dataset.image_shape is not None else None
    if task_name == "classification":
        _classification(result, task, dataset, x_t, rows, names)
    elif task_name in ("regression", "forecasting"):
        _values(result, task, data, x_t, rows, names)
    return result


def split_tensor(x: Any, data: PreparedData, first: int | None = None) -> torch.Tensor | None:
    """A split's inputs (all, or the ``first`` rows) as the model sees them (streamed images
    decoded and normalized as in training)."""
    from engine.data.streaming import is_lazy

    count = len(x) if x is not None and first is None else min(first or 0, len(x) if x is not None else 0)
    if is_lazy(x):
        from engine.training.streamed import normalized_rows

        return normalized_rows(x, data.x_normalization, list(range(count)))
    return _as_tensor(None if x is None else x[:count])


def _as_tensor(array: np.ndarray | None) -> torch.Tensor | None:
    import torch

    if array is None:
        return None
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.float() if tensor.is_floating_point() else tensor.long()


def _load(task: Task, state: dict[str, torch.Tensor], run_dir: Path) -> None:
    from engine.training.insight import load_run_weights
    from engine.training.tasks.base import unwrap

    for module in task.modules.values():
        load_run_weights(unwrap(module), state, run_dir)


def _classification(result: Evaluation, task: Any, dataset: ArrayDataset, x: torch.Tensor, rows: np.ndarray,
                    files: list[str | None]) -> None:
    """Per-class scores, the confusion matrix and one row per sample."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    count = task.num_classes
    names = list(dataset.class_names or [str(i) for i in range(count)])
    output = task.predict(x)
    probabilities = task.probabilities(output)
    predicted = task.predicted_classes(output)
    confidence = probabilities.gather(1, predicted[:, None])[:, 0]
    assert dataset.y is not None
    truth = np.asarray(dataset.y).reshape(-1)[rows].astype(np.int64)
    guess = predicted.cpu().numpy().astype(np.int64)
    labels = list(range(count))
    precision, recall, f1, support = precision_recall_fscore_support(truth, guess, labels=labels, zero_division=0)
    result.class_names = names
    result.per_class = [ClassScores(names[c], float(precision[c]), float(recall[c]), float(f1[c]), int(support[c]))
                        for c in labels]
    result.macro = {"precision": float(np.mean(precision)), "recall": float(np.mean(recall)),
                    "f1": float(np.mean(f1))}
    result.confusion = confusion_matrix(truth, guess, labels=labels)
    sure = confidence.float().cpu().numpy()
    result.rows = [SampleRow(int(row), file, names[t], names[p], round(float(c), 6), bool(t == p))
                   for row, file, t, p, c in zip(rows, files, truth, guess, sure)]


def _values(result: Evaluation, task: Any, data: PreparedData, x: torch.Tensor, rows: np.ndarray,
            files: list[str | None]) -> None:
    """One row per sample with the true and predicted values in the data's units."""
    predicted = task.predict(x).detach().cpu().numpy().reshape(len(rows), -1)
    norm = data.y_normalization
    predicted = norm.invert(predicted) if norm is not None else predicted
    assert data.dataset.y is not None
    truth = np.asarray(data.dataset.y)[rows].reshape(len(rows), -1).astype(np.float64)

    def value(array: np.ndarray) -> Any:
        items = [float(v) for v in array]
        return items[0] if len(items) == 1 else items

    result.rows = [SampleRow(int(row), file, value(t), value(p)) for row, file, t, p in zip(rows, files, truth,
                                                                                           predicted)]


def to_json_text(evaluation: Evaluation) -> str:
    """:meth:`Evaluation.to_json` as strict JSON text."""
    return json.dumps(evaluation.to_json(), indent=2, allow_nan=False)
