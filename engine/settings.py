"""Training settings: one declaration per setting, reusing the layer parameter kinds.

The project file's ``training`` section holds any subset of these; missing ones take their
defaults. The same declarations give the GUI its editors and the CLI its checks.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.errors import UserError
from engine.graph.gan import is_gan
from engine.graph.model import Graph
from engine.layers.base import Params
from engine.layers.params import (Param, ParamKindError, bool_param, choice_param, float_param,
                                  int_param)

TASKS = ("classification", "regression", "forecasting", "autoencoder", "gan", "language_model")
LOSSES = ("cross_entropy", "bce_with_logits", "mse", "l1", "huber")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "one_cycle", "plateau")

TRAINING_PARAMS: tuple[Param, ...] = (
    choice_param("task", "auto", ("auto", *TASKS), "What the model learns; auto follows the dataset."),
    choice_param("loss", "auto", ("auto", *LOSSES), "Loss function; auto picks the usual one for the task."),
    choice_param("optimizer", "adam", OPTIMIZERS, "How weights move along the gradient."),
    float_param("lr", 1e-3, "Learning rate: the step size of each update.", min=1e-8, max=10.0),
    float_param("momentum", 0.9, "SGD momentum / RMSprop momentum.", min=0.0, max=0.999),
    bool_param("nesterov", False, "Nesterov momentum (SGD)."),
    float_param("beta1", 0.9, "Adam/AdamW first-moment decay (0.5 is common for GANs).", min=0.0, max=0.999),
    float_param("weight_decay", 0.0, "L2 penalty (decoupled for AdamW).", min=0.0, max=1.0),
    choice_param("schedule", "constant", SCHEDULES, "How the learning rate changes over the run."),
    int_param("step_size", 10, "Epochs between decays (step schedule).", min=1, max=100_000),
    float_param("gamma", 0.1, "Decay factor (step and plateau schedules).", min=1e-4, max=1.0),
    float_param("warmup_epochs", 0.0, "Epochs of linear warm-up from 0 before the schedule.", min=0.0, max=10_000.0),
    int_param("batch_size", 64, "Samples per step.", min=1, max=1_000_000),
    int_param("epochs", 10, "Passes over the training data.", min=1, max=1_000_000),
    float_param("grad_clip", 0.0, "Clip the gradient norm to this value (0 = off).", min=0.0, max=1e6),
    int_param("early_stopping_patience", 0, "Stop after this many epochs without improvement (0 = off).",
              min=0, max=100_000),
    choice_param("early_stopping_metric", "val_loss",
                 ("val_loss", "val_accuracy", "val_mae", "val_r2", "val_perplexity"),
                 "Validation metric watched by early stopping and for the best checkpoint."),
    choice_param("device", "auto", ("auto", "cpu", "cuda", "mps"), "Where to train; auto: CUDA, then MPS, then CPU."),
    choice_param("precision", "auto", ("auto", "fp32", "bf16", "fp16"),
                 "Mixed precision. auto: bf16 on CUDA GPUs that support it (else fp16 with loss "
                 "scaling), fp32 on CPU and MPS. bf16 also works on a CPU (fast where it has "
                 "AVX512-BF16 or AMX); fp16 needs CUDA."),
    int_param("seed", 0, "Seed for weights, data order and dropout.", min=0, max=2**31 - 1),
    bool_param("use_project_weights", True,
               "Start from the weights saved beside the project file (name.safetensors, written by "
               "import or export) where a layer's name and shape still match; off: fresh random weights."),
    bool_param("deterministic", False, "Use deterministic kernels (slower on GPU) and a fixed CPU thread count: "
               "runs and resumes repeat bit for bit even on a busy machine."),
    float_param("validation_fraction", 0.2, "Share of the data held out for validation.", min=0.05, max=0.5),
    float_param("test_fraction", 0.0, "Share of the data held out for testing (python main.py evaluate); never "
                "used in training, early stopping or the curves. 0 = no test part.", min=0.0, max=0.95),
    bool_param("normalize", True, "Standardize inputs (and regression targets) with training statistics."),
    float_param("input_noise", 0.0, "Denoising autoencoder: std of Gaussian noise added to inputs.",
                min=0.0, max=10.0),
    int_param("gan_d_steps", 1, "GAN: discriminator steps per generator step.", min=1, max=10),
    int_param("top_k", 3, "Classification: also report top-k accuracy.", min=2, max=100),
    int_param("gradient_every", 25, "Steps between gradient-health samples (per layer: gradient norm, update size, "
              "dead ReLU units; warnings for vanishing, exploding and dead). 0 = off.", min=0, max=1_000_000),
    float_param("snapshot_seconds", 2.0, "At most one prediction snapshot per epoch or per this many seconds.",
                min=0.1, max=3600.0),
    float_param("temperature", 0.8, "Language model: sampling temperature of generated text.", min=0.05, max=5.0),
    int_param("num_workers", 0, "DataLoader worker processes for large datasets.", min=0, max=64),
    int_param("cpu_threads", 0, "CPU threads for training; 0 = automatic: as many as the cores other programs "
              "leave free, checked every second (a busy core would otherwise stall every step; results then "
              "differ in the last bits from a run on an idle machine, unless deterministic is on).", min=0,
              max=1024),
)

_BY_NAME = {p.name: p for p in TRAINING_PARAMS}

#: Task chosen for ``task: auto`` from what the dataset's targets are.
TASK_FOR_TARGETS = {"classes": "classification", "values": "regression", "next_tokens": "language_model",
                    "none": "autoencoder"}


def auto_task(task: str, graph: Graph, target_kind: str | None, ordered: bool = False) -> str:
    """The task a ``task`` setting means: itself, or for ``auto`` GAN when the graph has a Noise
    Input, else what the dataset's targets say (``ordered`` values: forecasting).

    Args:
        task: The ``task`` setting.
        graph: The project's graph.
        target_kind: The dataset's target kind (``classes``, ``values``...); ``None`` when unknown.
        ordered: Whether the values are a sequence in time.
    """
    if task != "auto":
        return task
    if is_gan(graph):
        return "gan"
    if target_kind is None:
        return "classification"
    if target_kind == "values" and ordered:
        return "forecasting"
    return TASK_FOR_TARGETS[target_kind]


#: Loss used by each task when ``loss`` is ``auto``.
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "forecasting": "mse",
                "autoencoder": "mse", "gan": "bce_with_logits", "language_model": "cross_entropy"}


def training_config(section: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Params:
    """Validate a project's ``training`` section (plus overrides) and fill in defaults.

    Args:
        section: The ``training`` section of a project file.
        overrides: Values from the command line (``epochs``, ``device``, ``seed``...).

    Returns:
        Every setting, valid, with attribute access.

    Raises:
        UserError: ``training.<name>: <problem>`` for the first bad value or unknown name.
    """
    values = {**section, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    result: dict[str, Any] = {}
    for name in values:
        if name not in _BY_NAME:
            raise UserError(f"training.{name}: unknown setting (known: {', '.join(sorted(_BY_NAME))})")
    for decl in TRAINING_PARAMS:
        value = values.get(decl.name, decl.default)
        problem = decl.check(value)
        if problem:
            raise UserError(f"training.{decl.name}: {problem}")
        try:
            result[decl.name] = decl.coerce(value)
        except ParamKindError as exc:  # pragma: no cover - check() reports it first
            raise UserError(f"training.{decl.name}: {exc}") from None
    if result["validation_fraction"] + result["test_fraction"] >= 1.0:
        raise UserError(f"training.test_fraction: validation_fraction + test_fraction must be below 1, got "
                        f"{result['validation_fraction']:g} + {result['test_fraction']:g}; lower one of them")
    return Params(result)
