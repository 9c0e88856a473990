"""The template gallery: cards with a picture of the graph, name, family, task, dataset and description.

The search ranks what it finds: a template whose name matches comes before one whose family,
task or dataset matches, and those before a description that merely mentions the word. Enter
opens the best match (the first card, which is selected).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPalette
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QScrollArea, QVBoxLayout, QWidget)

from engine.templates import FAMILIES, TemplateInfo, list_templates
from gui.style import LIGHT, Theme
from gui.thumbnails import file_thumbnail

FAMILY_NAMES = {"fnn": "Feed-forward", "cnn": "CNN", "rnn": "RNN", "lstm": "LSTM", "gru": "GRU",
                "transformer": "Transformer", "autoencoder": "Autoencoder", "gan": "GAN", "resnet": "ResNet"}
COLUMNS = 3
THUMBNAIL = QSize(248, 96)
#: How well a search word matches, best first: the start of a word of the name, anywhere in the
#: name, the family / task / dataset, the description.
NAME_WORD, NAME, FACTS, DESCRIPTION = range(4)


def match_rank(template: TemplateInfo, text: str) -> int | None:
    """How well ``template`` matches the search ``text`` (lower is better; ``None``: not at all).

    Every word of ``text`` must match somewhere; the template ranks by its worst-matching word.
    """
    name = template.name.lower()
    facts = " ".join((template.family, FAMILY_NAMES.get(template.family, ""), template.task.replace("_", " "),
                      template.dataset.replace("_", " "))).lower()
    worst = NAME_WORD
    for word in text.lower().split():
        if any(part.startswith(word) for part in name.replace("(", " ").replace("-", " ").split()):
            rank = NAME_WORD
        elif word in name:
            rank = NAME
        elif word in facts:
            rank = FACTS
        elif word in template.description.lower():
            rank = DESCRIPTION
        else:
            return None
        worst = max(worst, rank)
    return worst


class TemplateCard(QFrame):
    """One template; click selects it, double-click opens it."""

    clicked = Signal(object)
    activated = Signal(object)

    def __init__(self, template: TemplateInfo, theme: Theme = LIGHT) -> None:
        super().__init__()
        self.template = template
        self.setObjectName("templateCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setMinimumSize(THUMBNAIL.width() + 22, 300)
        layout = QVBoxLayout(self)
        self.thumbnail = QLabel()
        self.thumbnail.setFixedSize(THUMBNAIL)
        self.thumbnail.setToolTip(f"The graph of {template.name}")
        picture = file_thumbnail(Path(template.path), THUMBNAIL, theme, self.devicePixelRatioF())
        if picture is not None:
            self.thumbnail.setPixmap(picture)
        title = QLabel(f"<b>{template.name}</b>")
        title.setWordWrap(True)
        facts = [FAMILY_NAMES.get(template.family, template.family), template.task.replace("_", " ")]
        facts += [template.dataset.replace("_", " ")] if template.dataset else []
        self.badge = badge = QLabel(" · ".join(facts))
        badge.setWordWrap(True)  # a long dataset name wraps instead of being cut off
        badge.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        description = QLabel(template.description)
        description.setWordWrap(True)
        description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        description.setToolTip(template.description)
        layout.addWidget(self.thumbnail, 0, Qt.AlignmentFlag.AlignHCenter)
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

    def __init__(self, parent: QWidget | None = None, theme: Theme = LIGHT) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from Template")
        self.theme = theme
        self.resize(900, 640)
        self.chosen: Path | None = None
        self.templates, self.problems = list_templates()
        self.search = QLineEdit(placeholderText="Search templates (Enter opens the best match)")
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
        self.search.returnPressed.connect(self._accept_selected)
        self.family.currentIndexChanged.connect(self._fill)
        self._fill()

    def visible_templates(self) -> list[TemplateInfo]:
        """Templates matching the search text and family filter, best match first."""
        text = self.search.text().strip()
        family = self.family.currentData()
        ranked = []
        for index, template in enumerate(self.templates):
            rank = match_rank(template, text) if text else NAME_WORD
            if rank is not None and (not family or template.family == family):
                ranked.append((rank, index, template))
        return [template for _, _, template in sorted(ranked, key=lambda entry: entry[:2])]

    def _fill(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        self.selected = None
        for index, template in enumerate(self.visible_templates()):
            card = TemplateCard(template, self.theme)
            card.clicked.connect(self._select)
            card.activated.connect(self._activate)
            self.grid.addWidget(card, index // COLUMNS, index % COLUMNS)
            self.cards.append(card)
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        self.grid.setRowStretch((len(self.cards) + COLUMNS - 1) // COLUMNS, 1)  # cards keep their height
        for column in range(COLUMNS):
            self.grid.setColumnStretch(column, 1)  # and their width, however few match
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
