"""Error types shared across the engine, and how a foreign exception becomes one line."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad file, bad argument, bad data); shown as one line."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message, or its type name when it has none.

    Libraries (exporters, ONNX, torch) write pages; messages here are one line.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
