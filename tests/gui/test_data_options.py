"""The Data panel's option editors as a person uses them: an arrow click or a choice edits the
project (one undo step) and the editor stays (it used to delete itself inside its own signal:
a segfault), undo shows the old value in the same editor, and an unset optional number reads as
unset, not as its minimum."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox

from engine.graph.fileformat import load_project
from engine.templates import TEMPLATES_DIR
from gui.document import Document
from gui.training.data_panel import DataPanel


def _panel(qtbot, template: str, dataset: dict | None = None) -> DataPanel:  # noqa: ANN001
    project = load_project(TEMPLATES_DIR / template)
    if dataset is not None:
        project.dataset = dataset
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(Document(project))
    panel.show()
    assert panel.wait_loaded()
    return panel


def _editor(panel: DataPanel, label: str):  # noqa: ANN202
    form = panel.options_form
    for row in range(form.rowCount()):
        if form.itemAt(row, form.ItemRole.LabelRole).widget().text() == label:
            return form.itemAt(row, form.ItemRole.FieldRole).widget()
    raise AssertionError(f"no option {label!r}")


def test_an_arrow_click_edits_the_option_and_keeps_its_editor(qtbot) -> None:  # noqa: ANN001
    panel = _panel(qtbot, "fnn_spirals.json")
    noise = _editor(panel, "noise")
    assert isinstance(noise, QDoubleSpinBox)
    before = panel.spec.get("noise", noise.value())
    noise.stepUp()  # the arrow: valueChanged -> an undoable edit of dataset.noise
    noise.stepUp()
    assert panel.spec["noise"] == round(before + 2 * noise.singleStep(), 6) or panel.spec["noise"] > before
    assert _editor(panel, "noise") is noise  # the same widget: focus and the next click stay on it
    panel.document.undo()
    panel.document.undo()
    assert noise.value() == before and panel.spec.get("noise", before) == before


def test_a_choice_edits_the_option_in_place(qtbot, tmp_path) -> None:  # noqa: ANN001
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "imgs" / name / f"{i}.png")
    panel = _panel(qtbot, "cnn_digits.json", {"name": "image_folder", "path": str(tmp_path / "imgs"),
                                              "color": "grayscale"})
    color = _editor(panel, "color")
    assert isinstance(color, QComboBox)
    color.activated.emit(color.findData("rgb"))  # what choosing an item does
    assert panel.spec["color"] == "rgb" and _editor(panel, "color") is color
    assert color.currentData() == "rgb"


def test_an_unset_optional_number_reads_as_unset(qtbot, tmp_path) -> None:  # noqa: ANN001
    panel = _panel(qtbot, "cnn_digits.json", {"name": "mnist", "path": str(tmp_path / "none")})
    limit = _editor(panel, "limit")
    assert isinstance(limit, QSpinBox)
    assert limit.text() == "(all)" and "limit" not in {k for k, v in panel.spec.items() if v is not None}
    limit.stepUp()  # from unset, the arrow gives the smallest allowed value
    assert panel.spec["limit"] == limit.value() >= 2
    limit.stepDown()
    assert panel.spec.get("limit") is None and limit.text() == "(all)"


def test_the_browse_button_of_a_folder_option_sets_it(qtbot, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QLineEdit, QPushButton

    for folder in ("one", "two"):
        for name in ("a", "b"):
            (tmp_path / folder / name).mkdir(parents=True)
            Image.new("L", (8, 8), 10).save(tmp_path / folder / name / "0.png")
    panel = _panel(qtbot, "cnn_digits.json", {"name": "image_folder", "path": str(tmp_path / "one")})
    row = _editor(panel, "path")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path / "two"))
    qtbot.mouseClick(row.findChild(QPushButton), Qt.MouseButton.LeftButton)
    assert panel.spec["path"] == str(tmp_path / "two")
    assert row.findChild(QLineEdit).text() == str(tmp_path / "two") and _editor(panel, "path") is row
