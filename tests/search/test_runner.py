"""The search runner's logic with stand-in training processes (no torch, milliseconds a trial):
pruning, counting trials across calls, continuing without repeating values."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import optuna

from engine.graph.fileformat import load_project
from engine.search.runner import SearchLimits, SearchRunner
from engine.search.session import SearchRequest, start_search
from engine.training.events import EpochEnd, Event, Finished
from tests.search.projects import spirals_search


class FakeTraining:
    """Stands in for TrainingProcess: one epoch per poll, accuracy rising with the epoch and with
    how close the learning rate is to 0.01."""

    started: list[str] = []

    def __init__(self, project_text: str, run_dir: Path, base_dir: Any, overrides: dict, resume: bool,
                 weights_file: Any) -> None:
        training = json.loads(project_text)["training"]
        self.lr, self.epochs = training["lr"], training["epochs"]
        self.epoch, self.finished = 0, None
        self._stop = False
        FakeTraining.started.append(str(run_dir))

    def start(self) -> None:
        pass

    @property
    def running(self) -> bool:
        return self.finished is None

    def poll(self, timeout: float = 0.0) -> list[Event]:
        if self._stop or self.epoch == self.epochs:
            self.finished = Finished(time.time(), "stopped" if self._stop else "completed", self.epoch, 0, {}, "")
            return [self.finished]
        self.epoch += 1
        quality = 1.0 / (1.0 + abs(math.log10(self.lr / 0.01)))
        return [EpochEnd(time.time(), self.epoch, self.epoch, {"loss": 1.0},
                         {"loss": 1.0, "accuracy": quality * self.epoch / self.epochs}, self.lr, 0.0, 0.0)]

    def stop(self) -> None:
        self._stop = True

    def kill(self) -> None:
        self._stop = True

    def join(self, timeout: float | None = None) -> None:
        pass


def _runner(path: Path, trials: int, workers: int = 1) -> tuple[SearchRunner, optuna.Study]:
    request = SearchRequest(load_project(path), path, path.parent / "out", trials=trials, workers=workers)
    context, limits, opened = start_search(request, lambda update: None)
    context.make_process = FakeTraining
    return SearchRunner(context, SearchLimits(limits.trials, workers)), opened.study


def test_pruning_stops_trials_that_trail_the_median(tmp_path: Path) -> None:
    path = spirals_search(tmp_path, {"training.lr": {"low": 1e-5, "high": 1.0, "log": True}}, epochs=20)
    runner, study = _runner(path, trials=16)
    updates = runner.run()
    states = [u.state for u in updates]
    assert len(updates) == 16 and states.count("pruned") >= 3, states
    epochs = sum(u.epoch for u in updates)
    assert epochs < 16 * 20 * 0.85  # pruned trials stop early
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(len(t.intermediate_values) < 20 for t in pruned)


def test_a_continued_study_counts_its_trials_and_draws_new_values(tmp_path: Path) -> None:
    path = spirals_search(tmp_path, {"training.lr": {"low": 1e-4, "high": 0.1, "log": True}}, pruner="none")
    first, _ = _runner(path, trials=3, workers=2)
    assert len(first.run()) == 3
    second, study = _runner(path, trials=5)
    assert len(second.run()) == 2
    values = [t.params["training.lr"] for t in study.trials]
    assert len(study.trials) == 5 and len(set(values)) == 5  # no trial repeats another's values


def test_a_timeout_starts_no_new_trial(tmp_path: Path) -> None:
    path = spirals_search(tmp_path, {"training.lr": {"low": 1e-4, "high": 0.1, "log": True}})
    request = SearchRequest(load_project(path), path, tmp_path / "out", trials=50, workers=1, timeout=0.001)
    context, limits, _ = start_search(request, lambda update: None)
    context.make_process = FakeTraining
    time.sleep(0.01)
    assert SearchRunner(context, limits).run() == []


def test_a_new_study_first_runs_the_project_as_it_is(tmp_path: Path) -> None:
    path = spirals_search(tmp_path, {"training.lr": {"low": 1e-4, "high": 0.1, "log": True},
                                     "nodes.fc2.out_features": {"low": 16, "high": 128, "step": 16},
                                     "nodes.act2.type": {"choices": ["tanh", "relu"]}}, pruner="none")
    runner, study = _runner(path, trials=2)
    updates = runner.run()
    first = study.trials[0]
    assert first.user_attrs["baseline"] and [u.baseline for u in sorted(updates, key=lambda u: u.number)] == [True, False]
    assert first.params == {"training.lr": 0.003, "nodes.fc2.out_features": 64, "nodes.act2.type": "relu"}


def test_no_baseline_when_the_project_lies_outside_the_space(tmp_path: Path) -> None:
    path = spirals_search(tmp_path, {"nodes.fc2.out_features": {"low": 8, "high": 32, "step": 8}}, pruner="none")
    runner, study = _runner(path, trials=1)
    runner.run()
    assert "baseline" not in study.trials[0].user_attrs


def test_a_study_is_not_continued_with_another_epoch_count(tmp_path: Path) -> None:
    """Trials of 3 epochs and of 30 would be ranked together: the study refuses, naming both counts."""
    import pytest

    from engine.errors import UserError

    path = spirals_search(tmp_path, {"training.lr": {"low": 1e-4, "high": 0.1, "log": True}}, pruner="none")
    first, _ = _runner(path, trials=2)
    first.run()
    data = json.loads(path.read_text())
    data["training"]["epochs"] = 30
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"its trials train 3 epochs, this project 30 \(training.epochs\); its "
                                        r"trials could not be compared with new ones: give search.name another"):
        _runner(path, trials=4)
    data["search"]["space"]["training.epochs"] = {"low": 3, "high": 30}  # epochs searched: each trial says its own
    data["search"]["name"] = "epochs searched"
    path.write_text(json.dumps(data))
    _runner(path, trials=1)


def test_values_a_completed_trial_trained_are_not_trained_again(tmp_path: Path) -> None:
    """Three possible values and eight trials: the sampler repeats itself, and a repeat tells the earlier
    trial's result (pointing at its run) instead of training the same configuration twice."""
    path = spirals_search(tmp_path, {"training.lr": {"choices": [0.001, 0.01, 0.1]}}, sampler="random",
                          pruner="none")
    FakeTraining.started = []
    runner, study = _runner(path, trials=8)
    updates = runner.run()
    assert len(study.trials) == 8 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(FakeTraining.started) == len({t.params["training.lr"] for t in study.trials}) <= 3
    repeats = [t for t in study.trials if "repeat_of" in t.user_attrs]
    assert len(repeats) == 8 - len(FakeTraining.started)
    for repeat in repeats:
        earlier = study.trials[repeat.user_attrs["repeat_of"]]
        assert earlier.params == repeat.params and earlier.values == repeat.values
        assert repeat.user_attrs["run"] == earlier.user_attrs["run"]
    messages = [u.message for u in updates if u.number in {t.number for t in repeats}]
    assert messages and all("its result counts again (not trained twice)" in m for m in messages)
