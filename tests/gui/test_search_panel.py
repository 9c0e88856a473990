"""Marking values as searched (Inspector, Training Settings) and the Search panel: each edit one undo
step, ranges checked with the engine's own messages, the section saved and reopened."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.errors import UserError
from engine.graph.fileformat import load_project, save_project
from engine.layers.block import BLOCK_TYPE
from engine.search.space import parse_space
from engine.settings import TRAINING_PARAMS
from engine.templates import default_template
from gui.document import Document
from gui.inspector import InspectorWidget
from gui.search_edit import default_range
from gui.training.search_panel import EMPTY_HINT, SearchPanel
from gui.training.search_table import CHOICES, HIGH, LOG, LOW, STEP
from gui.training.settings_panel import SettingsPanel


@pytest.fixture
def doc(qtbot) -> Document:  # noqa: ANN001
    return Document(load_project(default_template()))


@pytest.fixture
def panel(qtbot, doc: Document) -> SearchPanel:  # noqa: ANN001
    widget = SearchPanel()
    qtbot.addWidget(widget)
    widget.set_document(doc)
    return widget


def _inspector(qtbot, doc: Document, node_id: str) -> InspectorWidget:  # noqa: ANN001
    inspector = InspectorWidget(doc)
    qtbot.addWidget(inspector)
    inspector.show_node(node_id)
    return inspector


def _mark(doc: Document, target: str, spec: dict) -> None:
    assert doc.push(doc.search_command(f"Search {target}", space={target: spec}))


def _row(panel: SearchPanel, target: str) -> int:
    return panel.table.targets.index(target)


def test_default_ranges_follow_the_value_and_the_bounds(doc: Document) -> None:
    conv = doc.graph.nodes["conv1"].layer.param("out_channels")
    assert default_range(conv, 16) == {"low": 8, "high": 64, "step": 8}
    assert default_range(conv, 3) == {"low": 1, "high": 12}
    lr = next(p for p in TRAINING_PARAMS if p.name == "lr")
    assert default_range(lr, 0.001) == {"low": 0.0001, "high": 0.01, "log": True}
    assert default_range(lr, 5.0) == {"low": 0.5, "high": 10.0, "log": True}  # clamped to the bound


def test_marking_a_parameter_in_the_inspector_is_one_undo_step(qtbot, doc: Document,  # noqa: ANN001
                                                               panel: SearchPanel) -> None:
    inspector = _inspector(qtbot, doc, "conv1")
    row = inspector.rows["out_channels"]
    assert row.toggle is not None and row.toggle.isVisibleTo(inspector) and not row.toggle.isChecked()
    before = doc.undo_stack.count()
    row.toggle.click()
    assert doc.project.search == {"space": {"nodes.conv1.out_channels": {"low": 8, "high": 64, "step": 8}}}
    assert doc.undo_stack.count() == before + 1 and doc.dirty
    assert row.toggle.isChecked() and row.note.isVisibleTo(inspector) and "8 – 64, step 8" in row.note.text()
    assert panel.table.targets == ["nodes.conv1.out_channels"] and not panel.hint.isVisibleTo(panel)
    doc.undo()
    assert doc.project.search == {} and not row.toggle.isChecked() and not row.note.isVisibleTo(inspector)
    assert panel.hint.isVisibleTo(panel) and panel.hint.text() == EMPTY_HINT and not doc.dirty
    doc.redo()
    assert "nodes.conv1.out_channels" in doc.project.search["space"]
    row.toggle.click()  # unmark: one more step, the space gone
    assert doc.project.search == {} and doc.undo_stack.count() == before + 2


def test_a_kernel_size_is_searched_over_neighbouring_sizes(qtbot, doc: Document,  # noqa: ANN001
                                                            panel: SearchPanel) -> None:
    inspector = _inspector(qtbot, doc, "conv1")
    row = inspector.rows["kernel_size"]
    assert row.toggle is not None and row.toggle.isVisibleTo(inspector)
    row.toggle.click()
    assert doc.project.search["space"] == {"nodes.conv1.kernel_size": {"choices": [[1, 1], [3, 3], [5, 5]]}}
    assert [d.kind for d in parse_space(doc.project).dimensions] == ["choice"]
    assert "3x3" in row.note.text() and panel.table.targets == ["nodes.conv1.kernel_size"]


def test_optional_and_layer_type_marks(qtbot, doc: Document) -> None:  # noqa: ANN001
    inspector = _inspector(qtbot, doc, "relu1")
    search = inspector.search
    assert search.optional is not None and search.layer_type is not None
    search.optional.click()
    search.layer_type.click()
    space = doc.project.search["space"]
    assert space["nodes.relu1"] == {"optional": True}
    assert space["nodes.relu1.type"]["choices"][0] == "relu" and "gelu" in space["nodes.relu1.type"]["choices"]
    parse_space(doc.project)  # the engine accepts both
    assert _inspector(qtbot, doc, "image").search.optional is None  # an Input cannot be left out


def test_training_setting_marks_and_not_searchable_ones(qtbot, doc: Document) -> None:  # noqa: ANN001
    settings = SettingsPanel()
    qtbot.addWidget(settings)
    settings.set_document(doc)
    assert "device" not in settings.toggles and "seed" in settings.toggles
    settings.toggles["lr"].click()
    assert doc.project.search["space"] == {"training.lr": {"low": 0.0001, "high": 0.01, "log": True}}
    assert settings.toggles["lr"].isChecked() and "log scale" in settings.notes["lr"].text()
    doc.undo()
    assert not settings.toggles["lr"].isChecked()


def test_editing_a_range_in_the_panel_writes_the_document(qtbot, doc: Document,  # noqa: ANN001
                                                          panel: SearchPanel) -> None:
    _mark(doc, "nodes.conv1.out_channels", {"low": 8, "high": 64, "step": 8})
    count = doc.undo_stack.count()
    panel.table.item(0, HIGH).setText("128")
    qtbot.waitUntil(lambda: doc.project.search["space"]["nodes.conv1.out_channels"]["high"] == 128)
    assert doc.project.search["space"]["nodes.conv1.out_channels"] == {"low": 8, "high": 128, "step": 8}
    assert doc.undo_stack.count() == count + 1
    panel.table.item(0, STEP).setText("")  # no step: any whole number
    qtbot.waitUntil(lambda: "step" not in doc.project.search["space"]["nodes.conv1.out_channels"])
    panel.table.item(0, CHOICES).setText("16, 32, 64")  # a list instead of a range
    qtbot.waitUntil(lambda: doc.project.search["space"]["nodes.conv1.out_channels"] == {"choices": [16, 32, 64]})
    panel.table.item(0, LOW).setText("8")  # back to a range, from the list's ends
    qtbot.waitUntil(lambda: doc.project.search["space"]["nodes.conv1.out_channels"] == {"low": 8, "high": 64})
    doc.undo()
    assert doc.project.search["space"]["nodes.conv1.out_channels"] == {"choices": [16, 32, 64]}
    assert panel.table.item(0, CHOICES).text() == "16, 32, 64"


def test_log_scale_toggle(qtbot, doc: Document, panel: SearchPanel) -> None:  # noqa: ANN001
    _mark(doc, "training.lr", {"low": 0.0001, "high": 0.01, "log": True})
    panel.table.item(0, LOG).setCheckState(Qt.CheckState.Unchecked)
    qtbot.waitUntil(lambda: doc.project.search["space"]["training.lr"] == {"low": 0.0001, "high": 0.01})


def test_a_range_outside_the_bounds_is_refused_with_the_engines_message(qtbot, doc: Document,  # noqa: ANN001
                                                                         panel: SearchPanel) -> None:
    _mark(doc, "training.lr", {"low": 0.0001, "high": 0.01, "log": True})
    stored = dict(doc.project.search["space"]["training.lr"])
    count = doc.undo_stack.count()
    panel.table.item(0, HIGH).setText("50")
    qtbot.waitUntil(lambda: panel.problem.isVisibleTo(panel))
    assert doc.project.search["space"]["training.lr"] == stored and doc.undo_stack.count() == count
    bad = dict(stored, high=50)
    with pytest.raises(UserError) as cli:  # the text `python main.py search` prints
        parse_space(type(doc.project)(graph=doc.project.graph, search={"space": {"training.lr": bad}}))
    assert str(cli.value) in panel.problem.text() and "must be between" in panel.problem.text()
    assert panel.table.item(0, HIGH).text() == "50"  # kept, in red, to be corrected
    assert panel.table.item(0, HIGH).foreground().color().name() != panel.table.item(0, LOW).foreground().color().name()
    panel.table.item(0, HIGH).setText("abc")
    qtbot.waitUntil(lambda: "must be a finite number, got 'abc'" in panel.problem.text())
    assert doc.project.search["space"]["training.lr"] == stored


def test_an_entry_that_names_a_deleted_layer_is_flagged(qtbot, doc: Document,  # noqa: ANN001
                                                        panel: SearchPanel) -> None:
    doc.project.search = {"space": {"nodes.gone.out_channels": {"low": 1, "high": 4}}}
    panel.refresh()
    assert "no node 'gone'" in panel.problem.text() and panel.problem.isVisibleTo(panel)


def test_study_fields_objectives_sampler_and_trials(qtbot, doc: Document, panel: SearchPanel) -> None:  # noqa: ANN001
    _mark(doc, "training.lr", {"low": 0.0001, "high": 0.01, "log": True})
    count = doc.undo_stack.count()
    panel.objectives["flops"].click()
    assert doc.project.search["objectives"] == ["metric", "flops"] and doc.undo_stack.count() == count + 1
    sampler = panel.combos["sampler"]
    sampler.activated.emit(sampler.findData("nsga2"))
    assert doc.project.search["sampler"] == "nsga2"
    panel.objectives["flops"].click()  # nsga2 with the metric alone: refused, the engine's message shown
    assert doc.project.search["objectives"] == ["metric", "flops"] and panel.objectives["flops"].isChecked()
    assert "nsga2 searches several objectives" in panel.study_problem.text()
    panel.trials.setValue(30)
    panel.trials.setValue(40)  # stepping merges into one step
    assert doc.project.search["trials"] == 40
    steps = doc.undo_stack.count()
    panel.name.setText("wide-lr")
    panel.name.editingFinished.emit()
    assert doc.project.search["name"] == "wide-lr" and doc.undo_stack.count() == steps + 1
    doc.undo()
    doc.undo()
    assert "trials" not in doc.project.search and panel.trials.value() == 20


def test_removing_a_row(qtbot, doc: Document, panel: SearchPanel) -> None:  # noqa: ANN001
    _mark(doc, "training.lr", {"low": 0.0001, "high": 0.01, "log": True})
    _mark(doc, "nodes.conv1.out_channels", {"low": 8, "high": 64, "step": 8})
    qtbot.mouseClick(panel.table.cellWidget(_row(panel, "training.lr"), 7), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: list(doc.project.search["space"]) == ["nodes.conv1.out_channels"])
    assert panel.table.targets == ["nodes.conv1.out_channels"]
    doc.undo()
    assert list(doc.project.search["space"]) == ["training.lr", "nodes.conv1.out_channels"]  # same order


def test_the_section_survives_save_and_reopen(qtbot, doc: Document, tmp_path: Path) -> None:  # noqa: ANN001
    inspector = _inspector(qtbot, doc, "conv1")
    inspector.rows["out_channels"].toggle.click()
    assert doc.push(doc.search_command("Set search.trials", fields={"trials": 7, "objectives": ["metric", "flops"]}))
    path = tmp_path / "searched.json"
    doc.save(path)
    reopened = load_project(path)
    assert reopened.search == doc.project.search
    save_project(reopened, tmp_path / "again.json")
    assert load_project(tmp_path / "again.json").search == doc.project.search
    assert [d.target for d in parse_space(reopened).dimensions] == ["nodes.conv1.out_channels"]


def test_inside_a_block_a_mark_searches_the_definition(window, qtbot) -> None:  # noqa: ANN001
    doc = window.document
    window.canvas.select_nodes(["conv1", "relu1", "conv2", "relu2"], center=False)
    window.actions["group"].trigger()
    block = next(n.id for n in doc.graph if n.type_id == BLOCK_TYPE)
    name = doc.graph.nodes[block].params["definition"]
    window.inspector.show_node(block)
    window.inspector.rows["repeat"].toggle.click()  # a block instance's repeat, at the top level
    assert f"nodes.{block}.repeat" in doc.project.search["space"]
    assert doc.enter((block,))
    window.inspector.show_node("conv2")
    window.inspector.rows["out_channels"].toggle.click()
    assert doc.project.search["space"][f"blocks.{name}.conv2.out_channels"] == {"low": 8, "high": 128, "step": 8}
    assert window.inspector.search.optional is None  # only top-level layers can be left out
    parse_space(doc.project)
    assert window.training.search_panel.table.targets[-1] == f"blocks.{name}.conv2.out_channels"
