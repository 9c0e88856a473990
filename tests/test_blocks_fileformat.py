"""Block definitions in the project file (format version 2) and version-1 files unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.block_shapes import analyze_blocks
from engine.graph import Project
from engine.graph.blocks import BlockLibrary
from engine.graph.fileformat import (BASE_VERSION, FORMAT_VERSION, ProjectFileError, dumps, load_project, loads,
                                     save_project)
from tests.conftest import ROOT
from tests.test_blocks import nested, residual


def blocks_project() -> Project:
    """img -> stem -> stage1 (Stage x3, holding Res x2) -> logits, with both definitions."""
    graph, library = nested()
    library["Res"].doc = "x + relu(conv(x))"
    return Project(graph=graph, blocks=library, meta={"name": "blocks"}, training={"epochs": 1})


def _text(change) -> str:  # noqa: ANN001 - small test helper
    data = json.loads(dumps(blocks_project()))
    change(data)
    return json.dumps(data)


def test_a_project_with_blocks_saves_as_version_2_and_round_trips(tmp_path: Path) -> None:
    project = blocks_project()
    path = tmp_path / "blocks.json"
    save_project(project, path)
    data = json.loads(path.read_text())
    assert data["version"] == FORMAT_VERSION == 2
    assert list(data)[:5] == ["format", "version", "meta", "graph", "blocks"]
    assert list(data["blocks"]) == ["Res", "Stage"]
    assert data["blocks"]["Res"]["doc"] == "x + relu(conv(x))"
    assert {"nodes", "edges", "doc"} == set(data["blocks"]["Stage"])
    again = load_project(path)
    assert path.read_text() == dumps(again)
    assert list(again.blocks) == ["Res", "Stage"] and again.blocks["Res"].doc == "x + relu(conv(x))"
    before = analyze_blocks(project.graph, project.blocks).analysis
    after = analyze_blocks(again.graph, again.blocks).analysis
    assert after.valid and after.parameters == before.parameters > 0


def test_a_project_without_blocks_still_saves_as_version_1() -> None:
    project = Project(graph=residual().graph, blocks=BlockLibrary())
    assert json.loads(dumps(project))["version"] == BASE_VERSION == 1
    assert '"blocks"' not in dumps(project)


def test_a_version_2_file_without_blocks_opens_and_saves_as_version_1() -> None:
    text = (ROOT / "tests" / "data" / "lenet5.json").read_text()
    data = json.loads(text)
    data["version"] = 2
    project = loads(json.dumps(data))
    assert json.loads(dumps(project))["version"] == 1 and not project.blocks


@pytest.mark.parametrize("path", sorted((ROOT / "templates").glob("*.json")), ids=lambda p: p.stem)
def test_version_1_templates_round_trip_byte_identically(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    project = loads(text)
    assert not project.blocks
    assert dumps(project) == text


def test_a_hand_written_version_1_file_opens_and_stays_version_1() -> None:
    project = load_project(ROOT / "tests" / "data" / "lenet5.json")
    again = dumps(project)
    assert json.loads(again)["version"] == 1 and dumps(loads(again)) == again


@pytest.mark.parametrize(("text", "expected"), [
    (_text(lambda d: d.update(version=1)), "blocks: block definitions need format version 2 (the file says 1)"),
    (_text(lambda d: d.update(blocks=[])), "blocks: expected an object, got a list"),
    (_text(lambda d: d["blocks"]["Res"]["nodes"][1]["params"].update(out_channels="8")),
     "blocks.Res.nodes[1].params.out_channels: expected an integer, got str '8'"),
    (_text(lambda d: d["blocks"]["Res"]["nodes"][1].update(type="conv9d")),
     "blocks.Res.nodes[1].type: unknown layer type conv9d"),
    (_text(lambda d: d["blocks"]["Res"]["edges"][0].update(target="ghost")), "blocks.Res.edges[0]: no node 'ghost'"),
    (_text(lambda d: d["blocks"]["Res"].update(colour=1)), "blocks.Res.colour: unknown field"),
    (_text(lambda d: d["blocks"]["Res"].update(doc=3)), "blocks.Res.doc: expected a string, got an integer"),
    (_text(lambda d: d["blocks"].update({"not a name": d["blocks"]["Res"]})),
     'blocks."not a name": block definition name \'not a name\' must be a Python identifier'),
    (_text(lambda d: d["graph"]["nodes"][2]["params"].update(definition="Ghost")),
     "graph.nodes[2].params.definition: node stage1 uses block definition 'Ghost', which the file does not "
     "define (it defines Res, Stage)"),
    (_text(lambda d: d["blocks"]["Stage"]["nodes"][2]["params"].update(definition="Ghost")),
     "blocks.Stage.nodes[2].params.definition: node block uses block definition 'Ghost'"),
    (_text(lambda d: d["blocks"].pop("Res") and d["blocks"].pop("Stage")),
     "node stage1 uses block definition 'Stage', which the file does not define (it defines none)"),
])
def test_bad_blocks_get_one_line_naming_the_block(text: str, expected: str) -> None:
    with pytest.raises(ProjectFileError) as info:
        loads(text, source="b.json")
    message = str(info.value)
    assert "\n" not in message and message.startswith("b.json: ")
    assert expected in message


def _cycle(data: dict) -> None:
    """Res holds an instance of Stage, which holds Res: Res -> Stage -> Res."""
    stage_instance = next(n for n in data["blocks"]["Stage"]["nodes"] if n["type"] == "block")
    inner = dict(stage_instance, id="loop", params=dict(stage_instance["params"], definition="Stage"))
    data["blocks"]["Res"]["nodes"].append(inner)


def test_a_definition_containing_itself_is_refused_with_the_cycle_named() -> None:
    with pytest.raises(ProjectFileError, match=r"blocks\.Res: block definition 'Res' contains itself: "
                                               r"Res -> Stage -> Res"):
        loads(_text(_cycle), source="b.json")
    data = json.loads(dumps(blocks_project()))
    data["blocks"]["Res"]["nodes"].append(dict(data["blocks"]["Stage"]["nodes"][2], id="me",
                                               params={"definition": "Res", "inputs": ["x"], "outputs": ["out"]}))
    with pytest.raises(ProjectFileError, match="contains itself: Res -> Res"):
        loads(json.dumps(data))


def test_instance_ports_that_no_longer_match_still_open_and_are_diagnosed() -> None:
    """Only cycles and missing definitions are refused: other block problems are an invalid graph."""
    project = blocks_project()
    data = json.loads(dumps(project))
    data["graph"]["nodes"][2]["params"]["inputs"] = ["zz"]
    data["graph"]["edges"] = [e for e in data["graph"]["edges"] if e["target"] != "stage1"]
    again = loads(json.dumps(data))
    analysis = analyze_blocks(again.graph, again.blocks).analysis
    assert not analysis.valid and "do not match block definition 'Stage'" in str(
        [d.message for d in analysis.diagnostics])


def test_definition_graph_is_the_residual_helper() -> None:
    assert [n.id for n in blocks_project().blocks["Res"].graph] == [n.id for n in residual().graph]
