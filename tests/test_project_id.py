"""The project id: optional in the file, validated, round-tripped; files without one stay unchanged."""

from __future__ import annotations

import pytest

from engine.graph.fileformat import ProjectFileError, dumps, loads
from engine.graph.project import Project, new_project_id
from tests.conftest import ROOT


def test_a_file_without_id_round_trips_unchanged() -> None:
    text = (ROOT / "templates" / "cnn_digits.json").read_text(encoding="utf-8")
    project = loads(text)
    assert project.id == ""
    assert dumps(project) == text


def test_an_id_is_written_after_the_version_and_read_back() -> None:
    project = Project(id=new_project_id())
    text = dumps(project)
    assert text.index('"id"') < text.index('"meta"')
    assert loads(text).id == project.id and len(project.id) == 32


@pytest.mark.parametrize("value", ['""', "12", '"has space"', '"' + "x" * 65 + '"', "null"])
def test_a_bad_id_is_refused_with_its_place(value: str) -> None:
    text = '{"format": "neural-canvas-project", "version": 1, "id": %s}' % value
    if value == '""':
        assert loads(text).id == ""
        return
    with pytest.raises(ProjectFileError, match=r"^x\.json: id: expected up to 64 letters"):
        loads(text, source="x.json")
