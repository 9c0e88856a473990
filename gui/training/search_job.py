"""A search running from the app: :func:`~engine.search.session.start_search` and
:meth:`SearchRunner.run() <engine.search.runner.SearchRunner.run>` on a Python thread.

The thread never touches a Qt object. It puts what happens (the opened study, every
:class:`~engine.search.trial.TrialUpdate`, the end with its error message) into a plain
thread-safe queue; a timer on the GUI thread drains the queue at most
:data:`DRAIN_HZ` times a second and re-emits the items as signals. A window closed while
a search runs can therefore never be reached from the thread.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from engine.errors import UserError

if TYPE_CHECKING:  # Optuna loads with the first search, not with the app
    from engine.search.session import SearchRequest

#: Times a second the GUI takes the search's news.
DRAIN_HZ = 10
#: Words for each press of Stop (the runner's first, second, third stop).
STOP_WORDS = {1: "Stopping after the running trials' epoch (Stop again: at once)…",
              2: "Stopping the running trials now (Stop again: kill them)…", 3: "Killing the running trials…"}


class SearchJob(QObject):
    """One search on its own thread.

    Args:
        request: What to search (the project in it is a frozen copy: later edits do not reach it).
        weights_file: Weights the trials start from (the project's own), or ``None``.

    Signals:
        opened(object): The study is open (an :class:`~engine.search.study.OpenStudy`).
        updates(list): :class:`~engine.search.trial.TrialUpdate` objects, in order.
        ended(str): The search is over: ``""``, or the one-line reason it could not run.
    """

    opened = Signal(object)
    updates = Signal(list)
    ended = Signal(str)

    def __init__(self, request: SearchRequest, weights_file: Any = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request, self.weights_file = request, weights_file
        self.finished = False
        self._control = _Control()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=_main, args=(request, weights_file, self._queue, self._control),
                                         name="search", daemon=True)
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // DRAIN_HZ)
        self._timer.timeout.connect(self.drain)

    @property
    def active(self) -> bool:
        """Whether the search has started and its end was not yet reported."""
        return self._thread.ident is not None and not self.finished

    @property
    def stops(self) -> int:
        """How many times Stop was pressed."""
        return self._control.stops

    def start(self) -> None:
        """Start the thread (it opens the study, then runs trials until the study is done)."""
        self._thread.start()
        self._timer.start()

    def stop(self) -> str:
        """Stop: the first press lets the running trials finish their epoch, the second stops
        them within a batch, the third kills them. Returns what happens, in words."""
        return STOP_WORDS.get(self._control.stop(), STOP_WORDS[3])

    def drain(self) -> None:
        """Take the thread's news and emit it (the timer calls this on the GUI thread)."""
        batch: list[Any] = []
        end: str | None = None
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "update":
                batch.append(item)
                continue
            if batch:
                self.updates.emit(batch)
                batch = []
            if kind == "opened":
                self.opened.emit(item)
            else:
                end = item
        if batch:
            self.updates.emit(batch)
        if end is not None and not self.finished:
            self.finished = True
            self._timer.stop()
            self.ended.emit(end)

    def shutdown(self, stop_wait_s: float = 5.0, kill_wait_s: float = 3.0) -> bool:
        """Stop the search for good (the window closes): stop the trials within a batch, wait
        ``stop_wait_s`` for their checkpoints, then kill them and wait ``kill_wait_s``.

        Events keep being processed while it waits. Returns whether the thread ended.
        """
        if not self._thread.is_alive():
            return True
        while self.stops < 2:
            self.stop()
        if not self._wait(stop_wait_s):
            self.stop()
            self._wait(kill_wait_s)
        return not self._thread.is_alive()

    def _wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            QCoreApplication.processEvents()
            self._thread.join(0.05)
        return not self._thread.is_alive()


class _Control:
    """The stop presses and the runner, shared by the GUI thread and the search thread (plain Python)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stops = 0
        self.runner: Any = None

    def stop(self) -> int:
        """Press Stop once; returns how many presses so far."""
        with self.lock:
            self.stops += 1
            runner, stops = self.runner, self.stops
        if runner is not None:
            runner.stop()
        return stops

    def adopt(self, runner: Any) -> None:
        """(Search thread) The runner exists: apply the stops pressed while the study opened."""
        with self.lock:
            self.runner, stops = runner, self.stops
        for _ in range(stops):
            runner.stop()


def _main(request: SearchRequest, weights_file: Any, news: queue.Queue[tuple[str, Any]], control: _Control) -> None:
    """The search thread: open the study, run it, say how it ended (never raises)."""
    from engine.search.runner import SearchRunner
    from engine.search.session import start_search

    def report(update: Any) -> None:
        news.put(("update", update))

    try:
        context, limits, opened = start_search(request, report, weights_file)
        news.put(("opened", opened))
        runner = SearchRunner(context, limits)
        control.adopt(runner)
        runner.run()
        news.put(("ended", ""))
    except UserError as exc:
        news.put(("ended", str(exc)))
    except Exception as exc:  # noqa: BLE001 - shown to the person, never raised into Qt
        news.put(("ended", f"{type(exc).__name__}: {exc}"))
