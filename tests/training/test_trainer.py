"""The trainer in-process: events, run folder, exact resume, commands, failures."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.training.control import Control
from engine.training.events import EpochEnd, Event, Failed, Finished, LearningRateChanged, RunStarted, StateChanged
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import chain_project, cnn_project, mlp_project


def train(project, run_dir: Path | None = None, resume: bool = False, on_event=None, commands=None,  # noqa: ANN001
          **overrides) -> tuple[Event, list[Event]]:
    events: list[Event] = []

    def emit(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    control = Control(commands) if commands is not None else None
    result = Trainer(TrainOptions(project, run_dir, None, overrides, resume), emit, control).run()
    return result, events


def assert_stopped_run_resumes_to_the_same_weights(project, folder: Path) -> list[Event]:  # noqa: ANN001
    """Train ``project`` whole into ``folder/full``; train it into ``folder/split`` paused after epoch 1 and
    stopped early in epoch 2, resume it to the end, and check both end with the same weights.
    Returns the resumed run's events."""
    train(project, folder / "full")
    commands: queue.Queue = queue.Queue()

    def stop_midway(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            commands.put(("pause", None))
            commands.put(("stop", None))

    first, _ = train(project, folder / "split", on_event=stop_midway, commands=commands)
    assert isinstance(first, Finished) and first.reason == "stopped"
    resumed, events = train(project, folder / "split", resume=True)
    assert isinstance(resumed, Finished) and resumed.reason == "completed"
    full, split = _weights(folder / "full"), _weights(folder / "split")
    for key in full:
        assert torch.equal(full[key], split[key]), key
    return events


def test_run_writes_the_contract_files(tmp_path: Path) -> None:
    result, events = train(mlp_project(), tmp_path / "run")
    assert isinstance(result, Finished) and result.reason == "completed"
    assert isinstance(events[0], RunStarted) and events[0].task == "classification"
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert {"loss", "accuracy"} <= set(epochs[-1].val)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"run.json", "metrics.jsonl", "checkpoint.pt", "model.safetensors",
                                               "project.json"}
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["device"] == "cpu" and info["config"]["epochs"] == 4
    assert info["final_metrics"]["val_accuracy"] == epochs[-1].val["accuracy"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "run_started" and lines[-1]["type"] == "finished"
    weights = load_file(str(run / "model.safetensors"))
    assert set(weights) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


@pytest.mark.parametrize(("model", "stop_after"), [("mlp", "epoch"), ("mlp", "batch"), ("cnn", "batch")])
def test_stopped_and_resumed_run_ends_with_the_same_weights(tmp_path: Path, model: str, stop_after: str) -> None:
    # the CNN trains in the channels-last layout with fused Adam: resuming must still be exact.
    # deterministic keeps the thread count fixed: with automatic threads, another process's load
    # (other tests running beside this one) changes how float sums are split between threads
    project = (mlp_project if model == "mlp" else cnn_project)({"schedule": "cosine", "epochs": 4,
                                                                 "deterministic": True})
    train(project, tmp_path / "full")
    commands: queue.Queue = queue.Queue()

    def stop_midway(event: Event) -> None:
        if stop_after == "epoch" and isinstance(event, EpochEnd) and event.epoch == 2:
            commands.put(("stop", None))
        if stop_after == "batch" and isinstance(event, EpochEnd) and event.epoch == 1:
            commands.put(("pause", None))
            commands.put(("stop", None))

    first, events = train(project, tmp_path / "split", on_event=stop_midway, commands=commands)
    assert isinstance(first, Finished) and first.reason == "stopped"
    resumed, events = train(project, tmp_path / "split", resume=True)
    assert isinstance(resumed, Finished) and resumed.reason == "completed"
    assert events[0].start_epoch == (2 if stop_after == "epoch" else 1)
    full, split = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for key in full:
        assert torch.equal(full[key], split[key]), key


def test_a_deterministic_run_keeps_its_thread_count_on_a_busy_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.training import threads
    from engine.training.loop_accounting import EpochClock

    monkeypatch.setattr(threads, "threads_for", lambda foreign, cores, most: 1)  # as if every core were busy
    cpu = torch.device("cpu")
    assert not EpochClock(cpu, 0, deterministic=True).threads.enabled
    automatic = EpochClock(cpu, 0)
    assert automatic.threads.enabled == (torch.get_num_threads() > 1)
    automatic.restore()


def test_pause_set_lr_resume_and_stop_take_effect(tmp_path: Path) -> None:
    commands: queue.Queue = queue.Queue()
    seen: list[Event] = []

    def drive(event: Event) -> None:
        seen.append(event)
        if isinstance(event, EpochEnd) and event.epoch == 1:
            commands.put(("pause", None))
            commands.put(("set_lr", 0.001))
            commands.put(("resume", None))
        if isinstance(event, EpochEnd) and event.epoch == 2:
            commands.put(("stop", None))

    result, events = train(mlp_project({"epochs": 10}), tmp_path / "run", on_event=drive, commands=commands)
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == ["paused", "running", "stopping"]
    (change,) = [e for e in events if isinstance(e, LearningRateChanged)]
    assert change.old == pytest.approx(0.01) and change.new == pytest.approx(0.001)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert epochs[1].lr == pytest.approx(0.001)
    assert isinstance(result, Finished) and result.reason == "stopped" and result.epochs_completed == 2


def test_nan_loss_fails_with_the_step_and_advice() -> None:
    project = chain_project([("x", "input", {"shape": [10]}), ("fc1", "linear", {"out_features": 32}),
                             ("fc2", "linear", {"out_features": 1}), ("y", "output", {})],
                            {"name": "diabetes"}, {"epochs": 30, "lr": 10.0, "optimizer": "sgd"})
    result, _ = train(project)
    assert isinstance(result, Failed) and result.reason == "nan"
    assert "the loss became NaN or infinite at step" in result.message
    assert "lower the learning rate" in result.message


def test_shape_mismatch_names_the_input_node_and_both_shapes() -> None:
    project = mlp_project()
    project.graph.set_param("x", "shape", (3,))
    result, _ = train(project)
    assert isinstance(result, Failed) and result.reason == "data"
    assert "Input node x" in result.message and "(N, 3)" in result.message and "(N, 2)" in result.message


def test_output_size_mismatch_names_the_layer_to_change() -> None:
    project = mlp_project()
    project.graph.set_param("fc2", "out_features", 5)
    result, _ = train(project)
    assert isinstance(result, Failed) and result.reason == "config"
    assert "node fc2 (Linear)" in result.message and "change its size to 2" in result.message


def test_bad_settings_fail_with_the_field_name() -> None:
    result, _ = train(mlp_project({"optimizer": "adagrad"}))
    assert isinstance(result, Failed) and result.message.startswith("training.optimizer: must be one of")


@pytest.mark.parametrize(("name", "schedule"), [("sgd", "step"), ("adamw", "one_cycle"), ("rmsprop", "plateau")])
def test_optimizers_and_schedules_train(name: str, schedule: str) -> None:
    result, events = train(mlp_project({"optimizer": name, "schedule": schedule, "lr": 0.05, "step_size": 1,
                                        "warmup_epochs": 1, "grad_clip": 1.0, "nesterov": True}))
    assert isinstance(result, Finished)
    lrs = [e.lr for e in events if isinstance(e, EpochEnd)]
    assert len(set(lrs)) > 1, lrs


def test_early_stopping_stops_when_the_metric_stalls() -> None:
    result, events = train(mlp_project({"lr": 1e-8, "epochs": 50, "early_stopping_patience": 2,
                                        "early_stopping_metric": "val_accuracy"}))
    assert isinstance(result, Finished) and result.reason == "early_stopped"
    assert result.epochs_completed < 50


def test_regression_reports_mae_and_r2() -> None:
    project = chain_project([("x", "input", {"shape": [10]}), ("fc1", "linear", {"out_features": 32}),
                             ("act", "relu", {}), ("fc2", "linear", {"out_features": 1}), ("y", "output", {})],
                            {"name": "diabetes"}, {"epochs": 20, "lr": 0.01})
    result, events = train(project)
    assert isinstance(result, Finished)
    val = [e for e in events if isinstance(e, EpochEnd)][-1].val
    assert val["r2"] > 0.3 and val["mae"] > 1  # MAE is in the target's units (disease progression)


def test_out_of_memory_names_the_batch_size_and_one_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.training.tasks.classification import ClassificationTask

    original = ClassificationTask.train_step

    def limited(self, x, y):  # noqa: ANN001, ANN202 - a device that holds 20 samples per step
        if len(x) > 20:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, x, y)

    monkeypatch.setattr(ClassificationTask, "train_step", limited)
    result, _ = train(mlp_project({"batch_size": 64}))
    assert isinstance(result, Failed) and result.reason == "out_of_memory"
    assert "out of memory" in result.message and "batch size 64" in result.message
    assert "use batch size 16" in result.message


