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
