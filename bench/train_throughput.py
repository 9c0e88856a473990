"""Training throughput (samples/s) of our Trainer vs a hand-written loop, Lightning and the worker.

Workloads (data in memory, Adam, the project's learning rate, seed 0):

* ``cnn_digits``: templates/cnn_digits.json, the LeNet-style CNN on scikit-learn's digits
  (image layout 1x8x8, 1,438 training / 359 validation samples), batch 64.
* ``mlp_moons``: Input(2) -> Linear(32) -> ReLU -> Dropout(0.2) -> Linear(32) -> ReLU ->
  Linear(2) on 2,000 moons points (1,600 / 400), batch 64 (--mlp-batch).

Variants (each is one whole training run of E epochs):

* ``a trainer``: ``engine.training.trainer.Trainer`` in this process, no run folder, an emit
  callback that records a few timestamps and drops every event.
* ``b hand``: a minimal PyTorch loop on the same device-resident tensors the Trainer uses
  (``BatchSource``'s): per-epoch ``randperm`` from a seeded generator, index batches of the
  same size (the same steps per epoch), ``zero_grad(set_to_none=True)`` / forward /
  cross-entropy / ``backward`` / ``Adam.step`` on the same architecture written by hand as
  ``nn.Sequential`` (checked against the compiled graph: same parameter count, same output
  with copied weights).
* ``c lightning``: ``lightning.Trainer`` (when ``import lightning`` works; it is not a
  dependency: ``pip install lightning`` for this benchmark) fitting a ``LightningModule``
  around the same ``nn.Sequential``, a ``DataLoader(TensorDataset, shuffle=True)`` with the
  same batch size, ``logger=False``, no checkpointing / progress bar / model summary,
  ``num_sanity_val_steps=0``, accelerator cpu (gpu with --device cuda).
* ``d worker``: ``engine.training.worker.TrainingProcess`` (spawned process, events over a
  multiprocessing queue) with this process consuming every event in a ``poll(0.05)`` loop.
* ``e hand + speed settings`` and ``f Lightning + speed settings``: b and c given by hand
  what the Trainer applies by itself (engine/training/performance.py: channels-last weights
  for convolution networks, the fused Adam kernel). a/b and a/c compare with the loops as
  people usually write them (the issue's targets); a/e isolates the Trainer's own per-step
  cost now that a is faster than a plain loop, and a/f shows what is left of the gap to
  Lightning when a Lightning user tunes the same two things (both reported, no target).

What is measured (the same for all four): every variant evaluates on the validation set
after each epoch, as a training run does (a and d through the Trainer; b with a plain
``no_grad`` loop computing loss and accuracy in batches of 1,024 like the task does; c
with a validation ``DataLoader`` of batch 1,024). The first epoch is a warm-up and is not
counted; one-time setup (process start, imports, dataset loading, graph compilation,
Lightning's ``fit`` preamble) never is. Over epochs 2..E:

* ``train samples/s`` (the figure the targets apply to) = training samples x (E - 1) /
  the time spent in training steps. For a, the Trainer's own per-epoch time
  (``EpochEnd.seconds``: epoch start to after evaluation) minus the evaluation, timed by
  wrapping the task's ``evaluate`` method on the instance (a timing probe only: nothing
  else is patched); what is left is the batch loop with everything the Trainer does per
  batch (command poll, schedule, float(loss) NaN check on CPU, metric sums, batch events).
  For d the same, minus the evaluation time measured in a in the same round (the worker
  cannot be probed; evaluation is ~5-10% of an epoch, so this estimate matters little).
  For b perf_counter around the batch loop; for c a callback's epoch-start/epoch-end times
  minus the validation inside them.
* ``loop samples/s`` = training samples x (E - 1) / the time between the end of epoch 1
  and the end of epoch E (consecutive EpochEnd timestamps for a and d; the end of each
  epoch's evaluation for b; ``on_train_epoch_end`` for c): whole epochs including
  evaluation and, for a and d, everything else the Trainer does per epoch (prediction
  snapshots, events, history).

Noise: variants run interleaved, the order rotating every round, so machine noise hits all
alike; tables give medians over rounds (and the inter-quartile range). The CPU time other
processes use is measured around every run (/proc/stat); before a round the script waits
(--max-wait seconds in all) for a quiet CPU, and rounds with more than --max-foreign-load
cores of foreign use are re-run while the time budget allows, otherwise kept and flagged.
On a busy 2-core machine torch's default 2 OpenMP threads stall on each other (a step can
become 20-40x slower); --threads 1 (also given to the worker through OMP_NUM_THREADS)
makes the figures far more stable there.

Usage::

    python bench/train_throughput.py               # about 2 minutes on 2 cores (+30 s with --breakdown)
    python bench/train_throughput.py --quick       # under a minute
    python bench/train_throughput.py --threads 1   # stable figures on a busy machine
    python bench/train_throughput.py --device cuda --precision bf16
    python bench/train_throughput.py --precision bf16   # bf16 autocast on the CPU
    python bench/train_throughput.py --profile     # also cProfile a and b on each workload
    python bench/train_throughput.py --breakdown   # also time a's extras piece by piece

Writes bench/results/train_throughput.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import logging
import os
import pstats
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch import nn

from bench._common import (
    ForeignLoadWithChildren,
    QuietBudget,
    chain,
    copy_weights,
    describe_machine,
    format_table,
    machine_info,
    median,
    node,
    quartiles,
    write_results,
)
from engine.compile import compile_graph
from engine.data import load_dataset, prepare_data
from engine.graph import Graph, Project
from engine.graph.fileformat import dumps, load_project
from engine.training.batches import BatchSource
from engine.settings import training_config
from engine.training.events import EpochEnd, Event, Failed, Finished, RunStarted
from engine.training.performance import fused_optimizer, use_fast_layout
from engine.training.tasks.base import EVAL_BATCH
from engine.training.loop_accounting import BatchWindow, MetricSums
from engine.training.trainer import BATCH_EVENT_SECONDS, Trainer, TrainOptions

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("a", "b", "c", "d", "e", "f")
VARIANT_NAMES = {"a": "a trainer (in-process)", "b": "b hand-written loop", "c": "c Lightning",
                 "d": "d worker process", "e": "e hand-written + speed settings",
                 "f": "f Lightning + speed settings"}
#: Variants built on Lightning (skipped when it is not installed).
LIGHTNING_VARIANTS = ("c", "f")
#: (numerator, denominator, target or None for information): the ratios reported on train samples/s.
TARGETS = (("a", "b", 0.95), ("a", "c", 1.5), ("d", "a", 0.95), ("a", "e", None), ("a", "f", None))


# ------------------------------------------------------------------ workloads
@dataclass
class Workload:
    """A project to train and the same model written by hand."""

    key: str
    title: str
    project: Project
    make_model: Callable[[], nn.Module]
    batch_size: int


def cnn_digits() -> Workload:
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    project.training = {**project.training, "batch_size": 64}

    def make() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.25),
            nn.Linear(64, 10))

    return Workload("cnn_digits", "CNN (templates/cnn_digits.json) on digits 1x8x8", project, make, 64)


def mlp_moons(batch_size: int) -> Workload:
    graph = Graph()
    chain(graph, node("input", "x", shape=[2]), node("linear", "fc1", out_features=32), node("relu", "relu1"),
          node("dropout", "drop", p=0.2), node("linear", "fc2", out_features=32), node("relu", "relu2"),
          node("linear", "fc3", out_features=2), node("output", "logits"))
    project = Project(graph=graph, dataset={"name": "moons", "samples": 2000},
                      training={"batch_size": batch_size, "lr": 0.01, "optimizer": "adam", "seed": 0})

    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 32), nn.ReLU(),
                             nn.Linear(32, 2))

    return Workload("mlp_moons", "MLP 2-32-32-2 on moons (2,000 points)", project, make, batch_size)


@dataclass
class Prepared:
    """The tensors and settings every variant shares."""

    workload: Workload
    overrides: dict[str, Any]
    project_text: str
    config: Any
    batches: BatchSource
    device: torch.device
    amp_dtype: torch.dtype | None
    max_abs_output_diff: float


def prepare(workload: Workload, device: torch.device, precision: str, epochs: int) -> Prepared:
    """Data exactly as the Trainer prepares it, and a check that the hand-written model matches."""
    overrides = {"device": str(device), "precision": precision, "epochs": epochs}
    config = training_config(workload.project.training, overrides)
    data = prepare_data(load_dataset(workload.project.dataset), config.validation_fraction, config.seed,
                        config.normalize)
    batches = BatchSource(data, device, config.batch_size, config.seed)
    amp = {"fp32": None, "auto": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    # the same architecture: copy the compiled graph's weights into the hand-written model, compare outputs
    torch.manual_seed(0)
    compiled = compile_graph(workload.project.graph).module.eval()
    hand = workload.make_model().eval()
    copy_weights(compiled, hand)
    with torch.no_grad():
        x = batches.val_x[:256].cpu()
        diff = float((compiled(x) - hand(x)).abs().max())
    assert diff < 1e-5, (workload.key, diff)
    return Prepared(workload, overrides, dumps(workload.project), config, batches, device, amp, diff)


def with_epochs(prepared: Prepared, epochs: int) -> dict[str, Any]:
    return {**prepared.overrides, "epochs": epochs}


# ------------------------------------------------------------------ results
@dataclass
class Measurement:
    """One training run of one variant."""

    variant: str
    epochs: int
    train_samples: int
    train_seconds: list[float] = field(default_factory=list)  # per counted epoch
    loop_seconds: list[float] = field(default_factory=list)  # per counted epoch
    eval_seconds: list[float] = field(default_factory=list)  # per counted epoch (measured or estimated)
    events: int = 0
    event_kinds: dict[str, int] = field(default_factory=dict)
    foreign_load: float = 0.0
    wall_seconds: float = 0.0

    @property
    def train_rate(self) -> float:
        return self.train_samples * len(self.train_seconds) / sum(self.train_seconds)

    @property
    def loop_rate(self) -> float:
        return self.train_samples * len(self.loop_seconds) / sum(self.loop_seconds)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------- a: our Trainer
class _Recorder:
    """Emit callback of variant a: keeps EpochEnd times, times ``task.evaluate``, drops the rest."""

    def __init__(self) -> None:
        self.trainer: Trainer | None = None
        self.epoch_ends: list[EpochEnd] = []
        self.eval_seconds: list[float] = []
        self.train_samples = 0
        self.kinds: dict[str, int] = {}
        self.last: Event | None = None

    def __call__(self, event: Event) -> None:
        self.kinds[event.kind] = self.kinds.get(event.kind, 0) + 1
        self.last = event
        if isinstance(event, EpochEnd):
            self.epoch_ends.append(event)
        elif isinstance(event, RunStarted):
            self.train_samples = event.train_samples
            assert self.trainer is not None and self.trainer.task is not None
            task = self.trainer.task
            evaluate = task.evaluate
            seconds = self.eval_seconds

            def timed_evaluate(x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
                start = time.perf_counter()
                result = evaluate(x, y)  # ends with float(): synchronized
                seconds.append(time.perf_counter() - start)
                return result

            task.evaluate = timed_evaluate  # type: ignore[method-assign]


def run_trainer(prepared: Prepared, epochs: int) -> Measurement:
    recorder = _Recorder()
    trainer = Trainer(TrainOptions(prepared.workload.project, overrides=with_epochs(prepared, epochs)), recorder)
    recorder.trainer = trainer
    result = trainer.run()
    if isinstance(result, Failed):
        raise RuntimeError(f"variant a failed: {result.message}\n{result.details}")  # noqa: TRY004
    assert isinstance(result, Finished), result
    ends, evals = recorder.epoch_ends, recorder.eval_seconds
    assert len(ends) == epochs == len(evals), (len(ends), epochs, len(evals))
    m = Measurement("a", epochs, recorder.train_samples, events=sum(recorder.kinds.values()),
                    event_kinds=dict(recorder.kinds))
    m.train_seconds = [e.seconds - v for e, v in zip(ends[1:], evals[1:])]
    m.loop_seconds = [b.time - a.time for a, b in pairwise(ends)]
    m.eval_seconds = evals[1:]
    return m


# -------------------------------------------------------- b: hand-written loop
def _evaluate_hand(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: torch.dtype | None,
                   device: torch.device) -> dict[str, float]:
    """Validation loss and accuracy in batches of EVAL_BATCH, as the classification task does."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad(), (torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()):
        for start in range(0, len(x), EVAL_BATCH):
            xb, yb = x[start:start + EVAL_BATCH], y[start:start + EVAL_BATCH]
            out = model(xb).float()
            loss_sum += F.cross_entropy(out, yb).double() * len(xb)
            correct += (out.argmax(1) == yb).sum().double()
    model.train()
    return {"loss": float(loss_sum) / len(x), "accuracy": float(correct) / len(x)}


