"""File > Export Model and File > Import Model, driven like a person would."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from engine.graph.fileformat import dumps, loads, save_project
from engine.training.trainer import Trainer, TrainOptions
from gui.main_window import MainWindow
from gui.model_io.export_dialog import ExportDialog
from gui.model_io.import_dialog import ImportDialog, parse_shape
from tests.training.helpers import mlp_project

TINY_MODEL = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc1 = nn.Linear(4, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Sorts(nn.Module):
    def forward(self, x):
        return torch.sort(x).values
'''


@pytest.fixture(autouse=True)
def _fresh_import_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's Import dialog starts empty (it remembers the last one's fields for the session)."""
    monkeypatch.setattr(ImportDialog, "remembered", {}, raising=False)


@pytest.fixture
def window(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    monkeypatch.setenv("NEURAL_CANVAS_RUNS_DIR", str(tmp_path / "runs"))
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    return w


def _export_dialog_of_a_trained_run(qtbot, window: MainWindow, tmp_path: Path,  # noqa: ANN001
                                    epochs: int) -> tuple[Path, ExportDialog]:
    """``mlp.json`` trained ``epochs`` epochs into its runs folder, opened, and its Export dialog."""
    path = tmp_path / "mlp.json"
    project = mlp_project({"epochs": epochs})
    save_project(project, path)
    Trainer(TrainOptions(loads(dumps(project)), tmp_path / "runs" / "mlp-20260101-000000"), lambda e: None).run()
    assert window.open_project(path)
    runs = [c.history for c in window.training.dashboard.plots.runs.values()]
    dialog = ExportDialog(window.document.project, path, runs, is_gan=False)
    qtbot.addWidget(dialog)
    return path, dialog


def test_export_a_trained_run_as_onnx_and_the_current_graph_as_source(qtbot, window: MainWindow,
                                                                      tmp_path: Path) -> None:
    path, dialog = _export_dialog_of_a_trained_run(qtbot, window, tmp_path, epochs=2)
    assert dialog.source.currentData() == str(tmp_path / "runs" / "mlp-20260101-000000")  # newest run first
    assert dialog.out.text().endswith("mlp.onnx")
    dialog.start()
    assert dialog.wait()
    assert dialog.error == "" and dialog.result.max_abs_diff <= dialog.result.tolerance
    assert (tmp_path / "mlp.onnx").is_file() and "Exported and checked" in dialog.status.text()
    dialog.source.setCurrentIndex(0)  # the current graph, untrained
    dialog.format.setCurrentIndex(3)  # PyTorch source
    assert dialog.out.text().endswith("mlp_pytorch")
    dialog.start()
    assert dialog.wait()
    assert dialog.error == "", dialog.error
    assert (tmp_path / "mlp_pytorch" / "model.py").is_file() and (tmp_path / "mlp_pytorch" / "train.py").is_file()


def test_export_of_an_invalid_graph_shows_the_problem(qtbot, window: MainWindow, tmp_path: Path) -> None:
    project = mlp_project()
    for edge in list(project.graph.edges_of("act1")):
        project.graph.remove_edge(edge)
    project.graph.remove_node("act1")
    dialog = ExportDialog(project, None, [], is_gan=False)
    qtbot.addWidget(dialog)
    dialog.out.setText(str(tmp_path / "x.onnx"))
    dialog.start()
    assert dialog.wait()
    assert dialog.result is None and "node" in dialog.error and "D1242F" in dialog.status.styleSheet()


def test_import_a_pytorch_class_opens_it_on_the_canvas(qtbot, window: MainWindow, tmp_path: Path) -> None:
    source = tmp_path / "tiny_models.py"
    source.write_text(TINY_MODEL)
    dialog = ImportDialog(tmp_path)
    qtbot.addWidget(dialog)
    dialog.py_file.setText(str(source))
    dialog.class_name.setText("Tiny")
    dialog.args.setText("[16]")
    dialog.shape.setText("4")
    dialog.out.setText(str(tmp_path / "tiny.json"))
    assert dialog.start()
    assert dialog.wait()
    assert dialog.error == "" and dialog.imported == tmp_path / "tiny.json"
    assert (tmp_path / "tiny.safetensors").is_file()
    assert window.open_project(dialog.imported)
    types = sorted(node.type_id for node in window.document.graph)
    assert types.count("linear") == 2 and "relu" in types
    assert window.document.analysis.valid and window.document.analysis.parameters == 4 * 16 + 16 + 16 * 3 + 3


def test_import_refuses_what_it_cannot_map_and_writes_nothing(qtbot, tmp_path: Path) -> None:
    source = tmp_path / "tiny_models2.py"
    source.write_text(TINY_MODEL)
    dialog = ImportDialog(tmp_path)
    qtbot.addWidget(dialog)
    dialog.py_file.setText(str(source))
    dialog.class_name.setText("Sorts")
    dialog.shape.setText("5")
    dialog.out.setText(str(tmp_path / "sorts.json"))
    assert dialog.start()
    assert dialog.wait()
    assert dialog.imported is None and "sort" in dialog.error
    assert not (tmp_path / "sorts.json").exists()
    dialog.tabs.setCurrentIndex(1)
    dialog.onnx_file.setText(str(tmp_path / "missing.onnx"))
    assert not dialog.start() and "does not exist" in dialog.status.text()
    not_onnx = tmp_path / "bad.onnx"
    not_onnx.write_text("hello")
    dialog.onnx_file.setText(str(not_onnx))
    assert dialog.start() and dialog.wait()
    assert dialog.imported is None and "bad.onnx" in dialog.error


def test_shape_text_is_parsed_or_refused() -> None:
    assert parse_shape("1, 28, 28") == (1, 28, 28) and parse_shape("(3x32x32)") == (3, 32, 32)
    assert parse_shape("  ") is None
    assert parse_shape("7, 8; (5, 8)") == [(7, 8), (5, 8)]  # one per argument of forward
    with pytest.raises(ValueError):
        parse_shape("0, 2")
    with pytest.raises(ValueError):
        parse_shape("7; ")


def test_a_new_format_clears_the_last_result_and_model_py_usage_runs(qtbot, window: MainWindow,
                                                                      tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "mlp.json"
    save_project(mlp_project(), path)
    assert window.open_project(path)
    dialog = ExportDialog(window.document.project, path, [], is_gan=False)
    qtbot.addWidget(dialog)
    dialog.format.setCurrentIndex(3)  # PyTorch source
    dialog.start()
    assert dialog.wait() and dialog.error == "", dialog.error
    assert "Exported and checked" in dialog.status.text() and not dialog.report.isHidden()
    assert dialog.exported_to == tmp_path / "mlp_pytorch"  # the window remembers its folder for next time
    dialog.format.setCurrentIndex(0)  # ONNX: nothing was exported as ONNX yet
    assert "Exported" not in dialog.status.text() and dialog.report.isHidden() and dialog.result is None
    folder = tmp_path / "mlp_pytorch"
    text = (folder / "model.py").read_text(encoding="utf-8")
    usage = text.split("Usage::", 1)[1].split('"""', 1)[0]
    code = "\n".join(line[4:] for line in usage.strip("\n").splitlines())
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_import_notes_wrap_and_a_typed_file_suggests_where_to_save(qtbot, tmp_path: Path) -> None:
    """The ONNX tab's list of what maps ran off the dialog's right edge; and Save as was filled in
    only for a file chosen with Browse, not for one typed or pasted."""
    from PySide6.QtWidgets import QLabel

    dialog = ImportDialog(tmp_path)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    for index in (0, 1):
        dialog.tabs.setCurrentIndex(index)
        qtbot.wait(10)
        page = dialog.tabs.currentWidget()
        for label in page.findChildren(QLabel):
            if label.text().startswith(("Supported", "The class")):
                assert label.wordWrap() and label.geometry().right() <= page.contentsRect().right()
    metrics = dialog.shape.fontMetrics()  # the longest example is not cut short either
    assert dialog.shape.width() >= metrics.horizontalAdvance(dialog.shape.placeholderText())
    source = tmp_path / "model.onnx"
    source.write_bytes(b"")
    dialog.onnx_file.setText(str(source))
    dialog.onnx_file.editingFinished.emit()
    assert dialog.out.text() == str(tmp_path / "model_imported.json")
    dialog.out.setText(str(tmp_path / "mine.json"))
    dialog.py_file.setText(str(source))  # a place already chosen is kept
    dialog.py_file.editingFinished.emit()
    assert dialog.out.text() == str(tmp_path / "mine.json")


def test_export_asks_before_replacing_a_file_or_a_source_folder(qtbot, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An export over an existing file, or into an existing PyTorch source folder, replaced it without asking."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a, **k: asked.append(text) or answer[0])
    dialog = ExportDialog(mlp_project(), tmp_path / "mlp.json", [], is_gan=False)
    qtbot.addWidget(dialog)
    started: list[bool] = []
    monkeypatch.setattr(dialog.background, "start", lambda call: started.append(True))
    dialog.out.setText(str(tmp_path / "new.onnx"))  # nothing there: no question
    dialog.start()
    assert started == [True] and asked == []
    (tmp_path / "old.onnx").write_bytes(b"keep")
    dialog.out.setText(str(tmp_path / "old.onnx"))  # typed in the field
    dialog.start()
    assert len(asked) == 1 and "old.onnx" in asked[0] and started == [True]  # cancelled: not exported
    answer[0] = QMessageBox.StandardButton.Yes
    dialog.start()
    assert len(asked) == 2 and started == [True, True]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "old.onnx"), ""))
    dialog._browse()  # Qt's save dialog asked already: not asked twice
    dialog.start()
    assert len(asked) == 2 and started == [True, True, True]
    dialog.format.setCurrentIndex(3)  # PyTorch source: a folder
    folder = tmp_path / "src"
    folder.mkdir()
    dialog.out.setText(str(folder))
    dialog.start()  # an empty folder is not asked about
    assert len(asked) == 2
    (folder / "model.py").write_text("# mine\n", encoding="utf-8")
    answer[0] = QMessageBox.StandardButton.Cancel
    dialog.start()
    assert len(asked) == 3 and str(folder) in asked[2] and len(started) == 4
    assert (folder / "model.py").read_text(encoding="utf-8") == "# mine\n"


