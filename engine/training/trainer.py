"""The training loop shared by the CLI, the GUI's worker process and distributed runs.

The loop owns epochs, batching, commands, events, checkpoints and failures; the task owns
models, loss and metrics. Small datasets live on the device as tensors and are batched by
indexing with a seeded permutation, which costs what a hand-written loop costs.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from engine.compile import GraphInvalidError
from engine.data import load_dataset, prepare_data
from engine.data.base import DataError
from engine.errors import UserError
from engine.graph.project import Project
from engine.training import checkpoint as ckpt
from engine.training.batches import BatchSource
from engine.training.config import training_config
from engine.training.control import Control
from engine.training.devices import autocast_dtype, device_name, select_device
from engine.training.events import (BatchMetrics, EpochEnd, Event, Failed, Finished, LearningRateChanged,
                                    PredictionSnapshot, RunStarted, StateChanged)
from engine.training.optim import LearningRateSchedule
from engine.training.performance import match_state_layout
from engine.training.run_dir import RunDirectory
from engine.training.tasks import Task, make_task, resolve_task
from engine.training.tasks.base import unwrap as _unwrap

BATCH_EVENT_SECONDS = 0.2
LOWER_IS_BETTER = ("loss", "mae", "perplexity", "d_loss", "g_loss")


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite."""


@dataclass
class DistributedInfo:
    """This process's place in a distributed run."""

    rank: int
    world_size: int
    local_rank: int


@dataclass
class TrainOptions:
    """What to train and where to write it.

    Args:
        project: The frozen project.
        run_dir: The run folder (``None``: write nothing, e.g. benchmarks).
        base_dir: Folder that relative dataset paths resolve against.
        overrides: Settings from the command line (``epochs``, ``device``, ``seed``...).
        resume: Continue from ``run_dir``'s checkpoint.
        distributed: Rank information under torchrun.
        weights_file: The project's own weights (``name.safetensors`` beside ``name.json``), which a
            new run starts from when the ``use_project_weights`` setting is on.
    """

    project: Project
    run_dir: Path | None = None
    base_dir: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    distributed: DistributedInfo | None = None
    weights_file: Path | None = None