def test_an_exception_inside_a_task_becomes_a_failed_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.training.tasks.classification import ClassificationTask

    monkeypatch.setattr(ClassificationTask, "snapshot", lambda *args: 1 / 0)
    result, events = train(mlp_project())
    assert isinstance(result, Failed) and result.reason == "error"
    assert "ZeroDivisionError" in result.message and "Traceback" in result.details
    assert events[-1] is result


def test_large_data_streams_through_a_dataloader_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    resident, _ = train(mlp_project())
    monkeypatch.setattr("engine.training.batches.RESIDENT_BYTES", 0)
    streamed, _ = train(mlp_project())
    assert isinstance(streamed, Finished)
    assert streamed.metrics["val_loss"] == pytest.approx(resident.metrics["val_loss"], rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda(precision: str) -> None:
    result, events = train(mlp_project(), device="cuda", precision=precision)
    assert isinstance(result, Finished), getattr(result, "message", "")
    assert events[0].device.startswith("cuda")
    assert result.metrics["val_accuracy"] > 0.7


def test_bf16_mixed_precision_trains_on_cpu() -> None:
    result, events = train(cnn_project({"epochs": 4}), precision="bf16")
    assert isinstance(result, Finished), getattr(result, "message", "")
    assert events[0].config["precision"] == "bf16"
    assert result.metrics["val_accuracy"] > 0.8


def test_fp16_on_cpu_is_refused_with_a_hint() -> None:
    result, _ = train(mlp_project(), precision="fp16")
    assert isinstance(result, Failed) and result.reason == "config"
    assert "needs a CUDA GPU" in result.message and "choose bf16" in result.message


def test_fp16_loss_scaling_with_clipping_resumes_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA fp16 path (GradScaler, unscale before clipping, fused Adam, scaler checkpoint) run on the CPU."""
    monkeypatch.setattr("engine.training.trainer.autocast_dtype", lambda device, precision: torch.float16)
    project = cnn_project({"epochs": 3, "grad_clip": 1.0})
    full, _ = train(project, tmp_path / "full")
    assert isinstance(full, Finished), getattr(full, "message", "")
    assert full.metrics["val_accuracy"] > 0.6
    commands: queue.Queue = queue.Queue()

    def stop_after_first_epoch(event: Event) -> None:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            commands.put(("stop", None))

    train(project, tmp_path / "split", on_event=stop_after_first_epoch, commands=commands)
    state = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    assert state["scaler"] and state["scaler"]["scale"] > 1  # the loss scale is part of the checkpoint
    resumed, _ = train(project, tmp_path / "split", resume=True)
    assert isinstance(resumed, Finished) and resumed.reason == "completed"
    full_weights, split_weights = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for key in full_weights:
        assert torch.equal(full_weights[key], split_weights[key]), key
