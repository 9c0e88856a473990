"""The inspector's Training section: a layer's ``trainable`` switch and learning-rate multiplier.

Both are node options (not layer parameters): every layer with parameters has them. Edits are
pushed as :func:`gui.commands.set_training` (undoable; typing a multiplier merges into one
step); changes from the model (undo, the Edit menu's Freeze) update the editors silently.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QWidget

from engine.graph.model import LR_SCALE_MAX, LR_SCALE_MIN, Node
from gui.wheel_guard import guard_wheel

TRAINABLE_TIP = ("On: training updates this layer's parameters. Off (frozen): they keep what they were loaded "
                 "with, batch-norm statistics too; the optimizer leaves them out.")
LR_SCALE_TIP = (f"Multiplies the learning rate for this layer's parameters ({LR_SCALE_MIN:g} to {LR_SCALE_MAX:g}; "
                "1 = the run's rate). The schedule still applies.")


class TrainingOptions(QWidget):
    """The two editors; ``edited(name, value)`` on every user change."""

    edited = Signal(str, object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trainable = QCheckBox("Trainable")
        self.trainable.setToolTip(TRAINABLE_TIP)
        self.lr_scale = guard_wheel(QDoubleSpinBox())  # the inspector scrolls: the wheel only when focused
        self.lr_scale.setRange(LR_SCALE_MIN, LR_SCALE_MAX)
        self.lr_scale.setDecimals(3)
        self.lr_scale.setSingleStep(0.1)
        self.lr_scale.setPrefix("× ")
        self.lr_scale.setKeyboardTracking(False)
        self.lr_scale.setToolTip(LR_SCALE_TIP)
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setHorizontalSpacing(10)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        layout.addRow(self.trainable)
        layout.addRow("Learning rate", self.lr_scale)
        self.trainable.toggled.connect(lambda on: self.edited.emit("trainable", bool(on)))
        self.lr_scale.valueChanged.connect(lambda value: self.edited.emit("lr_scale", float(value)))

    def show_node(self, node: Node) -> None:
        """Show ``node``'s values without emitting ``edited``."""
        for widget in (self.trainable, self.lr_scale):
            widget.blockSignals(True)
        self.trainable.setChecked(node.trainable)
        self.lr_scale.setValue(node.lr_scale)
        self.lr_scale.setEnabled(node.trainable and self.trainable.isEnabled())
        for widget in (self.trainable, self.lr_scale):
            widget.blockSignals(False)

    def set_editable(self, reason: str | None) -> None:
        """Enable the editors, or disable them with ``reason`` as their tooltip (training locks the graph)."""
        self.trainable.setEnabled(reason is None)
        self.lr_scale.setEnabled(reason is None and self.trainable.isChecked())
        self.trainable.setToolTip(reason or TRAINABLE_TIP)
        self.lr_scale.setToolTip(reason or LR_SCALE_TIP)
