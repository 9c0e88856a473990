"""The layer palette: every registered layer by category, searchable, draggable onto the canvas.

Dragging an entry starts a drag carrying :data:`gui.style.LAYER_MIME` with the layer's type
id; double-clicking it or pressing Enter emits ``layer_activated(type_id)``. In the search
field, Esc clears, Down moves into the list and Enter activates the first match.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QMimeData, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFont, QFontMetrics, QKeyEvent, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from engine.layers import CATEGORIES, LayerType, all_layers, get_layer
from engine.layers.block import BLOCK_TYPE
from gui.block_palette import WHERE_TITLES, BlockEntry
from gui.icons import category_icon, icon
from gui.param_editors import param_summary
from gui.style import LAYER_MIME, LIGHT, category_color

#: The palette's section of blocks.
BLOCKS_TITLE = "Blocks"
#: Item data role holding an entry's type id (categories hold ``None``).
TYPE_ID_ROLE = Qt.ItemDataRole.UserRole


def layer_mime_data(type_id: str) -> QMimeData:
    """The drag payload of a palette entry: :data:`LAYER_MIME` with the UTF-8 type id."""
    mime = QMimeData()
    mime.setData(LAYER_MIME, type_id.encode("utf-8"))
    return mime


def layer_tooltip(layer: LayerType) -> str:
    """Rich-text tooltip: title, type id, doc and the parameter list."""
    parts = [f"<b>{html.escape(layer.title)}</b> <i>({html.escape(layer.type_id)})</i>",
             f"<p style='margin-top:4px'>{html.escape(layer.doc)}</p>"]
    if layer.params:
        rows = "".join(f"<tr><td><b>{html.escape(p.name)}</b></td><td>{html.escape(p.doc)} "
                       f"<i>({html.escape(param_summary(p))})</i></td></tr>" for p in layer.params)
        parts.append(f"<p style='margin-bottom:2px'>Parameters:</p>"
                     f"<table cellspacing='0' cellpadding='2'>{rows}</table>")
    else:
        parts.append("<p>No parameters.</p>")
    return f"<div style='max-width:380px'>{''.join(parts)}</div>"


def drag_pixmap(layer: LayerType, device_pixel_ratio: float = 1.0) -> QPixmap:
    """A node-like chip with the category colour, icon and title, shown under the cursor."""
    font = QFont()
    font.setBold(True)
    width = QFontMetrics(font).horizontalAdvance(layer.title) + 52
    size = QSize(max(width, 120), 32)
    pixmap = QPixmap(size * device_pixel_ratio)
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    rect = QRectF(0.5, 0.5, size.width() - 1, size.height() - 1)
    path = QPainterPath()
    path.addRoundedRect(rect, 6, 6)
    painter.fillPath(path, QColor(LIGHT.node_body))
    painter.setClipPath(path)
    painter.fillRect(QRectF(0, 0, 5, size.height()), category_color(layer.category))
    painter.setClipping(False)
    painter.setPen(QPen(QColor(LIGHT.node_border), 1))
    painter.drawPath(path)
    category_icon(layer.category).paint(painter, 12, 8, 16, 16)
    painter.setFont(font)
    painter.setPen(QColor(LIGHT.node_text))
    painter.drawText(QRectF(36, 0, size.width() - 40, size.height()), Qt.AlignmentFlag.AlignVCenter, layer.title)
    painter.end()
    return pixmap


class LayerTree(QTreeWidget):
    """The tree of categories and layers; starts drags and activates entries with Enter."""

    activated_layer = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setIndentation(14)
        self.setUniformRowHeights(True)
        self.setIconSize(QSize(18, 18))
        self.setAnimated(False)
        self.itemDoubleClicked.connect(self._activate)

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt override
        return [LAYER_MIME]

    def mimeData(self, items: list[QTreeWidgetItem]) -> QMimeData:  # noqa: N802 - Qt override
        type_ids = [item.data(0, TYPE_ID_ROLE) for item in items if item.data(0, TYPE_ID_ROLE)]
        return layer_mime_data(type_ids[0]) if type_ids else QMimeData()

    def startDrag(self, actions: Qt.DropAction) -> None:  # noqa: N802 - Qt override
        item = self.currentItem()
        type_id = item.data(0, TYPE_ID_ROLE) if item is not None else None
        if not type_id:
            return
        drag = QDrag(self)
        drag.setMimeData(layer_mime_data(type_id))
        pixmap = drag_pixmap(item.data(0, Qt.ItemDataRole.UserRole + 1), self.devicePixelRatioF())
        drag.setPixmap(pixmap)
        drag.setHotSpot(QPoint(20, 16))
        drag.exec(Qt.DropAction.CopyAction)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self._activate(self.currentItem())
            return
        super().keyPressEvent(event)

    def _activate(self, item: QTreeWidgetItem) -> None:
        type_id = item.data(0, TYPE_ID_ROLE)
        if type_id:
            self.activated_layer.emit(type_id)
        else:
            item.setExpanded(not item.isExpanded())


class _SearchField(QLineEdit):
    """Esc clears; Down and Enter are forwarded to the palette."""

    def __init__(self, palette: PaletteWidget) -> None:
        super().__init__()
        self._palette = palette

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key == Qt.Key.Key_Escape and self.text():
            self.clear()
        elif key == Qt.Key.Key_Down:
            self._palette.focus_first_match()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._palette.activate_first_match()
        else:
            super().keyPressEvent(event)


class PaletteWidget(QWidget):
    """Search field over a tree of every registered layer, grouped by category."""

    layer_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = _SearchField(self)
        self.search.setPlaceholderText("Search layers")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.setToolTip("Filter by name, type, category or description (Esc clears)")
        self.search.textChanged.connect(self.set_filter)
        self.tree = LayerTree()
        self.tree.activated_layer.connect(self.layer_activated)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.empty.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty.setMargin(12)
        self.empty.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty, 1)
        self._entries: list[tuple[QTreeWidgetItem, str]] = []
        self._blocks_group: QTreeWidgetItem | None = None
        self._populate()
        self.setFocusProxy(self.search)

    def _populate(self) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        groups: dict[str, QTreeWidgetItem] = {}
        for category in CATEGORIES:
            group = QTreeWidgetItem(self.tree, [category])
            group.setIcon(0, category_icon(category))
            group.setFont(0, bold)
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            groups[category] = group
        for layer in all_layers():
            item = QTreeWidgetItem(groups[layer.category], [layer.title])
            item.setData(0, TYPE_ID_ROLE, layer.type_id)
            item.setData(0, Qt.ItemDataRole.UserRole + 1, layer)
            item.setToolTip(0, layer_tooltip(layer))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            haystack = " ".join((layer.title, layer.type_id, layer.category, layer.doc)).lower()
            self._entries.append((item, haystack))
        for group in groups.values():
            group.setHidden(group.childCount() == 0)
        self.tree.expandAll()

    def set_blocks(self, entries: list[BlockEntry]) -> None:
        """Show ``entries`` under "Blocks" (first in the tree), replacing the previous ones."""
        block_layer = get_layer(BLOCK_TYPE)
        if self._blocks_group is None:
            self._blocks_group = QTreeWidgetItem([BLOCKS_TITLE])
            self.tree.insertTopLevelItem(0, self._blocks_group)
            self._blocks_group.setIcon(0, category_icon(block_layer.category))
            bold = QFont(self.font())
            bold.setBold(True)
            self._blocks_group.setFont(0, bold)
            self._blocks_group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self._blocks_group.setExpanded(True)
        group = self._blocks_group
        old = {id(group.child(i)) for i in range(group.childCount())}
        self._entries = [(item, text) for item, text in self._entries if id(item) not in old]
        group.takeChildren()
        for entry in entries:
            item = QTreeWidgetItem(group, [f"{entry.name}  ·  {WHERE_TITLES[entry.where]}"])
            item.setData(0, TYPE_ID_ROLE, entry.key)
            item.setData(0, Qt.ItemDataRole.UserRole + 1, block_layer)
            item.setToolTip(0, entry.tooltip)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            self._entries.append((item, " ".join((entry.name, "block", entry.where, entry.doc)).lower()))
        group.setHidden(not entries)
        if self.search.text():
            self.set_filter(self.search.text())

    # ------------------------------------------------------------------ API
    def set_filter(self, text: str) -> None:
        """Show the layers whose title, type id, category or doc contain every word of ``text``."""
        if self.search.text() != text:
            self.search.setText(text)
            return
        words = text.lower().split()
        for item, haystack in self._entries:
            item.setHidden(not all(word in haystack for word in words))
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            visible = any(not group.child(i).isHidden() for i in range(group.childCount()))
            group.setHidden(not visible)
            if visible and words:
                group.setExpanded(True)
        matches = self.visible_type_ids()
        self.empty.setText(f"No layer matches “{text.strip()}”.")
        self.empty.setVisible(not matches)
        self.tree.setVisible(bool(matches))

    def visible_type_ids(self) -> list[str]:
        """Type ids of the entries the filter shows, in tree order."""
        return [item.data(0, TYPE_ID_ROLE) for item, _ in self._entries
                if not item.isHidden() and not item.parent().isHidden()]

    def item_for(self, type_id: str) -> QTreeWidgetItem | None:
        """The tree entry of ``type_id``."""
        return next((item for item, _ in self._entries if item.data(0, TYPE_ID_ROLE) == type_id), None)

    def focus_search(self) -> None:
        """Focus the search field with its text selected (for a Ctrl+F shortcut)."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def focus_first_match(self) -> None:
        """Move the keyboard focus to the first visible entry."""
        matches = self.visible_type_ids()
        if matches:
            self.tree.setCurrentItem(self.item_for(matches[0]))
            self.tree.setFocus(Qt.FocusReason.OtherFocusReason)

    def activate_first_match(self) -> None:
        """Emit ``layer_activated`` for the first visible entry, if any."""
        matches = self.visible_type_ids()
        if matches:
            self.layer_activated.emit(matches[0])
