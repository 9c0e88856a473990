"""Try It: the newest run's predictions on images dropped or chosen, and on typed table values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.graph.fileformat import load_project
from engine.training.events import Finished
from engine.training.predict import predict_run
from engine.training.trainer import Trainer, TrainOptions
from gui.training.try_panel import TryPanel
from tests.training.helpers import mlp_project

ROOT = Path(__file__).resolve().parents[2]


def _train(project, run: Path) -> Path:  # noqa: ANN001
    result = Trainer(TrainOptions(project, run, ROOT / "templates", {"epochs": 1, "device": "cpu"}),
                     lambda event: None).run()
    assert isinstance(result, Finished)
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(load_project(ROOT / "templates" / "cnn_digits.json"), tmp_path_factory.mktemp("try") / "cnn")


def _digit_files(folder: Path, count: int = 3) -> list[str]:
    from sklearn.datasets import load_digits

    images = load_digits().images[:count]
    paths = []
    for i, image in enumerate(images):
        path = folder / f"digit{i}.png"
        Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(path)
        paths.append(str(path))
    return paths


def test_images_get_the_commands_predictions_with_top_classes_and_an_attribution_map(qtbot, digits_run: Path,
                                                                                 tmp_path: Path) -> None:  # noqa: ANN001
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.set_run(digits_run, ROOT / "templates")
    assert panel.wait() and panel.predictor is not None and panel.error == ""
    assert panel.open_button.isVisibleTo(panel) and not panel.prompt.isVisibleTo(panel)
    files = _digit_files(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    panel.predict([str(tmp_path)])
    assert panel.wait() and panel.error == ""
    expected = predict_run(digits_run, files, 5, ROOT / "templates").rows
    assert [(r.prediction, round(r.confidence, 6)) for r in panel.rows] == \
        [(r.prediction, round(r.confidence, 6)) for r in expected]
    assert panel.results.count() == 3 and "notes.txt" in panel.status.text()
    panel.results.setCurrentRow(1)
    assert panel.wait() and panel.attribution.result is not None
    assert panel.picture.pixmap() is not None and not panel.picture.pixmap().isNull()
    assert panel.saliency.pixmap() is not None and not panel.saliency.pixmap().isNull()
    assert str(panel.rows[1].prediction) in panel.answer.text() and "%" in panel.answer.text()


def test_typed_values_predict_for_a_table_model(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    run = _train(mlp_project(), tmp_path / "mlp")
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.set_run(run, ROOT / "templates")
    assert panel.wait() and panel.predictor is not None
    assert len(panel.feature_editors) == 2 and panel.sample_button.isVisibleTo(panel)
    panel.feature_editors[0].setValue(0.5)
    panel.predict_typed()
    assert panel.wait() and panel.error == "" and len(panel.rows) == 1
    assert panel.rows[0].prediction in panel.predictor.dataset.class_names


def test_a_missing_run_is_said_in_one_line(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.set_run(tmp_path / "nothing", tmp_path)
    assert panel.wait() and panel.predictor is None
    assert "nothing" in panel.error and "\n" not in panel.error.strip()


def test_an_unreadable_image_among_good_ones_is_skipped_and_an_error_clears(qtbot, digits_run: Path,
                                                                          tmp_path: Path) -> None:  # noqa: ANN001
    """Picked files with a corrupt one: the good ones are predicted and the bad one is listed; an error
    (nothing readable) leaves no "Predicting…" behind, and the next good prediction clears it."""
    panel = TryPanel()
    qtbot.addWidget(panel)
    panel.set_run(digits_run, ROOT / "templates")
    assert panel.wait()
    files = _digit_files(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    panel.predict([*files, str(broken)])
    assert panel.wait() and panel.error == "" and panel.results.count() == 3
    assert "Skipped 1 file(s)" in panel.status.text() and "broken.png" in panel.status.text()
    panel.predict([str(broken)])
    assert panel.wait() and "no input to predict on" in panel.error and "broken.png" in panel.error
    assert "Predicting" not in panel.answer.text()
    panel.predict(files[:1])
    assert panel.wait() and panel.error == ""
    assert "Drop image files here" in panel.status.text() and "broken" not in panel.status.text()
