"""RunHistory: curves from a live event stream and from a run folder on disk."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from engine.graph.fileformat import dumps, loads
from engine.training.events import (BatchMetrics, EpochEnd, Failed, Finished, GradientHealth, LearningRateChanged,
                                    RunStarted, StateChanged)
from engine.training.history import RunHistory, list_runs
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import mlp_project


def _started(steps: int = 10, task: str = "classification") -> RunStarted:
    return RunStarted(0.0, "runs/x", "cpu", "CPU", task, 3, steps, 100, 80, 20, 0)


def test_batches_land_on_a_fractional_epoch_axis_with_a_debiased_smoothing() -> None:
    history = RunHistory("x")
    history.add(_started(steps=10))
    for step, loss in ((5, 2.0), (10, 1.0), (15, 0.5)):
        history.add(BatchMetrics(0.0, 0, step, step, {"loss": loss}, 0.01, 100.0))
    assert history.batch_x == [0.5, 1.0, 1.5]
    assert history.batch_loss == [2.0, 1.0, 0.5]
    assert history.batch_loss_smooth[0] == 2.0  # debiased: the first point is the value itself
    assert 0.5 < history.batch_loss_smooth[-1] < 2.0
    assert history.lr == [0.01, 0.01, 0.01]


def test_epochs_fill_aligned_series_even_when_a_metric_appears_late() -> None:
    history = RunHistory("x")
    history.add(_started())
    history.add(EpochEnd(0.0, 1, 10, {"loss": 1.0}, {"loss": 1.1}, 0.01, 1.0, 100.0))
    history.add(EpochEnd(0.0, 2, 20, {"loss": 0.5}, {"loss": 0.6, "accuracy": 0.9}, 0.01, 1.0, 100.0))
    assert history.epoch_x == [1.0, 2.0]
    assert history.val["loss"] == [1.1, 0.6]
    assert math.isnan(history.val["accuracy"][0]) and history.val["accuracy"][1] == 0.9
    assert history.metric_name == "accuracy"
    assert history.final_metric() == ("accuracy", 0.9)
    assert "90.0%" in history.summary()


def test_state_follows_pause_resume_stop_and_failure() -> None:
    history = RunHistory("x")
    history.add(_started())
    assert history.state == "running" and history.active
    history.add(StateChanged(0.0, "paused", 3))
    assert history.state == "paused"
    history.add(LearningRateChanged(0.0, 5, 0, 0.01, 0.001))
    assert history.lr_marks == [(0.5, 0.01, 0.001)]
    history.add(StateChanged(0.0, "running", 5))
    history.add(Finished(0.0, "stopped", 1, 6, {"val_loss": 0.3}, "runs/x"))
    assert history.state == "stopped" and not history.active
    failed = RunHistory("y")
    failed.add(Failed(0.0, "nan", "the loss became NaN at step 4"))
    assert failed.state == "failed" and "step 4" in failed.message


def test_a_run_folder_reads_back_the_same_curves_and_exports_csv(tmp_path: Path) -> None:
    events: list = []
    run = tmp_path / "runs" / "mlp-20260101-000000"
    project = mlp_project({"epochs": 3})
    Trainer(TrainOptions(loads(dumps(project)), run), events.append).run()
    live = RunHistory("live")
    live.extend(events)
    disk = RunHistory.from_run_dir(run)
    assert disk.epoch_x == live.epoch_x == [1.0, 2.0, 3.0]
    assert disk.val == live.val
    assert disk.batch_loss == live.batch_loss
    assert disk.state == "finished" and disk.snapshot is not None
    assert list_runs(tmp_path / "runs") == [run]
    disk.write_csv(tmp_path / "m.csv")
    rows = list(csv.reader((tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()))
    assert rows[0][0] == "epoch" and "val_accuracy" in rows[0] and len(rows) == 4


def test_a_run_cut_off_without_closing_event_reads_as_interrupted(tmp_path: Path) -> None:
    run = tmp_path / "cut"
    run.mkdir()
    lines = [_started().to_json(), EpochEnd(0.0, 1, 10, {"loss": 1.0}, {"loss": 1.0}, 0.01, 1.0, 1.0).to_json()]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken", encoding="utf-8")
    history = RunHistory.from_run_dir(run)
    assert history.state == "interrupted"
    assert history.epoch_x == [1.0]


def test_the_metric_plot_shows_train_and_validation_or_both_gan_losses() -> None:
    history = RunHistory("x")
    history.add(_started(task="classification"))
    history.add(EpochEnd(0.0, 1, 10, {"loss": 1.0, "accuracy": 0.5}, {"loss": 1.1, "accuracy": 0.4}, 0.01, 1.0, 1.0))
    assert history.metric_series() == (("train", [0.5]), ("validation", [0.4]))
    gan = RunHistory("g")
    gan.add(_started(task="gan"))
    gan.add(EpochEnd(0.0, 1, 10, {"d_loss": 1.3, "g_loss": 0.7}, {"d_loss": 1.2, "g_loss": 0.8, "loss": 2.0},
                     0.01, 1.0, 1.0))
    assert gan.metric_series() == (("generator", [0.7]), ("discriminator", [1.3]))


def test_gradient_samples_align_per_layer_and_keep_the_latest_warnings() -> None:
    history = RunHistory("x")
    history.add(_started(steps=10))
    history.add(GradientHealth(0.0, 0, 1, [{"node": "fc1", "grad_norm": 1e-6, "update_ratio": 1e-5},
                                           {"node": "fc2", "grad_norm": float("inf"), "update_ratio": 1e-3}],
                               {"act1": 0.25}, [{"kind": "vanishing", "message": "vanishing gradients: fc1"}]))
    history.add(GradientHealth(0.0, 0, 26, [{"node": "fc2", "grad_norm": 1.0, "update_ratio": 1e-3}], {}, []))
    series = history.gradients
    assert series.x == [0.1, 2.6] and series.layers == ["fc1", "fc2"] and series.relus == ["act1"]
    assert series.grad_norm["fc1"][0] == 1e-6 and math.isnan(series.grad_norm["fc1"][1])
    assert series.grad_norm["fc2"] == [float("inf"), 1.0] and math.isnan(series.dead["act1"][1])
    assert series.warnings == [] and series.step == 26 and series.version == 2


def test_epoch_records_are_what_the_overfitting_watch_reads() -> None:
    history = RunHistory("x")
    history.add(_started())
    history.add(EpochEnd(0.0, 1, 10, {"loss": 1.0}, {"loss": 1.1}, 0.01, 1.0, 100.0))
    history.add(EpochEnd(0.0, 2, 20, {"loss": 0.5}, {"loss": 0.6, "accuracy": 0.9}, 0.01, 1.0, 100.0))
    assert history.epoch_records() == [{"epoch": 1, "train": {"loss": 1.0}, "val": {"loss": 1.1}},
                                       {"epoch": 2, "train": {"loss": 0.5}, "val": {"loss": 0.6, "accuracy": 0.9}}]
