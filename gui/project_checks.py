"""Problems of the project outside the graph that stop training, each with its fix.

The graph's own diagnostics come from shape inference; these come from the project's other
sections (today: the dataset). The Problems panel lists them, the Train action names the
first one, and F5 explains it instead of failing with a raw loader message.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.data import DATASETS
from gui.document import Document


@dataclass(frozen=True)
class ProjectProblem:
    """One reason the project cannot train yet.

    Args:
        message: What is wrong, in a few words.
        fix: What to do about it.
        panel: The dock key of the panel where it is fixed (``"data"``).
    """

    message: str
    fix: str
    panel: str

    @property
    def text(self) -> str:
        """Message and fix in one line."""
        return f"{self.message}: {self.fix}"


def project_problems(document: Document) -> list[ProjectProblem]:
    """What keeps ``document`` from training besides its graph (empty when nothing does)."""
    name = document.project.dataset.get("name")
    if name is None:
        return [ProjectProblem("No dataset chosen", "choose one in the Data panel (a built-in dataset, or import "
                               "a CSV, an image folder or an .npz file)", "data")]
    if not isinstance(name, str) or name not in DATASETS:
        return [ProjectProblem(f"Unknown dataset {name!r}", "choose another one in the Data panel", "data")]
    return []