class Trainer:
    """Runs one training run and reports it as events.

    Args:
        options: What to train.
        emit: Receives every event (the worker forwards them to the GUI; the CLI draws a bar).
        control: Source of pause / resume / stop / set-lr commands.
    """

    def __init__(self, options: TrainOptions, emit: Callable[[Event], None], control: Control | None = None) -> None:
        self.options = options
        self._emit_to = emit
        self.control = control or Control()
        self.rank0 = options.distributed is None or options.distributed.rank == 0
        self.run_dir: RunDirectory | None = None
        self.global_step = 0
        self.epoch = 0
        self.batch_size = 0
        self.task: Task | None = None

    # ------------------------------------------------------------------ events
    def emit(self, event: Event) -> None:
        """Send an event to the listener and the run folder (rank 0 only)."""
        if not self.rank0:
            return
        if self.run_dir is not None:
            self.run_dir.record(event)
        self._emit_to(event)

    def run(self) -> Event:
        """Train; returns (and emits) the closing :class:`Finished` or :class:`Failed` event."""
        try:
            result: Event = self._run()
        except NonFiniteLoss as exc:
            result = Failed(time.time(), "nan", str(exc))
        except torch.OutOfMemoryError:
            result = Failed(time.time(), "out_of_memory", self._oom_message())
        except DataError as exc:
            result = Failed(time.time(), "data", str(exc))
        except GraphInvalidError as exc:
            result = Failed(time.time(), "graph", "the graph is invalid: " + "; ".join(exc.lines))
        except UserError as exc:
            result = Failed(time.time(), "config", str(exc))
        except Exception as exc:  # noqa: BLE001 - any failure ends the run with a message, not a crash
            result = Failed(time.time(), "error", f"training stopped by an internal error: {type(exc).__name__}: "
                            f"{exc}", traceback.format_exc())
        if isinstance(result, Failed):
            self.emit(result)
            self._write_run_info("failed", {}, result.message)
        if self.run_dir is not None:
            self.run_dir.close()
        return result

    # --------------------------------------------------------------- the loop
    def _run(self) -> Event:
        options = self.options
        project = options.project
        config = training_config(project.training, options.overrides)
        self.config = config
        _seed_everything(config.seed, config.deterministic)
        dataset = load_dataset(project.dataset, options.base_dir)
        data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize)
        task_name = resolve_task(config, project, dataset)
        device = select_device(config.device if options.distributed is None or config.device != "auto"
                               else _distributed_device(options.distributed))
        if options.distributed is not None and device.type == "cuda":
            device = torch.device("cuda", options.distributed.local_rank)
        torch.manual_seed(config.seed)  # weights do not depend on how much randomness loading used
        task = make_task(task_name, project, data, config, device, autocast_dtype(device, config.precision))
        self.task = task
        initial_weights = ""
        if options.weights_file is not None and config.use_project_weights and not options.resume:
            initial_weights = _start_from(task, options.weights_file)
        if options.distributed is not None:
            _wrap_distributed(task, device)
        world = options.distributed.world_size if options.distributed else 1
        rank = options.distributed.rank if options.distributed else 0
        batches = BatchSource(data, device, config.batch_size, config.seed, rank, world, config.num_workers)
        self.batch_size = config.batch_size
        schedule = LearningRateSchedule(list(task.optimizers.values()), config, batches.steps_per_epoch,
                                        config.epochs)
        if options.run_dir is not None and self.rank0:
            self.run_dir = RunDirectory(options.run_dir)
        start_epoch, start_batch, epoch_sums, history, best = 0, 0, {}, [], None
        if options.resume:
            assert options.run_dir is not None
            state = ckpt.load_checkpoint(Path(options.run_dir) / "checkpoint.pt")
            start_epoch, start_batch, epoch_sums, history, best = self._restore(state, task, schedule, batches)
        elif self.run_dir is not None:
            self.run_dir.write_project(project)
        self.schedule, self.batches, self.history, self.best = schedule, batches, history, best
        self.device = device
        self.task_name = task_name
        parameters = sum(p.numel() for m in task.modules.values() for p in m.parameters() if p.requires_grad)
        self.emit(RunStarted(time.time(), str(options.run_dir or ""), str(device), device_name(device), task_name,
                             config.epochs, batches.steps_per_epoch, parameters, batches.train_count,
                             len(data.val_x), start_epoch, dict(config), initial_weights))
        self._write_run_info("running", {})
        val_x, val_y = batches.validation()
        snap_x, snap_y = batches.snapshot_data()
        last_snapshot = 0.0
        window = _Window(device)
        snapshot_every, steps = config.snapshot_seconds, batches.steps_per_epoch  # plain locals in the hot loop
        for epoch in range(start_epoch, config.epochs):
            self.epoch = epoch
            started = time.perf_counter()
            sums = _Sums(device, epoch_sums)
            for index, (x, y) in batches.epoch(epoch, start_batch):
                now = time.perf_counter()
                if self.control.pending() and self._handle_commands(schedule):
                    return self._finish("stopped", epoch, index, sums.totals(), sums.seen)
                if schedule.per_step:
                    schedule.apply(self.global_step)
                metrics = task.train_step(x, y)
                count = len(x)
                loss = sums.add(metrics, count)
                if loss is not None and not math.isfinite(loss):
                    raise NonFiniteLoss(self._nan_message(self.global_step, self.global_step))
                window.add(metrics["loss"] if loss is None else loss, count)
                self.global_step += 1
                if now - window.start >= BATCH_EVENT_SECONDS:
                    mean, rate = window.flush(now)
                    if not math.isfinite(mean):
                        raise NonFiniteLoss(self._nan_message(self.global_step - window.count, self.global_step))
                    self.emit(BatchMetrics(time.time(), epoch, index + 1, self.global_step, {"loss": mean},
                                           schedule.current, rate))
                if now - last_snapshot >= snapshot_every and index + 1 < steps:
                    self._snapshot(task, epoch, snap_x, snap_y)
                    last_snapshot = time.perf_counter()
            if window.count:  # at least one batch point per epoch, however fast the epochs are
                mean, rate = window.flush(time.perf_counter())
                if math.isfinite(mean):
                    self.emit(BatchMetrics(time.time(), epoch, steps, self.global_step, {"loss": mean},
                                           schedule.current, rate))
            seen = sums.seen
            start_batch, epoch_sums = 0, {}
            train = self._train_metrics(sums.totals(), seen)
            if not all(math.isfinite(v) for v in train.values()):
                raise NonFiniteLoss(self._nan_message(self.global_step - batches.steps_per_epoch, self.global_step))
            with torch.random.fork_rng(devices=_rng_devices(device)):
                val = task.evaluate(val_x, val_y)
            seconds = time.perf_counter() - started
            self.emit(EpochEnd(time.time(), epoch + 1, self.global_step, train, val, schedule.current, seconds,
                               seen / seconds if seconds > 0 else 0.0))
            history.append({"epoch": epoch + 1, "train": train, "val": val})
            metric_name, value, lower = self._watched(val)
            schedule.epoch_end(value, lower, self.global_step)
            improved = best is None or (value < best["value"] if lower else value > best["value"])
            if improved:
                best = {"metric": metric_name, "value": value, "epoch": epoch + 1}
            self.best = best
            self._save_checkpoint(epoch + 1, 0, {}, None)
            last_epoch = epoch + 1 == config.epochs
            if last_epoch or time.perf_counter() - last_snapshot >= config.snapshot_seconds:
                self._snapshot(task, epoch + 1, snap_x, snap_y)
                last_snapshot = time.perf_counter()
            patience = config.early_stopping_patience
            if patience and best is not None and epoch + 1 - best["epoch"] >= patience:
                return self._finish("early_stopped", epoch + 1, 0, None, 0)
        return self._finish("completed", config.epochs, 0, None, 0)

    # -------------------------------------------------------------- commands
    def _handle_commands(self, schedule: LearningRateSchedule) -> bool:
        """Apply waiting commands; blocks while paused. Returns True when asked to stop."""
        commands = self.control.poll()
        paused = False
        while commands or paused:
            if not commands:
                command = self.control.wait()
                commands = [command] if command else []
                continue
            name, value = commands.pop(0)
            if name == "stop":
                self.emit(StateChanged(time.time(), "stopping", self.global_step))
                return True
            if name == "pause" and not paused:
                paused = True
                self.emit(StateChanged(time.time(), "paused", self.global_step))
            elif name == "resume" and paused:
                paused = False
                self.emit(StateChanged(time.time(), "running", self.global_step))
            elif name == "set_lr":
                old = schedule.current
                schedule.set_learning_rate(float(value), self.global_step)
                self.emit(LearningRateChanged(time.time(), self.global_step, self.epoch, old, schedule.current))
        return False

    # --------------------------------------------------------------- helpers
    def _train_metrics(self, sums: dict[str, float], seen: int) -> dict[str, float]:
        values = dict(sums)
        if self.options.distributed is not None:
            values, seen = _all_reduce(values, seen, self.device)
        return {key: value / max(seen, 1) for key, value in values.items()}

    def _watched(self, val: dict[str, float]) -> tuple[str, float, bool]:
        name = self.config.early_stopping_metric.removeprefix("val_")
        if name not in val:
            name = "loss"
        return f"val_{name}", val[name], name in LOWER_IS_BETTER

    def _snapshot(self, task: Task, epoch: int, val_x: torch.Tensor, val_y: torch.Tensor | None) -> None:
        if not self.rank0:
            return
        with torch.random.fork_rng(devices=_rng_devices(self.device)):
            result = task.snapshot(val_x, val_y)
        if result is not None:
            self.emit(PredictionSnapshot(time.time(), epoch, self.global_step, result[0], result[1]))

    def _save_checkpoint(self, epoch: int, batch: int, sums: dict[str, float], permutation: torch.Tensor | None) -> None:
        if self.run_dir is None or not self.rank0:
            return
        task = self.task
        assert task is not None
        state = {
            "epoch": epoch, "batch": batch, "global_step": self.global_step, "epoch_sums": sums,
            "permutation": permutation,
            "models": {name: _unwrap(m).state_dict() for name, m in task.modules.items()},
            "optimizers": {name: o.state_dict() for name, o in task.optimizers.items()},
            "schedule": self.schedule.state_dict(),
            "scaler": task.scaler.state_dict() if task.scaler is not None else {},
            "rng": ckpt.rng_state(self.batches.generator),
            "history": self.history, "best": self.best,
        }
        ckpt.save_checkpoint(self.run_dir.checkpoint_path, state)
        from engine.training.events import CheckpointWritten

        self.emit(CheckpointWritten(time.time(), epoch, self.global_step, str(self.run_dir.checkpoint_path)))

    def _restore(self, state: dict[str, Any], task: Task, schedule: LearningRateSchedule,
                 batches: BatchSource) -> tuple[int, int, dict[str, float], list[Any], Any]:
        for name, module in task.modules.items():
            _unwrap(module).load_state_dict(state["models"][name])
        for name, optimizer in task.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
            match_state_layout(optimizer)
        if task.scaler is not None and state["scaler"]:
            task.scaler.load_state_dict(state["scaler"])
        self.global_step = int(state["global_step"])
        schedule.load_state_dict(state["schedule"], self.global_step)
        ckpt.restore_rng_state(state["rng"], batches.generator)
        if state["permutation"] is not None:
            batches.resume_permutation(state["permutation"])
        return (int(state["epoch"]), int(state["batch"]), dict(state["epoch_sums"]), list(state["history"]),
                state["best"])

    def _finish(self, reason: str, epoch: int, batch: int, sums: dict[str, float] | None, seen: int) -> Event:
        if reason == "stopped" and sums is not None:
            partial = dict(sums)
            partial["_count"] = seen
            self._save_checkpoint(epoch, batch, partial, self.batches.current_permutation)
        final = self.history[-1] if self.history else {"train": {}, "val": {}}
        metrics = {**{f"train_{k}": v for k, v in final["train"].items()},
                   **{f"val_{k}": v for k, v in final["val"].items()}}
        if self.run_dir is not None and self.task is not None:
            _save_weights(self.task, self.run_dir.weights_path)
        self._write_run_info(reason, metrics)
        event = Finished(time.time(), reason, len(self.history), self.global_step, metrics,
                         str(self.options.run_dir or ""))
        self.emit(event)
        return event

    def _write_run_info(self, status: str, metrics: dict[str, float], message: str = "") -> None:
        if self.run_dir is None:
            return
        config = getattr(self, "config", {})
        self.run_dir.write_run({
            "status": status, "message": message, "task": getattr(self, "task_name", ""),
            "device": str(getattr(self, "device", "")),
            "device_name": device_name(self.device) if hasattr(self, "device") else "",
            "config": dict(config), "epochs_completed": len(getattr(self, "history", [])),
            "global_step": self.global_step, "final_metrics": metrics, "best": getattr(self, "best", None),
            "world_size": self.options.distributed.world_size if self.options.distributed else 1,
            "base_dir": str(self.options.base_dir.resolve()) if self.options.base_dir else None,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })

    def _nan_message(self, first: int, last: int) -> str:
        where = f"at step {last}" if last - first <= 1 else f"between steps {first + 1} and {last}"
        lr = self.schedule.current if hasattr(self, "schedule") else self.config.lr
        return (f"the loss became NaN or infinite {where} (epoch {self.epoch + 1}, learning rate {lr:.3g}): "
                f"lower the learning rate (e.g. {lr / 10:.3g}) or enable gradient clipping")

    def _oom_message(self) -> str:
        tried = self.batch_size
        fits = _probe_batch_size(self.task, self.batches, tried) if self.task is not None else None
        where = device_name(self.device) if hasattr(self, "device") else "the device"
        advice = f"use batch size {fits}" if fits else "use a smaller batch size or a smaller model"
        return f"out of memory on {where} with batch size {tried}: {advice}"


