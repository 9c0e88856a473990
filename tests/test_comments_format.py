"""Comments in the project file: written only when there are some, validated on load."""

from __future__ import annotations

import pytest

from engine.graph.comments import Comment, new_comment_id
from engine.graph.fileformat import ProjectFileError, dumps, loads
from engine.graph.project import Project


def test_comments_round_trip_and_files_without_them_do_not_change() -> None:
    project = Project(comments=[Comment("c1", "Encoder\nsmaller here", (-40.0, 10.5, 300.0, 120.0)),
                                Comment("c2", "", (0.0, 0.0, 20.0, 20.0))])
    text = dumps(project)
    assert loads(text).comments == project.comments
    assert '"comments"' not in dumps(Project())


@pytest.mark.parametrize("section, where", [
    ('{"id": "c1", "text": "x", "rect": [0, 0, 5, 50]}', "comments[0].rect: width and height"),
    ('{"id": "c1", "rect": [0, 0, 50]}', "comments[0].rect: expected four numbers"),
    ('{"id": "", "rect": [0, 0, 50, 50]}', "comments[0].id"),
    ('{"id": "c1", "rect": [0, 0, 50, 50], "colour": 1}', "comments[0].colour: unknown field"),
    ('{"id": "c1", "text": 3, "rect": [0, 0, 50, 50]}', "comments[0].text"),
    ('{"id": "c1", "rect": [0, 0, 50, 50]}, {"id": "c1", "rect": [0, 0, 50, 50]}', "comments[1].id: duplicate"),
])
def test_a_bad_comment_is_refused_with_its_place(section: str, where: str) -> None:
    text = '{"format": "neural-canvas-project", "version": 1, "comments": [%s]}' % section
    with pytest.raises(ProjectFileError, match=r"^f\.json: " + where.replace("[", r"\[").replace("]", r"\]")):
        loads(text, source="f.json")


def test_new_ids_skip_the_taken_ones() -> None:
    assert new_comment_id(set()) == "c1" and new_comment_id({"c1", "c2"}) == "c3"
