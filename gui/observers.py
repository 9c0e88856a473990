"""Views follow the open document: one helper moves a view's signal connections to a new document.

Every view that shows a document listens to some of its signals (``analysis_changed``,
``settings_changed``, ...). When the window opens another document, the view must drop its
connections to the old one (which may already be deleted) and make the same ones to the new
one. :class:`DocumentLink` does exactly that, so a view's ``set_document`` reads::

    self._link = DocumentLink(analysis_changed=self._on_analysis)
    ...
    self.document = self._link.follow(document)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMetaObject, QObject

if TYPE_CHECKING:  # pragma: no cover
    from gui.document import Document


class DocumentLink:
    """The connections of one view to whichever document it shows.

    Args:
        **slots: Document signal name -> the view's handler, e.g.
            ``analysis_changed=self._on_analysis``.
    """

    def __init__(self, **slots: Callable[..., Any]) -> None:
        self.slots = slots
        self.document: Document | None = None
        self._connections: list[QMetaObject.Connection] = []

    def follow(self, document: Document | None) -> Document | None:
        """Drop the connections to the previous document and connect ``document`` (``None``: none).

        Returns:
            ``document``, for ``self.document = link.follow(document)``.
        """
        for connection in self._connections:
            QObject.disconnect(connection)  # False (and harmless) when the old document is gone
        self._connections = []
        self.document = document
        if document is not None:
            self._connections = [getattr(document, name).connect(slot) for name, slot in self.slots.items()]
        return document