def make_adam(model: nn.Module, prepared: Prepared, tuned: bool) -> torch.optim.Optimizer:
    """Adam with the workload's settings; fused as the Trainer builds it when ``tuned``."""
    settings = {"lr": prepared.config.lr, "betas": (prepared.config.beta1, 0.999)}
    if tuned:
        return fused_optimizer(torch.optim.Adam, list(model.parameters()), **settings)
    return torch.optim.Adam(model.parameters(), **settings)


def make_hand_model(prepared: Prepared, tuned: bool) -> nn.Module:
    """The hand-written module; in the Trainer's memory layout when ``tuned``."""
    torch.manual_seed(prepared.config.seed)
    model = prepared.workload.make_model().to(prepared.device)
    return use_fast_layout(model, prepared.device) if tuned else model


def run_hand(prepared: Prepared, epochs: int, tuned: bool = False) -> Measurement:
    config, source, device, amp = prepared.config, prepared.batches, prepared.device, prepared.amp_dtype
    model = make_hand_model(prepared, tuned).train()
    optimizer = make_adam(model, prepared, tuned)
    generator = torch.Generator().manual_seed(config.seed)
    x, y, val_x, val_y = source.train_x, source.train_y, source.val_x, source.val_y
    assert y is not None and val_y is not None
    batch, steps = config.batch_size, source.steps_per_epoch
    train, ends = [], []
    evals = []
    for _ in range(epochs):
        start = time.perf_counter()
        permutation = torch.randperm(len(x), generator=generator).to(device)
        for index in range(steps):
            rows = permutation[index * batch:(index + 1) * batch]
            xb, yb = x[rows], y[rows]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
        _sync(device)
        trained = time.perf_counter()
        _evaluate_hand(model, val_x, val_y, amp, device)
        end = time.perf_counter()
        train.append(trained - start)
        evals.append(end - trained)
        ends.append(end)
    m = Measurement("e" if tuned else "b", epochs, source.train_count)
    m.train_seconds = train[1:]
    m.loop_seconds = [b - a for a, b in pairwise(ends)]
    m.eval_seconds = evals[1:]
    return m