class _Sums:
    """Per-epoch sums of batch metrics (weighted by batch size).

    On CPU each value is read as a Python float (reading is free there, and a NaN loss is
    caught at its step); elsewhere the sums stay on the device so no batch waits for the GPU.
    """

    def __init__(self, device: torch.device, resumed: dict[str, float]) -> None:
        self.on_cpu = device.type == "cpu"
        self.values: dict[str, Any] = {k: v for k, v in resumed.items() if k != "_count"}
        self.seen = int(resumed.get("_count", 0))

    def add(self, metrics: dict[str, torch.Tensor], count: int) -> float | None:
        """Add one batch; returns its loss as a float on CPU, else ``None``."""
        self.seen += count
        values = self.values
        if self.on_cpu:
            loss = 0.0
            for key, tensor in metrics.items():
                value = float(tensor)
                values[key] = values.get(key, 0.0) + value * count
                if key == "loss":
                    loss = value
            return loss
        for key, tensor in metrics.items():
            values[key] = values[key] + tensor * count if key in values else tensor * count
        return None

    def totals(self) -> dict[str, float]:
        """The sums as floats."""
        return {key: float(value) for key, value in self.values.items()}


class _Window:
    """Loss and throughput since the last BatchMetrics event (spans epochs)."""

    def __init__(self, device: torch.device) -> None:
        self.zero: Any = 0.0 if device.type == "cpu" else torch.zeros((), device=device)
        self.loss, self.count, self.samples, self.start = self.zero, 0, 0, time.perf_counter()

    def add(self, loss: Any, samples: int) -> None:
        """Add one batch's loss (float or device tensor)."""
        self.loss = self.loss + loss
        self.count += 1
        self.samples += samples

    def flush(self, now: float) -> tuple[float, float]:
        """Mean loss and samples/s of the window; starts a new one."""
        mean = float(self.loss) / max(self.count, 1)
        rate = self.samples / (now - self.start) if now > self.start else 0.0
        self.loss, self.count, self.samples, self.start = self.zero, 0, 0, now
        return mean, rate


