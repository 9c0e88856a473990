"""The template gallery: cards with name, family, task, dataset and description."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QScrollArea, QVBoxLayout, QWidget)

from engine.templates import FAMILIES, TemplateInfo, list_templates

FAMILY_NAMES = {"fnn": "Feed-forward", "cnn": "CNN", "rnn": "RNN", "lstm": "LSTM", "gru": "GRU",
                "transformer": "Transformer", "autoencoder": "Autoencoder", "gan": "GAN", "resnet": "ResNet"}
COLUMNS = 3


class TemplateCard(QFrame):
    """One template; click selects it, double-click opens it."""

    clicked = Signal(object)
    activated = Signal(object)

    def __init__(self, template: TemplateInfo) -> None:
        super().__init__()
        self.template = template
        self.setObjectName("templateCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setMinimumSize(260, 170)
        layout = QVBoxLayout(self)
        title = QLabel(f"<b>{template.name}</b>")
        title.setWordWrap(True)
        badge = QLabel(f"{FAMILY_NAMES.get(template.family, template.family)} · {template.task.replace('_', ' ')}"
                       f"{' · ' + template.dataset if template.dataset else ''}")
        badge.setStyleSheet("color: palette(mid);")
        description = QLabel(template.description)
        description.setWordWrap(True)
        description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        description.setToolTip(template.description)
        layout.addWidget(title)
        layout.addWidget(badge)
        layout.addWidget(description, 1)
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        """Show the selection outline."""
        border = "palette(highlight)" if selected else "palette(mid)"
        width = 2 if selected else 1
        self.setStyleSheet(f"#templateCard {{ border: {width}px solid {border}; border-radius: 8px; }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.clicked.emit(self)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.activated.emit(self)


class TemplateGallery(QDialog):
    """Choose a template; :attr:`chosen` holds its path after ``exec()`` returns Accepted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from Template")
        self.resize(900, 620)
        self.chosen: Path | None = None
        self.templates, self.problems = list_templates()
        self.search = QLineEdit(placeholderText="Search templates")
        self.family = QComboBox()
        self.family.addItem("All families", "")
        for family in FAMILIES:
            if any(t.family == family for t in self.templates):
                self.family.addItem(FAMILY_NAMES[family], family)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.family)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(12)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._accept_selected)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        if self.problems:
            note = QLabel(f"{len(self.problems)} template file(s) could not be read: " + "; ".join(self.problems))
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.cards: list[TemplateCard] = []
        self.selected: TemplateCard | None = None
        self.search.textChanged.connect(self._fill)
        self.family.currentIndexChanged.connect(self._fill)
        self._fill()

    def visible_templates(self) -> list[TemplateInfo]:
        """Templates matching the search text and family filter."""
        text = self.search.text().strip().lower()
        family = self.family.currentData()
        return [t for t in self.templates if (not family or t.family == family) and
                (not text or text in f"{t.name} {t.family} {t.task} {t.dataset} {t.description}".lower())]

    def _fill(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        self.selected = None
        for index, template in enumerate(self.visible_templates()):
            card = TemplateCard(template)
            card.clicked.connect(self._select)
            card.activated.connect(self._activate)
            self.grid.addWidget(card, index // COLUMNS, index % COLUMNS)
            self.cards.append(card)
        if self.cards:
            self._select(self.cards[0])
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(bool(self.cards))

    def _select(self, card: TemplateCard) -> None:
        if self.selected is not None:
            self.selected.set_selected(False)
        self.selected = card
        card.set_selected(True)

    def _activate(self, card: TemplateCard) -> None:
        self._select(card)
        self._accept_selected()

    def _accept_selected(self) -> None:
        if self.selected is not None:
            self.chosen = Path(self.selected.template.path)
            self.accept()