# --------------------------------------------------------------- c: Lightning
def lightning_module() -> Any:
    """The ``lightning`` package, or ``None`` when it is not installed."""
    try:
        import lightning
    except ImportError:
        return None
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available.*")
    return lightning


def run_lightning(prepared: Prepared, epochs: int, L: Any, tuned: bool = False) -> Measurement:
    from torch.utils.data import DataLoader, TensorDataset

    config, source, device, amp = prepared.config, prepared.batches, prepared.device, prepared.amp_dtype
    assert source.train_y is not None and source.val_y is not None

    class Module(L.LightningModule):
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self.model = model
            self.val_sums: list[torch.Tensor] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            xb, yb = batch
            return F.cross_entropy(self.model(xb), yb)

        def on_validation_epoch_start(self) -> None:
            self.val_sums = [torch.zeros((), dtype=torch.float64, device=self.device) for _ in range(3)]

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            xb, yb = batch
            out = self.model(xb).float()
            self.val_sums[0] += F.cross_entropy(out, yb).double() * len(xb)
            self.val_sums[1] += (out.argmax(1) == yb).sum().double()
            self.val_sums[2] += len(xb)

        def on_validation_epoch_end(self) -> None:
            count = float(self.val_sums[2])
            self.val_metrics = {"loss": float(self.val_sums[0]) / count, "accuracy": float(self.val_sums[1]) / count}

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return make_adam(self.model, prepared, tuned)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.epoch_start = 0.0
            self.val_start = 0.0
            self.val_in_epoch = 0.0
            self.train: list[float] = []
            self.evals: list[float] = []
            self.ends: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            _sync(device)
            self.epoch_start = time.perf_counter()
            self.val_in_epoch = 0.0

        def on_validation_start(self, trainer: Any, module: Any) -> None:
            _sync(device)
            self.val_start = time.perf_counter()

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            _sync(device)
            seconds = time.perf_counter() - self.val_start
            self.val_in_epoch += seconds
            self.evals.append(seconds)

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            _sync(device)
            end = time.perf_counter()
            self.train.append(end - self.epoch_start - self.val_in_epoch)
            self.ends.append(end)

    module = Module(make_hand_model(prepared, tuned))
    # DataLoaders read CPU tensors (the usual Lightning setup); Lightning moves each batch to the device.
    train_set = TensorDataset(source.train_x.cpu(), source.train_y.cpu())
    val_set = TensorDataset(source.val_x.cpu(), source.val_y.cpu())
    generator = torch.Generator().manual_seed(config.seed)
    train_loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=generator,
                              pin_memory=device.type == "cuda")
    val_loader = DataLoader(val_set, batch_size=EVAL_BATCH, pin_memory=device.type == "cuda")
    timer = Timer()
    precision = {None: "32-true", torch.bfloat16: "bf16-mixed", torch.float16: "16-mixed"}[amp]
    trainer = L.Trainer(max_epochs=epochs, accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                        precision=precision, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train_loader, val_loader)
    assert len(timer.train) == epochs, (len(timer.train), epochs)
    m = Measurement("f" if tuned else "c", epochs, len(train_set))
    m.train_seconds = timer.train[1:]
    m.loop_seconds = [b - a for a, b in pairwise(timer.ends)]
    m.eval_seconds = timer.evals[1:]
    return m