# ------------------------------------------------------------------ utilities
def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _distributed_device(info: DistributedInfo) -> str:
    return f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu"


def _wrap_distributed(task: Task, device: torch.device) -> None:
    from torch.nn.parallel import DistributedDataParallel

    for name, module in list(task.modules.items()):
        wrapped = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
        task.modules[name] = wrapped
        setattr(task, name, wrapped)


def _all_reduce(values: dict[str, float], seen: int, device: torch.device) -> tuple[dict[str, float], int]:
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys] + [float(seen)], dtype=torch.float64,
                          device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return {k: float(v) for k, v in zip(keys, tensor[:-1])}, int(tensor[-1])


def _start_from(task: Task, weights_file: Path) -> str:
    """Load the matching tensors of ``weights_file`` into every model of ``task``; a line saying what was used."""
    from engine.compile.weights import PartialLoad, load_matching, load_weights

    weights = load_weights(weights_file)
    loaded: list[str] = []
    fresh: list[str] = []
    for module in task.modules.values():
        part = load_matching(_unwrap(module), weights)
        loaded += part.loaded
        fresh += part.fresh
    return PartialLoad(loaded, fresh).summary(weights_file.name)


def _save_weights(task: Task, path: Path) -> None:
    from safetensors.torch import save_file

    state = {key: value.detach().cpu().contiguous() for key, value in task.weights().items()}
    save_file(state, str(path))


def _probe_batch_size(task: Task, batches: BatchSource, tried: int) -> int | None:
    """The largest halving of ``tried`` whose training step fits in memory."""
    size = tried // 2
    while size >= 1:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:
            x, y = batches.sample_batch(size)
            task.train_step(x, y)
            return size
        except torch.OutOfMemoryError:
            size //= 2
    return None
