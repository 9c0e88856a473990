"""Comments: free text notes and frames that people put on the canvas, saved in the project.

A comment is a rectangle with text. Small, it is a note; drawn around some layers, a frame
that names them ("Encoder", "try a wider layer here"). Comments are not part of the model:
shape inference, training and export never look at them.

File layout (the ``comments`` section, left out when there are none)::

    "comments": [{"id": "c1", "text": "Encoder", "rect": [x, y, width, height]}]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from engine.graph.model import MAX_COORDINATE

#: Longest comment text, in characters.
MAX_TEXT = 10_000
MAX_COMMENTS = 10_000
#: Smallest and largest side of a comment's rectangle.
MIN_SIDE, MAX_SIDE = 20.0, 100_000.0
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CommentError(ValueError):
    """A comment in a file is malformed; ``path`` names the field (``comments[2].rect``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Comment:
    """One note or frame on the canvas.

    Args:
        id: Unique among the project's comments.
        text: What it says (plain text, may span lines).
        rect: ``(x, y, width, height)`` in canvas units.
    """

    id: str
    text: str
    rect: tuple[float, float, float, float]

    def moved(self, dx: float, dy: float) -> "Comment":
        """The same comment moved by ``(dx, dy)``."""
        x, y, width, height = self.rect
        return Comment(self.id, self.text, (x + dx, y + dy, width, height))


def new_comment_id(existing: set[str]) -> str:
    """``c1``, ``c2``, ... : the first not in ``existing``."""
    n = 1
    while f"c{n}" in existing:
        n += 1
    return f"c{n}"


def comments_to_json(comments: list[Comment]) -> list[dict[str, Any]]:
    """The comments as plain JSON data."""
    return [{"id": c.id, "text": c.text, "rect": [c.rect[0], c.rect[1], c.rect[2], c.rect[3]]} for c in comments]


def comments_from_json(data: Any) -> list[Comment]:
    """Validate the ``comments`` section of a project file.

    Raises:
        CommentError: With the place of the first problem.
    """
    if not isinstance(data, list):
        raise CommentError("comments", "expected a list")
    if len(data) > MAX_COMMENTS:
        raise CommentError("comments", f"{len(data)} comments; at most {MAX_COMMENTS} are supported")
    comments, seen = [], set()
    for index, raw in enumerate(data):
        path = f"comments[{index}]"
        if not isinstance(raw, dict):
            raise CommentError(path, "expected an object")
        for key in raw:
            if key not in ("id", "text", "rect"):
                raise CommentError(f"{path}.{str(key)[:40]}", "unknown field (known: id, text, rect)")
        comment_id, text, rect = raw.get("id"), raw.get("text", ""), raw.get("rect")
        if not isinstance(comment_id, str) or not _ID.fullmatch(comment_id):
            raise CommentError(f"{path}.id", "expected up to 64 letters, digits, '.', '-' or '_'")
        if comment_id in seen:
            raise CommentError(f"{path}.id", f"duplicate comment id {comment_id!r}")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise CommentError(f"{path}.text", f"expected a string of at most {MAX_TEXT:,} characters")
        if (not isinstance(rect, list) or len(rect) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in rect)):
            raise CommentError(f"{path}.rect", "expected four numbers [x, y, width, height]")
        x, y, width, height = (float(v) for v in rect)
        if abs(x) > MAX_COORDINATE or abs(y) > MAX_COORDINATE:
            raise CommentError(f"{path}.rect", f"x and y must be within +-{MAX_COORDINATE:g}")
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise CommentError(f"{path}.rect", f"width and height must be {MIN_SIDE:g} to {MAX_SIDE:g}")
        seen.add(comment_id)
        comments.append(Comment(comment_id, text, (x, y, width, height)))
    return comments
