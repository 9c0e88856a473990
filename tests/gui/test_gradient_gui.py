"""Training diagnostics in the window: the Gradients tab, gradient warnings in the Problems panel,
the overfitting watch on the curves, and the Train menu's Find Learning Rate and Overfit One Batch.

A deep sigmoid MLP (the README's recipe, two short epochs) is trained once in-process into a runs
folder; the window reads it back from its metrics.jsonl as it reads any finished run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from engine.errors import UserError
from engine.graph.fileformat import load_project, save_project
from engine.training.events import BatchMetrics, EpochEnd, GradientHealth, RunStarted
from engine.training.history import RunHistory
from engine.training.run_dir import default_run_dir
from engine.training.trainer import Trainer, TrainOptions
from gui.main_window import MainWindow
from gui.training import diagnostic_dialogs
from tests.training.helpers import mlp_project
from tests.training.test_gradient_health import deep_mlp


@pytest.fixture(scope="module")
def sigmoid_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(project file, run folder)`` of a finished deep sigmoid run (vanishing gradients)."""
    root = tmp_path_factory.mktemp("deep")
    path = root / "deep.json"
    save_project(deep_mlp("sigmoid", False), path)
    run_dir = default_run_dir(path, root / "runs")
    Trainer(TrainOptions(load_project(path), run_dir, root), lambda event: None).run()
    return path, run_dir


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:  # noqa: ANN001
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1280, 800)
    return w


def _open_run(window: MainWindow, sigmoid_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path, run_dir = sigmoid_run
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(run_dir.parent))
    assert window.open_project(path)


