"""Projects with blocks through the CLI's validate and summary, training and every export format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import run_cli
from engine.graph import Graph, Project
from engine.graph.blocks import BlockLibrary, instance_node
from engine.graph.fileformat import load_project, save_project
from tests.graph_builders import chain, connect, node
from tests.test_blocks import residual, stage
from tests.test_blocks_fileformat import blocks_project


def digits_project() -> Project:
    """image -> stem (8 channels) -> stage1 (Stage: conv, Res x2) -> pool -> flatten -> fc -> logits."""
    res = residual()
    outer = stage(inner=res)
    g = Graph()
    chain(g, node("input", "image", shape=[1, 8, 8]),
          node("conv2d", "stem", out_channels=8, kernel_size=[3, 3], padding=[1, 1]))
    g.add_node(instance_node("stage1", outer, repeat=2))
    connect(g, "stem", "stage1", "x")
    chain(g, "stage1", node("maxpool2d", "pool", kernel_size=[2, 2]), node("flatten", "flat"),
          node("linear", "fc", out_features=10), node("output", "logits"))
    return Project(graph=g, blocks=BlockLibrary([res, outer]), dataset={"name": "digits"},
                   training={"epochs": 1, "batch_size": 64, "lr": 0.01, "seed": 1},
                   meta={"name": "Blocks on digits", "family": "resnet", "task": "classification",
                         "description": ""})


@pytest.fixture()
def project_file(tmp_path: Path) -> Path:
    path = tmp_path / "blocks.json"
    save_project(digits_project(), path)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run_cli(list(args))
    return code, capsys.readouterr().out


def test_summary_lists_each_instance_as_one_block_entry_with_totals(project_file: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(capsys, "summary", str(project_file), "--json")
    data = json.loads(out)
    assert code == 0 and data["valid"]
    nodes = {n["id"]: n for n in data["nodes"]}
    assert list(nodes) == ["image", "stem", "stage1", "pool", "flat", "fc", "logits"]
    block = nodes["stage1"]
    assert block["type"] == "block" and block["definition"] == "Stage" and block["repeat"] == 2
    assert block["output_shape"] == nodes["stem"]["output_shape"]
    # two copies of (1x1 conv 8->8 + two Res copies of a 3x3 conv 8->8)
    assert block["parameters"] == 2 * (8 * 8 + 8 + 2 * (8 * 8 * 9 + 8))
    assert data["parameters"] == sum(n["parameters"] for n in data["nodes"])
    assert data["flops"] == sum(n["flops"] for n in data["nodes"])


def test_summary_flat_lists_every_layer_with_its_path(project_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, top = _cli(capsys, "summary", str(project_file), "--json")
    code, out = _cli(capsys, "summary", str(project_file), "--json", "--flat")
    data = json.loads(out)
    paths = [n["path"] for n in data["nodes"]]
    assert code == 0 and "block" not in {n["type"] for n in data["nodes"]}
    assert "stage1.1/block.0/conv1" in paths and "stage1.0/conv" in paths and "stem" in paths
    assert data["parameters"] == json.loads(top)["parameters"]
    code, text = _cli(capsys, "summary", str(project_file))
    assert code == 0 and "Block Stage x2" in text
    code, text = _cli(capsys, "summary", str(project_file), "--flat")
    assert code == 0 and "stage1.1/block.1/relu1" in text


def test_validate_names_inner_layers_by_their_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     project_file: Path) -> None:
    code, out = _cli(capsys, "validate", str(project_file))
    assert code == 0 and out.startswith("valid: ")
    project = digits_project()
    project.blocks["Res"].graph.set_param("conv1", "out_channels", 4)  # the residual add no longer matches
    bad = tmp_path / "bad.json"
    save_project(project, bad)
    code, out = _cli(capsys, "validate", str(bad))
    assert code == 1
    assert "node stage1.0/block.0/add (Add): " in out, out
    code, out = _cli(capsys, "summary", str(bad), "--json")
    data = json.loads(out)
    assert not data["valid"] and any(d["node"] == "stage1" and d["message"].startswith("stage1.0/block.0/add: ")
                                     for d in data["diagnostics"])


def test_validate_of_a_file_with_a_missing_definition_is_one_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((Path(__file__).parent / "data" / "lenet5.json").read_text())
    data["graph"]["nodes"].append({"id": "b", "type": "block", "params": {"definition": "Nowhere"}})
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(data))
    assert run_cli(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "node b uses block definition 'Nowhere', which the file does not define" in err


def test_a_project_with_blocks_trains_and_its_run_keeps_the_blocks(tmp_path: Path) -> None:
    from engine.training.events import Finished
    from engine.training.trainer import Trainer, TrainOptions

    events: list[object] = []
    run = tmp_path / "run"
    result = Trainer(TrainOptions(digits_project(), run, None, {"epochs": 1}), events.append).run()
    assert isinstance(result, Finished), result
    frozen = load_project(run / "project.json")
    assert list(frozen.blocks) == ["Res", "Stage"] and frozen.graph.nodes["stage1"].type_id == "block"


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "safetensors", "python"])
def test_a_project_with_blocks_exports_to_every_format(fmt: str, project_file: Path, tmp_path: Path) -> None:
    from engine.compile.export import export_model

    out = tmp_path / ("out" if fmt == "python" else f"model.{ {'onnx': 'onnx', 'pt2': 'pt2'}.get(fmt, fmt)}")
    result = export_model(project_file, fmt, out)
    assert result.max_abs_diff <= result.tolerance and result.paths[0].exists()
    if fmt == "safetensors":
        copy = load_project(out.with_suffix(".json"))
        assert list(copy.blocks) == ["Res", "Stage"]  # the copy keeps its blocks and opens with the weights


def test_the_file_format_fixture_is_still_valid() -> None:
    assert blocks_project().blocks["Stage"].uses() == [("block", "Res")]


def test_train_refuses_an_invalid_project_with_blocks_naming_paths(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = digits_project()
    project.blocks["Res"].graph.set_param("conv1", "out_channels", 4)
    bad = tmp_path / "bad.json"
    save_project(project, bad)
    assert run_cli(["train", str(bad), "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert "node stage1.0/block.0/add (Add): " in captured.out and "fix them before training" in captured.err
