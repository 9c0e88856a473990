"""The Data panel's table names its columns after what they hold."""

from __future__ import annotations

from engine.data import load_dataset
from gui.training.data_panel import DataPanel
from gui.training.data_preview import input_labels, target_labels
from gui.document import Document
from engine.templates import TEMPLATES_DIR
from engine.graph.fileformat import load_project


def test_a_forecasting_window_is_labelled_by_step_and_the_target_is_the_next_value(qtbot) -> None:  # noqa: ANN001
    document = Document(load_project(TEMPLATES_DIR / "lstm_sine_forecast.json"))
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    assert panel.wait_loaded()
    table = panel.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers[0] == "t−31" and headers[30] == "t−1" and headers[31] == "t" and headers[32] == "target t+1"
    assert len(headers) == 33 and "value" not in headers
    dataset = panel.dataset
    # the target column holds the value after the window, not a window value
    assert float(table.item(0, 32).text()) == float(f"{dataset.y[0, 0]:.4g}")
    assert float(table.item(1, 31).text()) == float(f"{dataset.y[0, 0]:.4g}")  # the next window ends there


def test_tables_keep_their_feature_names_and_classes_have_one_column() -> None:
    iris = load_dataset({"name": "iris"})
    assert input_labels(iris) == list(iris.feature_names) and target_labels(iris) == ["class"]
    digits = load_dataset({"name": "digits"})
    assert input_labels(digits)[:2] == ["x[0,0,0]", "x[0,0,1]"] and len(input_labels(digits)) == 64


def test_a_streamed_archive_previews_its_first_rows_and_says_it_streams(qtbot, tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    x = np.arange(200 * 5, dtype=np.float64).reshape(200, 5)
    np.savez(tmp_path / "table.npz", x=x, y=np.arange(200) % 2)
    project = load_project(TEMPLATES_DIR / "fnn_breast_cancer.json")
    project.dataset = {"name": "npz", "path": str(tmp_path / "table.npz"), "storage": "stream"}
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(Document(project))
    assert panel.wait_loaded()
    assert "Streamed from disk (storage: stream" in panel.summary.text()
    assert panel.table.rowCount() > 0 and float(panel.table.item(1, 2).text()) == 7.0
