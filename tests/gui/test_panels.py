"""Side panels: palette, inspector, problems, summary, and the icons they use."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon

from engine.graph import Graph, Node, Project
from engine.graph.fileformat import dumps
from engine.layers import CATEGORIES, LayerType, all_layers
from gui import commands
from gui.document import Document
from gui.icons import ICON_DIR, category_icon, category_slug, icon
from gui.inspector import HINT, InspectorWidget
from gui.palette import TYPE_ID_ROLE, PaletteWidget, layer_mime_data
from gui.param_editors import (
    BoolEditor,
    ChoiceEditor,
    FloatSpinEditor,
    IntSpinEditor,
    IntTupleEditor,
    ParamEditor,
    TextEditor,
)
from gui.problems import ProblemsWidget, count_text
from gui.style import LAYER_MIME
from gui.summary_panel import TOTAL_LABEL, SummaryWidget
from tests.conftest import ROOT

TOOLBAR_ICONS = ("new", "open", "save", "undo", "redo", "fit", "zoom-in", "zoom-out", "layout", "delete", "train",
                 "pause", "stop", "search", "error", "warning", "ok", "app")


@pytest.fixture
def document(qtbot) -> Document:  # noqa: ANN001
    """The CNN template, as the app opens it."""
    doc = Document.open(ROOT / "templates" / "cnn_digits.json")
    yield doc
    doc.close()


def single_node_document(layer: LayerType) -> Document:
    graph = Graph()
    graph.add_node(Node("n", layer.type_id, {}))
    return Document(Project(graph=graph))


def shown_value(editor: ParamEditor) -> Any:
    """What an editor displays, as a parameter value."""
    if isinstance(editor, IntSpinEditor | FloatSpinEditor):
        return editor.spin.value()
    if isinstance(editor, IntTupleEditor):
        return tuple(spin.value() for spin in editor.spins)
    if isinstance(editor, BoolEditor):
        return editor.check.isChecked()
    if isinstance(editor, ChoiceEditor):
        return editor.combo.currentText()
    assert isinstance(editor, TextEditor)
    text = editor.edit.text()
    return tuple(int(v) for v in text.split(",")) if editor.param.kind == "int_list" else float(text)


# ------------------------------------------------------------------- palette
def test_palette_lists_every_layer_and_search_filters(qtbot) -> None:  # noqa: ANN001
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    assert palette.visible_type_ids() == [layer.type_id for layer in all_layers()]
    palette.set_filter("conv")
    assert set(palette.visible_type_ids()) == {"conv1d", "conv2d", "conv_transpose2d"}
    palette.set_filter("maxpool2d")  # a type id, also part of another layer's title
    assert palette.visible_type_ids() == ["maxpool2d", "adaptive_maxpool2d"]
    palette.set_filter("recurrent")  # a category
    assert set(palette.visible_type_ids()) >= {"rnn", "lstm", "gru"}
    palette.set_filter("gated memory")  # words of a doc
    assert palette.visible_type_ids() == ["lstm"]
    palette.set_filter("no such layer")
    assert palette.visible_type_ids() == [] and palette.empty.isVisibleTo(palette)
    qtbot.keyClick(palette.search, Qt.Key.Key_Escape)
    assert palette.search.text() == "" and len(palette.visible_type_ids()) == len(all_layers())


def test_palette_entries_carry_doc_tooltips_and_category_icons(qtbot) -> None:  # noqa: ANN001
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    item = palette.item_for("conv2d")
    assert "out_channels" in item.toolTip(0) and "Slides learned filters" in item.toolTip(0)
    assert not item.parent().icon(0).isNull() and item.parent().text(0) == "Convolution"


def test_palette_drag_payload_is_the_type_id(qtbot) -> None:  # noqa: ANN001
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    mime = palette.tree.mimeData([palette.item_for("linear")])
    assert mime.hasFormat(LAYER_MIME) and bytes(mime.data(LAYER_MIME)) == b"linear"
    assert bytes(layer_mime_data("gru").data(LAYER_MIME)) == b"gru"
    assert LAYER_MIME in palette.tree.mimeTypes()


def test_palette_enter_and_double_click_activate(qtbot) -> None:  # noqa: ANN001
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    palette.set_filter("dropout")
    with qtbot.waitSignal(palette.layer_activated) as from_search:
        qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    assert from_search.args == ["dropout"]
    qtbot.keyClick(palette.search, Qt.Key.Key_Down)
    assert palette.tree.currentItem().data(0, TYPE_ID_ROLE) == "dropout"
    with qtbot.waitSignal(palette.layer_activated) as from_tree:
        qtbot.keyClick(palette.tree, Qt.Key.Key_Enter)
    assert from_tree.args == ["dropout"]
    with qtbot.waitSignal(palette.layer_activated) as from_mouse:
        palette.tree.itemDoubleClicked.emit(palette.item_for("relu"), 0)
    assert from_mouse.args == ["relu"]


# ----------------------------------------------------------------- inspector
EDITOR_KINDS = {"int": IntSpinEditor, "float": (FloatSpinEditor, TextEditor), "bool": BoolEditor,
                "choice": ChoiceEditor, "int_tuple": IntTupleEditor, "int_list": TextEditor}


@pytest.mark.parametrize("layer", all_layers(), ids=lambda layer: layer.type_id)
def test_inspector_builds_an_editor_per_param_showing_the_value(qtbot, layer: LayerType) -> None:  # noqa: ANN001
    doc = single_node_document(layer)
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show_node("n")
    assert list(inspector.rows) == [param.name for param in layer.params]
    node = doc.graph.nodes["n"]
    for param in layer.params:
        editor = inspector.rows[param.name].editor
        assert isinstance(editor, EDITOR_KINDS[param.kind]), param.name
        assert shown_value(editor) == pytest.approx(node.params[param.name]), param.name
        assert editor.toolTip() == param.doc
    assert doc.undo_stack.count() == 0


def test_spin_box_steps_merge_into_one_undo_step(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("conv1")
    before = dumps(document.project)
    spin = inspector.rows["out_channels"].editor.spin
    for _ in range(3):
        spin.stepUp()
    assert document.graph.nodes["conv1"].params["out_channels"] == 19
    assert document.undo_stack.count() == 1
    document.refresh_analysis()
    assert inspector._parameters.text() == f"{document.analysis.nodes['conv1'].parameters:,}"
    document.undo_stack.undo()
    assert dumps(document.project) == before and spin.value() == 16 and document.undo_stack.count() == 1


def test_typing_in_a_spin_box_is_one_undo_step(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("fc1")
    spin = inspector.rows["out_features"].editor.spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "128")
    assert spin.text() == "128" and document.graph.nodes["fc1"].params["out_features"] == 128
    assert document.undo_stack.count() == 1
    document.undo_stack.undo()
    assert spin.text() == "64" and document.graph.nodes["fc1"].params["out_features"] == 64


def test_tuple_and_choice_edits_go_through_commands(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("conv1")
    inspector.rows["kernel_size"].editor.spins[1].setValue(5)
    assert document.graph.nodes["conv1"].params["kernel_size"] == (3, 5)
    inspector.rows["bias"].editor.check.setChecked(False)
    assert document.graph.nodes["conv1"].params["bias"] is False and document.undo_stack.count() == 2
    document.undo_stack.undo()
    document.undo_stack.undo()
    assert document.graph.nodes["conv1"].params["kernel_size"] == (3, 3)
    assert inspector.rows["kernel_size"].editor.spins[1].value() == 3
    assert inspector.rows["bias"].editor.check.isChecked()


def test_invalid_list_is_refused_with_the_reason(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("image")
    row = inspector.rows["shape"]
    refusals = (("1, 0, 8", "between 1 and 1000000, got 0"), ("1, x, 8", "'x' is not an integer"),
                ("", "enter integers"))
    for text, reason in refusals:
        row.editor.edit.setText(text)
        row.editor.edit.editingFinished.emit()
        assert reason in row.problem.text() and not row.problem.isHidden()
        assert document.graph.nodes["image"].params["shape"] == (1, 8, 8)
    assert document.undo_stack.count() == 0
    row.editor.edit.setText("[1, 28, 28]")
    row.editor.edit.editingFinished.emit()
    assert document.graph.nodes["image"].params["shape"] == (1, 28, 28) and row.problem.isHidden()


def test_log_scale_float_accepts_scientific_notation(qtbot) -> None:  # noqa: ANN001
    doc = single_node_document(next(layer for layer in all_layers() if layer.type_id == "batchnorm2d"))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show_node("n")
    edit = inspector.rows["eps"].editor.edit
    edit.setText("1e-3")
    edit.editingFinished.emit()
    assert doc.graph.nodes["n"].params["eps"] == pytest.approx(1e-3)
    qtbot.keyClick(edit, Qt.Key.Key_Down)
    assert doc.graph.nodes["n"].params["eps"] == pytest.approx(1e-4) and doc.undo_stack.count() == 1
    edit.setText("2")
    edit.editingFinished.emit()
    assert "between 1e-12 and 1, got 2" in inspector.rows["eps"].problem.text()


def test_out_of_range_file_values_are_shown_and_diagnosed(qtbot, document: Document) -> None:  # noqa: ANN001
    document.graph.set_param("fc1", "out_features", 2**40)
    document.graph.set_param("conv1", "kernel_size", (0, 3))
    document.refresh_analysis()
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("fc1")
    row = inspector.rows["out_features"]
    assert isinstance(row.editor, TextEditor) and row.editor.edit.text() == str(2**40)
    assert "between 1 and 1000000" in row.problem.text()
    inspector.show_node("conv1")
    spins = inspector.rows["kernel_size"].editor.spins
    assert spins[0].value() == 0 and "got 0" in inspector.rows["kernel_size"].problem.text()
    spins[0].stepUp()
    assert document.graph.nodes["conv1"].params["kernel_size"] == (1, 3) and spins[0].minimum() == 1


def test_selection_hints_and_removal(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    assert inspector.hint.text() == HINT
    inspector.show_nodes(["conv1", "conv2"])
    assert inspector.node_id is None and "2 layers selected" in inspector.hint.text()
    inspector.show_nodes(["relu1"])
    assert inspector.node_id == "relu1" and inspector.rows == {}
    document.push(commands.remove(document.graph, ["relu1"]))
    assert inspector.node_id is None and inspector.hint.text() == HINT


def test_read_only_document_disables_editors(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("fc1")
    document.read_only_reason = "Training is running"
    inspector.update_read_only()
    editor = inspector.rows["out_features"].editor
    assert not editor.isEnabled() and editor.spin.toolTip() == "Training is running"
    inspector.show_node("conv1")
    assert not inspector.rows["groups"].editor.isEnabled()
    document.read_only_reason = None
    inspector.update_read_only()
    assert inspector.rows["groups"].editor.isEnabled()


def test_refused_push_restores_the_editor(qtbot, document: Document) -> None:  # noqa: ANN001
    inspector = InspectorWidget(document)
    qtbot.addWidget(inspector)
    inspector.show_node("fc1")
    document.read_only_reason = "training is running"
    row = inspector.rows["out_features"]
    row.editor.spin.setValue(100)
    assert document.graph.nodes["fc1"].params["out_features"] == 64 and row.editor.spin.value() == 64
    assert "training is running" in row.problem.text() and document.undo_stack.count() == 0


def test_choice_edit(qtbot) -> None:  # noqa: ANN001
    doc = single_node_document(next(layer for layer in all_layers() if layer.type_id == "gelu"))
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show_node("n")
    combo = inspector.rows["approximate"].editor.combo
    combo.activated.emit(combo.findText("tanh"))
    assert doc.graph.nodes["n"].params["approximate"] == "tanh"
    doc.undo_stack.undo()
    assert combo.currentText() == doc.graph.nodes["n"].params["approximate"] == "none"


# ------------------------------------------------------------------ problems
def test_problems_list_errors_first_and_clicks_activate_nodes(qtbot, document: Document) -> None:  # noqa: ANN001
    problems = ProblemsWidget(document)
    qtbot.addWidget(problems)
    assert problems.header.text() == "No problems" and problems.list.count() == 0
    document.push(commands.disconnect(document.graph, [document.graph.edge_into("relu3", "in")]))
    document.refresh_analysis()
    shown = problems.diagnostics()
    assert shown and shown == sorted(document.analysis.diagnostics, key=lambda d: d.severity != "error")
    errors = len(document.analysis.errors)
    assert problems.header.text() == count_text(errors, len(shown) - errors)
    assert problems.list.item(0).text() == shown[0].format(document.graph)
    row = next(i for i, d in enumerate(shown) if d.node == "relu3")
    with qtbot.waitSignal(problems.node_activated) as clicked:
        problems.list.itemClicked.emit(problems.list.item(row))
    assert clicked.args == ["relu3"]
    problems.list.setCurrentRow(row)
    with qtbot.waitSignal(problems.node_activated) as entered:
        qtbot.keyClick(problems.list, Qt.Key.Key_Return)
    assert entered.args == ["relu3"]


def test_count_text() -> None:
    assert count_text(2, 1) == "2 errors, 1 warning"
    assert count_text(0, 3) == "3 warnings" and count_text(0, 0) == "No problems"


# ------------------------------------------------------------------- summary
def test_summary_totals_equal_the_analysis(qtbot, document: Document) -> None:  # noqa: ANN001
    summary = SummaryWidget(document)
    qtbot.addWidget(summary)
    model = summary.model
    assert model.rowCount() == len(document.graph) + 1
    last = model.rowCount() - 1
    assert model.index(last, 0).data() == TOTAL_LABEL
    assert model.index(last, 3).data() == f"{document.analysis.parameters:,}"
    assert model.index(last, 4).data() == f"{document.analysis.flops:,}"
    parameters = sum(int(model.index(r, 3).data().replace(",", "")) for r in range(last))
    assert parameters == document.analysis.parameters
    resets = []
    model.modelReset.connect(lambda: resets.append(1))
    document.push(commands.set_param(document.graph, "fc1", "out_features", 128))
    document.refresh_analysis()
    assert not resets and model.index(last, 3).data() == f"{document.analysis.parameters:,}"
    document.push(commands.add_node(document.graph, Node("extra", "linear", {})))
    document.refresh_analysis()
    assert resets and model.rowCount() == len(document.graph) + 1
    with qtbot.waitSignal(summary.node_activated) as clicked:
        summary.table.clicked.emit(model.index(1, 2))
    assert clicked.args == [model.node_id(1)]


def test_panels_accept_no_document(qtbot) -> None:  # noqa: ANN001
    for panel in (InspectorWidget(), ProblemsWidget(), SummaryWidget()):
        qtbot.addWidget(panel)
        panel.set_document(None)
    assert SummaryWidget().model.rowCount() == 0


# --------------------------------------------------------------------- icons
@pytest.mark.parametrize("name", TOOLBAR_ICONS)
def test_icons_render_offscreen(qtbot, name: str) -> None:  # noqa: ANN001
    image = icon(name).pixmap(24, 24).toImage()
    assert not icon(name).isNull() and icon(name) is icon(name)
    assert any(image.pixelColor(x, y).alpha() for x in range(24) for y in range(24))


def test_every_category_has_an_icon(qtbot) -> None:  # noqa: ANN001
    for category in CATEGORIES:
        assert (ICON_DIR / f"{category_slug(category)}.svg").is_file()
        assert not category_icon(category).pixmap(16, 16).isNull()
    assert category_slug("Input / Output") == "input-output"
    assert category_icon("Nonexistent").isNull()
    with pytest.raises(KeyError):
        icon("no-such-icon")


def test_tinted_icon_uses_the_colour(qtbot) -> None:  # noqa: ANN001
    image = icon("stop", "#FF0000").pixmap(24, 24).toImage()
    opaque = [image.pixelColor(x, y) for x in range(24) for y in range(24) if image.pixelColor(x, y).alpha() > 250]
    colours = {colour.name() for colour in opaque}
    assert "#ff0000" in colours and isinstance(icon("stop", "#FF0000"), QIcon)
