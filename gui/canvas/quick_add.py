"""Quick-add: a small popup to find a layer by typing and add it where the cursor is."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (QFrame, QHeaderView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from engine.layers import LayerType, all_layers
from gui.style import category_color

_TYPE_ROLE = Qt.ItemDataRole.UserRole


def matching_layers(text: str, layers: list[LayerType]) -> list[LayerType]:
    """Layers whose title or type id contains ``text``, or with a category word starting
    with it (case-insensitive: ``pool`` finds the Pooling layers, ``li`` does not).

    Titles that start with the text come first, then other title matches, then matches of
    the type id or category; each group keeps palette order.
    """
    needle = text.strip().lower()
    if not needle:
        return list(layers)

    def rank(layer: LayerType) -> int | None:
        title = layer.title.lower()
        if title.startswith(needle) or layer.type_id.startswith(needle):
            return 0
        if needle in title:
            return 1
        words = layer.category.lower().replace("/", " ").split()
        if needle in layer.type_id.lower() or any(word.startswith(needle) for word in words) \
                or layer.category.lower().startswith(needle):
            return 2
        return None

    ranked = [(rank(layer), index, layer) for index, layer in enumerate(layers)]
    return [layer for r, _, layer in sorted((t for t in ranked if t[0] is not None), key=lambda t: t[:2])]


def _category_icon(category: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(category_color(category))
    painter.drawRoundedRect(1, 1, 10, 10, 3, 3)
    painter.end()
    return QIcon(pixmap)


class QuickAddPopup(QFrame):
    """A frameless popup: a search field over a filtered list of layers.

    Enter or a click adds the highlighted layer (signal :attr:`layer_chosen`); Esc closes.

    Args:
        accept: Which layers to offer (e.g. only layers with an input when the popup will
            connect the new node's input); all layers by default.
        parent: The widget the popup belongs to.

    Signals:
        layer_chosen(str): The type id of the chosen layer; the popup closes after it.
    """

    layer_chosen = Signal(str)

    def __init__(self, accept: Callable[[LayerType], bool] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup | Qt.WindowType.FramelessWindowHint)
        self.setObjectName("quickAdd")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._chosen = False
        self.layers = [layer for layer in all_layers() if accept is None or accept(layer)]
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Add layer…")
        self.search.setClearButtonEnabled(True)
        self.list = QTreeWidget(self)
        self.list.setColumnCount(2)
        self.list.setHeaderHidden(True)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setAllColumnsShowFocus(True)
        self.list.header().setStretchLastSection(False)
        self.list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(320, 300)
        self.search.textChanged.connect(self.set_filter)
        self.search.installEventFilter(self)
        self.list.itemClicked.connect(lambda item, _column: self._choose(item))
        self.list.itemActivated.connect(lambda item, _column: self._choose(item))
        self.set_filter("")

    def set_filter(self, text: str) -> None:
        """Show the layers matching ``text``; the first one is highlighted."""
        if self.search.text() != text:
            self.search.setText(text)  # re-enters through textChanged
            return
        self.list.clear()
        subtle = self.palette().color(self.palette().ColorRole.PlaceholderText)
        for layer in matching_layers(text, self.layers):
            item = QTreeWidgetItem([layer.title, layer.category])
            item.setIcon(0, _category_icon(layer.category))
            item.setData(0, _TYPE_ROLE, layer.type_id)
            item.setToolTip(0, layer.doc)
            item.setForeground(1, subtle)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.list.addTopLevelItem(item)
        if self.list.topLevelItemCount():
            self.list.setCurrentItem(self.list.topLevelItem(0))

    def visible_type_ids(self) -> list[str]:
        """Type ids listed now, top to bottom."""
        return [self.list.topLevelItem(i).data(0, _TYPE_ROLE) for i in range(self.list.topLevelItemCount())]

    def choose_current(self) -> bool:
        """Add the highlighted layer (as Enter does); False when the list is empty."""
        item = self.list.currentItem()
        if item is None:
            return False
        self._choose(item)
        return True

    def popup_at(self, global_pos: QPoint) -> None:
        """Show the popup with its top-left at ``global_pos`` (kept on screen) and focus the search."""
        screen = self.screen().availableGeometry() if self.screen() else None
        x, y = global_pos.x(), global_pos.y()
        if screen is not None:
            x = max(screen.left(), min(x, screen.right() - self.width()))
            y = max(screen.top(), min(y, screen.bottom() - self.height()))
        self.move(x, y)
        self.show()
        self.search.setFocus()

    def _choose(self, item: QTreeWidgetItem) -> None:
        if self._chosen:  # a click can also activate: add once
            return
        self._chosen = True
        type_id = item.data(0, _TYPE_ROLE)
        self.close()
        self.layer_chosen.emit(type_id)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.choose_current()
                return True
            if key == Qt.Key.Key_Escape:
                self.close()
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                self._step(key)
                return True
        return super().eventFilter(watched, event)

    def _step(self, key: int) -> None:
        count = self.list.topLevelItemCount()
        if not count:
            return
        current = self.list.indexOfTopLevelItem(self.list.currentItem()) if self.list.currentItem() else -1
        delta = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 8, Qt.Key.Key_PageUp: -8}[key]
        row = max(0, min(count - 1, current + delta))
        self.list.setCurrentItem(self.list.topLevelItem(row))
