"""The training loop shared by the CLI, the GUI's worker process and distributed runs.

The loop owns epochs, batching, commands, events, checkpoints and failures; the task owns
models, loss and metrics. Small datasets live on the device as tensors and are batched by
indexing with a seeded permutation, which costs what a hand-written loop costs.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from engine.compile import GraphInvalidError
from engine.data import load_dataset, prepare_data
from engine.data.base import DataError
from engine.errors import UserError
from engine.graph.flat_project import flat_project
from engine.graph.project import Project
from engine.layers.base import Params
from engine.training import checkpoint as ckpt
from engine.training.augment import read_augment, run_augmenter
from engine.training.gradient_health import GradientProbe, gradient_warnings
from engine.training.batches import BatchSource
from engine.settings import training_config
from engine.training.control import Control
from engine.training.devices import autocast_dtype, device_name, select_device
from engine.training.events import (BatchMetrics, CheckpointWritten, EpochEnd, Event, Failed, Finished, GradientHealth,
                                    LearningRateChanged, PredictionSnapshot, RunStarted, StateChanged)
from engine.training.optim import LearningRateSchedule
from engine.training.out_of_memory import (ModelTooLarge, is_cpu_out_of_memory, out_of_memory_message,
                                           refuse_impossible_model)
from engine.training.performance import match_state_layout
from engine.training.run_dir import RunDirectory, read_run_info
from engine.training.preprocessing_file import PREPROCESSING_FILE, write_preprocessing
from engine.training.split_file import SPLIT_FILE, split_summary, write_split
from engine.training.tasks import Task, make_task, resolve_task
from engine.training.distributed import all_reduce_sums, rank_device, wrap_models
from engine.training.loop_accounting import EpochClock, MetricSums, rng_devices, seed_everything
from engine.training.run_options import VIEWER_READY_S, RunState, TrainOptions
from engine.training.tasks.base import unwrap as _unwrap
from engine.training.threads import ThreadGovernor

BATCH_EVENT_SECONDS = 0.2
LOWER_IS_BETTER = ("loss", "mae", "perplexity", "d_loss", "g_loss")


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite."""