def test_the_import_dialog_remembers_what_was_typed(qtbot, tmp_path: Path) -> None:
    """Reopening File > Import Model showed empty fields: the file, class, arguments and shape were gone."""
    source = tmp_path / "tiny_models.py"
    source.write_text(TINY_MODEL)
    first = ImportDialog(tmp_path)
    qtbot.addWidget(first)
    first.py_file.setText(str(source))
    first.class_name.setText("Tiny")
    first.args.setText("[16]")
    first.shape.setText("4")
    first.onnx_file.setText(str(tmp_path / "model.onnx"))
    first.reject()  # Cancel
    second = ImportDialog(tmp_path)
    qtbot.addWidget(second)
    assert (second.py_file.text(), second.class_name.text(), second.args.text(), second.shape.text()) == \
        (str(source), "Tiny", "[16]", "4")
    assert second.onnx_file.text() == str(tmp_path / "model.onnx") and second.tabs.currentIndex() == 0
    assert second.out.text() == str(tmp_path / "tiny_models_imported.json")  # suggested as for a typed file
    second.tabs.setCurrentIndex(1)
    second.class_name.setText("Other")
    second.accept()
    third = ImportDialog(tmp_path)
    qtbot.addWidget(third)
    assert third.class_name.text() == "Other" and third.tabs.currentIndex() == 1


