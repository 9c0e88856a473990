"""Training in a separate process, with events streaming back over a queue.

A crash, a CUDA out-of-memory or a kill of the worker leaves the parent (the GUI or the
CLI) alive: :meth:`TrainingProcess.poll` notices the dead process within one poll and
reports a :class:`~engine.training.events.Failed` event naming the last checkpoint.
The worker is started with the ``spawn`` method (safe with Qt and CUDA) from a frozen
copy of the project (its file text), never from live objects.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from engine.training.events import (TERMINAL, BatchMetrics, CheckpointWritten, EpochEnd, Event, Failed,
                                    PredictionSnapshot, event_from_json)

_CONTEXT = mp.get_context("spawn")
#: Events that come with every epoch or every few batches; the others (start, state, learning
#: rate, the end) are sent at once.
PERIODIC = (BatchMetrics, EpochEnd, PredictionSnapshot, CheckpointWritten)
#: The longest a periodic event waits to be sent with the ones after it (seconds).
SEND_INTERVAL = 0.05
#: Seconds a worker whose parent died may take to write its stop checkpoint before it exits anyway.
STOP_GRACE_SECONDS = 4.0
#: Exit code of a worker that did not stop within the grace period.
EXIT_STOP_DEADLINE = 75
PR_SET_PDEATHSIG = 1
#: How long a SIGTERM waits to see whether it came from the parent's death (see ``_on_sigterm``).
PARENT_DEATH_WAIT_S = 0.5


class EventSender:
    """Sends the worker's events to the parent, several per queue message when they come fast.

    A queue message costs the worker a pickling and a pipe write and wakes the parent; with
    epochs of a few milliseconds that was 400 messages a second and 5-10% of the training
    speed on two cores. Periodic events are therefore sent at most every
    :data:`SEND_INTERVAL` seconds, as a list; anything else is sent at once with what waits
    before it, so the order never changes. A daemon thread sends what is left when the
    trainer goes quiet, so no event waits longer than the interval.

    Args:
        events: The multiprocessing queue to the parent.
        interval: Seconds between messages while events come fast.
    """

    def __init__(self, events: Any, interval: float = SEND_INTERVAL) -> None:
        self.events = events
        self.interval = interval
        self.waiting: list[dict[str, Any]] = []
        self.last_sent = 0.0
        self.closed = False
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._send_late, name="event-sender", daemon=True)
        self.thread.start()

    def __call__(self, event: Event) -> None:
        """Queue ``event``; send now if it is urgent or the interval has passed."""
        data = event.to_json()
        with self.condition:
            self.waiting.append(data)
            if not isinstance(event, PERIODIC) or time.monotonic() - self.last_sent >= self.interval:
                self._send()
            elif len(self.waiting) == 1:  # the thread wakes once per message, not once per event
                self.condition.notify()

    def close(self) -> None:
        """Send what waits and stop the thread."""
        with self.condition:
            self.closed = True
            self._send()
            self.condition.notify()
        self.thread.join(1.0)

    def _send(self) -> None:  # holds the condition
        if self.waiting:
            self.events.put(self.waiting)
            self.waiting = []
            self.last_sent = time.monotonic()

    def _send_late(self) -> None:
        with self.condition:
            while not self.closed:
                if not self.waiting:
                    self.condition.wait()
                    continue
                delay = self.last_sent + self.interval - time.monotonic()
                if delay > 0:
                    self.condition.wait(delay)
                    continue
                self._send()


def _worker_main(project_text: str, run_dir: str | None, base_dir: str | None, overrides: dict[str, Any],
                 resume: bool, weights_file: str | None, events: Any, commands: Any, sent: Any,
                 death_signal: bool = False, viewer: bool = False) -> None:
    """Entry point of the worker process: build the trainer and stream its events."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle: it sends "stop"
    # Streamed data is read by DataLoader worker processes, children of this one, and a daemonic process
    # may not start children. The parent still sees this process as a daemon (it ends with the parent);
    # the loader's own workers are daemons of this process and end with it.
    mp.current_process().daemon = False
    from engine.graph.fileformat import loads
    from engine.training.control import Control
    from engine.training.trainer import Trainer, TrainOptions

    sender = EventSender(events)
    control = Control(commands, sent)
    guard = ParentGuard(control)
    guard.start(death_signal)
    try:
        project = loads(project_text, source="project")
        options = TrainOptions(project, Path(run_dir) if run_dir else None, Path(base_dir) if base_dir else None,
                               overrides, resume, weights_file=Path(weights_file) if weights_file else None,
                               wait_for_viewer=viewer)
        Trainer(options, sender, control).run()
    except BaseException as exc:  # noqa: BLE001 - report, then let the process end
        sender(Failed(time.time(), "error", f"the training process failed to start: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()
        if guard.parent_gone:  # nobody reads the queue: do not wait for its pipe to drain
            events.cancel_join_thread()
        events.close()
        events.join_thread()
    _exit_at_once()


def _exit_at_once() -> None:
    """End the worker without the interpreter's teardown, which takes about 0.9 s with torch loaded
    (the CLI, the app and every search trial waited for it). By now the events are delivered and the
    run folder's files are closed; what teardown would still do is done here: the daemonic children
    (streamed data's DataLoader workers) are ended and the output streams flushed."""
    import logging

    children = mp.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=2)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced streams: nothing to flush
            pass
    os._exit(0)


class ParentGuard:
    """Ends the worker soon after its parent (the app or the CLI) dies, however it dies.

    A thread waits on the parent's sentinel (a pipe on POSIX, the process handle on
    Windows), which wakes the moment the parent is gone; on Linux ``PR_SET_PDEATHSIG`` also
    turns the parent's death into SIGTERM. Either asks the trainer to stop after the current
    batch, which writes the stop checkpoint; if the worker has not ended
    :data:`STOP_GRACE_SECONDS` later (stuck loading data, say) it exits at once. SIGTERM to
    the worker itself is treated the same way.

    Args:
        control: The trainer's command reader, asked to stop.
    """

    def __init__(self, control: Any) -> None:
        self.control = control
        self.parent_gone = False
        self._deadline_started = False
        self._lock = threading.Lock()

    def start(self, death_signal: bool) -> None:
        """Watch the parent; ``death_signal``: also ask Linux for SIGTERM at its death."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
            if death_signal:
                _set_parent_death_signal(signal.SIGTERM)
        parent = mp.parent_process()
        if parent is not None:
            threading.Thread(target=self._watch, args=(parent.sentinel,), name="parent-watch", daemon=True).start()

    def _watch(self, sentinel: Any) -> None:
        from multiprocessing.connection import wait

        wait([sentinel])
        self.parent_gone = True
        self.stop("the app or command that started it ended")

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        parent = mp.parent_process()
        # Linux sends the parent's death signal when the parent *thread* that started this process
        # exits, which can be a moment before the parent process is gone (its sentinel closed, this
        # process re-parented): give a dying parent half a second to show before calling it a request.
        if parent is not None and (os.getppid() != parent.pid or not parent.is_alive() or
                                   (parent.join(PARENT_DEATH_WAIT_S) or not parent.is_alive())):
            self.parent_gone = True
            self.stop("the app or command that started it ended")
        else:
            self.stop("it was asked to terminate (SIGTERM)")

    def stop(self, reason: str) -> None:
        """Ask the trainer to stop; exit hard if it has not ended after the grace period."""
        self.control.request_stop(reason)
        with self._lock:
            if self._deadline_started:
                return
            self._deadline_started = True
        threading.Thread(target=self._exit_later, name="stop-deadline", daemon=True).start()

    @staticmethod
    def _exit_later() -> None:
        time.sleep(STOP_GRACE_SECONDS)
        os._exit(EXIT_STOP_DEADLINE)


def _set_parent_death_signal(signum: int) -> None:
    """Linux only: the kernel sends ``signum`` to this process when its parent thread dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        return


class TrainingProcess:
    """A training run in a worker process.

    Args:
        project_text: The project file text (a frozen copy).
        run_dir: Folder for the run's files.
        base_dir: Folder relative dataset paths resolve against.
        overrides: Settings that override the project's (``epochs``, ``device``, ...).
        resume: Continue from ``run_dir``'s checkpoint.
        weights_file: The project's own weights file, which a new run starts from
            (:attr:`~engine.training.trainer.TrainOptions.weights_file`).
        viewer: A dashboard draws the run: the worker waits (briefly) for :meth:`ready` after
            the run's start before its first step.
    """

    def __init__(self, project_text: str, run_dir: Path | None, base_dir: Path | None = None,
                 overrides: dict[str, Any] | None = None, resume: bool = False,
                 weights_file: Path | None = None, viewer: bool = False) -> None:
        self._events = _CONTEXT.Queue()
        self._commands = _CONTEXT.Queue()
        self._sent = _CONTEXT.RawValue("q", 0)  # commands sent so far: the worker's cheap check
        self.run_dir = run_dir
        # PR_SET_PDEATHSIG fires when the creating *thread* ends: only ask for it from the main thread.
        death_signal = threading.current_thread() is threading.main_thread()
        self._process = _CONTEXT.Process(
            target=_worker_main, name="neural-canvas-training", daemon=True,
            args=(project_text, str(run_dir) if run_dir else None, str(base_dir) if base_dir else None,
                  dict(overrides or {}), resume, str(weights_file) if weights_file else None, self._events,
                  self._commands, self._sent, death_signal, viewer))
        self.finished: Event | None = None
        self.last_checkpoint_epoch: int | None = None

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        """Start the worker (returns at once).

        The worker is spawned with SIGINT ignored (an ignored signal stays ignored across
        exec, and Python then installs no KeyboardInterrupt handler): a Ctrl+C in a terminal
        reaches the whole process group, and only the parent should act on it, by sending
        "stop" so the run ends after its batch with a checkpoint.
        """
        with _sigint_ignored():
            self._process.start()

    def pause(self) -> None:
        """Pause after the current batch."""
        self._send("pause")

    def resume(self) -> None:
        """Continue a paused run."""
        self._send("resume")

    def stop(self) -> None:
        """Stop after the current batch; the worker writes a checkpoint and weights first."""
        self._send("stop")

    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate (recorded as an event)."""
        self._send("set_lr", float(lr))

    def ready(self) -> None:
        """Say that the viewer has drawn the run's first view (the worker starts its first step)."""
        self._send("ready")

    def kill(self) -> None:
        """End the worker at once (no checkpoint)."""
        if self._process.is_alive():
            self._process.kill()

    def _send(self, command: str, value: Any = None) -> None:
        if self._process.is_alive():
            self._commands.put((command, value))
            self._sent.value += 1

    # ----------------------------------------------------------------- events
    @property
    def running(self) -> bool:
        """Whether the run has not ended (no closing event yet)."""
        return self.finished is None

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Events that arrived, waiting up to ``timeout`` for the first one.

        When the worker has died without a closing event, a :class:`Failed` event says so.
        """
        events: list[Event] = []
        block = timeout > 0
        while True:
            try:
                data = self._events.get(timeout=timeout) if block else self._events.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                break
            block = False
            events.extend(self._receive(item) for item in data)
        if self.finished is None and not self._process.is_alive() and self._process.exitcode is not None:
            events.extend(self._drain_after_exit())
        return events

    def _receive(self, data: dict[str, Any]) -> Event:
        """Decode one event and note checkpoints and the end of the run."""
        event = event_from_json(data)
        if isinstance(event, CheckpointWritten):
            self.last_checkpoint_epoch = event.epoch
        if isinstance(event, TERMINAL):
            self.finished = event
        return event

    def _drain_after_exit(self) -> list[Event]:
        """Collect what the dead worker sent, then report its death if it sent no closing event."""
        events: list[Event] = []
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                data = self._events.get(timeout=0.05)
            except (queue.Empty, EOFError, OSError):
                break
            events.extend(self._receive(item) for item in data)
            if self.finished is not None:
                return events
        code = self._process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        message = f"the training process {how} before finishing"
        if self.run_dir is not None:
            from engine.training.run_dir import abandoned_message, mark_failed, read_run_info

            info = read_run_info(self.run_dir)
            if self.last_checkpoint_epoch:
                info["checkpoint_epoch"] = self.last_checkpoint_epoch
            message = abandoned_message(info, f"{how} before finishing")
            if info:  # the worker got as far as run.json: record how it ended there too
                mark_failed(self.run_dir, message)
            if info.get("checkpoint_epoch"):
                message += f" (python main.py train --resume {self.run_dir}, or Ctrl+F5 in the app)"
        failed = Failed(time.time(), "crashed", message)
        self.finished = failed
        events.append(failed)
        return events

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker to exit."""
        self._process.join(timeout)

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        """The worker's exit status (``None`` while it runs; negative: the signal that ended it)."""
        return self._process.exitcode


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
