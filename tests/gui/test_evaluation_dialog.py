"""The Evaluate window: a finished run's test metrics, per-class scores, confusion matrix and samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.graph.fileformat import load_project
from engine.training.events import Finished
from engine.training.trainer import Trainer, TrainOptions
from gui.training.evaluation_dialog import COLUMNS, EvaluationDialog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits CNN template trained one epoch with a test part of 0.2."""
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    project.training["test_fraction"] = 0.2
    run = tmp_path_factory.mktemp("evaluate_gui") / "cnn"
    result = Trainer(TrainOptions(project, run, ROOT / "templates", {"epochs": 1, "device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Finished)
    return run


def test_the_window_shows_metrics_classes_confusion_and_filterable_samples(qtbot, digits_run: Path,
                                                                           tmp_path: Path) -> None:  # noqa: ANN001
    dialog = EvaluationDialog(digits_run, ROOT / "templates")
    qtbot.addWidget(dialog)
    assert dialog.wait()
    evaluation = dialog.evaluation
    assert evaluation is not None and dialog.error == "" and evaluation.split == "test"
    assert "accuracy" in dialog.summary.text() or "acc" in dialog.summary.text()
    assert dialog.classes.rowCount() == 10 and dialog.confusion.rowCount() == 10
    assert sum(int(dialog.confusion.item(r, c).text()) for r in range(10) for c in range(10)) == evaluation.samples
    model = dialog.samples.model()
    assert model.rowCount() == evaluation.samples and not dialog.samples.isColumnHidden(COLUMNS.index("image"))
    assert evaluation.images is not None and evaluation.images.shape == (evaluation.samples, 1, 8, 8)
    thumbnail = model.index(0, COLUMNS.index("image")).data(Qt.ItemDataRole.DecorationRole)
    assert thumbnail is not None and not thumbnail.isNull()
    wrong = sum(1 for row in evaluation.rows if row.correct is False)
    dialog.mistakes.setChecked(True)
    assert model.rowCount() == wrong
    dialog.mistakes.setChecked(False)
    dialog.search.setText(evaluation.class_names[3])
    assert 0 < model.rowCount() < evaluation.samples
    dialog.search.clear()
    dialog.samples.sortByColumn(COLUMNS.index("confidence"), Qt.SortOrder.DescendingOrder)
    first = model.index(0, COLUMNS.index("confidence")).data()
    assert first == f"{max(r.confidence for r in evaluation.rows):.1%}"
    written = dialog.export_csv(tmp_path / "samples.csv")
    assert written is not None and len(written.read_text().splitlines()) == evaluation.samples + 1


def test_the_validation_split_and_a_run_without_a_test_split(qtbot, digits_run: Path, tmp_path: Path) -> None:  # noqa: ANN001
    dialog = EvaluationDialog(digits_run, ROOT / "templates")
    qtbot.addWidget(dialog)
    assert dialog.wait()
    dialog.split.setCurrentIndex(1)
    assert dialog.wait()
    assert dialog.evaluation is not None and dialog.evaluation.split == "val"
    missing = EvaluationDialog(tmp_path / "nothing", ROOT / "templates")
    qtbot.addWidget(missing)
    assert missing.wait()
    assert missing.evaluation is None and str(tmp_path / "nothing") in missing.summary.text()
    assert "\n" not in missing.error.strip()


def test_the_settings_panel_edits_the_test_fraction(qtbot) -> None:  # noqa: ANN001
    from gui.training.settings_panel import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert "test_fraction" in panel.editors


def test_a_run_without_a_test_split_shows_its_validation_split_and_says_why(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    project = load_project(ROOT / "templates" / "cnn_digits.json")
    run = tmp_path / "plain"
    assert isinstance(Trainer(TrainOptions(project, run, ROOT / "templates", {"epochs": 1, "device": "cpu"}),
                              lambda event: None).run(), Finished)
    dialog = EvaluationDialog(run, ROOT / "templates")
    qtbot.addWidget(dialog)
    assert dialog.wait() and dialog.evaluation is not None and dialog.evaluation.split == "val"
    assert "test_fraction" in dialog.summary.text()


def test_choosing_a_sample_explains_its_prediction(qtbot, digits_run: Path) -> None:  # noqa: ANN001
    import numpy as np

    dialog = EvaluationDialog(digits_run, ROOT / "templates")
    qtbot.addWidget(dialog)
    assert dialog.wait()
    pane = dialog.attribution
    assert pane.hint.isVisibleTo(dialog) and not pane.view.isVisibleTo(dialog)
    dialog.samples.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # the table's order is not the data's
    dialog.samples.setCurrentIndex(dialog.samples.model().index(0, 0))
    qtbot.waitUntil(lambda: pane.predictor is not None and not pane.background.busy(), timeout=60_000)
    evaluation = dialog.evaluation
    last = int(np.argmax([row.index for row in evaluation.rows]))
    assert pane.sample is evaluation.inputs[last] or np.array_equal(pane.sample, evaluation.inputs[last])
    assert pane.view.isVisibleTo(dialog) and pane.view.method() is not None
    qtbot.waitUntil(lambda: "explaining" in pane.view.title.text(), timeout=60_000)
    assert pane.view.heat_image.pixmap() is not None and not pane.view.heat_image.pixmap().isNull()
