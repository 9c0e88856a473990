"""The node-editor canvas: a view of the document's graph that edits it through undo commands.

Public pieces: :class:`~gui.canvas.view.CanvasView` (the widget), its
:class:`~gui.canvas.scene.CanvasScene`, and the items :class:`~gui.canvas.node_item.NodeItem`
and :class:`~gui.canvas.edge_item.EdgeItem`.
"""

from gui.canvas.edge_item import EdgeItem
from gui.canvas.node_item import NodeItem
from gui.canvas.quick_add import QuickAddPopup
from gui.canvas.scene import CanvasScene
from gui.canvas.view import CanvasView

__all__ = ["CanvasScene", "CanvasView", "EdgeItem", "NodeItem", "QuickAddPopup"]
