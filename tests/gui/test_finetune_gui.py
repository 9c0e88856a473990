"""Fine-tuning in the app: the inspector's Training section, the frozen look on the canvas, and
Edit > Freeze / Unfreeze Layers as one undo step."""

from __future__ import annotations

import pytest

from engine.graph.fileformat import dumps
from gui.document import Document
from gui.inspector import InspectorWidget
from tests.conftest import ROOT


@pytest.fixture
def document(qtbot) -> Document:  # noqa: ANN001
    doc = Document.open(ROOT / "templates" / "cnn_digits.json")
    yield doc
    doc.close()


def test_training_section_shows_for_layers_with_parameters_and_edits_are_undoable(qtbot, document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show()
    inspector.show_node("relu1")
    assert inspector.training is not None and not inspector.training.isVisible()  # no parameters: nothing to freeze
    inspector.show_node("conv1")
    training = inspector.training
    assert training is not None and training.isVisible() and training.trainable.isChecked()
    before = dumps(document.project)
    training.trainable.click()
    assert document.graph.nodes["conv1"].trainable is False and document.undo_stack.count() == 1
    assert not training.lr_scale.isEnabled()  # a frozen layer learns at no rate
    document.refresh_analysis()
    assert inspector._parameters.text() == "160 (frozen)"
    document.undo_stack.undo()
    assert document.graph.nodes["conv1"].trainable is True and training.trainable.isChecked()
    assert dumps(document.project) == before
    for _ in range(3):
        training.lr_scale.stepUp()  # 1.1, 1.2, 1.3: one undo step
    assert document.graph.nodes["conv1"].lr_scale == pytest.approx(1.3)
    assert document.undo_stack.count() == 1 and document.undo_stack.index() == 1  # replaced the undone freeze
    document.undo_stack.undo()
    assert document.graph.nodes["conv1"].lr_scale == 1.0 and training.lr_scale.value() == 1.0
    document.read_only_reason = "Training is running"
    inspector.update_read_only()
    assert not training.trainable.isEnabled() and training.trainable.toolTip() == "Training is running"


def test_freeze_and_unfreeze_the_selection_in_one_step_and_the_cards_look_frozen(window) -> None:  # noqa: ANN001
    graph = window.document.graph
    scene = window.canvas.scene()
    window.canvas.select_nodes(["image", "conv1", "relu1", "conv2"], center=False)
    window.actions["freeze"].trigger()
    assert [n.id for n in graph if not n.trainable] == ["conv1", "conv2"]  # layers only; the Input is no layer
    stack = window.document.undo_stack
    assert stack.count() == 1 and stack.text(0) == "Freeze 2 layers"
    item = scene.nodes["conv1"]
    assert item.frozen and any("frozen" in text for _, text in item._rows)
    assert not scene.nodes["relu1"].frozen  # no parameters: it keeps its look (and its flag)
    image = window.canvas.grab()  # paints the badge and the muted header without error
    assert not image.isNull()
    window.actions["unfreeze"].trigger()
    assert all(n.trainable for n in graph) and stack.count() == 2 and not item.frozen
    stack.undo()
    stack.undo()
    assert all(n.trainable for n in graph) and not item.frozen
    stack.redo()
    assert not graph.nodes["conv2"].trainable and scene.nodes["conv2"].frozen


def test_a_scaled_layer_says_so_on_its_card(window) -> None:  # noqa: ANN001
    from gui import commands

    window.document.push(commands.set_training(window.document.graph, "fc2", "lr_scale", 10.0))
    assert any("lr ×10" in text for _, text in window.canvas.scene().nodes["fc2"]._rows)


def test_a_template_copy_keeps_its_pretrained_weights_to_train_and_to_save(window, qtbot, tmp_path) -> None:  # noqa: ANN001
    from engine.templates import TEMPLATES_DIR

    template = TEMPLATES_DIR / "finetune_digits.json"
    assert window.open_project(template, untitled=True)
    doc = window.document
    assert doc.path is None and doc.start_weights() == template.with_suffix(".safetensors")
    doc.save(tmp_path / "mine.json")
    copied = tmp_path / "mine.safetensors"
    assert copied.read_bytes() == template.with_suffix(".safetensors").read_bytes()
    assert doc.start_weights() == copied
