"""Fine-tuning options of nodes: ``trainable`` and ``lr_scale`` in the model, the file and the estimates."""

from __future__ import annotations

import json

import pytest

from engine.graph import Graph, GraphError, Node, TrainingChanged
from engine.graph.fileformat import ProjectFileError, dumps, loads
from engine.memory import estimate_training_memory
from engine.shapes import analyze
from engine.trainable import parameter_split
from tests.conftest import ROOT

CNN = ROOT / "templates" / "cnn_digits.json"


def _frozen_backbone_text() -> str:
    data = json.loads(CNN.read_text())
    for node in data["graph"]["nodes"]:
        if node["id"] in ("conv1", "conv2"):
            node["trainable"] = False
        if node["id"] == "fc2":
            node["lr_scale"] = 10
    return json.dumps(data)


def test_defaults_are_not_written_so_every_template_round_trips_byte_for_byte() -> None:
    for path in sorted((ROOT / "templates").glob("*.json")):
        text = path.read_text()
        assert dumps(loads(text)) == text, path.name
        for node in json.loads(text)["graph"]["nodes"]:  # only a frozen node or a scaled rate is written
            assert node.get("trainable", False) is False and node.get("lr_scale", 0.0) != 1.0, path.name


def test_options_round_trip_and_only_changed_ones_are_saved() -> None:
    project = loads(_frozen_backbone_text())
    nodes = project.graph.nodes
    assert nodes["conv1"].trainable is False and nodes["fc1"].trainable is True
    assert nodes["fc2"].lr_scale == 10.0 and isinstance(nodes["fc2"].lr_scale, float)
    text = dumps(project)
    assert dumps(loads(text)) == text
    saved = {n["id"]: n for n in json.loads(text)["graph"]["nodes"]}
    assert saved["conv1"]["trainable"] is False and "lr_scale" not in saved["conv1"]
    assert saved["fc2"]["lr_scale"] == 10.0 and "trainable" not in saved["fc2"]
    assert "trainable" not in saved["fc1"] and "lr_scale" not in saved["fc1"]


@pytest.mark.parametrize("field, value, message", [
    ("trainable", "no", "graph.nodes[1].trainable: expected true or false, got str 'no'"),
    ("trainable", 0, "graph.nodes[1].trainable: expected true or false, got int 0"),
    ("lr_scale", "x", "graph.nodes[1].lr_scale: expected a number, got str 'x'"),
    ("lr_scale", True, "graph.nodes[1].lr_scale: expected a number, got bool True"),
    ("lr_scale", -1, "graph.nodes[1].lr_scale: must be from 0 to 100, got -1"),
    ("lr_scale", 1000.5, "graph.nodes[1].lr_scale: must be from 0 to 100, got 1000.5"),
])
def test_bad_values_are_refused_in_one_line_naming_the_field(field: str, value: object, message: str) -> None:
    data = json.loads(CNN.read_text())
    data["graph"]["nodes"][1][field] = value
    with pytest.raises(ProjectFileError) as info:
        loads(json.dumps(data), source="p.json")
    assert str(info.value) == f"p.json: {message}"
    assert "\n" not in str(info.value)


def test_set_training_emits_an_event_and_refuses_bad_values() -> None:
    graph = Graph()
    graph.add_node(Node("fc", "linear", {"out_features": 3}))
    events = []
    graph.subscribe(events.append)
    assert graph.set_training("fc", "trainable", False) is True
    assert graph.set_training("fc", "lr_scale", 2) == 1.0
    assert graph.set_training("fc", "lr_scale", 2.0) == 2.0  # unchanged: no event
    assert events == [TrainingChanged("fc", "trainable", True, False), TrainingChanged("fc", "lr_scale", 1.0, 2.0)]
    assert graph.copy().nodes["fc"].trainable is False and graph.copy().nodes["fc"].lr_scale == 2.0
    for name, value in (("trainable", 1), ("lr_scale", float("nan")), ("lr_scale", 101), ("frozen", True)):
        with pytest.raises(GraphError):
            graph.set_training("fc", name, value)
    with pytest.raises(GraphError, match="lr_scale must be from 0 to 100"):
        graph.add_node(Node("fc2", "linear", {}, lr_scale=-2.0))


def test_split_counts_frozen_and_trainable_parameters_and_memory_skips_frozen_gradients() -> None:
    plain, frozen = loads(CNN.read_text()), loads(_frozen_backbone_text())
    a_plain, a_frozen = analyze(plain.graph), analyze(frozen.graph)
    split = parameter_split(frozen.graph, a_frozen)
    nodes = a_frozen.nodes
    assert split.frozen == nodes["conv1"].parameters + nodes["conv2"].parameters
    assert split.trainable == nodes["fc1"].parameters + nodes["fc2"].parameters
    assert split.total == a_frozen.parameters
    assert split.frozen_nodes == ("conv1", "conv2") and split.scaled_nodes == {"fc2": 10.0}
    assert parameter_split(plain.graph, a_plain).frozen == 0
    settings = {"optimizer": "adam", "batch_size": 32}
    before = estimate_training_memory(plain.graph, a_plain, settings)
    after = estimate_training_memory(frozen.graph, a_frozen, settings)
    assert after.weights == before.weights
    assert after.gradients == split.trainable * 4 and after.optimizer == 2 * split.trainable * 4
    assert before.gradients == a_plain.parameters * 4


def test_summary_shows_trainable_and_frozen_counts_in_text_and_json(tmp_path) -> None:  # noqa: ANN001
    from tests.test_cli import run

    path = tmp_path / "frozen.json"
    path.write_text(_frozen_backbone_text())
    data = json.loads(run("summary", str(path), "--json").stdout)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["conv1"]["trainable"] is False and nodes["conv1"]["frozen_parameters"] == 160
    assert nodes["conv1"]["trainable_parameters"] == 0
    assert nodes["fc2"]["lr_scale"] == 10.0 and nodes["fc2"]["trainable_parameters"] == 650
    assert data["frozen_parameters"] == 160 + 4_640 and data["trainable_parameters"] == 32_832 + 650
    assert data["memory"]["gradients"] == data["trainable_parameters"] * 4
    text = run("summary", str(path)).stdout
    assert "trainable parameters: 33,482; frozen: 4,800" in text
    assert any(line.startswith("conv1") and "Conv2d (frozen)" in line for line in text.splitlines())
    assert any(line.startswith("fc2") and "Linear (lr x10)" in line for line in text.splitlines())
