"""A run belongs to one live process: fault injection on real processes.

kill -9 of the parent ends the worker (with its stop checkpoint), two writers on one folder
are refused with the holder's PID, a real Ctrl+C through a terminal stops after the batch,
and a killed run says so in run.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.graph.fileformat import save_project
from engine.training.history import RunHistory
from engine.training.run_dir import read_run
from engine.training.run_lock import RunLock, is_being_written
from tests.conftest import ROOT
from tests.training.helpers import mlp_project

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")

LONG = {"epochs": 100_000}


def wait_for(condition: Callable[[], Any], limit: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_info(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (already exited, not yet reaped by its new parent) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] not in "ZX"
    except OSError:
        return True


def start_train(*args: str, log: Path) -> subprocess.Popen[str]:
    """``main.py train ARGS`` in the background, its output in ``log`` (.out / .err)."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", *args], cwd=ROOT, text=True,
                                stdout=out, stderr=err)


def checkpointed(run: Path) -> dict[str, Any]:
    info = run_info(run)
    return info if info.get("status") == "running" and info.get("checkpoint_epoch", 0) >= 1 else {}


@pytest.fixture
def long_project(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    save_project(mlp_project(LONG), path)
    return path


def test_kill_9_of_the_parent_stops_the_worker_with_a_checkpoint(long_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    parent = start_train(str(long_project), "--out", str(run), "--quiet", log=tmp_path / "parent")
    info = wait_for(lambda: checkpointed(run), what="the first checkpoint")
    worker = int(info["pid"])
    assert worker != parent.pid and alive(worker)
    parent.kill()
    parent.wait(10)
    killed = time.monotonic()
    wait_for(lambda: not alive(worker), limit=10, what="the worker to end")
    assert time.monotonic() - killed < 5.0
    final = run_info(run)
    assert final["status"] == "stopped" and "started it ended" in final["message"]
    assert final["checkpoint_epoch"] >= 1 and (run / "checkpoint.pt").is_file()
    resumed = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--resume", str(run), "--epochs",
                              str(final["checkpoint_epoch"] + 1), "--quiet"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr


def test_a_second_writer_is_refused_with_the_holders_pid(long_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start_train(str(long_project), "--out", str(run), "--quiet", log=tmp_path / "first")
    try:
        info = wait_for(lambda: checkpointed(run), what="the first checkpoint")
        second = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--resume", str(run), "--quiet"],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1, second.stderr
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and f"process {info['pid']} is writing this run folder" in lines[0]
        assert "Traceback" not in second.stderr and "KeyError" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(60)
    assert run_info(run)["status"] == "stopped"
    assert len([line for line in (run / "metrics.jsonl").read_text().splitlines()
                if '"type": "run_started"' in line]) == 1


def test_the_apps_resume_of_a_folder_being_written_is_refused(long_project: Path, tmp_path: Path) -> None:
    from engine.graph.fileformat import dumps
    from engine.training.events import Failed
    from engine.training.worker import TrainingProcess
    from tests.training.test_worker import collect

    run = tmp_path / "run"
    cli = start_train(str(long_project), "--out", str(run), "--quiet", log=tmp_path / "cli")
    try:
        info = wait_for(lambda: checkpointed(run), what="the first checkpoint")
        app_worker = TrainingProcess(dumps(mlp_project(LONG)), run, tmp_path, resume=True)  # what Ctrl+F5 starts
        app_worker.start()
        events = collect(app_worker, lambda e: isinstance(e, Failed), limit=60)
        app_worker.join(10)
        assert isinstance(events[-1], Failed) and events[-1].reason == "config"
        assert f"process {info['pid']} is writing this run folder" in events[-1].message
    finally:
        cli.send_signal(signal.SIGINT)
        cli.wait(60)
    assert run_info(run)["status"] == "stopped"


def test_two_fresh_runs_into_one_folder_leave_one_run(tmp_path: Path) -> None:
    adam, sgd = tmp_path / "adam.json", tmp_path / "sgd.json"
    save_project(mlp_project({"epochs": 3, "optimizer": "adam"}), adam)
    save_project(mlp_project({"epochs": 3, "optimizer": "sgd"}), sgd)
    run = tmp_path / "run"
    processes = [start_train(str(path), "--out", str(run), "--quiet", log=tmp_path / path.stem)
                 for path in (adam, sgd)]
    codes = [p.wait(300) for p in processes]
    errors = [(tmp_path / f"{path.stem}.err").read_text() for path in (adam, sgd)]
    assert sorted(codes) == [0, 1], errors
    refused = errors[codes.index(1)]
    assert "is writing this run folder" in refused or "already holds a run" in refused
    info, project = read_run(run)
    assert info["config"]["optimizer"] == project.training["optimizer"]
    assert [json.loads(line)["type"] for line in (run / "metrics.jsonl").read_text().splitlines()].count(
        "run_started") == 1


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from pathlib import Path; from engine.training.run_lock import RunLock; "
                               "lock = RunLock(Path(sys.argv[2])); lock.acquire(); print('locked', flush=True); time.sleep(600)",
                               str(ROOT), str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    with holder.stdout:
        assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(Exception, match=f"process {holder.pid} is writing"):
        RunLock(run).acquire()
    holder.kill()
    holder.wait(10)
    lock = RunLock(run)
    lock.acquire()
    assert json.loads((run / ".writer.json").read_text())["pid"] == os.getpid()
    lock.release()


def test_ctrl_c_in_a_terminal_stops_after_the_batch_with_a_checkpoint(long_project: Path, tmp_path: Path) -> None:
    import pty

    run = tmp_path / "run"
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own with the pty as its controlling terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, str(ROOT / "main.py"), "train", str(long_project), "--out",
                                  str(run), "--quiet"])
    output = b""
    try:
        wait_for(lambda: checkpointed(run), what="the first checkpoint")
        os.write(fd, b"\x03")  # what the terminal sends for Ctrl+C: SIGINT to the foreground group
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    text = output.decode(errors="replace")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, text
    assert "KeyboardInterrupt" not in text and "failed to start" not in text
    assert "stopping after this batch" in text and "stopped:" in text
    info = run_info(run)
    assert info["status"] == "stopped" and (run / "checkpoint.pt").is_file()


def test_a_killed_worker_is_marked_failed_by_its_parent(long_project: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    parent = start_train(str(long_project), "--out", str(run), "--quiet", log=tmp_path / "parent")
    info = wait_for(lambda: checkpointed(run), what="the first checkpoint")
    os.kill(int(info["pid"]), signal.SIGKILL)
    assert parent.wait(30) == 2
    final = run_info(run)
    assert final["status"] == "failed"
    assert "killed by signal 9" in final["message"] and "checkpoint of epoch" in final["message"]


def test_a_run_whose_parent_died_too_is_marked_failed_by_the_next_reader(long_project: Path,
                                                                          tmp_path: Path) -> None:
    run = tmp_path / "run"
    parent = start_train(str(long_project), "--out", str(run), "--quiet", log=tmp_path / "parent")
    info = wait_for(lambda: checkpointed(run), what="the first checkpoint")
    os.kill(int(info["pid"]), signal.SIGKILL)
    parent.kill()
    parent.wait(10)
    wait_for(lambda: not is_being_written(run), limit=10, what="the worker's lock to go with it")
    assert run_info(run)["status"] == "running"  # nobody was left to say otherwise
    history = RunHistory.from_run_dir(run)
    final = run_info(run)
    assert final["status"] == "failed" and history.state == "failed"
    assert "ended without finishing" in final["message"] and "checkpoint of epoch" in final["message"]
