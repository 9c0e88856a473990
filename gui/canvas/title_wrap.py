"""Layer titles broken into lines that fit a card, so a title reads in full instead of "Transf…".

Titles break at spaces first, then inside long words where a word would be hyphenated or
where its capitals and digits start a new part (``ConvTranspose2d`` -> ``Conv`` ``Transpose2d``,
``Self-Attention`` -> ``Self-`` ``Attention``). Pure functions of a text width measure, so
the canvas can try several font sizes and keep the largest that fits.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Where a long word may break: after a hyphen, and before a capitalised part that follows a
#: lower-case letter ("Batch|Norm2d", "Leaky|ReLU"; acronyms such as "ReLU" and suffixes such as
#: "2d" stay whole).
_BREAKS = re.compile(r"(?<=-)|(?<=[a-z])(?=[A-Z][a-z])")


def word_parts(word: str) -> list[str]:
    """The pieces a word may be broken into (the word itself when it has no break)."""
    parts = [part for part in _BREAKS.split(word) if part]
    return parts or [word]


def wrap_title(title: str, width: Callable[[str], float], room: float, max_lines: int) -> list[str] | None:
    """Lines of ``title`` each at most ``room`` wide, or ``None`` when it needs more than ``max_lines``.

    Whole words are kept together where they fit; a word wider than ``room`` is broken at
    its parts (greedily, as many parts per line as fit). A part wider than ``room`` on its
    own cannot fit: ``None``.

    Args:
        title: The text.
        width: The width of a string in the font it will be drawn in.
        room: The width available.
        max_lines: The most lines allowed.
    """
    pieces: list[tuple[str, bool]] = []  # (text, starts a new word)
    for word in title.split():
        parts = [word] if width(word) <= room else word_parts(word)
        pieces += [(part, index == 0) for index, part in enumerate(parts)]
    lines: list[str] = []
    for text, new_word in pieces:
        if width(text) > room:
            return None
        if lines:
            joined = f"{lines[-1]} {text}" if new_word else lines[-1] + text
            if width(joined) <= room:
                lines[-1] = joined
                continue
        lines.append(text)
        if len(lines) > max_lines:
            return None
    return lines
