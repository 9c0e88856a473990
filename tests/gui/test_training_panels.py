"""Data and training-settings panels (undoable edits of the project), and the curves' exports."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF

from engine.training.events import BatchMetrics, EpochEnd, RunStarted
from engine.training.history import RunHistory
from gui.document import Document
from gui.training.data_panel import DataPanel
from gui.training.plots import MetricPlots
from gui.training.settings_panel import SettingsPanel
from tests.training.helpers import mlp_project


def _loaded(panel: DataPanel) -> None:
    assert panel.wait_loaded(20_000)


def test_choosing_a_dataset_is_undoable_and_checked_against_the_input_node(qtbot) -> None:
    document = Document(mlp_project())
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    _loaded(panel)
    assert panel.fit_message == "" and "Fits Input node" in panel.fit_label.text()
    assert "400" not in panel.summary.text() and "300" in panel.summary.text()  # samples option of the project
    panel._choose("digits")
    assert document.project.dataset == {"name": "digits"}
    _loaded(panel)
    assert "Input node x" in panel.fit_message and "(N, 2)" in panel.fit_message or "2" in panel.fit_message
    assert "1,797" in panel.summary.text() and panel.images.pixmap() is not None
    document.undo_stack.undo()
    assert document.project.dataset == {"name": "moons", "samples": 300}
    _loaded(panel)
    assert panel.fit_message == ""


def test_an_option_edit_and_a_csv_import_show_in_the_preview(qtbot, tmp_path: Path) -> None:
    document = Document(mlp_project())
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    panel.set_option("samples", 120)
    assert document.project.dataset["samples"] == 120
    _loaded(panel)
    assert "120" in panel.summary.text()
    table = tmp_path / "points.csv"
    table.write_text("a,b,label\n" + "\n".join(f"{i},{i * 2},{'yes' if i % 2 else 'no'}" for i in range(30)))
    panel.use_file("csv", table)
    assert document.project.dataset == {"name": "csv", "path": str(table)}
    _loaded(panel)
    assert panel.table.isVisible() or panel.table.rowCount() == 30
    assert panel.table.rowCount() == 30 and panel.table.item(0, 2).text() == "no"
    assert panel.fit_message == ""  # two numeric columns fit Input(2)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,yes\n2,3,no\n")
    panel.use_file("csv", bad)
    _loaded(panel)
    assert "row" in panel.load_error and "b" in panel.load_error


def test_settings_edits_are_undoable_and_defaults_leave_the_file(qtbot) -> None:
    document = Document(mlp_project())
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    assert document.project.training["lr"] == 0.01
    panel.editors["lr"].value_edited.emit(0.003)
    assert document.project.training["lr"] == 0.003
    panel.editors["lr"].value_edited.emit(0.002)  # consecutive edits of one setting merge
    assert document.undo_stack.count() == 1
    panel.editors["optimizer"].value_edited.emit("sgd")
    assert document.project.training["optimizer"] == "sgd" and document.undo_stack.count() == 2
    panel.editors["optimizer"].value_edited.emit("adam")  # the default: removed from the file
    assert "optimizer" not in document.project.training
    assert document.undo_stack.count() == 1  # sgd then back to adam is no change at all
    document.undo_stack.undo()
    assert document.project.training["lr"] == 0.01
    document.set_read_only("training")
    assert not panel.editors["lr"].isEnabled()
    panel.set_setting("lr", 0.5)
    assert document.project.training["lr"] == 0.01


def _history() -> RunHistory:
    history = RunHistory("run-20260101-000000", run_dir="runs/run-20260101-000000")
    history.add(RunStarted(0.0, history.run_dir, "cpu", "CPU", "classification", 3, 10, 100, 80, 20, 0))
    for step in range(1, 31):
        history.add(BatchMetrics(0.0, (step - 1) // 10, step % 10, step, {"loss": 2.0 / step}, 0.01, 100.0))
        if step % 10 == 0:
            history.add(EpochEnd(0.0, step // 10, step, {"loss": 2.0 / step, "accuracy": step / 40},
                                 {"loss": 2.5 / step, "accuracy": step / 45}, 0.01, 1.0, 100.0))
    return history


def test_plots_hover_values_and_export_png_and_csv(qtbot, tmp_path: Path) -> None:
    plots = MetricPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 300)
    plots.show()
    qtbot.waitExposed(plots)
    key = plots.add_run(_history())
    qtbot.wait(50)  # let the view ranges follow the data
    assert plots.titles[plots.metric_plot] == "Accuracy" and "Accuracy" in plots.headers[plots.metric_plot].text
    assert list(plots.runs[key].items["val_metric"].yData) == [10 / 45, 20 / 45, 30 / 45]
    text = plots._values_at(plots.loss, 2.0)
    assert "epoch 2.00" in text and "val 0.125" in text and "train" in text
    scene_point = plots.loss.vb.mapViewToScene(QPointF(2.0, 0.5))
    plots._on_mouse_moved(scene_point)
    assert plots._hover[plots.loss].isVisible()
    plots.set_log_scale(True)
    assert plots.loss.ctrl.logYCheck.isChecked()
    plots.export_png(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    plots.current_history().write_csv(tmp_path / "curves.csv")
    assert (tmp_path / "curves.csv").read_text().splitlines()[0].startswith("epoch,train_loss")
