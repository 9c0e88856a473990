"""The Settings panel shows only what the chosen optimizer and schedule use."""

from __future__ import annotations

from engine.graph.fileformat import load_project
from engine.templates import default_template
from gui.document import Document
from gui.training.settings_panel import SettingsPanel


def _shown(panel: SettingsPanel, name: str) -> bool:
    form, row = panel._rows[name]
    return form.isRowVisible(row)


def test_optimizer_and_schedule_fields_follow_the_choice(qtbot) -> None:  # noqa: ANN001
    document = Document(load_project(default_template()))
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_document(document)
    assert document.project.training.get("optimizer", "adam") == "adam"
    assert not _shown(panel, "momentum") and not _shown(panel, "nesterov") and _shown(panel, "beta1")
    assert document.project.training.get("schedule", "constant") == "constant"
    assert not _shown(panel, "step_size") and not _shown(panel, "gamma") and _shown(panel, "warmup_epochs")
    assert _shown(panel, "lr") and _shown(panel, "weight_decay")

    panel.set_setting("optimizer", "sgd")
    assert _shown(panel, "momentum") and _shown(panel, "nesterov") and not _shown(panel, "beta1")
    panel.set_setting("optimizer", "rmsprop")
    assert _shown(panel, "momentum") and not _shown(panel, "nesterov")
    panel.set_setting("schedule", "step")
    assert _shown(panel, "step_size") and _shown(panel, "gamma") and panel.labels["step_size"].text() == "step size"
    panel.set_setting("schedule", "plateau")
    assert _shown(panel, "step_size") and panel.labels["step_size"].text() == "patience"
    panel.set_setting("schedule", "one_cycle")
    assert not _shown(panel, "step_size") and not _shown(panel, "warmup_epochs")
    document.undo()  # undo follows too (the schedule edits merged into one step)
    assert document.project.training.get("schedule") is None
    assert not _shown(panel, "gamma") and _shown(panel, "warmup_epochs")
    assert panel.labels["step_size"].text() == "step size"