def test_the_gradients_tab_fills_from_a_finished_runs_metrics(qtbot, window: MainWindow, sigmoid_run,  # noqa: ANN001
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _open_run(window, sigmoid_run, monkeypatch)
    window.show()
    dashboard = window.training.dashboard
    dashboard.show_gradients()
    view = dashboard.gradients
    assert view.history is dashboard.plots.current_history() and view.history.run_dir == str(sigmoid_run[1])
    view.redraw()
    norms, ratios = view.curve_data("norm"), view.curve_data("ratio")
    layers = [f"fc{i}" for i in range(1, 11)] + ["head"]
    assert list(norms) == layers and list(ratios) == layers  # layer order, first to last
    assert all(len(x) == 2 for x, _ in norms.values())  # steps 1 and 6 of 10, every 5
    assert norms["fc1"][1][0] < 1e-5 * norms["head"][1][0]  # starved first layer, drawn on a log scale
    assert view.plots["norm"].getAxis("left").logMode and view.shown_plots == ["norm", "ratio"]  # no ReLU
    colors = [view.curves["norm"][name].opts["pen"].color().name() for name in layers]
    assert len(set(colors)) == len(layers)  # coloured by depth
    key = view.headers["norm"].text
    assert "fc1" in key and "head" in key and key.count("█") == len(layers)
    assert view.note.text().startswith("⚠ Vanishing gradients: fc1")
    assert dashboard.tabs.tabIcon(1).isNull() is False


def test_a_vanishing_warning_shows_in_problems_and_clicking_it_shows_the_gradients_tab(
        qtbot, window: MainWindow, sigmoid_run, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    _open_run(window, sigmoid_run, monkeypatch)
    window.show()
    problems = window.problems
    (warning,) = problems.run_warnings()
    assert warning.kind == "vanishing" and warning.step == 6
    assert "deep sigmoid or tanh stacks and missing normalization" in warning.text
    assert problems.header.text() == "1 warning"
    item = problems.list.item(problems.list.count() - 1)
    assert item.text() == warning.text and "not of the graph" in item.toolTip()
    dashboard = window.training.dashboard
    assert dashboard.tabs.currentWidget() is not dashboard.gradients
    window.docks["problems"].raise_()
    problems.list.itemClicked.emit(item)
    assert dashboard.tabs.currentWidget() is dashboard.gradients
    qtbot.waitUntil(lambda: not window.docks["training"].visibleRegion().isEmpty(), timeout=2000)
    # a new run clears the run's warnings
    fresh = RunHistory("deep-new", run_dir=str(sigmoid_run[1].parent / "deep-new"))
    window.training.session.run_added.emit(fresh)
    assert problems.run_warnings() == [] and problems.header.text() == "No problems"


def test_live_samples_draw_and_warn_as_they_arrive(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    path = Path(window.settings.fileName()).parent / "mlp.json"
    save_project(mlp_project(), path)
    assert window.open_project(path)
    window.show()
    session, dashboard = window.training.session, window.training.dashboard
    live = RunHistory("live-run", run_dir="runs/live-run")
    session.history = live
    session.run_added.emit(live)
    assert dashboard.gradients.history is live and window.problems.run_warnings() == []
    events = [RunStarted(0.0, live.run_dir, "cpu", "CPU", "classification", 2, 10, 100, 80, 20, 0),
              GradientHealth(0.0, 0, 1, [{"node": "fc1", "grad_norm": 3e4, "update_ratio": 0.5},
                                         {"node": "fc2", "grad_norm": 2.0, "update_ratio": 1e-3}], {"act1": 0.9},
                             [{"kind": "exploding", "message": "exploding gradients at fc1 (norm 3e+04): clip them "
                                                               "(training.grad_clip, e.g. 1.0) or lower the learning "
                                                               "rate"}])]
    live.extend(events)
    session.events_received.emit(events)
    (warning,) = window.problems.run_warnings()
    assert warning.kind == "exploding" and "training.grad_clip" in warning.text
    dashboard.show_gradients()
    dashboard.gradients.redraw()
    assert dashboard.gradients.shown_plots == ["norm", "ratio", "dead"]
    assert dashboard.gradients.curve_data("dead") == {"act1": ([0.1], [0.9])}
    assert dashboard.gradients.note.text().startswith("⚠ Exploding gradients at fc1 (norm 3e+04) (step 1")
    session.history = None


def _overfitting_history() -> RunHistory:
    history = RunHistory("mlp-20260101-000000", run_dir="runs/mlp-20260101-000000")
    history.add(RunStarted(0.0, history.run_dir, "cpu", "CPU", "classification", 8, 10, 100, 80, 20, 0))
    val = [1.0, 0.7, 0.5, 0.45, 0.5, 0.56, 0.62]
    for epoch, loss in enumerate(val, start=1):
        history.add(BatchMetrics(0.0, epoch - 1, 10, epoch * 10, {"loss": 1.0 / epoch}, 0.01, 100.0))
        history.add(EpochEnd(0.0, epoch, epoch * 10, {"loss": 1.0 / epoch}, {"loss": loss, "accuracy": 0.8}, 0.01,
                             1.0, 100.0))
    return history


def test_the_overfitting_point_is_marked_and_weight_decay_is_one_undo_step(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    path = Path(window.settings.fileName()).parent / "mlp.json"
    save_project(mlp_project(), path)
    assert window.open_project(path)
    window.show()
    dashboard, document = window.training.dashboard, window.document
    dashboard._add_history(_overfitting_history(), current=True)
    dashboard._follow_current()
    watch = dashboard.overfit
    assert watch.since == 4 and watch.isVisible()
    assert watch.mark.isVisible() and watch.mark.value() == 4.0 and watch.mark.getViewBox() is dashboard.plots.loss.vb
    assert watch.mark.label.toPlainText() == "overfitting" and "after epoch 4" in watch.mark.toolTip()
    assert watch.advice.text().startswith("Overfitting: validation loss has not improved since epoch 4")
    assert watch.dropout.text() == "Dropout: raise p of ‘drop’ on the canvas (a graph change)"
    steps = document.undo_stack.count()
    assert "weight_decay" not in document.project.training
    watch.decay.click()
    assert document.project.training["weight_decay"] == pytest.approx(1e-4)
    assert document.undo_stack.count() == steps + 1 and not watch.decay.isEnabled()
    watch.early.click()
    assert document.project.training["early_stopping_patience"] == 5 and document.undo_stack.count() == steps + 2
    document.undo_stack.undo()
    document.undo_stack.undo()
    assert "weight_decay" not in document.project.training and watch.decay.isEnabled()
    dashboard._add_history(RunHistory("mlp-2", run_dir="runs/mlp-2"), current=True)  # a fresh run: no mark
    dashboard._follow_current()
    assert watch.since is None and not watch.mark.isVisible() and not watch.isVisible()


def test_the_lr_finder_suggestion_is_one_undo_step(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    path = Path(window.settings.fileName()).parent / "mlp.json"
    save_project(mlp_project({"lr": 0.01}), path)
    assert window.open_project(path)
    document = window.document
    dialog = window.training.find_learning_rate(steps=60, start=1e-4, end=10.0)
    assert dialog is not None and dialog.isVisible()
    assert dialog.wait()
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    assert dialog.error == "" and len(dialog.result_value.lrs) >= 20
    assert dialog.suggestion is not None and dialog.mark.isVisible()
    assert dialog.mark.value() == pytest.approx(math.log10(dialog.suggestion))  # the log x axis
    assert dialog.smooth_curve.xData is not None and len(dialog.smooth_curve.xData) == len(dialog.result_value.lrs)
    steps = document.undo_stack.count()
    dialog.use_button.click()
    assert document.project.training["lr"] == dialog.suggestion and document.undo_stack.count() == steps + 1
    assert not dialog.use_button.isEnabled() and "now (Undo puts the old one back)" in dialog.status.text()
    document.undo_stack.undo()  # from the main window: the dialog follows
    assert document.project.training["lr"] == 0.01
    assert dialog.use_button.isEnabled() and "The project uses 0.01" in dialog.status.text()
    dialog.use_button.click()
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    qtbot.keyClick(dialog, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Undo in the dialog itself
    assert document.project.training["lr"] == 0.01 and dialog.use_button.isEnabled()
    dialog.close()


def test_the_lr_finder_can_be_cancelled_and_reports_errors_in_one_line(qtbot, window: MainWindow,  # noqa: ANN001
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(window.settings.fileName()).parent / "mlp.json"
    save_project(mlp_project(), path)
    assert window.open_project(path)

    def endless(project, base_dir, steps, start, end, progress):  # noqa: ANN001, ANN202
        step = 0
        while True:
            progress(step, start, 1.0)
            step += 1
            time.sleep(0.005)

    monkeypatch.setattr(diagnostic_dialogs, "lr_range_test", endless)
    dialog = window.training.find_learning_rate()
    qtbot.waitUntil(lambda: "Step" in dialog.progress.format(), timeout=5000)
    dialog.cancel_button.click()
    assert not dialog.running and dialog.progress.format() == "Cancelled"
    assert dialog.call.wait(5000)  # the worker ended at its next step
    assert dialog.run_button.isEnabled() and not dialog.use_button.isEnabled()

    def broken(project, base_dir, steps, start, end, progress):  # noqa: ANN001, ANN202
        raise UserError("lr-find: the loss is nan at the very first step (learning rate 1e-07): the model or the "
                        "data is the problem, not the learning rate")

    monkeypatch.setattr(diagnostic_dialogs, "lr_range_test", broken)
    dialog.run_button.click()
    assert dialog.wait()
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    assert dialog.status.text().startswith("lr-find: the loss is nan") and "\n" not in dialog.status.text()
    assert "Traceback" not in dialog.status.text() and dialog.progress.format() == "Failed"
    monkeypatch.setattr(diagnostic_dialogs, "lr_range_test", endless)
    dialog.run_button.click()
    box = dialog._box
    qtbot.waitUntil(lambda: "Step" in dialog.progress.format(), timeout=5000)
    dialog.deleteLater()  # the window closed with the dialog open: the worker ends at its next step too
    qtbot.waitUntil(lambda: box.cancelled, timeout=5000)


def test_overfit_one_batch_shows_the_verdict_and_the_loss_curve(qtbot, window: MainWindow) -> None:  # noqa: ANN001
    path = Path(window.settings.fileName()).parent / "mlp.json"
    save_project(mlp_project({"lr": 0.05}, hidden=32), path)
    assert window.open_project(path)
    window.actions["overfit_batch"].trigger()
    (dialog,) = window.training.diagnostics
    assert dialog.wait()
    qtbot.waitUntil(lambda: not dialog.running, timeout=5000)
    result = dialog.result_value
    assert result is not None and result.fitted
    assert dialog.status.text() == "✔ " + result.message()[:1].upper() + result.message()[1:]
    assert len(dialog.curve.xData) == result.steps
    dialog.close()
    qtbot.waitUntil(lambda: not window.training.diagnostics, timeout=2000)


def test_the_train_menu_lists_the_diagnostics(window: MainWindow) -> None:
    train_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Train")
    texts = [a.text() for a in train_menu.actions()]
    assert "Find &Learning Rate…" in texts and "&Overfit One Batch…" in texts
    assert window.actions["find_lr"].statusTip() and window.actions["overfit_batch"].statusTip()


def test_the_dropout_hint_names_where_a_dropout_layer_goes() -> None:
    from gui.training.overfit_watch import dropout_hint

    assert dropout_hint(deep_mlp("relu", False, depth=3).graph) == \
        "Dropout: add a Dropout layer before ‘head’ on the canvas (a graph change)"
