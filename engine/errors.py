"""Error types shared across the engine."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad file, bad argument, bad data); shown as one line."""
