"""The Experiments panel: a study's trials and plots, what a trial can become, and searches run from Train.

Most tests read a study made here with the engine's own calls (its trials told to Optuna as a
search tells them, their run folders written as a trial writes them), so they take a second;
the tests that run a search from the window train real trials in worker processes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import pytest
from PySide6.QtCore import QSettings, Qt

from engine.graph.fileformat import dumps, load_project
from engine.search.apply import apply_values
from engine.search.runner import out_dir_for
from engine.search.sampling import suggest
from engine.search.session import checked_settings, study_name
from engine.search.study import default_storage, open_study
from engine.search.trial import run_dir_of
from gui.main_window import MainWindow
from gui.training.study_reading import importances, read_study
from tests.search.projects import ROOT, spirals_search

SEARCH_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    yield w
    w.experiments.shutdown()
    w.training.shutdown()


def _epoch_line(epoch: int, accuracy: float) -> str:
    return json.dumps({"type": "epoch", "time": 0.0, "epoch": epoch, "global_step": epoch * 8,
                       "train": {"loss": 1.0 / epoch}, "val": {"loss": 1.0 - accuracy, "accuracy": accuracy},
                       "lr": 0.01, "seconds": 0.01, "samples_per_s": 1000.0})


def make_study(tmp_path: Path, objectives: tuple[str, ...] = ("metric",), baseline: bool = False) -> Path:
    """The spirals project with a study of four trials (complete, complete, pruned, failed) in its
    default folder, made as a search makes it (``baseline``: trial 0 runs the project as it is, as
    a new study's first trial does); returns the project file."""
    path = spirals_search(tmp_path, objectives=list(objectives), sampler="random")
    project = load_project(path)
    settings, space = checked_settings(project, path.parent)
    out = out_dir_for(path, tmp_path / "runs")
    out.mkdir(parents=True)
    opened = open_study(default_storage(out), study_name(project, path, settings), settings, space, 3, 0, False)
    study = opened.study
    if baseline:
        from engine.search.sampling import baseline_params

        study.enqueue_trial(baseline_params(project, space), user_attrs={"baseline": True})
    for number, (state, curve) in enumerate([("complete", [0.55, 0.7, 0.8]), ("complete", [0.5, 0.6, 0.65]),
                                             ("pruned", [0.4]), ("failed", [])]):
        trial = study.ask()
        values = suggest(trial, space)
        run = run_dir_of(out, study.study_name, number)
        run.mkdir(parents=True)
        (run / "project.json").write_text(dumps(apply_values(project, values)))
        (run / "metrics.jsonl").write_text("".join(_epoch_line(e + 1, a) + "\n" for e, a in enumerate(curve)))
        trial.set_user_attr("run", str(run))
        for epoch, accuracy in enumerate(curve, 1):
            if len(objectives) == 1:  # Optuna keeps epochs of single-objective studies (for pruning)
                trial.report(accuracy, epoch)
        if state == "complete":
            study.tell(trial, [max(curve), *([2000.0 - 1000.0 * number] * (len(objectives) - 1))])
        elif state == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            trial.set_user_attr("message", "the trial's graph is invalid: node fc2 (Linear): out of memory")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return path


def _open(qtbot, window: MainWindow, path: Path) -> None:
    assert window.open_project(path)
    qtbot.waitUntil(lambda: window.experiments.panel.view is not None, timeout=20_000)


def _state_texts(window: MainWindow) -> dict[int, str]:
    table = window.experiments.panel.table
    return {number: items[1].text() for number, items in table.rows.items()}


def test_the_panel_fills_from_the_projects_study(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _open(qtbot, window, make_study(tmp_path))
    panel = window.experiments.panel
    table = panel.table
    assert table.columns == ["#", "State", "lr", "fc2.out_features", "val_accuracy", "Time"]
    assert _state_texts(window) == {0: "complete", 1: "complete", 2: "pruned", 3: "failed"}
    assert table.rows[0][4].text() == "0.8000" and table.rows[1][4].text() == "0.6500"
    assert table.rows[0][0].font().bold() and not table.rows[1][0].font().bold()  # the best trial
    assert panel.view.best == 0 and "best val_accuracy 0.8000 (trial 0)" in panel.status.text()
    # sortable: by the metric, the best first
    table.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # as a click on its header
    assert [table.item(row, 0).text() for row in range(4)] == ["0", "1", "2", "3"]  # the failed trial last
    table.sortByColumn(4, Qt.SortOrder.AscendingOrder)
    assert [table.item(row, 0).text() for row in range(4)] == ["2", "1", "0", "3"]
    # the plots: a curve per trial that trained an epoch, best-so-far, parallel lines, importances
    plots = panel.plots
    assert set(plots._curve_items) == {0, 1, 2}
    assert set(plots.parallel.lines) == {0, 1}
    assert set(plots.importance.shown) == {"training.lr", "nodes.fc2.out_features"}
    assert not plots.isTabEnabled(2)  # one objective: no trade-off


def test_plot_labels_stay_inside_their_plots(qtbot, window: MainWindow, tmp_path: Path) -> None:
    """The importance shares and the best-so-far plot's "the project as it is" label read whole: a
    long bar holds its share inside its end (it used to run past the plot's edge), and the line's
    label sits away from the first trial's marker, below the line when the line is at the top."""
    import pyqtgraph as pg

    window.resize(1280, 800)
    _open(qtbot, window, make_study(tmp_path, baseline=True))
    plots = window.experiments.panel.plots
    assert window.experiments.panel.view.template_trial == 0
    window.docks["experiments"].raise_()
    for tab, plot in ((1, plots.importance.plot), (0, plots.progress)):
        plots.setCurrentIndex(tab)
        qtbot.wait(100)
        plots.currentWidget().grab()  # text items place themselves when painted
        area = plot.vb.mapRectToScene(plot.vb.boundingRect())
        labels = [item for item in plot.vb.addedItems if isinstance(item, pg.TextItem)]
        labels += [line.label for line in plot.vb.addedItems if isinstance(line, pg.InfiniteLine) and line.label]
        assert labels
        for label in labels:
            if label.isVisible() and label.toPlainText().strip():
                box = label.mapRectToScene(label.boundingRect())
                assert area.adjusted(-1, -1, 1, 1).contains(box), (label.toPlainText(), box, area)


def test_a_failed_trial_shows_its_message(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _open(qtbot, window, make_study(tmp_path))
    failed = window.experiments.panel.table.rows[3][1]
    assert failed.text() == "failed" and "out of memory" in failed.toolTip()


def test_fewer_than_two_complete_trials_say_why_there_are_no_importances(tmp_path: Path) -> None:
    path = make_study(tmp_path)
    storage = default_storage(out_dir_for(path, tmp_path / "runs"))
    study = optuna.load_study(study_name="MLP on spirals", storage=storage)
    view = read_study(study)
    assert view.importances and not view.importance_note
    view.trials = [t for t in view.trials if t.number != 1]  # as if only one trial had completed
    found, note = importances(study, view)
    assert not found and "at least 2 complete trials (1 so far)" in note


def test_several_objectives_draw_the_pareto_front_and_mark_the_project(qtbot, window: MainWindow,
                                                                       tmp_path: Path) -> None:
    _open(qtbot, window, make_study(tmp_path, ("metric", "flops")))
    panel = window.experiments.panel
    assert panel.plots.isTabEnabled(2)
    assert panel.view.pareto == {0, 1}  # trial 0 scores better, trial 1 costs less
    assert panel.view.template_costs["flops"] > 0  # the project's own cost, marked on the trade-off plot
    assert panel.table.rows[0][0].text() == "0 ◆"


def test_apply_best_is_one_undo_step(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _open(qtbot, window, make_study(tmp_path))
    document = window.document
    before, steps = dumps(document.project), document.undo_stack.count()
    best = window.experiments.panel.view.trial(0)
    window.experiments.panel.apply_button.click()
    assert document.undo_stack.count() == steps + 1
    assert document.project.training["lr"] == pytest.approx(best.params["training.lr"])
    assert document.graph.nodes["fc2"].params["out_features"] == best.params["nodes.fc2.out_features"]
    assert document.project.search  # the search section stays
    window.actions["undo"].trigger()
    assert dumps(document.project) == before
    window.actions["redo"].trigger()
    assert document.project.training["lr"] == pytest.approx(best.params["training.lr"])


def test_values_that_swap_a_layer_type_and_leave_a_layer_out_undo_exactly(qtbot) -> None:
    from gui.document import Document
    from gui.training.trial_apply import apply_command

    document = Document(load_project(ROOT / "templates" / "fnn_spirals.json"))
    before = dumps(document.project)
    trial = apply_values(document.project, {"training.lr": 0.01, "training.optimizer": "sgd",
                                            "nodes.fc2.out_features": 16, "nodes.act2.type": "gelu",
                                            "nodes.act3": False})
    assert document.push(apply_command(document, trial, "Apply trial 3's values"))
    assert document.undo_stack.count() == 1
    graph = document.project.graph
    assert graph.nodes["act2"].type_id == "gelu" and "act3" not in graph.nodes
    assert set(graph.edges) == set(trial.graph.edges) and list(graph.nodes) == list(trial.graph.nodes)
    assert document.project.training == trial.training
    document.undo()
    assert dumps(document.project) == before
    document.redo()
    assert graph.nodes["fc2"].params["out_features"] == 16
    document.undo()
    assert dumps(document.project) == before


def test_a_trial_overlays_its_curves_and_opens_as_a_project(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _open(qtbot, window, make_study(tmp_path))
    experiments = window.experiments
    runs = window.training.dashboard.plots.runs
    experiments.panel.table.trial_activated.emit(1)  # a double-click
    trial_run = str(run_dir_of(out_dir_for(tmp_path / "spirals.json", tmp_path / "runs"), "MLP on spirals", 1))
    assert trial_run in runs and runs[trial_run].history.epoch_x == [1, 2, 3]
    window.training.dashboard.reload_runs()  # the project's runs read again (after Save As moved them)
    assert trial_run in window.training.dashboard.plots.runs
    other = experiments.open_trial(1)  # a window of its own, deleted when it closes
    try:
        assert other.document.project.name == "MLP on spirals · trial 1" and other.document.path is None
        lr = other.document.project.training["lr"]
        assert lr == pytest.approx(experiments.panel.view.trial(1).params["training.lr"])
        assert experiments.windows == [other]
    finally:
        other.close()
    qtbot.waitUntil(lambda: not experiments.windows)


def test_running_a_search_without_a_search_space_says_why(qtbot, window: MainWindow, tmp_path: Path) -> None:
    path = spirals_search(tmp_path)
    data = json.loads(path.read_text())
    del data["search"]
    path.write_text(json.dumps(data))
    window.open_project(path)
    assert not window.experiments.start()
    assert "no search space" in window.statusBar().currentMessage()
    assert window.actions["run_search"].isEnabled()


def test_a_bad_search_setting_is_one_line(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.open_project(spirals_search(tmp_path, sampler="annealing"))
    assert not window.experiments.start()
    message = window.statusBar().currentMessage()
    assert "search.sampler: must be one of" in message and "Traceback" not in message


def test_a_study_that_cannot_be_continued_is_one_line(qtbot, window: MainWindow, tmp_path: Path) -> None:
    path = make_study(tmp_path)
    data = json.loads(path.read_text())
    data["search"]["space"]["training.batch_size"] = {"choices": [16, 32]}  # another space, the same study name
    path.write_text(json.dumps(data))
    _open(qtbot, window, path)
    assert window.experiments.start()
    qtbot.waitUntil(lambda: not window.experiments.active, timeout=30_000)
    message = window.experiments.panel.status.text()
    assert "search space differs at training.batch_size" in message and "\n" not in message
    assert "search space differs" in window.statusBar().currentMessage()
    assert window.actions["run_search"].isEnabled()


def _searching(tmp_path: Path, qtbot, window: MainWindow, epochs: int, trials: int, workers: int) -> None:
    path = spirals_search(tmp_path, epochs=epochs, trials=trials, sampler="random", pruner="none")
    window.open_project(path)
    window.experiments.workers = workers
    window.actions["run_search"].trigger()
    assert window.experiments.active and not window.actions["run_search"].isEnabled()
    assert window.actions["stop_search"].isEnabled()


def test_a_search_from_the_window_completes_and_fills_the_table(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _searching(tmp_path, qtbot, window, epochs=2, trials=2, workers=2)
    experiments = window.experiments
    qtbot.waitUntil(lambda: not experiments.active, timeout=SEARCH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: experiments.panel.view is not None and len(experiments.panel.view.complete()) == 2,
                    timeout=20_000)
    assert set(_state_texts(window).values()) == {"complete"}
    assert window.actions["run_search"].isEnabled() and not window.actions["stop_search"].isEnabled()
    assert "Search finished" in window.statusBar().currentMessage()
    assert all(len(t.curve) == 2 for t in experiments.panel.view.trials)
    assert experiments.panel.view.template_trial == 0  # a new study's first trial: the project as it is
    assert experiments.panel.table.rows[0][0].text().startswith("0 ⌂")


def test_stop_ends_the_search_and_its_trial_stays_to_continue(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _searching(tmp_path, qtbot, window, epochs=5000, trials=2, workers=1)
    experiments = window.experiments
    qtbot.waitUntil(lambda: bool(experiments.panel.running), timeout=SEARCH_TIMEOUT_MS)  # an epoch ended
    assert _state_texts(window)[0].startswith("running · epoch ")
    window.actions["stop_search"].trigger()
    assert "Stopping after the running trials' epoch" in experiments.panel.status.text()
    qtbot.waitUntil(lambda: not experiments.active, timeout=60_000)
    assert "Search stopped" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: experiments.panel.view is not None and bool(experiments.panel.view.trials),
                    timeout=20_000)
    assert _state_texts(window) == {0: "stopped"}


def test_closing_the_window_mid_search_neither_crashes_nor_hangs(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _searching(tmp_path, qtbot, window, epochs=5000, trials=2, workers=2)
    experiments = window.experiments
    qtbot.waitUntil(lambda: bool(experiments.panel.running), timeout=SEARCH_TIMEOUT_MS)
    started = time.monotonic()
    assert window.close()  # stops the trials (within a batch; killed after a few seconds)
    assert time.monotonic() - started < 15
    job = experiments.job
    qtbot.waitUntil(lambda: not job._thread.is_alive(), timeout=30_000)


def test_the_quiet_colour_of_pruned_trials_follows_the_theme(qtbot, window: MainWindow, tmp_path: Path) -> None:
    from PySide6.QtGui import QPalette

    _open(qtbot, window, make_study(tmp_path))
    table = window.experiments.panel.table
    window.use_light_theme()
    light = table.rows[2][1].foreground().color()
    window.use_dark_theme()
    qtbot.waitUntil(lambda: table.rows[2][1].foreground().color() != light)
    assert table.states[2] == "pruned"
    assert table.rows[2][1].foreground().color() == table.palette().color(QPalette.ColorRole.PlaceholderText)


def test_trials_are_listed_by_number_and_objectives_with_fixed_decimals(qtbot) -> None:  # noqa: ANN001
    """A new table sorts by trial number (its sort column once pointed past the last column, so trial 7
    could sit above 6), and a perfect accuracy reads 1.0000 beside 0.9944, not 1."""
    from gui.training.experiment_data import TrialRow, format_objective
    from gui.training.trials_table import TrialsTable

    table = TrialsTable()
    qtbot.addWidget(table)
    table.set_columns([], ["val_accuracy"])
    done = [TrialRow(i, "COMPLETE", {}, [0.9944 if i else 1.0]) for i in range(6)]
    table.show_rows(done)
    table.show_rows(done + [TrialRow(7, "RUNNING", {}), TrialRow(6, "RUNNING", {})])
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert table.rows[0][2].text() == "1.0000" and table.rows[1][2].text() == "0.9944"
    assert format_objective(0.00012) == "0.00012" and format_objective(123.456) == "123.5"
    assert format_objective(675072.0) == "675,072"