def test_import_asks_before_replacing_a_project(qtbot, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QMessageBox

    source = tmp_path / "tiny_models3.py"
    source.write_text(TINY_MODEL)
    target = tmp_path / "tiny.json"
    target.write_text("{}")
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a, **k: asked.append(text) or answer[0])
    dialog = ImportDialog(tmp_path)
    qtbot.addWidget(dialog)
    dialog.py_file.setText(str(source))
    dialog.class_name.setText("Tiny")
    dialog.shape.setText("4")
    dialog.out.setText(str(target))
    assert not dialog.start()  # cancelled: nothing written
    assert asked and "tiny.json already exists" in asked[0] and target.read_text() == "{}"
    answer[0] = QMessageBox.StandardButton.Yes
    assert dialog.start() and dialog.wait()
    assert dialog.imported == target and target.read_text() != "{}"
    asked.clear()
    dialog._confirmed = target  # as after Browse's own save dialog asked
    assert dialog.start() and dialog.wait() and not asked


NESTED_MODEL = '''
from torch import nn


class Unit(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x)) + x


class Stack(nn.Module):
    def __init__(self):
        super().__init__()
        self.units = nn.Sequential(Unit(8), Unit(8), Unit(8))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.units(x))
'''


def test_the_import_dialog_keeps_the_module_hierarchy_as_blocks_unless_unticked(qtbot, window: MainWindow,
                                                                                tmp_path: Path) -> None:
    source = tmp_path / "nested_models.py"
    source.write_text(NESTED_MODEL)
    for blocks in (True, False):
        dialog = ImportDialog(tmp_path)
        qtbot.addWidget(dialog)
        dialog.py_file.setText(str(source))
        dialog.class_name.setText("Stack")
        dialog.args.setText("")
        dialog.shape.setText("8")
        dialog.blocks.setChecked(blocks)
        dialog.out.setText(str(tmp_path / f"stack_{blocks}.json"))
        assert dialog.start() and dialog.wait() and dialog.error == "", dialog.error
        assert window.open_project(dialog.imported)
        doc = window.document
        instances = [n for n in doc.graph if n.type_id == "block"]
        assert bool(instances) == blocks and bool(doc.project.blocks) == blocks
        assert doc.model_analysis.valid and doc.model_analysis.parameters == 3 * (8 * 8 + 8) + 8 * 2 + 2
        if blocks:
            assert "as " in dialog.status.text() and "block definition" in dialog.status.text()