# ---------------------------------------------------------- d: worker process
def run_worker(prepared: Prepared, epochs: int) -> Measurement:
    from engine.training.worker import TrainingProcess

    process = TrainingProcess(prepared.project_text, None, overrides=with_epochs(prepared, epochs))
    process.start()
    kinds: dict[str, int] = {}
    ends: list[EpochEnd] = []
    train_samples = 0
    while process.running:
        for event in process.poll(0.05):  # consume every event, as the GUI's timer does
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
            if isinstance(event, EpochEnd):
                ends.append(event)
            elif isinstance(event, RunStarted):
                train_samples = event.train_samples
            failed = event if isinstance(event, Failed) else None
            if failed is not None:
                raise RuntimeError(f"variant d failed: {failed.message}\n{failed.details}")
    process.join(30)
    assert len(ends) == epochs, (len(ends), epochs)
    m = Measurement("d", epochs, train_samples, events=sum(kinds.values()), event_kinds=kinds)
    m.train_seconds = [e.seconds for e in ends[1:]]  # evaluation subtracted later (from a's figures)
    m.loop_seconds = [b.time - a.time for a, b in pairwise(ends)]
    return m


# ------------------------------------------------------------------ the runs
def measure(run: Callable[[], Measurement]) -> Measurement:
    gc.collect()
    monitor = ForeignLoadWithChildren()
    monitor.start()
    start = time.perf_counter()
    m = run()
    m.wall_seconds = time.perf_counter() - start
    m.foreign_load = monitor.stop()
    return m


