"""Commands into a running trainer: pause, resume, stop, set the learning rate, viewer ready.

The trainer polls between batches, so each command takes effect within one batch. The
same interface works in-process (a thread-safe queue) and across processes (a
multiprocessing queue); the trainer does not know which. "ready" is the app's word that its
dashboard has drawn the run's first view (:meth:`Control.await_ready`).
"""

from __future__ import annotations

import queue
import time
from typing import Any, Protocol

Command = tuple[str, Any]
COMMANDS = ("pause", "resume", "stop", "set_lr", "ready")


class CommandSource(Protocol):
    """Where commands come from: anything with ``get`` / ``get_nowait`` like a queue."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...

    def get_nowait(self) -> Any: ...


class Control:
    """Reads commands for a trainer.

    Args:
        source: A ``queue.Queue`` or ``multiprocessing.Queue`` of ``(command, value)``;
            ``None`` for a run that takes no commands.
        sent: A shared counter (``multiprocessing.RawValue``) the sender increments after
            each command. Reading it costs nanoseconds, where asking a multiprocessing queue
            costs tens of microseconds, so the trainer can check before every batch.
    """

    def __init__(self, source: CommandSource | None = None, sent: Any = None) -> None:
        self.source = source
        self.sent = sent
        self.seen = 0
        #: Why the run must stop although no stop command came (set from another thread or a
        #: signal handler: the parent process died, SIGTERM); ``None`` while nothing asks.
        self.stop_reason: str | None = None
        #: Commands that arrived while waiting for "ready", handed out by the next poll.
        self.backlog: list[Command] = []

    def await_ready(self, timeout: float) -> bool:
        """Wait until the viewer says "ready", at most ``timeout`` seconds; returns whether it did.

        The app's dashboard builds its views when a run starts; training at full speed while
        the window does that first work costs both (on two cores, epochs 2 and 3 of a short run
        trained at half speed). Other commands that come meanwhile wait in :attr:`backlog`; a
        stop ends the wait.
        """
        if self.source is None:
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and self.stop_reason is None:
            try:
                command = _checked(self.source.get(timeout=min(left, 0.25)))
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return False
            self.seen += 1
            if command[0] == "ready":
                return True
            self.backlog.append(command)
            if command[0] == "stop":
                return False
        return False

    def request_stop(self, reason: str) -> None:
        """Stop after the current batch, as a stop command would (safe from any thread)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def pending(self) -> bool:
        """Whether commands may be waiting (cheap enough to ask before every batch)."""
        if self.stop_reason is not None or self.backlog:
            return True
        if self.source is None:
            return False
        if self.sent is not None:
            return self.sent.value != self.seen
        empty = getattr(self.source, "empty", None)
        return empty is None or not empty()

    def poll(self) -> list[Command]:
        """Commands waiting now (never blocks)."""
        if self.stop_reason is not None:
            return [("stop", None)]
        if self.source is None:
            return []
        commands, self.backlog = self.backlog, []
        while True:
            try:
                commands.append(_checked(self.source.get_nowait()))
                self.seen += 1
            except queue.Empty:
                return commands
            except (EOFError, OSError):  # the parent went away: stop cleanly
                return [*commands, ("stop", None)]

    def wait(self, timeout: float = 0.5) -> Command | None:
        """The next command, waiting up to ``timeout`` seconds (used while paused)."""
        if self.stop_reason is not None:
            return ("stop", None)
        if self.source is None:
            return ("resume", None)
        try:
            command = _checked(self.source.get(timeout=timeout))
            self.seen += 1
            return command
        except queue.Empty:
            return None
        except (EOFError, OSError):
            return ("stop", None)


def _checked(item: Any) -> Command:
    if not (isinstance(item, tuple) and len(item) == 2 and item[0] in COMMANDS):
        raise ValueError(f"unknown training command {item!r}")
    return item
