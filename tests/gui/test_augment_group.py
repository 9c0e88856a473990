"""The Data panel's Augmentation group: which options show, undoable edits, a live augmented preview."""

from __future__ import annotations

from engine.graph.fileformat import load_project
from engine.templates import TEMPLATES_DIR, default_template
from gui.document import Document
from gui.training.data_panel import DataPanel


def _panel(qtbot, document: Document) -> DataPanel:  # noqa: ANN001
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    assert panel.wait_loaded()
    return panel


def _shown(panel: DataPanel) -> set[str]:
    group = panel.augment
    return {name for row, name in enumerate(group.editors) if group.form.isRowVisible(row)}


def test_image_data_offers_every_image_option_and_edits_are_undoable_with_a_live_preview(qtbot) -> None:  # noqa: ANN001
    document = Document(load_project(default_template()))  # a CNN on the 8x8 digits
    panel = _panel(qtbot, document)
    group = panel.augment
    assert not group.isHidden() and group.preview.isHidden()  # everything off: nothing to preview
    assert _shown(panel) == set(group.editors) - {"saturation"}  # digits are grey
    loads = panel.background.ticket

    group.editors["hflip"].setChecked(True)
    assert document.project.dataset["augment"] == {"hflip": True}
    group.editors["rotation"].setValue(20.0)
    group.editors["rotation"].setValue(30.0)  # repeated edits of one option are one undo step
    assert document.project.dataset["augment"] == {"hflip": True, "rotation": 30.0}
    assert panel.background.ticket == loads  # augmentation changes no loaded data: no reload
    assert not group.preview.isHidden() and not group.preview.pixmap().isNull()
    first = group.preview_images()
    assert first is not None and first.shape == (16, 1, 8, 8)
    group.redraw.click()
    assert not (group.preview_images() == first).all()  # another draw

    document.undo_stack.undo()
    assert document.project.dataset["augment"] == {"hflip": True}
    assert group.editors["rotation"].value() == 0.0
    document.undo_stack.undo()
    assert "augment" not in document.project.dataset and not group.editors["hflip"].isChecked()
    assert group.preview.isHidden()
    document.undo_stack.redo()
    assert group.editors["hflip"].isChecked() and not group.preview.isHidden()


def test_a_table_offers_only_noise_and_mixup_and_a_bad_value_is_shown(qtbot) -> None:  # noqa: ANN001
    document = Document(load_project(default_template()))
    document.project.dataset.clear()
    document.project.dataset.update({"name": "iris", "augment": {"rotation": 400}})
    panel = _panel(qtbot, document)
    assert _shown(panel) == {"noise", "mixup"}
    assert panel.augment.message.text() == "dataset.augment.rotation: must be from 0 to 180 degrees, got 400"


def test_token_data_has_no_augmentation(qtbot) -> None:  # noqa: ANN001
    template = next(p for p in sorted(TEMPLATES_DIR.glob("*.json")) if "char" in p.stem or "text" in p.stem)
    panel = _panel(qtbot, Document(load_project(template)))
    assert panel.augment.isHidden()


def test_a_streamed_image_folder_offers_the_image_options_and_previews_them(qtbot, tmp_path,  # noqa: ANN001
                                                                             monkeypatch) -> None:  # noqa: ANN001
    from engine.data import streaming
    from tests.test_streaming import make_image_folder

    monkeypatch.setattr(streaming, "cache_root", lambda: tmp_path / "cache")
    folder = make_image_folder(tmp_path / "images", per_class=10, size=8)
    project = load_project(default_template())
    project.dataset = {"name": "image_folder", "path": str(folder), "size": [8, 8], "color": "rgb",
                       "storage": "stream", "augment": {"hflip": True}}
    panel = _panel(qtbot, Document(project))
    assert "streamed from disk" in panel.summary.text()
    assert {"hflip", "crop", "rotation", "saturation"} <= _shown(panel)  # uint8 storage is still images
    assert not panel.augment.preview.isHidden()