def runner(variant: str, prepared: Prepared, L: Any) -> Callable[[int], Measurement]:
    if variant == "a":
        return lambda epochs: run_trainer(prepared, epochs)
    if variant == "b":
        return lambda epochs: run_hand(prepared, epochs)
    if variant == "c":
        return lambda epochs: run_lightning(prepared, epochs, L)
    if variant == "e":
        return lambda epochs: run_hand(prepared, epochs, tuned=True)
    if variant == "f":
        return lambda epochs: run_lightning(prepared, epochs, L, tuned=True)
    return lambda epochs: run_worker(prepared, epochs)


def bench_workload(workload: Workload, args: argparse.Namespace, device: torch.device, L: Any,
                   quiet: QuietBudget, deadline: float) -> dict[str, Any]:
    variants = [v for v in args.variants if v not in LIGHTNING_VARIANTS or L is not None]
    prepared = prepare(workload, device, args.precision, 2)
    runs = {v: runner(v, prepared, L) for v in variants}

    # warm-up (first-call costs: lazy imports, Lightning's first Trainer) and calibration on b
    for v in variants:
        if v != "d":
            runs[v](2)
    quiet.wait()
    probe = runs["b"](4)
    epoch_seconds = median(probe.loop_seconds)
    epochs = max(args.min_epochs, min(args.max_epochs, round(args.run_seconds / epoch_seconds) + 1))
    if args.epochs:
        epochs = args.epochs
    print(f"  {workload.key}: {prepared.batches.train_count} training samples, {prepared.batches.steps_per_epoch} "
          f"steps/epoch, ~{epoch_seconds * 1e3:.1f} ms/epoch (b) -> {epochs} epochs per run", flush=True)

    rounds: list[dict[str, Measurement]] = []
    discarded = 0
    attempt = 0
    while len(rounds) < args.rounds:
        order = variants[attempt % len(variants):] + variants[:attempt % len(variants)]
        if attempt % 2:
            order = order[::-1]
        attempt += 1
        quiet.wait()
        got = {v: measure(lambda v=v: runs[v](epochs)) for v in order}
        load = max(m.foreign_load for m in got.values())
        if load > args.max_foreign_load and time.perf_counter() < deadline and discarded < 2 * args.rounds:
            discarded += 1
            print(f"    round discarded: other processes used {load:.2f} cores", flush=True)
            continue
        if "d" in got and "a" in got:  # d's evaluation time: a's, same round (see the docstring)
            d, a = got["d"], got["a"]
            estimate = median(a.eval_seconds)
            d.eval_seconds = [estimate] * len(d.train_seconds)
            d.train_seconds = [s - estimate for s in d.train_seconds]
        rounds.append(got)
        print("    round " + str(len(rounds)) + ": " + ", ".join(
            f"{v} {got[v].train_rate:,.0f}/s" for v in variants) + f" (foreign load {load:.2f})", flush=True)

    result: dict[str, Any] = {
        "workload": workload.key, "title": workload.title, "batch_size": workload.batch_size,
        "train_samples": prepared.batches.train_count, "val_samples": len(prepared.batches.val_x),
        "steps_per_epoch": prepared.batches.steps_per_epoch, "epochs_per_run": epochs, "counted_epochs": epochs - 1,
        "max_abs_output_diff_hand_vs_compiled": prepared.max_abs_output_diff,
        "rounds": len(rounds), "rounds_discarded": discarded,
        "rounds_kept_with_foreign_load": sum(1 for r in rounds
                                             if max(m.foreign_load for m in r.values()) > args.max_foreign_load),
        "variants": {},
    }
    if "d" in variants and "a" not in variants:
        result["note"] = "d's train figure includes evaluation (a not run, no estimate to subtract)"
    for v in variants:
        ms = [r[v] for r in rounds]
        train = [m.train_rate for m in ms]
        loop = [m.loop_rate for m in ms]
        result["variants"][v] = {
            "name": VARIANT_NAMES[v],
            "train_samples_per_s": median(train), "train_quartiles": quartiles(train), "train_rates": train,
            "loop_samples_per_s": median(loop), "loop_quartiles": quartiles(loop), "loop_rates": loop,
            "eval_ms_per_epoch": median([median(m.eval_seconds) for m in ms]) * 1e3 if ms[0].eval_seconds else None,
            "train_ms_per_epoch": median([median(m.train_seconds) for m in ms]) * 1e3,
            "loop_ms_per_epoch": median([median(m.loop_seconds) for m in ms]) * 1e3,
            "run_wall_seconds": median([m.wall_seconds for m in ms]),
            "events_per_run": ms[0].events, "event_kinds": ms[0].event_kinds,
            "foreign_load": [m.foreign_load for m in ms],
        }
    ratios = {}
    for num, den, target in TARGETS:
        if num in variants and den in variants:
            paired = [r[num].train_rate / r[den].train_rate for r in rounds]
            paired_loop = [r[num].loop_rate / r[den].loop_rate for r in rounds]
            ratio = result["variants"][num]["train_samples_per_s"] / result["variants"][den]["train_samples_per_s"]
            loop_ratio = result["variants"][num]["loop_samples_per_s"] / result["variants"][den]["loop_samples_per_s"]
            ratios[f"{num}/{den}"] = {
                "target": target, "ratio": ratio, "paired_median": median(paired), "paired_min": min(paired),
                "paired_max": max(paired), "loop_ratio": loop_ratio, "loop_paired_median": median(paired_loop),
                "pass": None if target is None else ratio >= target}
    result["ratios"] = ratios
    result["_runs"] = runs
    return result


