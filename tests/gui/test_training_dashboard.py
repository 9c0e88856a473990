"""Training from the window: curves and predictions arrive, run control works, failures are shown.

Each test trains a small MLP on 2-D points in a real worker process (spawned, as in the app).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from engine.graph.fileformat import save_project
from engine.training.events import Failed, Finished
from gui import commands
from gui.main_window import MainWindow
from tests.training.helpers import chain_project, mlp_project

RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    yield w
    w.training.shutdown()


def _open(window: MainWindow, tmp_path: Path, **training: object) -> Path:
    path = tmp_path / "mlp.json"
    project = mlp_project({"epochs": 4, **training}, hidden=32)
    project.dataset["samples"] = 400
    save_project(project, path)
    assert window.open_project(path)
    return path


def _wait_end(qtbot, window: MainWindow) -> object:
    ended: list[object] = []
    window.training.session.run_ended.connect(ended.append)
    qtbot.waitUntil(lambda: bool(ended), timeout=RUN_TIMEOUT_MS)
    return ended[0]


def test_a_run_draws_curves_and_predictions_and_locks_the_graph(qtbot, window: MainWindow,
                                                                 tmp_path: Path) -> None:
    _open(window, tmp_path)
    doc = window.document
    assert window.actions["train"].isEnabled() and not window.actions["stop"].isEnabled()
    window.actions["train"].trigger()
    session = window.training.session
    assert session.active and doc.read_only_reason
    before = len(doc.graph.nodes)
    assert not doc.push(commands.remove(doc.graph, ["act1"]))  # refused while training
    assert len(doc.graph.nodes) == before
    assert "Cannot edit" in window.statusBar().currentMessage()
    assert not window.actions["undo"].isEnabled() and not window.training.settings_panel.editors["lr"].isEnabled()
    end = _wait_end(qtbot, window)
    assert isinstance(end, Finished) and end.reason == "completed"
    assert doc.read_only_reason is None and window.actions["train"].isEnabled()
    plots = window.training.dashboard.plots
    plots.redraw()
    curves = plots.runs[plots.current]
    assert len(curves.items["val_loss"].xData) == 4
    assert len(curves.items["smooth"].xData) >= 1
    assert len(curves.items["val_metric"].yData) == 4 and max(curves.items["val_metric"].yData) > 0.7
    predictions = window.training.dashboard.predictions
    assert predictions.current_view == "decision_boundary"
    runs = window.training.dashboard.runs
    assert runs.topLevelItemCount() == 1 and runs.topLevelItem(0).text(1).endswith("%")
    assert "Epoch 4/4" in window.training.dashboard.progress.format()


def test_pause_set_learning_rate_resume_stop_and_resume_the_run(qtbot, window: MainWindow,
                                                                  tmp_path: Path) -> None:
    _open(window, tmp_path, epochs=200, batch_size=8)
    session = window.training.session
    dashboard = window.training.dashboard
    window.start_training()
    qtbot.waitUntil(lambda: session.history is not None and session.history.global_step > 0, timeout=RUN_TIMEOUT_MS)
    window.actions["pause"].trigger()
    qtbot.waitUntil(lambda: session.state == "paused", timeout=10_000)
    assert window.actions["pause"].text() == "Resume" and dashboard.lr_button.isEnabled()
    step = session.history.global_step
    qtbot.wait(400)
    session.poll()
    assert session.history.global_step == step  # really paused
    dashboard.lr_editor.set_value(0.0005)
    dashboard.lr_button.click()
    qtbot.waitUntil(lambda: bool(session.history.lr_marks), timeout=10_000)
    assert session.history.lr_marks[0][2] == pytest.approx(0.0005)
    window.actions["pause"].trigger()
    qtbot.waitUntil(lambda: session.state == "running" and session.history.global_step > step, timeout=10_000)
    window.actions["stop"].trigger()
    end = _wait_end(qtbot, window)
    assert isinstance(end, Finished) and end.reason == "stopped"
    run_dir = Path(session.history.run_dir)
    assert (run_dir / "checkpoint.pt").is_file()
    stopped_at = session.history.global_step
    assert window.training.resume_last()
    qtbot.waitUntil(lambda: session.history is not None and session.history.global_step > stopped_at,
                    timeout=RUN_TIMEOUT_MS)
    assert Path(session.history.run_dir) == run_dir
    window.stop_training()
    _wait_end(qtbot, window)
    assert dashboard.runs.topLevelItemCount() == 1  # the resumed run kept its row


def test_a_killed_worker_is_reported_and_the_app_keeps_working(qtbot, window: MainWindow,
                                                               tmp_path: Path) -> None:
    _open(window, tmp_path, epochs=200, batch_size=8)
    session = window.training.session
    window.start_training()
    qtbot.waitUntil(lambda: session.history is not None and session.history.global_step > 0, timeout=RUN_TIMEOUT_MS)
    session.process.kill()
    end = _wait_end(qtbot, window)
    assert isinstance(end, Failed) and end.reason == "crashed"
    box = window.training.failure_box
    assert box is not None and box.isVisible() and "killed" in box.text()
    box.close()
    assert "Failed" in window.training.dashboard.progress.format()
    doc = window.document
    assert doc.read_only_reason is None
    assert doc.push(commands.set_param(doc.graph, "fc1", "out_features", 8))  # editable again
    assert window.training.start()  # and trainable again
    window.stop_training()
    _wait_end(qtbot, window)


def test_a_nan_loss_ends_with_a_readable_message(qtbot, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "diverges.json"
    save_project(chain_project([("x", "input", {"shape": [10]}), ("fc1", "linear", {"out_features": 32}),
                                ("fc2", "linear", {"out_features": 1}), ("y", "output", {})],
                               {"name": "diabetes"}, {"epochs": 30, "lr": 10.0, "optimizer": "sgd"}), path)
    assert window.open_project(path)
    window.start_training()
    end = _wait_end(qtbot, window)
    assert isinstance(end, Failed) and end.reason == "nan"
    assert "lower the learning rate" in window.training.failure_box.text()
    assert window.training.dashboard.runs.topLevelItem(0).text(1).startswith("failed")


def test_a_second_run_overlays_the_first_and_a_new_window_finds_both(qtbot, window: MainWindow,
                                                                       tmp_path: Path) -> None:
    path = _open(window, tmp_path, epochs=2)
    for _ in range(2):
        window.start_training()
        _wait_end(qtbot, window)
    plots = window.training.dashboard.plots
    assert len(plots.runs) == 2
    colors = {curves.color for curves in plots.runs.values()}
    assert len(colors) == 2
    key = next(iter(plots.runs))
    window.training.dashboard.runs.items[key].setCheckState(0, window.training.dashboard.runs.items[key]
                                                            .checkState(0).Unchecked)
    assert not plots.runs[key].items["val_loss"].isVisible()
    other = MainWindow(QSettings(str(tmp_path / "settings2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    assert other.open_project(path)
    reloaded = other.training.dashboard.plots
    assert len(reloaded.runs) == 2
    assert all(len(c.history.epoch_x) == 2 for c in reloaded.runs.values())


def test_training_refuses_an_invalid_graph_or_data_that_does_not_fit(qtbot, window: MainWindow,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    _open(window, tmp_path)
    doc = window.document
    doc.push(commands.set_param(doc.graph, "x", "shape", [3]))
    doc.refresh_analysis()
    assert window.training.data_panel.wait_loaded()
    assert not window.training.start()
    assert shown and "Input node x" in shown[-1] and "(N, 3)" in shown[-1] and "2" in shown[-1]
    assert not window.training.session.active
    doc.push(commands.remove(doc.graph, ["act1"]))
    assert not window.training.start()
    assert "problem" in shown[-1]


def test_a_project_with_weights_beside_it_trains_from_them(qtbot, window: MainWindow, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from engine.compile import compile_graph

    path = _open(window, tmp_path)
    module = compile_graph(window.document.project.graph).module
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path.with_suffix(".safetensors")))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    window.actions["train"].trigger()
    assert isinstance(_wait_end(qtbot, window), Finished)
    assert "Training started from mlp.safetensors: 4 of 4 tensors" in messages
