"""The project file: round trips, precise load errors, version refusal, atomic saves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.graph import Edge, Graph, Node, Project
from engine.graph.fileformat import (BASE_VERSION, FORMAT_VERSION, ProjectFileError, dumps, load_project, loads,
                                     save_project)
from engine.shapes import analyze
from tests.conftest import ROOT

LENET = ROOT / "tests" / "data" / "lenet5.json"


def _project() -> Project:
    g = Graph()
    g.add_node(Node("img", "input", {"shape": [3, 16, 16]}, (1.5, 2.0)))
    g.add_node(Node("conv", "conv2d", {"out_channels": 8, "kernel_size": [3, 3]}, (100, 0)))
    g.add_node(Node("out", "output", {}, (200, 0)))
    g.add_edge(Edge("img", "conv", "in"))
    g.add_edge(Edge("conv", "out", "in"))
    return Project(graph=g, dataset={"name": "digits"}, training={"epochs": 3},
                   meta={"name": "demo", "family": "cnn", "task": "classification", "description": "d"})


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    project = _project()
    path = tmp_path / "demo.json"
    save_project(project, path)
    again = load_project(path)
    assert dumps(again) == dumps(project)
    assert again.graph.nodes["img"].position == (1.5, 2.0)
    assert again.graph.nodes["conv"].params["kernel_size"] == (3, 3)
    assert again.dataset == {"name": "digits"} and again.training == {"epochs": 3}
    assert again.meta["family"] == "cnn"


def test_file_is_readable_json_with_format_and_version() -> None:
    data = json.loads(dumps(_project()))
    assert data["format"] == "neural-canvas-project" and data["version"] == BASE_VERSION  # no blocks: version 1
    assert '"kernel_size": [3, 3]' in dumps(_project())


def test_lenet_file_loads_with_61706_parameters() -> None:
    assert analyze(load_project(LENET).graph).parameters == 61_706


def _mutated(change) -> str:  # noqa: ANN001 - small test helper
    data = json.loads(dumps(_project()))
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(("text", "expected"), [
    ("{", "demo.json: line 1, column 2: invalid JSON"),
    ("[1, 2]", "(top level): expected an object, got a list"),
    ('{"format": "other"}', "format: not a Neural Canvas project"),
    (_mutated(lambda d: d.update(version=FORMAT_VERSION + 1)), "newer Neural Canvas"),
    (_mutated(lambda d: d.update(version="1")), "version: expected a positive integer"),
    (_mutated(lambda d: d["graph"]["nodes"][1]["params"].update(out_channels="8")),
     "graph.nodes[1].params.out_channels: expected an integer, got str '8'"),
    (_mutated(lambda d: d["graph"]["nodes"][1].update(type="conv9d")), "graph.nodes[1].type: unknown layer type"),
    (_mutated(lambda d: d["graph"]["nodes"][1]["params"].update(colour=1)),
     "graph.nodes[1].params.colour: Conv2d has no such parameter"),
    (_mutated(lambda d: d["graph"]["nodes"][2].update(id="img")), "graph.nodes[2].id: node id 'img' is already used"),
    (_mutated(lambda d: d["graph"]["edges"][0].update(target="ghost")), "graph.edges[0]: no node 'ghost'"),
    (_mutated(lambda d: d["graph"]["edges"].append(dict(d["graph"]["edges"][0]))),
     "graph.edges[2]: input 'in' of node conv is already connected"),
    (_mutated(lambda d: d["graph"]["nodes"][0].update(position=[0])), "graph.nodes[0].position"),
    (_mutated(lambda d: d.update(extra=1)), "extra: unknown section"),
    (_mutated(lambda d: d["meta"].update(name=3)), "meta.name: expected a string"),
    ('{"format": "neural-canvas-project", "version": 1, "graph": {"nodes": [{"id": "a", "type": "dropout", '
     '"params": {"p": NaN}}]}}', "invalid JSON: NaN is not a number JSON allows"),
    ("[" * 100_000, "line 1, column 501: invalid project file: JSON nested more than 500 levels deep"),
])
def test_bad_files_get_one_precise_error(text: str, expected: str) -> None:
    with pytest.raises(ProjectFileError) as info:
        loads(text, source="demo.json")
    message = str(info.value)
    assert expected in message
    assert message.startswith("demo.json: ") and "\n" not in message


def test_unreadable_files_are_project_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match="no such file"):
        load_project(tmp_path / "missing.json")
    with pytest.raises(ProjectFileError, match="is a folder"):
        load_project(tmp_path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProjectFileError, match="not a text file"):
        load_project(binary)


def test_out_of_bounds_values_load_and_are_diagnosed(tmp_path: Path) -> None:
    """An invalid graph is still a document: it saves, reopens and reports the same errors."""
    project = _project()
    project.graph.set_param("conv", "kernel_size", (40, 40))
    project.graph.set_param("conv", "out_channels", 0)
    before = [d.format(project.graph) for d in analyze(project.graph).diagnostics]
    path = tmp_path / "broken.json"
    save_project(project, path)
    again = load_project(path)
    after = [d.format(again.graph) for d in analyze(again.graph).diagnostics]
    assert before == after and any("out_channels" in line for line in after)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "demo.json"
    save_project(_project(), path)
    original = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    changed = _project()
    changed.graph.set_param("conv", "out_channels", 99)
    with pytest.raises(OSError, match="disk full"):
        save_project(changed, path)
    assert path.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]
