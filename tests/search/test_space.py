"""The search space: each range checked against what it varies, and a trial's values applied."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.graph.fileformat import dumps, loads
from engine.search.apply import apply_values
from engine.search.settings import study_settings
from engine.search.space import parse_space
from engine.shapes import analyze
from tests.search.projects import cnn_project


def _space(space: dict) -> object:
    project = cnn_project()
    project.search = {"space": space}
    return parse_space(project)


def test_every_kind_of_target_becomes_a_dimension() -> None:
    space = _space({"training.lr": {"low": 1e-4, "high": 0.1, "log": True},
                    "training.optimizer": {"choices": ["adam", "sgd"]},
                    "nodes.conv1.out_channels": {"low": 8, "high": 64, "step": 8},
                    "nodes.relu3.type": {"choices": ["relu", "gelu", "tanh"]},
                    "nodes.dropout": {"optional": True},
                    "nodes.conv2.kernel_size": {"choices": [[3, 3], [5, 5]]}})
    kinds = {d.target: d.kind for d in space.dimensions}
    assert kinds == {"training.lr": "float", "training.optimizer": "choice", "nodes.conv1.out_channels": "int",
                     "nodes.relu3.type": "choice", "nodes.dropout": "optional", "nodes.conv2.kernel_size": "choice"}
    assert space.dimensions[2].grid_values() == [8, 16, 24, 32, 40, 48, 56, 64]


@pytest.mark.parametrize("space, message", [
    ({}, "search.space: nothing is searched"),
    ({"training.lr": {"low": -1, "high": 0.1}}, "search.space.training.lr.low: "),
    ({"training.lr": {"low": 0.1, "high": 0.01}}, "low (0.1) must be below high (0.01)"),
    ({"training.weight_decay": {"low": 0, "high": 0.1, "log": True}}, "a log scale needs low above 0"),
    ({"training.device": {"choices": ["cpu", "cuda"]}}, "cannot be searched"),
    ({"training.speed": {"low": 1, "high": 2}}, "no training setting 'speed'"),
    ({"nodes.conv9.out_channels": {"low": 8, "high": 16}}, "no node 'conv9'"),
    ({"nodes.conv1.width": {"low": 8, "high": 16}}, "has no parameter 'width'"),
    ({"nodes.conv1.out_channels": {"low": 8.5, "high": 16}}, "out_channels.low: expected an integer"),
    ({"nodes.conv1.out_channels": {"low": 0, "high": 16}}, "search.space.nodes.conv1.out_channels.low"),
    ({"nodes.dropout.p": {"low": 0.1, "high": 1.5}}, "search.space.nodes.dropout.p.high"),
    ({"nodes.relu3.type": {"choices": ["relu", "add"]}}, "search.space.nodes.relu3.type.choices[1]: Add has other ports"),
    ({"nodes.relu3.type": {"choices": ["relu", "nope"]}}, "no layer type 'nope'"),
    ({"nodes.image": {"optional": True}}, "Input has 0 input(s) and 1 output(s)"),
    ({"training.optimizer": {"choices": ["adam", "lbfgs"]}}, "search.space.training.optimizer.choices[1]"),
    ({"training.optimizer": {"choices": ["adam", "adam"]}}, "listed twice"),
    ({"training.lr": {"low": 0.001, "high": 0.1, "step": 0.01, "log": True}}, "either a step or a log scale"),
    ({"training.lr": {"low": 0.001, "high": 0.1, "steps": 3}}, "unknown field 'steps'"),
    ({"training.lr": {"optional": True}}, "only a layer (nodes.<id>) can be optional"),
    ({"stuff.x": {"low": 1, "high": 2}}, "not a target"),
])
def test_a_bad_range_is_refused_naming_its_target(space: dict, message: str) -> None:
    with pytest.raises(UserError, match=None) as caught:
        _space(space)
    assert message in str(caught.value)


def test_a_merge_cannot_be_optional() -> None:
    from engine.graph.model import Edge, Node

    project = cnn_project()
    project.graph.add_node(Node("sum", "add", {"num_inputs": 2}))
    project.graph.add_edge(Edge("fc1", "sum", "in1"))
    project.graph.add_edge(Edge("fc1", "sum", "in2"))
    project.search = {"space": {"nodes.sum": {"optional": True}}}
    with pytest.raises(UserError, match=r"search.space.nodes.sum: Add has 2 input\(s\)"):
        parse_space(project)


def test_applying_values_rewrites_a_copy_and_keeps_the_graph_valid() -> None:
    project = cnn_project()
    before = dumps(project)
    trial = apply_values(project, {"training.lr": 0.01, "nodes.conv1.out_channels": 8, "nodes.dropout": False,
                                   "nodes.relu3.type": "gelu", "nodes.conv2.kernel_size": [5, 5]})
    assert dumps(project) == before  # the project itself is untouched
    assert trial.training["lr"] == 0.01 and trial.search == {}
    assert trial.graph.nodes["conv1"].params["out_channels"] == 8
    assert trial.graph.nodes["conv2"].params["kernel_size"] == (5, 5)
    assert "dropout" not in trial.graph.nodes and trial.graph.edge_into("fc2", "in").source == "relu3"
    assert trial.graph.nodes["relu3"].type_id == "gelu"
    assert trial.graph.node_index("relu3") == project.graph.node_index("relu3")
    assert analyze(trial.graph).valid
    assert loads(dumps(trial)).graph.nodes["relu3"].type_id == "gelu"  # it saves as a normal project


def test_block_parameters_and_repeats_are_searched() -> None:
    from engine.graph.blocks import BlockLibrary
    from engine.graph.project import Project
    from tests.test_blocks import model, residual

    definition = residual()
    project = Project(graph=model(definition, repeat=2), blocks=BlockLibrary([definition]))
    project.search = {"space": {"blocks.Res.conv1.kernel_size": {"choices": [[3, 3], [1, 1]]},
                                "nodes.stage1.repeat": {"low": 1, "high": 4}}}
    assert [d.kind for d in parse_space(project).dimensions] == ["choice", "int"]
    trial = apply_values(project, {"blocks.Res.conv1.kernel_size": [1, 1], "nodes.stage1.repeat": 3})
    assert trial.blocks["Res"].graph.nodes["conv1"].params["kernel_size"] == (1, 1)
    assert trial.graph.nodes["stage1"].params["repeat"] == 3
    assert project.blocks["Res"].graph.nodes["conv1"].params["kernel_size"] == (3, 3)


@pytest.mark.parametrize("section, message", [
    ({"objectives": ["flops"]}, "the first objective is \"metric\""),
    ({"objectives": ["metric", "speed"]}, "search.objectives"),
    ({"sampler": "bayes"}, "search.sampler: must be one of"),
    ({"trials": 0}, "search.trials"),
    ({"sampler": "nsga2"}, "nsga2 searches several objectives"),
    ({"spaces": {}}, "search.spaces: unknown field"),
])
def test_bad_study_settings_are_refused(section: dict, message: str) -> None:
    with pytest.raises(UserError) as caught:
        study_settings(section)
    assert message in str(caught.value)


def test_several_objectives_take_nsga2_and_minimize_the_costs() -> None:
    settings = study_settings({"objectives": ["metric", "flops", "latency"], "metric": "val_accuracy"})
    assert settings.sampler_name == "nsga2" and not settings.prunes
    assert settings.directions == ["maximize", "minimize", "minimize"]