# ----------------------------------------------------------------- breakdown
def breakdown(prepared: Prepared, rounds: int, epochs: int) -> dict[str, Any]:
    """Where a's time goes beyond b's: per-epoch extras and a per-step ladder (--breakdown).

    Per epoch (median ms of 20 calls): ``task.evaluate`` on the validation set,
    ``task.snapshot`` (the prediction snapshot the Trainer takes after every epoch), its
    ``Event.to_json()`` (what the worker and the run folder serialize) and pickled size.

    Per step (us/step over ``epochs`` epochs, interleaved rounds, min and median), each rung
    adding one piece on top of the previous: b's loop with the hand-written module; the
    Trainer's speed settings (engine/training/performance.py) on it; the compiled graph
    module instead; ``task.train_step`` (task optimizer, autocast context,
    detached metrics dict); ``BatchSource.epoch`` batches; the Trainer's per-batch
    bookkeeping (mirrors ``Trainer._run``'s batch loop with its own ``MetricSums`` and ``BatchWindow``:
    command check, schedule, float(loss) NaN check on CPU, metric sums, window loss,
    batch-event clock); and the same
    with ``task.snapshot`` called (untimed) between epochs, which shows what the per-epoch
    snapshot costs the following steps (caches, allocator).
    """
    import math
    import pickle
    import statistics
    import timeit

    from engine.training.events import PredictionSnapshot
    from engine.training.optim import LearningRateSchedule
    from engine.training.tasks import make_task, resolve_task

    workload, config, device = prepared.workload, prepared.config, prepared.device
    project = workload.project
    dataset = load_dataset(project.dataset)
    data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize)
    torch.manual_seed(config.seed)
    task = make_task(resolve_task(config, project, dataset), project, data, config, device, prepared.amp_dtype)
    source = BatchSource(data, device, config.batch_size, config.seed)
    x, y = source.train_x, source.train_y
    val_x, val_y = source.validation()
    snap_x, snap_y = source.snapshot_data()
    steps, batch = source.steps_per_epoch, config.batch_size

    def per_call_ms(fn: Callable[[], Any], n: int = 20) -> float:
        fn()
        return statistics.median(timeit.repeat(fn, number=1, repeat=n)) * 1e3

    out: dict[str, Any] = {"per_epoch_ms": {}, "per_step_us": {}}
    snap = task.snapshot(snap_x, snap_y)
    out["per_epoch_ms"]["task.evaluate (validation set)"] = per_call_ms(lambda: task.evaluate(val_x, val_y))
    out["per_epoch_ms"]["task.snapshot (prediction snapshot)"] = per_call_ms(lambda: task.snapshot(snap_x, snap_y))
    if snap is not None:
        event = PredictionSnapshot(time.time(), 1, 1, snap[0], snap[1])
        out["per_epoch_ms"]["PredictionSnapshot.to_json()"] = per_call_ms(event.to_json)
        out["snapshot_pickled_bytes"] = len(pickle.dumps(event.to_json()))

    hand = make_hand_model(prepared, tuned=False).train()
    copy_weights(task.model, hand)  # type: ignore[attr-defined]
    hand_optimizer = make_adam(hand, prepared, tuned=False)
    tuned = make_hand_model(prepared, tuned=True).train()
    copy_weights(task.model, tuned)  # type: ignore[attr-defined]
    tuned_optimizer = make_adam(tuned, prepared, tuned=True)
    compiled = task.model  # type: ignore[attr-defined]
    compiled_optimizer = make_adam(compiled, prepared, tuned=True)
    generator = torch.Generator().manual_seed(config.seed)
    schedule = LearningRateSchedule(list(task.optimizers.values()), config, steps, 10_000)
    control_trainer = Trainer(TrainOptions(project), lambda event: None)

    def plain(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[], None]:
        def epoch() -> None:
            permutation = torch.randperm(len(x), generator=generator).to(device)
            for index in range(steps):
                rows = permutation[index * batch:(index + 1) * batch]
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(x[rows]), y[rows]).backward()
                optimizer.step()
        return epoch

    def train_step() -> None:
        permutation = torch.randperm(len(x), generator=generator).to(device)
        for index in range(steps):
            rows = permutation[index * batch:(index + 1) * batch]
            task.train_step(x[rows], y[rows])

    def batch_source() -> None:
        for _, (xb, yb) in source.epoch(0):
            task.train_step(xb, yb)

    def bookkeeping() -> None:  # Trainer._run's per-batch code, with its own MetricSums and BatchWindow
        sums, window, control = MetricSums(device, {}), BatchWindow(device), control_trainer.control
        for index, (xb, yb) in source.epoch(0):
            now = time.perf_counter()
            if control.pending() and control_trainer._handle_commands(schedule):
                return
            if schedule.per_step:
                schedule.apply(index)
            metrics = task.train_step(xb, yb)
            count = len(xb)
            loss = sums.add(metrics, count)
            if loss is not None and not math.isfinite(loss):
                raise RuntimeError("non-finite loss")
            window.add(metrics["loss"] if loss is None else loss, count)
            if now - window.start >= BATCH_EVENT_SECONDS:
                window.flush(now)

    ladder: list[tuple[str, Callable[[], None], Callable[[], None] | None]] = [
        ("b: hand-written nn.Sequential", plain(hand, hand_optimizer), None),
        ("+ speed settings (channels-last, fused Adam)", plain(tuned, tuned_optimizer), None),
        ("+ compiled graph module", plain(compiled, compiled_optimizer), None),
        ("+ task.train_step", train_step, None),
        ("+ BatchSource.epoch batches", batch_source, None),
        ("+ Trainer per-batch bookkeeping", bookkeeping, None),
        ("+ task.snapshot between epochs (untimed)", bookkeeping, lambda: task.snapshot(snap_x, snap_y)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in ladder}
    for fn in ladder:
        fn[1]()
    for r in range(rounds):
        for name, epoch, between in (ladder if r % 2 == 0 else ladder[::-1]):
            gc.collect()
            total = 0.0
            for _ in range(epochs):
                if between is not None:
                    between()
                _sync(device)
                start = time.perf_counter()
                epoch()
                _sync(device)
                total += time.perf_counter() - start
            times[name].append(total / (epochs * steps) * 1e6)
    base = min(times[ladder[0][0]])
    previous = base
    for name, values in times.items():
        low = min(values)
        out["per_step_us"][name] = {"min": low, "median": statistics.median(values), "added_min": low - previous,
                                    "ratio_b_over_this_min": base / low}
        previous = low
    return out


def format_breakdown(key: str, b: dict[str, Any]) -> str:
    lines = [f"{key}: per epoch"]
    for name, ms in b["per_epoch_ms"].items():
        lines.append(f"  {name:44s} {ms:8.3f} ms")
    if "snapshot_pickled_bytes" in b:
        lines.append(f"  {'snapshot event, pickled':44s} {b['snapshot_pickled_bytes']:8,d} bytes")
    lines.append(f"{key}: per training step (min over rounds; median; added by this rung; b/this)")
    for name, s in b["per_step_us"].items():
        lines.append(f"  {name:44s} {s['min']:8.1f} us  {s['median']:8.1f} us  {s['added_min']:+7.1f} us  "
                     f"{s['ratio_b_over_this_min']:.3f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ profiles
def profile_run(run: Callable[[int], Any], epochs: int, lines: int) -> str:
    """cProfile one run of ``epochs`` epochs; the top functions by own time and by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run(epochs)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                        help="fp32 (default); bf16 autocast (CUDA or CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads, also for the worker (default: torch's)")
    parser.add_argument("--workloads", default="cnn_digits,mlp_moons", help="subset of cnn_digits,mlp_moons")
    parser.add_argument("--variants", default="abcdef", help="subset of abcdef (b is always run: it calibrates)")
    parser.add_argument("--mlp-batch", type=int, default=64, help="batch size of the MLP workload (default 64)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per workload (default 5, quick 3)")
    parser.add_argument("--run-seconds", type=float,
                        help="length of one run of b, which sets the epochs per run (default 1.0, quick 0.4)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: from --run-seconds)")
    parser.add_argument("--min-epochs", type=int, default=4)
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--max-foreign-load", type=float, default=0.25,
                        help="re-run a round when other processes used more CPU cores than this (default 0.25)")
    parser.add_argument("--max-wait", type=float, default=60.0,
                        help="total seconds to wait for other processes to go quiet (default 60)")
    parser.add_argument("--time-budget", type=float,
                        help="no more re-runs of noisy rounds after this many seconds (default 150, quick 60)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one run of a and b per workload")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time a's extras piece by piece (per-epoch costs, per-step ladder)")
    parser.add_argument("--breakdown-rounds", type=int, help="interleaved rounds of --breakdown (default 15, quick 9)")
    parser.add_argument("--json", help="result file (default bench/results/train_throughput.json)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.run_seconds = args.run_seconds or (0.4 if args.quick else 1.0)
    args.time_budget = args.time_budget or (60.0 if args.quick else 150.0)
    args.variants = "".join(sorted(set(args.variants) | {"b"}))
    if set(args.variants) - set(VARIANTS):
        parser.error(f"--variants: expected letters of {''.join(VARIANTS)}")

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the spawned worker's torch reads it at import
    L = lightning_module() if set(LIGHTNING_VARIANTS) & set(args.variants) else None

    info = machine_info(with_torch=True)
    info["device"] = str(device)
    info["precision"] = args.precision
    info["lightning"] = getattr(L, "__version__", None)
    print(f"# train_throughput: {describe_machine(info)}; device {device}, {args.precision}")
    if set(LIGHTNING_VARIANTS) & set(args.variants) and L is None:
        print("# c and f (Lightning) skipped: `import lightning` failed (pip install lightning to include it)")
    print(f"# {args.rounds} interleaved rounds per workload; train samples/s exclude evaluation, "
          "loop samples/s include it; first epoch of every run not counted")

    started = time.perf_counter()
    deadline = started + args.time_budget
    quiet = QuietBudget(args.max_foreign_load, args.max_wait)
    makers = {"cnn_digits": cnn_digits, "mlp_moons": lambda: mlp_moons(args.mlp_batch)}
    results = []
    profiles: dict[str, str] = {}
    for key in [k.strip() for k in args.workloads.split(",")]:
        result = bench_workload(makers[key](), args, device, L, quiet, deadline)
        runs = result.pop("_runs")
        if args.profile:
            for v in ("a", "b"):
                if v in runs:
                    profiles[f"{key} {v}"] = profile_run(runs[v], result["epochs_per_run"], 30)
        if args.breakdown:
            prepared = prepare(makers[key](), device, args.precision, 2)
            epochs = max(2, min(20, result["epochs_per_run"] // 4))
            result["breakdown"] = breakdown(prepared, args.breakdown_rounds or (9 if args.quick else 15), epochs)
            print(format_breakdown(key, result["breakdown"]), flush=True)
        results.append(result)
    total = time.perf_counter() - started

    rows = []
    for r in results:
        for v, s in r["variants"].items():
            lo, hi = s["train_quartiles"]
            vs = (f"{s['train_samples_per_s'] / r['variants']['a']['train_samples_per_s']:.3f}"
                  if "a" in r["variants"] else "-")
            rows.append((r["workload"], s["name"], f"{s['train_samples_per_s']:,.0f}", f"{lo:,.0f}-{hi:,.0f}",
                         f"{s['loop_samples_per_s']:,.0f}", vs, f"{s['train_ms_per_epoch']:.1f}",
                         f"{s['eval_ms_per_epoch']:.1f}" if s["eval_ms_per_epoch"] is not None else "-",
                         f"{s['loop_ms_per_epoch']:.1f}", s["events_per_run"] or "-",
                         f"{max(s['foreign_load']):.2f}"))
    print()
    print(format_table(("workload", "variant", "train samples/s", "IQR", "loop samples/s", "train vs a",
                        "train ms/epoch", "eval ms/epoch", "loop ms/epoch", "events/run", "max foreign CPU"), rows))
    target_rows = []
    for r in results:
        for name, q in r["ratios"].items():
            target_rows.append((r["workload"], name, f"{q['ratio']:.3f}",
                                f"{q['paired_median']:.3f} [{q['paired_min']:.3f}, {q['paired_max']:.3f}]",
                                "info" if q["target"] is None else f">= {q['target']:g}",
                                {None: "-", True: "PASS", False: "MISS"}[q["pass"]], f"{q['loop_ratio']:.3f}"))
    print()
    print(format_table(("workload", "ratio (train samples/s)", "value", "paired per round median [min, max]",
                        "target", "result", "loop ratio (info)"), target_rows))
    noisy = [r["workload"] for r in results if r["rounds_kept_with_foreign_load"]]
    if noisy or quiet.left <= 0:
        print(f"\nWARNING: other processes used more than {args.max_foreign_load:g} cores during kept rounds of: "
              f"{', '.join(noisy) or '-'}; the figures are noisier (waited {quiet.waited:.0f} s for a quiet CPU)")
    if set(LIGHTNING_VARIANTS) & set(args.variants) and L is None:
        print("\nc and f (Lightning) were skipped: lightning is not installed")
    for key, text in profiles.items():
        print(f"\n===== profile: {key}\n{text}")
    print(f"\ntotal {total:.0f} s")
    path = write_results("train_throughput", {
        "benchmark": "train_throughput",
        "command": " ".join(["python", "bench/train_throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "total_seconds": total,
        "seconds_waited_for_quiet_cpu": quiet.waited,
        "results": results,
        "profiles": profiles,
    }, args.json)
    print(f"wrote {path}")
    return 0 if all(q["pass"] is not False for r in results for q in r["ratios"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
