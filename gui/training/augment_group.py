"""The Data panel's Augmentation group: the ``dataset.augment`` options and a preview of augmented samples.

The editors are generated from :data:`engine.training.augment.OPTIONS`. Only the options that
fit the loaded data are shown (image ops for images, saturation for colour images, mixup and
cutmix for classes; noise for any real-valued data). Every edit is reported by :attr:`edited`
with the whole new section; the panel pushes it as one undoable settings command. The preview
is a mosaic of the first training samples augmented as a training batch would be; it is redrawn
whenever an option changes, and "New draw" shows another random draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.data.base import ArrayDataset, DataError
from engine.data.fit import holds_token_ids
from engine.training.augment import OPTIONS, AugmentOption, AugmentOptions, image_shape_of, preview_augmented, \
    read_augment
from gui.wheel_guard import guard_wheel_in

#: Samples in the preview mosaic, and its columns.
PREVIEW_SAMPLES = 16
PREVIEW_COLUMNS = 8


def applicable(option: AugmentOption, dataset: ArrayDataset | None) -> bool:
    """Whether ``option`` can be used with ``dataset`` (the editor is shown)."""
    if dataset is None or holds_token_ids(dataset):
        return False
    images = image_shape_of(dataset)
    if option.name == "cutmix":
        return images is not None and dataset.target_kind == "classes"
    if option.needs == "classes":
        return dataset.target_kind == "classes"
    if option.needs == "real":
        return True
    if option.needs == "colour":
        return images is not None and images[0] == 3
    return images is not None


class AugmentGroup(QGroupBox):
    """Editors of ``dataset.augment`` and the augmented preview.

    Signals:
        edited(object, str, str): The new ``augment`` section (``None``: every option off), the
            undo text and the option's name (edits of one option merge).
    """

    edited = Signal(object, str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Augmentation (training data only)", parent)
        self.setToolTip("Random changes to each training batch, on the training device; validation and "
                        "test data are never augmented")
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.editors: dict[str, QWidget] = {}
        for option in OPTIONS:
            editor = self._editor(option)
            editor.setToolTip(option.help)
            guard_wheel_in(editor)
            self.editors[option.name] = editor
            self.form.addRow(option.name.replace("_", " "), editor)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.preview.setToolTip("The first training samples as one augmented batch would show them")
        self.redraw = QPushButton("New draw")
        self.redraw.setToolTip("Show another random draw of the augmentation")
        self.redraw.clicked.connect(self._new_draw)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.message)
        layout.addWidget(self.preview)
        layout.addWidget(self.redraw, 0, Qt.AlignmentFlag.AlignLeft)
        self.section: dict[str, Any] = {}
        self.options = AugmentOptions()
        self.dataset: ArrayDataset | None = None
        self.seed = 0

    # --------------------------------------------------------------- editors
    def _editor(self, option: AugmentOption) -> QWidget:
        name = option.name
        if option.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda on, n=name: self.set_value(n, bool(on)))
            return box
        if option.kind == "choice":
            combo = QComboBox()
            for choice in option.choices:
                combo.addItem(choice, choice)
            combo.activated.connect(lambda i, n=name, c=combo: self.set_value(n, c.itemData(i)))
            return combo
        if option.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(option.minimum), int(option.maximum))
            if option.unit:
                spin.setSuffix(f" {option.unit}")
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, n=name: self.set_value(n, int(v)))
            return spin
        box = QDoubleSpinBox()
        box.setDecimals(2 if option.maximum <= 10 else 1)
        box.setRange(option.minimum, option.maximum)
        box.setSingleStep(0.05 if option.maximum <= 1 else 0.1 if option.maximum <= 10 else 5.0)
        if option.unit:
            box.setSuffix(f" {option.unit}")
        box.setKeyboardTracking(False)
        box.valueChanged.connect(lambda v, n=name: self.set_value(n, round(float(v), 4)))
        return box

    def set_value(self, name: str, value: Any) -> None:
        """Set one option (its default removes it from the section) and report the edit."""
        default = next(o.default for o in OPTIONS if o.name == name)
        section = dict(self.section)
        if value == default:
            section.pop(name, None)
        else:
            section[name] = value
        if section != self.section:
            self.edited.emit(section or None, f"Set dataset.augment.{name}", name)

    # ---------------------------------------------------------------- showing
    def show_for(self, dataset: ArrayDataset | None, section: Any) -> None:
        """Show the options stored in ``section`` for ``dataset`` (hidden when nothing applies)."""
        self.dataset = dataset
        self.section = dict(section) if isinstance(section, dict) else {}
        try:
            self.options = read_augment({"augment": section})
            problem = ""
        except DataError as exc:
            self.options, problem = AugmentOptions(), str(exc)
        visible = False
        for row, option in enumerate(OPTIONS):
            shown = applicable(option, dataset)
            visible |= shown
            self.form.setRowVisible(row, shown)
            self._show_value(option, self.section.get(option.name, option.default))
        self.setVisible(visible)
        self.message.setText(problem)
        self.message.setVisible(bool(problem))
        self.refresh_preview()

    def _show_value(self, option: AugmentOption, value: Any) -> None:
        editor = self.editors[option.name]
        editor.blockSignals(True)
        try:
            if isinstance(editor, QCheckBox):
                editor.setChecked(value is True)
            elif isinstance(editor, QComboBox):
                editor.setCurrentIndex(max(0, editor.findData(value)))
            elif isinstance(editor, QSpinBox):
                editor.setValue(int(value) if isinstance(value, (int, float)) else int(option.default))
            elif isinstance(editor, QDoubleSpinBox):
                editor.setValue(float(value) if isinstance(value, (int, float)) else float(option.default))
        finally:
            editor.blockSignals(False)

    def _new_draw(self) -> None:
        self.seed += 1
        self.refresh_preview()

    def preview_images(self) -> np.ndarray | None:
        """The augmented preview samples ``(N, C, H, W)``, or ``None`` when there is nothing to show."""
        dataset = self.dataset
        shape = image_shape_of(dataset) if dataset is not None else None
        if dataset is None or shape is None or not self.options.enabled or len(dataset) == 0:
            return None
        count = min(PREVIEW_SAMPLES, len(dataset))
        y = dataset.y[:count] if dataset.target_kind == "classes" and dataset.y is not None else None
        return preview_augmented(dataset.x[:count], self.options, self.seed, shape, y, dataset.num_classes)

    def refresh_preview(self) -> None:
        """Redraw the augmented mosaic (hidden while no image option is on)."""
        from gui.training.data_preview import image_mosaic

        images = self.preview_images()
        self.preview.setVisible(images is not None)
        self.redraw.setVisible(images is not None)
        if images is not None:
            scale = max(1, 28 // images.shape[2])
            self.preview.setPixmap(QPixmap.fromImage(image_mosaic(images, PREVIEW_COLUMNS, scale)))

    def set_editable(self, reason: str | None) -> None:
        """Enable the editors, or disable them with ``reason`` as their tooltip (a read-only document)."""
        for option in OPTIONS:
            editor = self.editors[option.name]
            editor.setEnabled(reason is None)
            editor.setToolTip(reason or option.help)
