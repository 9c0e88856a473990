"""The template catalogue: one project file per template in the repository's templates/."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from engine.graph.fileformat import ProjectFileError, load_project

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
FAMILIES = ("fnn", "cnn", "rnn", "lstm", "gru", "transformer", "autoencoder", "gan", "resnet")


@dataclass(frozen=True)
class TemplateInfo:
    """What the gallery and ``templates --json`` show of one template."""

    name: str
    path: str
    family: str
    task: str
    dataset: str
    description: str

    def to_json(self) -> dict[str, str]:
        """Plain JSON data with the contract fields."""
        return asdict(self)


def list_templates(folder: Path = TEMPLATES_DIR) -> tuple[list[TemplateInfo], list[str]]:
    """Read every ``*.json`` in ``folder``.

    Returns:
        The templates sorted by family order then name, and one message per file that
        could not be read (a broken template never hides the others).
    """
    templates: list[TemplateInfo] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            problems.append(str(exc))
            continue
        meta = project.meta
        family = meta.get("family", "")
        if family not in FAMILIES:
            problems.append(f"{path}: meta.family: expected one of {', '.join(FAMILIES)}, got {family!r}")
            continue
        dataset = project.dataset.get("name", "") if isinstance(project.dataset.get("name"), str) else ""
        templates.append(TemplateInfo(meta.get("name") or path.stem, str(path), family, meta.get("task", ""),
                                      dataset, meta.get("description", "")))
    order = {family: i for i, family in enumerate(FAMILIES)}
    templates.sort(key=lambda t: (order[t.family], t.name))
    return templates, problems


def default_template() -> Path:
    """The project the app opens with: the CNN on digits."""
    return TEMPLATES_DIR / "cnn_digits.json"