def test_an_int8_export_of_a_run_reports_size_and_accuracy(qtbot, window: MainWindow, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    path, dialog = _export_dialog_of_a_trained_run(qtbot, window, tmp_path, epochs=3)
    assert dialog.precision.isEnabled()  # ONNX of a trained run
    dialog.precision.setCurrentIndex(2)  # fp16, then a format it does not apply to: float32 is shown
    dialog.format.setCurrentIndex(1)
    assert not dialog.precision.isEnabled() and "choose ONNX" in dialog.precision.toolTip()
    assert dialog.precision.currentData() is None and dialog.chosen_precision is None
    dialog.format.setCurrentIndex(0)
    assert dialog.precision.currentData() == "fp16"  # the choice comes back
    dialog.source.setCurrentIndex(0)  # the untrained graph has no validation accuracy to keep
    assert not dialog.precision.isEnabled() and "trained run" in dialog.precision.toolTip()
    dialog.source.setCurrentIndex(1)
    dialog.precision.setCurrentIndex(1)  # int8
    dialog.start()
    assert dialog.wait()
    assert dialog.error == "", dialog.error
    report = dialog.result.quantized
    assert report.mode == "int8" and report.quantized_bytes < report.float_bytes
    assert "int8 model" in dialog.status.text() and "validation accuracy" in dialog.status.text()
    assert "latency, batch 1" in dialog.report.toPlainText()

    import engine.compile.export.quantized_export as quantized_export
    from engine.compile.export import ExportError

    def refuse(*args: object, **kwargs: object) -> None:
        raise ExportError("int8: ONNX Runtime cannot quantize this model (dynamic): unsupported op Foo")

    monkeypatch.setattr(quantized_export, "quantize", refuse)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    dialog.start()
    assert dialog.wait()
    qtbot.waitUntil(lambda: not dialog.background.busy() and dialog.result is not None, timeout=60_000)
    assert "the float model was written instead" in dialog.report.toPlainText()
