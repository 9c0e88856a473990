"""Run slow work (loading data, importing torch, exporting) off the GUI thread.

:class:`BackgroundCall` runs one function at a time on its own worker thread and reports
``done(ticket, result, error)`` on the GUI thread: ``error`` is the message of a
:class:`~engine.errors.UserError` (or of any other exception, prefixed by its type), so a
failing job never takes the app down. Each call gets a ticket; a view that only wants the
newest answer compares it with :attr:`BackgroundCall.ticket`. A job started with
:meth:`BackgroundCall.start_reporting` is handed a ``report(value)`` callable, safe to call from
its thread: each value arrives as ``progress(ticket, value)`` on the GUI thread, through the
same post box.

Lifetimes: a job may outlive the window that started it (a dialog closed while it loads).
Worker threads therefore never touch a Qt object that a window owns: they hand their result
to one post box that lives as long as the application, and the post box, on the GUI
thread, passes it on only to a BackgroundCall that still exists. (Each job carrying its
own signal object was the earlier design; that object could be destroyed from the worker
thread and from the GUI thread at once, a segfault about one test run in four.)

Python's cyclic garbage collector runs in whichever thread happens to allocate past its
threshold: a worker thread (a background job, a search's trial lanes) could then destroy a
window's Qt objects caught in a reference cycle from the wrong thread, which deadlocked a
search started from the window. :func:`collect_garbage_on_gui_thread` turns automatic
collection off and collects from a timer on the GUI thread instead (pyqtgraph's collector).
"""

from __future__ import annotations

import gc
import itertools
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal, Slot

from engine.errors import UserError


class _PostBox(QObject):
    """Carries results from worker threads to the GUI thread; created once, never deleted."""

    posted = Signal(int, int, object, str)  # call id, ticket, result, error
    reported = Signal(int, int, object)  # call id, ticket, progress value

    def __init__(self) -> None:
        super().__init__()
        self.receivers: weakref.WeakValueDictionary[int, BackgroundCall] = weakref.WeakValueDictionary()
        self.posted.connect(self._deliver)  # queued: the box lives on the GUI thread
        self.reported.connect(self._deliver_progress)

    def _receiver(self, call_id: int) -> BackgroundCall | None:
        receiver = self.receivers.get(call_id)
        return receiver if receiver is not None and shiboken6.isValid(receiver) else None

    @Slot(int, int, object, str)
    def _deliver(self, call_id: int, ticket: int, result: Any, error: str) -> None:
        receiver = self._receiver(call_id)
        if receiver is not None:
            receiver.done.emit(ticket, result, error)

    @Slot(int, int, object)
    def _deliver_progress(self, call_id: int, ticket: int, value: Any) -> None:
        receiver = self._receiver(call_id)
        if receiver is not None:
            receiver.progress.emit(ticket, value)


_post_box: _PostBox | None = None
_call_ids = itertools.count(1)
_collector: Any = None

#: Seconds between the GUI thread's checks for garbage to collect.
GC_INTERVAL_S = 0.5


def collect_garbage_on_gui_thread() -> None:
    """Collect reference cycles only on the GUI thread, from a timer (call it from that thread, once
    a QApplication exists; later calls do nothing while it is on)."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=GC_INTERVAL_S)
    elif not _collector.timer.isActive():
        gc.disable()
        _collector.timer.start()


def collect_garbage_anywhere() -> None:
    """Give collection back to Python's automatic collector (for test runs between GUI tests)."""
    if _collector is not None:
        _collector.timer.stop()
    gc.enable()


def _box() -> _PostBox:
    """The application's post box, made on first use (from the GUI thread, where views are built)."""
    global _post_box
    if _post_box is None:
        _post_box = _PostBox()
    return _post_box


def _run(work: Callable[[], Any]) -> tuple[Any, str]:
    """``work()``'s result and ``""``, or ``None`` and the one-line error it raised."""
    try:
        return work(), ""
    except UserError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported to the view, never raised into Qt
        return None, f"{type(exc).__name__}: {exc}"


class BackgroundCall(QObject):
    """One worker thread; jobs run in the order they were started.

    Signals:
        done(int, object, str): ticket, result (``None`` on error), error message (``""`` on success).
        progress(int, object): ticket and a value a :meth:`start_reporting` job reported.
    """

    done = Signal(int, object, str)
    progress = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ticket = 0
        self._id = next(_call_ids)
        self._box = _box()
        self._box.receivers[self._id] = self
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
        self._pending: list[Future[None]] = []

    def start(self, work: Callable[[], Any]) -> int:
        """Run ``work()`` in the background; returns its ticket."""
        self.ticket += 1
        ticket, call_id, box = self.ticket, self._id, self._box

        def job() -> None:
            result, error = _run(work)
            box.posted.emit(call_id, ticket, result, error)

        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self._executor.submit(job))
        return ticket

    def start_reporting(self, work: Callable[[Callable[[Any], None]], Any]) -> int:
        """Run ``work(report)`` in the background; each ``report(value)`` arrives as ``progress``."""
        ticket, call_id, box = self.ticket + 1, self._id, self._box

        def report(value: Any) -> None:
            box.reported.emit(call_id, ticket, value)

        return self.start(lambda: work(report))

    def cancel(self) -> None:
        """Make the results of every job started so far stale (their ``done`` carries an old ticket)."""
        self.ticket += 1

    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return any(not future.done() for future in self._pending)

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until every started job has finished and its ``done`` was delivered (tests, start-up checks)."""
        deadline = time.monotonic() + msecs / 1000
        for future in list(self._pending):
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                return False
        QCoreApplication.sendPostedEvents(None, QEvent.Type.MetaCall)
        return True
