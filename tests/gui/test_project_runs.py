"""A project's runs follow the project: Save As, renames, templates saved under a new name.

Runs are matched by the project id stored in the project file and in each run's frozen
``project.json``; runs of an untitled document move beside the file when it is first saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from engine.graph.fileformat import dumps, load_project, save_project
from engine.training.events import Finished
from gui.main_window import MainWindow
from gui.model_io.export_dialog import ExportDialog
from gui.training import session as session_module
from tests.training.helpers import mlp_project

RUN_TIMEOUT_MS = 90_000


@pytest.fixture
def app_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The untitled documents' runs folder (the app's data folder), inside the test's folder."""
    monkeypatch.delenv("NEURAL_CANVAS_RUNS_DIR", raising=False)
    root = tmp_path / "appdata" / "runs"
    monkeypatch.setattr(session_module, "untitled_runs_root", lambda: root)
    return root


def _window(qtbot, tmp_path: Path, name: str) -> MainWindow:  # noqa: ANN001
    window = MainWindow(QSettings(str(tmp_path / f"{name}.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    return window


def _fake_run(root: Path, name: str, project_text: str) -> Path:
    """A finished run folder as the trainer writes it (one epoch, a checkpoint and weights)."""
    run = root / name
    run.mkdir(parents=True)
    run.joinpath("project.json").write_text(project_text, encoding="utf-8")
    run.joinpath("run.json").write_text(json.dumps({"status": "stopped"}), encoding="utf-8")
    events = [{"type": "run_started", "time": 1.0, "run_dir": str(run), "device": "cpu", "device_name": "cpu",
               "task": "classification", "epochs": 4, "steps_per_epoch": 2, "parameters": 10,
               "train_samples": 8, "val_samples": 2, "start_epoch": 0, "config": {}},
              {"type": "epoch", "time": 2.0, "epoch": 1, "global_step": 2, "train": {"loss": 0.5},
               "val": {"loss": 0.6, "accuracy": 0.75}, "lr": 0.01, "seconds": 0.1, "samples_per_s": 80.0},
              {"type": "finished", "time": 3.0, "reason": "stopped", "epochs_completed": 1, "metrics": {}}]
    run.joinpath("metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    run.joinpath("checkpoint.pt").write_bytes(b"checkpoint")
    run.joinpath("model.safetensors").write_bytes(b"weights")
    return run


def test_runs_of_an_untitled_template_follow_it_through_save_as_and_reopen(qtbot, tmp_path: Path,
                                                                          app_runs: Path) -> None:
    template = tmp_path / "templates" / "mlp.json"
    template.parent.mkdir()
    project = mlp_project({"epochs": 2}, hidden=8)
    project.meta["name"] = "MLP template"
    save_project(project, template)
    window = _window(qtbot, tmp_path, "first")
    assert window.open_project(template, untitled=True)
    window.start_training()
    ended: list[object] = []
    window.training.session.run_ended.connect(ended.append)
    qtbot.waitUntil(lambda: bool(ended), timeout=RUN_TIMEOUT_MS)
    assert isinstance(ended[0], Finished)
    run = Path(window.training.session.history.run_dir)
    assert run.parent == app_runs and run.name.startswith("MLP_template-")
    qtbot.wait(50)
    assert not window.training.session.active

    saved = tmp_path / "work" / "my.json"
    saved.parent.mkdir()
    assert window._save_to(saved)
    assert (saved.parent / "runs" / run.name / "checkpoint.pt").is_file()  # adopted: beside the file
    assert not run.exists()
    assert "run(s) moved" in window.statusBar().currentMessage()
    assert load_project(saved).id == window.document.project.id
    window.training.shutdown()
    window.close()

    reopened = _window(qtbot, tmp_path, "second")
    assert reopened.open_project(saved)
    dashboard = reopened.training.dashboard
    assert dashboard.runs.topLevelItemCount() == 1
    resumed: list[Path] = []
    reopened.training.resume = lambda run_dir: resumed.append(run_dir) or True  # Ctrl+F5 finds it
    reopened.actions["resume_run"].trigger()
    assert resumed == [saved.parent / "runs" / run.name]
    runs = [curves.history for curves in dashboard.plots.runs.values()]
    dialog = ExportDialog(reopened.document.project, saved, runs, False, reopened)
    assert dialog.source.count() == 2 and dialog.source.currentData() == str(saved.parent / "runs" / run.name)


def test_runs_follow_a_rename_and_save_as_in_the_same_folder(qtbot, tmp_path: Path, app_runs: Path) -> None:
    first = tmp_path / "first.json"
    save_project(mlp_project(), first)
    window = _window(qtbot, tmp_path, "w")
    assert window.open_project(first)
    _fake_run(tmp_path / "runs", "first-20250101-120000", dumps(window.document.project))
    assert window.open_project(first)
    assert window.training.dashboard.runs.topLevelItemCount() == 1
    assert window._save_to(tmp_path / "Second Name.json")
    assert window.open_project(tmp_path / "Second Name.json")
    assert window.training.dashboard.runs.topLevelItemCount() == 1
    renamed = tmp_path / "third.json"
    (tmp_path / "Second Name.json").rename(renamed)
    assert window.open_project(renamed)
    assert window.training.dashboard.runs.topLevelItemCount() == 1
    assert window.windowTitle().startswith("third.json")


def test_a_copy_of_a_file_is_not_shown_runs_of_another_project(qtbot, tmp_path: Path, app_runs: Path) -> None:
    ours = mlp_project()
    ours.id = "a" * 32
    theirs = mlp_project()
    theirs.id = "b" * 32
    save_project(ours, tmp_path / "net.json")
    _fake_run(tmp_path / "runs", "net-20250101-120000", dumps(ours))
    _fake_run(tmp_path / "runs", "net-20250101-120500", dumps(theirs))  # same name, another project
    legacy = mlp_project()
    _fake_run(tmp_path / "runs", "net-20240101-120000", dumps(legacy))  # before ids: matched by name
    _fake_run(tmp_path / "runs", "other-20240101-120000", dumps(legacy))
    for age, name in enumerate(("net-20250101-120500", "net-20250101-120000", "net-20240101-120000")):
        metrics = tmp_path / "runs" / name / "metrics.jsonl"
        os.utime(metrics, (metrics.stat().st_atime, 1_700_000_000 - 60 * age))  # logged in name order
    window = _window(qtbot, tmp_path, "w")
    assert window.open_project(tmp_path / "net.json")
    shown = sorted(Path(h.run_dir).name for h in window.training.dashboard.runs.histories.values())
    assert shown == ["net-20240101-120000", "net-20250101-120000"]
    plots = window.training.dashboard.plots
    assert plots.current_history().run_dir.endswith("net-20250101-120000")  # the newest is highlighted


def test_templates_carry_no_id_and_each_untitled_copy_gets_its_own(qtbot, tmp_path: Path, app_runs: Path) -> None:
    from engine.templates import TEMPLATES_DIR

    for path in TEMPLATES_DIR.glob("*.json"):
        assert '"id"' not in path.read_text(encoding="utf-8").split('"meta"')[0], path.name
    window = _window(qtbot, tmp_path, "w")
    template = TEMPLATES_DIR / "cnn_digits.json"
    assert window.open_project(template, untitled=True)
    first = window.document.project.id
    assert window.open_project(template, untitled=True)
    second = window.document.project.id
    assert first and second and first != second and len(first) == 32
    window.new_document()
    assert window.document.project.id not in ("", first, second)


def test_a_file_without_id_keeps_one_id_until_saved_and_then_stores_it(qtbot, tmp_path: Path,
                                                                       app_runs: Path) -> None:
    path = tmp_path / "old.json"
    save_project(mlp_project(), path)
    before = path.read_text(encoding="utf-8")
    window = _window(qtbot, tmp_path, "w")
    assert window.open_project(path)
    opened = window.document.project.id
    assert path.read_text(encoding="utf-8") == before  # opening writes nothing
    assert window.open_project(path)
    assert window.document.project.id == opened  # the same file: the same id, so its runs are found
    assert window.save()
    assert load_project(path).id == opened


def test_a_run_another_process_is_writing_stays_where_it_is(qtbot, tmp_path: Path, app_runs: Path) -> None:  # noqa: ANN001
    from engine.training.run_lock import RunLock

    template = tmp_path / "templates" / "mlp.json"
    template.parent.mkdir()
    save_project(mlp_project(), template)
    window = _window(qtbot, tmp_path, "busy")
    assert window.open_project(template, untitled=True)
    text = dumps(window.document.project)
    busy, done = _fake_run(app_runs, "mlp-20261206-120000", text), _fake_run(app_runs, "mlp-20261206-120001", text)
    busy.joinpath("run.json").write_text(json.dumps({"status": "running"}), encoding="utf-8")
    os.utime(busy / "metrics.jsonl", (1.0, 1.0))  # an old log: only the lock tells it is being written
    lock = RunLock(busy)
    lock.acquire()  # as the training process holds it
    try:
        assert window._save_to(tmp_path / "my.json")
        assert busy.is_dir() and not done.is_dir() and (tmp_path / "runs" / done.name).is_dir()
    finally:
        lock.release()
