"""A run drawn by the app waits for its dashboard's first view before its first step."""

from __future__ import annotations

import pytest

from tests.training.helpers import mlp_project


def test_a_viewer_run_takes_its_first_step_after_ready_and_commands_sent_meanwhile_still_count() -> None:
    import queue
    import threading
    import time

    from engine.training.control import Control
    from engine.training.events import BatchMetrics, PredictionSnapshot, RunStarted, StateChanged
    from engine.training.trainer import Trainer, TrainOptions

    commands: queue.Queue = queue.Queue()
    events: list = []
    said: list[float] = []

    def viewer(event: object) -> None:
        events.append((time.perf_counter(), event))
        if isinstance(event, PredictionSnapshot) and not said:  # the app draws the first view, then says ready
            def later() -> None:
                time.sleep(0.3)
                commands.put(("pause", None))  # a command before ready waits for the first step
                commands.put(("resume", None))
                said.append(time.perf_counter())
                commands.put(("ready", None))
            threading.Thread(target=later, daemon=True).start()

    options = TrainOptions(mlp_project({"epochs": 2}), wait_for_viewer=True)
    result = Trainer(options, viewer, Control(commands)).run()
    assert result.kind == "finished"
    kinds = [type(e) for _, e in events]
    assert kinds.index(RunStarted) < kinds.index(PredictionSnapshot) < kinds.index(BatchMetrics)
    first_step = next(t for t, e in events if isinstance(e, BatchMetrics))
    assert said and first_step > said[0]
    assert [e.state for _, e in events if isinstance(e, StateChanged)] == ["paused", "running"]


def test_a_viewer_that_never_says_ready_delays_training_by_at_most_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import queue
    import time

    from engine.training import trainer as trainer_module
    from engine.training.control import Control
    from engine.training.trainer import Trainer, TrainOptions

    monkeypatch.setattr(trainer_module, "VIEWER_READY_S", 0.5)
    started = time.perf_counter()
    result = Trainer(TrainOptions(mlp_project({"epochs": 1}), wait_for_viewer=True), lambda e: None,
                     Control(queue.Queue())).run()
    assert result.kind == "finished" and 0.5 <= time.perf_counter() - started < 30
