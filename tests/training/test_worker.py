"""The worker process: events stream back, commands work, a killed worker is noticed at once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from engine.graph.fileformat import dumps
from engine.training.events import CheckpointWritten, EpochEnd, Failed, Finished, RunStarted, StateChanged
from engine.training.worker import TrainingProcess
from tests.training.helpers import mlp_project


def collect(worker: TrainingProcess, until, limit: float = 120.0) -> list:  # noqa: ANN001
    events: list = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for event in worker.poll(timeout=0.1):
            events.append(event)
            if until(event):
                return events
        if not worker.running:
            return events
    raise AssertionError(f"timed out; got {[e.kind for e in events]}")


def test_events_stream_and_stop_writes_a_resumable_run(tmp_path: Path) -> None:
    worker = TrainingProcess(dumps(mlp_project({"epochs": 200})), tmp_path / "run")
    worker.start()
    events = collect(worker, lambda e: isinstance(e, EpochEnd) and e.epoch == 2)
    assert isinstance(events[0], RunStarted)
    worker.pause()
    events += collect(worker, lambda e: isinstance(e, StateChanged) and e.state == "paused")
    worker.stop()
    events += collect(worker, lambda e: isinstance(e, Finished))
    worker.join(10)
    assert isinstance(worker.finished, Finished) and worker.finished.reason == "stopped"
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "model.safetensors").is_file()


def test_killed_worker_is_reported_within_a_second(tmp_path: Path) -> None:
    worker = TrainingProcess(dumps(mlp_project({"epochs": 500})), tmp_path / "run")
    worker.start()
    collect(worker, lambda e: isinstance(e, CheckpointWritten))
    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    events = collect(worker, lambda e: isinstance(e, Failed), limit=5)
    assert time.monotonic() - killed < 1.5
    failed = events[-1]
    assert failed.reason == "crashed" and "killed by signal 9" in failed.message
    assert "can be resumed" in failed.message


def test_failures_inside_the_worker_arrive_as_messages(tmp_path: Path) -> None:
    project = mlp_project()
    project.graph.set_param("x", "shape", (5,))
    worker = TrainingProcess(dumps(project), tmp_path / "run")
    worker.start()
    events = collect(worker, lambda e: isinstance(e, Failed), limit=60)
    assert events[-1].reason == "data" and "Input node x declares (N, 5)" in events[-1].message


class _ListQueue:
    """Stands in for the multiprocessing queue: records each message."""

    def __init__(self) -> None:
        self.messages: list[list[dict]] = []

    def put(self, message: list[dict]) -> None:
        self.messages.append(list(message))


def test_event_sender_batches_fast_periodic_events_and_sends_the_rest_at_once() -> None:
    from engine.training.events import BatchMetrics
    from engine.training.worker import EventSender

    out = _ListQueue()
    sender = EventSender(out, interval=0.2)
    for step in range(50):  # fast periodic events: the first goes at once, the rest wait
        sender(BatchMetrics(0.0, 0, step, step, {"loss": 1.0}, 0.1, 10.0))
    assert len(out.messages) == 1
    sender(StateChanged(0.0, "paused", 50))  # urgent: sent at once, after what waited
    assert len(out.messages) == 2
    assert [m["type"] for m in out.messages[1]] == ["batch"] * 49 + ["state"]
    sender(BatchMetrics(0.0, 0, 51, 51, {"loss": 1.0}, 0.1, 10.0))  # waits for the interval...
    assert len(out.messages) == 2
    time.sleep(0.4)  # ...then the sender's thread sends it although nothing else came
    assert [m["step"] for m in out.messages[2]] == [51]
    sender.close()
    steps = [m.get("step", m.get("global_step")) for message in out.messages for m in message]
    assert steps == [*range(50), 50, 51]  # nothing lost, nothing reordered


def test_a_streamed_dataset_trains_in_the_worker_with_decoding_workers(tmp_path: Path) -> None:
    """The worker process (a daemon of the app or the CLI) starts the DataLoader worker processes that
    read streamed data: a daemon may not have children, so this failed in the app and from the CLI."""
    import numpy as np

    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)  # savez: mapped in place, no cache
    np.savez(tmp_path / "t.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    project = mlp_project({"epochs": 2, "num_workers": 1})
    project.dataset = {"name": "npz", "path": str(tmp_path / "t.npz"), "storage": "stream"}
    worker = TrainingProcess(dumps(project), tmp_path / "run")
    worker.start()
    import psutil

    events = collect(worker, lambda e: isinstance(e, EpochEnd | Finished | Failed))
    children = psutil.Process(worker.pid).children()  # its DataLoader workers, while it trains
    events += collect(worker, lambda e: isinstance(e, Finished | Failed))
    worker.join(10)
    assert isinstance(events[-1], Finished), getattr(events[-1], "message", events[-1])
    assert sum(isinstance(e, EpochEnd) for e in events) == 2
    # the worker ends at once after its last event, and its decoding workers end with it
    assert children and worker.exitcode == 0
    psutil.wait_procs(children, timeout=5)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


def test_the_worker_exits_right_after_its_last_event(tmp_path: Path) -> None:
    """The interpreter's teardown with torch loaded took about 0.9 s, which the CLI, the app and every
    search trial waited for after the run had ended; the worker now skips it."""
    worker = TrainingProcess(dumps(mlp_project({"epochs": 1})), tmp_path / "run")
    worker.start()
    collect(worker, lambda e: isinstance(e, Finished))
    ended = time.monotonic()
    worker.join(10)
    assert time.monotonic() - ended < 0.5 and worker.exitcode == 0
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "metrics.jsonl").read_text()
