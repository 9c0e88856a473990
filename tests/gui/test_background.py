"""BackgroundCall: results reach the GUI thread, and a call deleted while its job runs stays quiet."""

from __future__ import annotations

import time

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject

from gui.background import BackgroundCall


def test_a_result_arrives_on_the_gui_thread_with_its_ticket(qtbot) -> None:  # noqa: ANN001
    call = BackgroundCall()
    got = []
    call.done.connect(lambda ticket, result, error: got.append((ticket, result, error)))
    ticket = call.start(lambda: 41 + 1)
    assert call.wait()
    assert got == [(ticket, 42, "")]


def test_deleting_the_owner_while_a_job_runs_does_not_crash(qtbot) -> None:  # noqa: ANN001
    for _ in range(20):  # the owner (a window) goes while its job is still loading
        owner = QObject()
        call = BackgroundCall(owner)
        got = []
        call.done.connect(lambda *args: got.append(args))
        call.start(lambda: time.sleep(0.02) or "late")
        shiboken6.delete(owner)  # deletes the call and its pool (which waits for the job)
        for _ in range(5):
            QCoreApplication.processEvents()
        assert got == []


def test_owners_closed_while_their_jobs_run_neither_crash_nor_wait(qtbot) -> None:  # noqa: ANN001
    """Windows closed (deleteLater) while several jobs load, then the jobs finish: nothing is delivered
    to the dead calls, the close does not wait for the jobs, and a live call still gets its answer."""
    import gc

    live = BackgroundCall()
    answers = []
    live.done.connect(lambda ticket, result, error: answers.append(result))
    for round_ in range(15):
        owners = [QObject() for _ in range(3)]
        for owner in owners:
            call = BackgroundCall(owner)
            call.done.connect(lambda *args: answers.append("dead"))
            for _ in range(2):
                call.start(lambda: time.sleep(0.05) or "late")
        started = time.monotonic()
        for owner in owners:
            owner.deleteLater()
        QCoreApplication.sendPostedEvents(None, 52)  # QEvent.DeferredDelete
        assert time.monotonic() - started < 0.05  # closing did not wait for the jobs (0.1 s each)
        gc.collect()
        live.start(lambda r=round_: r)
        assert live.wait()
    time.sleep(0.3)
    for _ in range(5):
        QCoreApplication.processEvents()
    assert answers == list(range(15))
