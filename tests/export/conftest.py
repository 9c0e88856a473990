"""Shared exports: each (project, format) is exported once per test session and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from engine.compile.export import ExportResult, export_model
from engine.templates import list_templates

#: Template files at collection time (the folder grows; every file is covered).
TEMPLATES = [Path(t.path) for t in list_templates()[0]]
TEMPLATE_IDS = [p.stem for p in TEMPLATES]


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, str], ExportResult]:
    """``exported(project_or_run, fmt)``: the export of it in that format, made once."""
    cache: dict[tuple[Path, str, bool], ExportResult] = {}
    root = tmp_path_factory.mktemp("exports")

    def get(source: Path, fmt: str, discriminator: bool = False) -> ExportResult:
        key = (source, fmt, discriminator)
        if key not in cache:
            suffix = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}[fmt]
            name = f"{source.parent.name}_{source.stem}{'_d' if discriminator else ''}_{fmt}{suffix}"
            cache[key] = export_model(source, fmt, root / name, discriminator=discriminator)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def test_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The projects of tests/export/projects.py saved as files."""
    from tests.export.projects import write_all

    return write_all(tmp_path_factory.mktemp("projects"))
