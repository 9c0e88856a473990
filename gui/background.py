"""Run slow work (loading data, importing torch, exporting) off the GUI thread.

:class:`BackgroundCall` runs one function at a time in its own thread pool and reports
``done(ticket, result, error)`` on the GUI thread: ``error`` is the message of a
:class:`~engine.errors.UserError` (or of any other exception, prefixed by its type), so a
failing job never takes the app down. Each call gets a ticket; a view that only wants the
newest answer compares it with :attr:`BackgroundCall.ticket`.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRunnable, QThreadPool, Signal

from engine.errors import UserError


class _Relay(QObject):
    """Carries one job's result to its BackgroundCall. The job keeps it alive, so a job that ends after
    its BackgroundCall was deleted (a closed window) emits into a connection Qt has already removed,
    never into a half-destroyed object."""

    report = Signal(int, object, str)


class _Job(QRunnable):
    def __init__(self, ticket: int, work: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.ticket, self.work, self.relay = ticket, work, relay
        self.report = relay.report

    def run(self) -> None:
        try:
            result, error = self.work(), ""
        except UserError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the view, never raised into Qt
            result, error = None, f"{type(exc).__name__}: {exc}"
        try:
            self.report.emit(self.ticket, result, error)
            self.relay.deleteLater()  # on the GUI thread it lives in, after what it carries
        except RuntimeError:  # deleted meanwhile
            pass


class BackgroundCall(QObject):
    """One worker thread; jobs run in the order they were started.

    Signals:
        done(int, object, str): ticket, result (``None`` on error), error message (``""`` on success).
    """

    done = Signal(int, object, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ticket = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)

    def start(self, work: Callable[[], Any]) -> int:
        """Run ``work()`` in the background; returns its ticket."""
        self.ticket += 1
        relay = _Relay()  # lives in this (the GUI) thread: its signal reaches ``done`` queued
        relay.report.connect(self.done)
        self._pool.start(_Job(self.ticket, work, relay))
        return self.ticket

    def cancel(self) -> None:
        """Make the results of every job started so far stale (their ``done`` carries an old ticket)."""
        self.ticket += 1

    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return self._pool.activeThreadCount() > 0

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until every started job has finished and its ``done`` was delivered (tests, start-up checks)."""
        finished = self._pool.waitForDone(msecs)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.MetaCall)
        return finished
