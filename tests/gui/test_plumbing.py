"""How the window is put together: views follow documents through one helper, actions are
built then connected explicitly, docks are added through a public method, the live LR editor
comes from the setting's declaration."""

from __future__ import annotations


import pytest
from PySide6.QtWidgets import QMainWindow

from engine.graph.project import Project
from gui import commands
from gui.actions import ACTION_KEYS, build_actions
from gui.document import Document
from gui.main_window import MainWindow
from gui.problems import ProblemsWidget
from gui.training.attribution_view import AttributionView
from gui.training.inside_sections import ActivationSection, AttentionSection, WeightsSection
from tests.training.helpers import mlp_project


def test_a_view_follows_only_the_document_it_shows(qtbot) -> None:  # noqa: ANN001
    first, second = Document(mlp_project()), Document(mlp_project())
    view = ProblemsWidget(first)
    qtbot.addWidget(view)
    view.set_document(second)
    first.push(commands.remove(first.graph, ["act1"]))
    first.refresh_analysis()
    assert view.diagnostics() == []  # the old document no longer reaches the view
    second.push(commands.remove(second.graph, ["act1"]))
    second.refresh_analysis()
    assert view.diagnostics()
    view.set_document(None)
    second.undo()
    second.refresh_analysis()
    assert view.header.text() == "No project"


def test_actions_are_built_unconnected_and_the_window_handles_every_one(qtbot, window: MainWindow) -> None:
    host = QMainWindow()  # a window without any handler: building looks nothing up
    qtbot.addWidget(host)
    built = build_actions(host)
    assert list(built.actions) == ACTION_KEYS
    assert built.recent_menu.title() == "Open &Recent" and built.panels_menu.title() == "&Panels"
    assert built.toolbar.objectName() == "main_toolbar"
    assert set(window.handlers()) == set(ACTION_KEYS)
    assert not hasattr(window, "_dock")
    assert {"training", "data", "settings", "inside"} <= set(window.docks)


def test_the_live_learning_rate_editor_has_the_declared_bounds(window: MainWindow) -> None:
    dashboard = window.training.dashboard
    dashboard._on_state("paused")
    editor = dashboard.lr_editor
    editor.edit.setText("1e-8")  # the declaration's lower bound (a hard-coded 1e-6 refused it)
    editor.edit.textEdited.emit("1e-8")
    assert editor.current_value() == pytest.approx(1e-8) and dashboard.lr_button.isEnabled()
    editor.edit.setText("0")
    editor.edit.textEdited.emit("0")
    assert editor.current_value() is None and not dashboard.lr_button.isEnabled()
    assert "Cannot set" in dashboard.lr_button.toolTip()
    dashboard._on_state("idle")


def test_look_inside_is_built_of_one_widget_per_section(window: MainWindow) -> None:
    inside = window.training.inside
    assert isinstance(inside.weights_box, WeightsSection) and isinstance(inside.activation_box, ActivationSection)
    assert isinstance(inside.attribution_box, AttributionView) and isinstance(inside.attention_box, AttentionSection)
    assert Document(Project()).project.id
