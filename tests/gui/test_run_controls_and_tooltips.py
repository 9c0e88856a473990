"""The run controls say what they do in words; a node explains itself on hover."""

from __future__ import annotations


from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

from gui.main_window import MainWindow


def test_the_toolbar_run_controls_carry_text_labels(window: MainWindow) -> None:
    for key, text in (("train", "Train"), ("pause", "Pause"), ("stop", "Stop")):
        button = window.main_toolbar.widgetForAction(window.actions[key])
        assert isinstance(button, QToolButton)
        assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        assert button.text() == text
    window.training._update_actions("paused")
    assert window.main_toolbar.widgetForAction(window.actions["pause"]).text() == "Resume"
    window.training._update_actions("idle")
    assert window.actions["train"].toolTip() == "Train the model in a new run (F5)"


def test_a_node_tooltip_has_the_layer_doc_shape_parameters_and_flops(window: MainWindow) -> None:
    item = window.canvas.scene().nodes["conv1"]
    info = window.document.analysis.nodes["conv1"]
    tip = item.toolTip()
    assert window.document.graph.nodes["conv1"].layer.doc[:40] in tip
    assert str(info.output) in tip and f"Parameters: {info.parameters:,}" in tip
    assert f"FLOPs: {info.flops:,} per sample" in tip and info.flops > 0
    output_tip = window.canvas.scene().nodes["logits"].toolTip()
    assert "Model output: (N, 10)" in output_tip
