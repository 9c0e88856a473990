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


def test_a_reporting_job_sends_its_progress_to_the_gui_thread_in_order(qtbot) -> None:  # noqa: ANN001
    import threading

    call = BackgroundCall()
    seen: list[tuple[int, object, bool]] = []
    gui_thread = threading.current_thread()
    call.progress.connect(lambda ticket, value: seen.append((ticket, value, threading.current_thread() is gui_thread)))

    def work(report) -> str:  # noqa: ANN001
        for step in range(3):
            report(f"step {step}")
        return "done"

    ticket = call.start_reporting(work)
    assert call.wait()
    assert seen == [(ticket, "step 0", True), (ticket, "step 1", True), (ticket, "step 2", True)]
    owner = QObject()  # a call deleted while its job reports: the reports go nowhere, nothing crashes
    gone = BackgroundCall(owner)
    gone.start_reporting(lambda report: [time.sleep(0.01) or report(i) for i in range(5)])
    shiboken6.delete(owner)
    for _ in range(5):
        QCoreApplication.processEvents()


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


def test_reference_cycles_are_collected_on_the_gui_thread_not_by_a_worker_thread(qtbot) -> None:  # noqa: ANN001
    """A worker thread that allocates past the collector's threshold must not destroy the GUI's
    garbage (Qt objects in a reference cycle) from its own thread: the GUI thread's timer does."""
    import gc
    import threading

    from gui.background import GC_INTERVAL_S

    died_on: list[str] = []

    class Cyclic:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            died_on.append(threading.current_thread().name)

    Cyclic()  # garbage only the cyclic collector can find

    kept: list[list[object]] = []

    def allocate() -> None:
        kept.append([[] for _ in range(5 * gc.get_threshold()[0])])  # several generation-0 collections' worth

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    worker.join()
    assert died_on == []
    qtbot.waitUntil(lambda: bool(died_on), timeout=int(GC_INTERVAL_S * 1000) + 2000)
    assert died_on == [threading.main_thread().name]
