"""The Training Settings panel: one editor per declared training setting, grouped.

Only the settings of the chosen optimizer and schedule show (momentum for SGD and RMSprop,
beta1 for Adam, step size and gamma for the step and plateau schedules, ...).

Editors come from :data:`engine.settings.TRAINING_PARAMS` through the same factory as
the layer inspector. Every change is an undoable edit of the project's ``training`` section
(saved in the project file); values equal to the default are shown plain, changed ones bold.
The devices this machine has (GPU name and memory) are found the first time the panel is
shown, in a thread, because finding them imports torch.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine.search.space import NOT_SEARCHABLE
from engine.settings import TRAINING_PARAMS
from gui.background import BackgroundCall
from gui.document import Document
from gui.observers import DocumentLink
from gui.param_editors import ParamEditor, make_editor
from gui.scroll_panel import fill_with_scroll
from gui.search_edit import SEARCHABLE_KINDS, default_range, entry_problem, space_of
from gui.search_marks import SearchNote, SearchToggle, mark_label, searched_field

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Task", ("task", "loss", "top_k")),
    ("Optimizer", ("optimizer", "lr", "momentum", "nesterov", "beta1", "weight_decay", "grad_clip")),
    ("Schedule", ("schedule", "step_size", "gamma", "warmup_epochs")),
    ("Run", ("epochs", "batch_size", "device", "precision", "seed", "deterministic", "use_project_weights",
             "num_workers")),
    ("Validation and test", ("validation_fraction", "test_fraction", "normalize", "early_stopping_patience",
                             "early_stopping_metric")),
    ("Task options", ("input_noise", "gan_d_steps", "temperature", "snapshot_seconds")),
)
_BY_NAME = {param.name: param for param in TRAINING_PARAMS}
#: Settings that only some optimizers or schedules use: ``name -> (setting, values it applies to)``.
#: The others are hidden while they do not apply (their stored value is kept).
APPLIES_WITH: dict[str, tuple[str, tuple[str, ...]]] = {
    "momentum": ("optimizer", ("sgd", "rmsprop")),
    "nesterov": ("optimizer", ("sgd",)),
    "beta1": ("optimizer", ("adam", "adamw")),
    "step_size": ("schedule", ("step", "plateau")),
    "gamma": ("schedule", ("step", "plateau")),
    "warmup_epochs": ("schedule", ("constant", "step", "cosine", "plateau")),
}
#: A label that depends on the schedule: reduce-on-plateau uses step_size as its patience.
_PLATEAU_LABELS = {"step_size": ("patience", "Epochs without improvement before the rate is multiplied by gamma.")}


def applies(name: str, section: dict[str, Any]) -> bool:
    """Whether setting ``name`` matters with the optimizer and schedule in ``section``."""
    rule = APPLIES_WITH.get(name)
    if rule is None:
        return True
    setting, values = rule
    return section.get(setting, _BY_NAME[setting].default) in values


def devices_text() -> str:
    """One line naming every device found (imports torch: call it off the GUI thread)."""
    from engine.training.devices import available_devices

    lines = []
    for device in available_devices():
        memory = f", {device.memory_bytes / 2**30:.0f} GiB" if device.memory_bytes else ""
        lines.append(f"{device.id}: {device.name}{memory}")
    return "Devices found — " + "; ".join(lines) + ". Auto picks the first."


class SettingsPanel(QWidget):
    """Editors for the project's training settings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.editors: dict[str, ParamEditor] = {}
        self.labels: dict[str, QLabel] = {}
        #: The magnifier and range note of each setting a search can vary.
        self.toggles: dict[str, SearchToggle] = {}
        self.notes: dict[str, SearchNote] = {}
        self._rows: dict[str, tuple[QFormLayout, int]] = {}
        self.devices = QLabel("Devices: shown when this panel opens.")
        self.devices.setWordWrap(True)
        self._devices_call = BackgroundCall(self)
        self._devices_call.done.connect(
            lambda ticket, text, error: self.devices.setText(text or f"Could not list devices: {error}"))
        self._devices_asked = False
        body = QWidget()
        layout = QVBoxLayout(body)
        listed = {name for _, names in GROUPS for name in names}
        groups = [*GROUPS, ("Other", tuple(p.name for p in TRAINING_PARAMS if p.name not in listed))]
        for title, names in groups:
            if not names:
                continue
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for name in names:
                param = _BY_NAME[name]
                editor = make_editor(param, param.default)
                editor.value_edited.connect(lambda value, n=name: self.set_setting(n, value))
                label = QLabel(name.replace("_", " "))
                label.setToolTip(param.doc)
                field: QWidget = editor
                if name not in NOT_SEARCHABLE and param.kind in SEARCHABLE_KINDS:
                    field, self.toggles[name], self.notes[name] = searched_field(editor, f"training.{name}")
                    self.toggles[name].clicked.connect(lambda on, n=name: self.mark_searched(n, on))
                form.addRow(label, field)
                self.editors[name], self.labels[name] = editor, label
                self._rows[name] = (form, form.rowCount() - 1)
            if title == "Run":
                form.addRow(self.devices)
            layout.addWidget(box)
        layout.addStretch(1)
        fill_with_scroll(self, body)
        self._link = DocumentLink(settings_changed=self.refresh, read_only_changed=self._on_read_only,
                                  search_changed=self.show_searched)

    def set_document(self, document: Document) -> None:
        """Show and edit ``document``'s training section."""
        self.document = self._link.follow(document)
        self.refresh()
        self._on_read_only(document.read_only_reason)

    def refresh(self) -> None:
        """Show the stored values (defaults where unset)."""
        section = self.document.project.training if self.document is not None else {}
        for name, editor in self.editors.items():
            param = _BY_NAME[name]
            value = section.get(name, param.default)
            if editor.can_show(value):
                editor.set_value(value)
            font = QFont(self.labels[name].font())
            font.setBold(name in section and section[name] != param.default)
            self.labels[name].setFont(font)
            form, row = self._rows[name]
            form.setRowVisible(row, applies(name, section))
        plateau = section.get("schedule", _BY_NAME["schedule"].default) == "plateau"
        for name, (text, doc) in _PLATEAU_LABELS.items():
            self.labels[name].setText(text if plateau else name.replace("_", " "))
            self.labels[name].setToolTip(doc if plateau else _BY_NAME[name].doc)
        self.show_searched()

    def show_searched(self) -> None:
        """Mark the settings the project's search varies (magnifier checked, accent label, range note)."""
        space = space_of(self.document.project) if self.document is not None else {}
        for name, toggle in self.toggles.items():
            spec = space.get(f"training.{name}")
            toggle.show_range(spec)
            self.notes[name].show_range(spec)
            mark_label(self.labels[name], spec is not None)

    def mark_searched(self, name: str, on: bool) -> None:
        """Search setting ``name`` over its default range (``on``), or stop searching it: one undo step."""
        doc = self.document
        if doc is None:
            return
        target = f"training.{name}"
        spec = default_range(_BY_NAME[name], doc.project.training.get(name, _BY_NAME[name].default)) if on else None
        problem = entry_problem(doc.project, target, spec) if spec is not None else None
        if problem is None:
            text = f"Search {target}" if on else f"Stop searching {target}"
            doc.push(doc.search_command(text, space={target: spec}))
        else:
            self.notes[name].setText(problem)
            self.notes[name].show()
            self.toggles[name].show_range(None)
            return
        self.show_searched()

    def set_setting(self, name: str, value: Any) -> None:
        """Store one setting (the default value removes it from the file)."""
        doc = self.document
        if doc is None:
            return
        stored = None if value == _BY_NAME[name].default else value
        if doc.project.training.get(name) == stored:
            return
        if not doc.push(doc.settings_command("training", {name: stored}, f"Set training.{name}")):
            self.refresh()

    def _on_read_only(self, reason: str | None) -> None:
        for name, editor in self.editors.items():
            editor.setEnabled(reason is None)
            editor.setToolTip(reason or _BY_NAME[name].doc)
        for toggle in self.toggles.values():
            toggle.setEnabled(reason is None)

    def probe_devices(self) -> None:
        """List the devices once, when the panel is first seen (finding them imports torch)."""
        if not self._devices_asked:
            self._devices_asked = True
            self.devices.setText("Looking for devices…")
            self._devices_call.start(devices_text)
