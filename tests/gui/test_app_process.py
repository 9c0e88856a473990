"""The app as a process: killed or terminated while it trains, nothing keeps running and nothing is lost.

The app runs in a child process (offscreen), opens a project, makes an unsaved edit and starts
training in its worker; the test then kills or terminates the app.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.graph.fileformat import save_project
from tests.conftest import ROOT
from tests.training.helpers import mlp_project
from tests.training.test_process_lifecycle import alive, run_info, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

DRIVER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui import commands
from gui.app import _finish, quit_on_terminate
from gui.main_window import MainWindow
window = MainWindow(QSettings(sys.argv[3], QSettings.Format.IniFormat))
assert window.open_project(Path(sys.argv[2]))
window.document.push(commands.set_param(window.document.graph, "fc1", "out_features", 20))
window.show()
QTimer.singleShot(0, window.actions["train"].trigger)
quit_on_terminate(app, window)
sys.exit(_finish(app.exec(), window))
"""


@pytest.fixture
def app_training(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, dict[str, Any]]:
    project = tmp_path / "mlp.json"
    save_project(mlp_project({"epochs": 100_000}), project)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NEURAL_CANVAS_RUNS_DIR": str(tmp_path / "runs"),
           "NEURAL_CANVAS_RECOVERY_DIR": str(tmp_path / "recovery")}
    app = subprocess.Popen([sys.executable, "-c", DRIVER, str(ROOT), str(project), str(tmp_path / "app.ini")],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def first_checkpoint() -> tuple[Path, dict[str, Any]] | None:
        for run in (tmp_path / "runs").glob("*/run.json"):
            info = run_info(run.parent)
            if info.get("status") == "running" and info.get("checkpoint_epoch", 0) >= 1:
                return run.parent, info
        return None

    try:
        run, info = wait_for(first_checkpoint, limit=120, what="the app's run to checkpoint")
        yield app, run, info
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)


def test_kill_9_of_the_app_ends_its_worker_within_5_s(app_training: Any) -> None:
    app, run, info = app_training
    app.kill()
    app.wait(10)
    killed = time.monotonic()
    wait_for(lambda: not alive(int(info["pid"])), limit=10, what="the worker to end")
    assert time.monotonic() - killed < 5.0
    final = run_info(run)
    assert final["status"] == "stopped" and (run / "checkpoint.pt").is_file()


def test_sigterm_stops_the_run_keeps_the_edit_and_quits(app_training: Any, tmp_path: Path) -> None:
    app, run, info = app_training
    app.send_signal(signal.SIGTERM)
    assert app.wait(20) == 0
    wait_for(lambda: not alive(int(info["pid"])), limit=10, what="the worker to end")
    assert run_info(run)["status"] == "stopped"
    (recovery,) = (tmp_path / "recovery").glob("*.json")
    saved = json.loads(recovery.read_text())
    nodes = {node["id"]: node for node in saved["project"]["graph"]["nodes"]}
    assert nodes["fc1"]["params"]["out_features"] == 20 and saved["pid"] == app.pid