class Trainer:
    """Runs one training run and reports it as events.

    :meth:`run` sets the run up (:meth:`_setup`, which returns the :class:`RunState`), then
    trains epoch by epoch (:meth:`_train_epoch`, :meth:`_end_epoch`). Every attribute exists
    from construction on, so failure reporting never asks what setup got as far as.

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
        self.state: RunState | None = None
        self.global_step = 0
        self.epoch = 0
        self.batch_size = 0
        #: The settings run.json reports: those of the newest checkpoint, so a resume that
        #: failed before checkpointing leaves the next plain ``--resume`` as it was.
        self.recorded_config: dict[str, Any] = {}
        #: The epoch of the newest checkpoint (0: none yet).
        self.checkpoint_epoch = 0
        #: Why the run is stopping when it was not asked by a stop command ("" otherwise).
        self.stop_note = ""
        #: The CPU thread governor of the epochs now training (``None`` before and after).
        self.threads: ThreadGovernor | None = None
        #: The project the model is built from: ``options.project`` with its blocks flattened.
        self.model_project: Project = options.project
        #: run.json's ``split`` object (part sizes), once the data is split.
        self.split_info: dict[str, Any] | None = None

    @property
    def task(self) -> Task | None:
        """The run's task, once set up."""
        return self.state.task if self.state is not None else None

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
            self.state = self._setup()
            result: Event = self._train(self.state)
        except NonFiniteLoss as exc:
            result = Failed(time.time(), "nan", str(exc))
        except torch.OutOfMemoryError as exc:
            result = Failed(time.time(), "out_of_memory", self._oom_message(exc))
        except ModelTooLarge as exc:
            result = Failed(time.time(), "out_of_memory", str(exc))
        except DataError as exc:
            result = Failed(time.time(), "data", str(exc))
        except GraphInvalidError as exc:
            result = Failed(time.time(), "graph", "the graph is invalid: " + "; ".join(exc.lines))
        except UserError as exc:
            result = Failed(time.time(), "config", str(exc))
        except RuntimeError as exc:
            if not is_cpu_out_of_memory(exc):
                result = _internal_failure(exc)
            else:
                result = Failed(time.time(), "out_of_memory", self._oom_message(exc))
        except Exception as exc:  # noqa: BLE001 - any failure ends the run with a message, not a crash
            result = _internal_failure(exc)
        if isinstance(result, Failed):
            self.emit(result)
            self._write_run_info("failed", {}, result.message)
        if self.run_dir is not None:
            self.run_dir.close()
        return result

    # ------------------------------------------------------------------ setup
    def _open_run_dir(self) -> dict[str, Any] | None:
        """Lock the run folder (rank 0) and, for a resume, read its checkpoint; both before any real work."""
        options = self.options
        if options.run_dir is not None and self.rank0:
            self.run_dir = RunDirectory(options.run_dir, resume=options.resume)
        if not options.resume:
            return None
        assert options.run_dir is not None
        state = ckpt.load_checkpoint(Path(options.run_dir) / "checkpoint.pt")
        previous = read_run_info(Path(options.run_dir))
        self.recorded_config = dict(state.get("config") or previous.get("config") or {})
        self.checkpoint_epoch = int(state["epoch"])
        return state

    def _setup(self) -> RunState:
        """Everything before the first step: folder, settings, data, device, task, schedule."""
        options = self.options
        project = self.model_project = flat_project(options.project)  # blocks train as their layers
        checkpoint = self._open_run_dir()
        config = training_config(project.training, options.overrides)
        if not options.resume:
            self.recorded_config = dict(config)
        seed_everything(config.seed, config.deterministic)
        dataset = load_dataset(project.dataset, options.base_dir)
        read_augment(project.dataset)  # a bad option stops the run before the split and the model
        split = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize,
                             config.test_fraction)
        self.split_info = split_summary(split)
        data = split.without_test()  # the test part is for evaluation alone
        task_name = resolve_task(config, project, dataset)
        device = select_device(config.device if options.distributed is None or config.device != "auto"
                               else rank_device(options.distributed))
        if options.distributed is not None and device.type == "cuda":
            device = torch.device("cuda", options.distributed.local_rank)
        self.batch_size = config.batch_size
        refuse_impossible_model(project, device)
        torch.manual_seed(config.seed)  # weights do not depend on how much randomness loading used
        task = make_task(task_name, project, data, config, device, autocast_dtype(device, config.precision))
        initial_weights = ""
        if options.weights_file is not None and config.use_project_weights and not options.resume:
            initial_weights = _start_from(task, options.weights_file)
        if options.distributed is not None:
            wrap_models(task, device)
        world = options.distributed.world_size if options.distributed else 1
        rank = options.distributed.rank if options.distributed else 0
        batches = BatchSource(data, device, config.batch_size, config.seed, rank, world, config.num_workers)
        schedule = LearningRateSchedule(list(task.optimizers.values()), config, batches.steps_per_epoch,
                                        config.epochs)
        augmenter = run_augmenter(project.dataset, data, task_name, getattr(task, "loss_name", ""), device,
                                  config.seed, rank)
        state = RunState(config, device, task_name, task, batches, schedule, batches.validation(),
                         batches.snapshot_data(), len(data.val_x), initial_weights=initial_weights,
                         augmenter=augmenter)
        if config.gradient_every and self.rank0:
            state.probe = GradientProbe(task.modules.values(), project.graph, config.gradient_every)
        if checkpoint is not None:
            self._restore(checkpoint, state)
        elif self.run_dir is not None:
            self.run_dir.write_project(options.project)  # the frozen copy keeps its blocks
        if self.run_dir is not None and (checkpoint is None or not (self.run_dir.path / SPLIT_FILE).is_file()):
            write_split(self.run_dir.path, split)  # evaluation rebuilds the same parts from it
        if self.run_dir is not None and (checkpoint is None or
                                         not (self.run_dir.path / PREPROCESSING_FILE).is_file()):
            write_preprocessing(self.run_dir.path, split)  # prediction needs neither the data nor a re-split
        return state

    def _restore(self, checkpoint: dict[str, Any], state: RunState) -> None:
        """Put models, optimizers, schedule, scaler, RNG and position back as the checkpoint has them."""
        task = state.task
        for name, module in task.modules.items():
            _unwrap(module).load_state_dict(checkpoint["models"][name])
        for name, optimizer in task.optimizers.items():
            optimizer.load_state_dict(checkpoint["optimizers"][name])
            match_state_layout(optimizer)
        if task.scaler is not None and checkpoint["scaler"]:
            task.scaler.load_state_dict(checkpoint["scaler"])
        self.global_step = int(checkpoint["global_step"])
        state.schedule.load_state_dict(checkpoint["schedule"], self.global_step)
        ckpt.restore_rng_state(checkpoint["rng"], state.batches.generator,
                               state.augmenter.generator if state.augmenter is not None else None)
        if checkpoint["permutation"] is not None:
            state.batches.resume_permutation(checkpoint["permutation"])
        state.start_epoch, state.start_batch = int(checkpoint["epoch"]), int(checkpoint["batch"])
        state.epoch_sums = dict(checkpoint["epoch_sums"])
        state.history, state.best = list(checkpoint["history"]), checkpoint["best"]

    # --------------------------------------------------------------- the loop
    def _train(self, state: RunState) -> Event:
        """Announce the run and train its epochs; returns the closing event."""
        config, batches = state.config, state.batches
        parameters = sum(p.numel() for m in state.task.modules.values() for p in m.parameters() if p.requires_grad)
        self.emit(RunStarted(time.time(), str(self.options.run_dir or ""), str(state.device),
                             device_name(state.device), state.task_name, config.epochs, batches.steps_per_epoch,
                             parameters, batches.train_count, state.val_count, state.start_epoch, dict(config),
                             state.initial_weights))
        self._write_run_info("running", {})
        self._snapshot(state.task, state.start_epoch, *state.snapshot_data)  # what the model predicts before
        snapshot_taken = time.perf_counter()
        if self.options.wait_for_viewer:
            self.control.await_ready(VIEWER_READY_S)
        clock = EpochClock(state.device, config.cpu_threads, config.deterministic)  # after the wait: the viewer's start-up is not load
        clock.last_snapshot = snapshot_taken
        self.threads = clock.threads
        try:
            for epoch in range(state.start_epoch, config.epochs):
                self.epoch = epoch
                started = time.perf_counter()
                sums = MetricSums(state.device, state.epoch_sums)
                stopped = self._train_epoch(state, epoch, sums, clock)
                if stopped is not None:
                    return stopped
                ended = self._end_epoch(state, epoch, sums, started, clock)
                if ended is not None:
                    return ended
            return self._finish("completed", config.epochs, 0, None, 0)
        finally:
            clock.restore()

    def _train_epoch(self, state: RunState, epoch: int, sums: MetricSums, clock: EpochClock) -> Event | None:
        """The steps of one epoch; returns the closing event when a stop command ends the run."""
        task, schedule, control, window = state.task, state.schedule, self.control, clock.window
        snapshot_every, steps = state.config.snapshot_seconds, state.batches.steps_per_epoch  # locals: hot loop
        snap_x, snap_y, threads, augment = *state.snapshot_data, clock.threads, state.augmenter
        probe = state.probe
        for index, (x, y) in state.batches.epoch(epoch, state.start_batch):
            now = time.perf_counter()
            if now >= threads.due:
                threads.adjust(now)
            if control.pending() and self._handle_commands(schedule):
                return self._finish("stopped", epoch, index, sums.totals(), sums.seen)
            if schedule.per_step:
                schedule.apply(self.global_step)
            if augment is not None:  # training batches only, after a stop could end the epoch here
                x, y = augment(x, y)
            sampled = probe is not None and probe.due(self.global_step)
            if sampled:
                probe.before_step()
            metrics = task.train_step(x, y)
            if sampled:
                self._emit_gradients(probe, epoch)
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
            if now - clock.last_snapshot >= snapshot_every and index + 1 < steps:
                self._snapshot(task, epoch, snap_x, snap_y)
                clock.last_snapshot = time.perf_counter()
        if window.count:  # at least one batch point per epoch, however fast the epochs are
            mean, rate = window.flush(time.perf_counter())
            if math.isfinite(mean):
                self.emit(BatchMetrics(time.time(), epoch, steps, self.global_step, {"loss": mean},
                                       schedule.current, rate))
        return None

    def _emit_gradients(self, probe: GradientProbe, epoch: int) -> None:
        layers, dead = probe.after_step()
        warnings = [{"kind": kind, "message": message} for kind, message in gradient_warnings(layers, dead)]
        self.emit(GradientHealth(time.time(), epoch, self.global_step + 1,
                                 [{"node": h.node, "grad_norm": h.grad_norm, "update_ratio": h.update_ratio}
                                  for h in layers], dead, warnings))

    def _end_epoch(self, state: RunState, epoch: int, sums: MetricSums, started: float, clock: EpochClock) -> Event | None:
        """Validate, record, checkpoint and snapshot after an epoch; returns the closing event
        when early stopping ends the run."""
        config, task, schedule = state.config, state.task, state.schedule
        seen = sums.seen
        state.start_batch, state.epoch_sums = 0, {}
        train = self._train_metrics(sums.totals(), seen, state.device)
        if not all(math.isfinite(v) for v in train.values()):
            steps = state.batches.steps_per_epoch
            raise NonFiniteLoss(self._nan_message(self.global_step - steps, self.global_step))
        with torch.random.fork_rng(devices=rng_devices(state.device)):
            val = task.evaluate(*state.validation)
        seconds = time.perf_counter() - started
        self.emit(EpochEnd(time.time(), epoch + 1, self.global_step, train, val, schedule.current, seconds,
                           seen / seconds if seconds > 0 else 0.0))
        state.history.append({"epoch": epoch + 1, "train": train, "val": val})
        metric_name, value, lower = self._watched(config, val)
        schedule.epoch_end(value, lower, self.global_step)
        best = state.best
        if best is None or (value < best["value"] if lower else value > best["value"]):
            state.best = {"metric": metric_name, "value": value, "epoch": epoch + 1}
        self._save_checkpoint(epoch + 1, 0, {}, None)
        if epoch + 1 == config.epochs or time.perf_counter() - clock.last_snapshot >= config.snapshot_seconds:
            self._snapshot(task, epoch + 1, *state.snapshot_data)
            clock.last_snapshot = time.perf_counter()
        patience = config.early_stopping_patience
        if patience and state.best is not None and epoch + 1 - state.best["epoch"] >= patience:
            return self._finish("early_stopped", epoch + 1, 0, None, 0)
        return None

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
                self.stop_note = self.control.stop_reason or ""
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
    def _train_metrics(self, sums: dict[str, float], seen: int, device: torch.device) -> dict[str, float]:
        values = dict(sums)
        if self.options.distributed is not None:
            values, seen = all_reduce_sums(values, seen, device)
        return {key: value / max(seen, 1) for key, value in values.items()}

    @staticmethod
    def _watched(config: Params, val: dict[str, float]) -> tuple[str, float, bool]:
        name = config.early_stopping_metric.removeprefix("val_")
        if name not in val:
            name = "loss"
        return f"val_{name}", val[name], name in LOWER_IS_BETTER

    def _snapshot(self, task: Task, epoch: int, val_x: torch.Tensor, val_y: torch.Tensor | None) -> None:
        if not self.rank0 or self.state is None:
            return
        with torch.random.fork_rng(devices=rng_devices(self.state.device)):
            result = task.snapshot(val_x, val_y)
        if result is not None:
            self.emit(PredictionSnapshot(time.time(), epoch, self.global_step, result[0], result[1]))

    def _save_checkpoint(self, epoch: int, batch: int, sums: dict[str, float], permutation: torch.Tensor | None) -> None:
        if self.run_dir is None or not self.rank0 or self.state is None:
            return
        state = self.state
        task = state.task
        config = dict(state.config)
        payload = {
            "epoch": epoch, "batch": batch, "global_step": self.global_step, "epoch_sums": sums,
            "permutation": permutation,
            "models": {name: _unwrap(m).state_dict() for name, m in task.modules.items()},
            "optimizers": {name: o.state_dict() for name, o in task.optimizers.items()},
            "schedule": state.schedule.state_dict(),
            "scaler": task.scaler.state_dict() if task.scaler is not None else {},
            "rng": ckpt.rng_state(state.batches.generator,
                                  state.augmenter.generator if state.augmenter is not None else None),
            "history": state.history, "best": state.best, "config": config,
        }
        ckpt.save_checkpoint(self.run_dir.checkpoint_path, payload)
        self.recorded_config, self.checkpoint_epoch = config, epoch
        self.emit(CheckpointWritten(time.time(), epoch, self.global_step, str(self.run_dir.checkpoint_path)))
        if batch == 0:  # mid-epoch (stop) checkpoints are followed by the closing run.json at once
            self._write_run_info("running", {}, durable=False)

    def _finish(self, reason: str, epoch: int, batch: int, sums: dict[str, float] | None, seen: int) -> Event:
        state = self.state
        assert state is not None
        if reason == "stopped" and sums is not None:
            partial = dict(sums)
            partial["_count"] = seen
            self._save_checkpoint(epoch, batch, partial, state.batches.current_permutation)
        final = state.history[-1] if state.history else {"train": {}, "val": {}}
        metrics = {**{f"train_{k}": v for k, v in final["train"].items()},
                   **{f"val_{k}": v for k, v in final["val"].items()}}
        if self.run_dir is not None:
            _save_weights(state.task, self.run_dir.weights_path)
        note = f"stopped because {self.stop_note}" if reason == "stopped" and self.stop_note else ""
        self._write_run_info(reason, metrics, note)
        event = Finished(time.time(), reason, len(state.history), self.global_step, metrics,
                         str(self.options.run_dir or ""))
        self.emit(event)
        return event

    def _write_run_info(self, status: str, metrics: dict[str, float], message: str = "", durable: bool = True) -> None:
        if self.run_dir is None:
            return
        state = self.state
        device = state.device if state is not None else None
        self.run_dir.write_run({
            "status": status, "message": message, "task": state.task_name if state is not None else "",
            "device": str(device or ""), "device_name": device_name(device) if device is not None else "",
            "config": self.recorded_config, "epochs_completed": len(state.history) if state is not None else 0,
            "checkpoint_epoch": self.checkpoint_epoch,
            "global_step": self.global_step, "final_metrics": metrics,
            "best": state.best if state is not None else None, "pid": os.getpid(),
            **({"split": self.split_info} if self.split_info is not None else {}),
            "world_size": self.options.distributed.world_size if self.options.distributed else 1,
            **({"cpu_threads": self.threads.state()} if self.threads is not None and self.threads.enabled else {}),
            "base_dir": str(self.options.base_dir.resolve()) if self.options.base_dir else None,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }, durable)

    def _nan_message(self, first: int, last: int) -> str:
        where = f"at step {last}" if last - first <= 1 else f"between steps {first + 1} and {last}"
        assert self.state is not None
        lr = self.state.schedule.current
        if self.state.initial_weights and last <= 1:
            return (f"the loss became NaN or infinite {where}, in the first step: the starting weights are the "
                    f"likely cause ({self.state.initial_weights.split(':')[0]})")
        return (f"the loss became NaN or infinite {where} (epoch {self.epoch + 1}, learning rate {lr:.3g}): "
                f"lower the learning rate (e.g. {lr / 10:.3g}) or enable gradient clipping")

    def _oom_message(self, exc: BaseException) -> str:
        return out_of_memory_message(exc, self.model_project, self.state, self.batch_size,
                                     self.options.overrides)


def _internal_failure(exc: BaseException) -> Failed:
    return Failed(time.time(), "error", f"training stopped by an internal error: {type(exc).__name__}: {exc}",
                  traceback.format_exc())


def _start_from(task: Task, weights_file: Path) -> str:
    """Load the matching tensors of ``weights_file`` into every model of ``task``; a line saying what was used."""
    from engine.compile.weights import PartialLoad, load_matching, load_weights, require_finite

    weights = load_weights(weights_file)
    require_finite(weights, str(weights_file), "these starting weights are the cause, not the learning rate; "
                   "import or export the weights again, delete the file, or turn off the use_project_weights "
                   "setting")
    loaded: list[str] = []
    fresh: list[str] = []
    for module in task.modules.values():
        part = load_matching(_unwrap(module), weights)
        loaded += part.loaded
        fresh += part.fresh
    return PartialLoad(loaded, fresh).summary(weights_file.name)


def _save_weights(task: Task, path: Path) -> None:
    from engine.compile.weights import save_weights

    save_weights(task.weights(), path)
