"""Block definitions across projects: merging (paste, drop from the library) and the personal library on disk."""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.app_data import app_data_dir
from engine.block_shapes import analyze_blocks
from engine.graph.block_store import (FORMAT_NAME, FORMAT_VERSION, LIBRARY_ENV, default_library_folder,
                                      definitions_used, delete_from_library, library_file_name, load_library,
                                      merge_definitions, plan_merge, read_library_file, same_structure,
                                      save_to_library)
from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, instance_node
from engine.graph.fileformat import ProjectFileError
from tests.graph_builders import chain, node
from tests.test_blocks import model, residual, stage


def three_levels() -> BlockLibrary:
    """Net (uses Stage) -> Stage (uses Res x2) -> Res, with docs."""
    res = residual()
    res.doc = "x + relu(conv(x))"
    inner = stage(inner=res)
    net = BlockDefinition("Net", doc="two stages")
    chain(net.graph, node("input", "x", shape=[8, 4, 4]))
    net.graph.add_node(instance_node("s1", inner))
    net.graph.add_node(instance_node("s2", inner, repeat=2))
    chain(net.graph, "x", "s1", "s2", node("output", "y"))
    return BlockLibrary([res, inner, net])


def saved(tmp_path: Path, name: str = "Stage") -> Path:
    library = three_levels()
    return save_to_library(tmp_path, library[name], library)


# ------------------------------------------------------------------ definitions_used
def test_definitions_used_lists_nested_uses_dependencies_first() -> None:
    library = three_levels()
    assert list(definitions_used(library, ["Net"])) == ["Res", "Stage", "Net"]
    assert list(definitions_used(library, ["Res", "Stage"])) == ["Res", "Stage"]
    assert definitions_used(library, ["Stage"])["Res"] is library["Res"]
    with pytest.raises(BlockError, match="no block definition named 'Nope'"):
        definitions_used(library, ["Nope"])


def test_definitions_used_names_a_cycle_and_a_missing_use() -> None:
    library = three_levels()
    library["Res"].graph.add_node(instance_node("loop", library["Net"]))
    with pytest.raises(BlockError, match=r"contains itself: .*Net -> Stage -> Res -> Net|Res -> Net -> Stage -> Res"):
        definitions_used(library, ["Net"])
    broken = BlockLibrary([stage(inner=residual())])
    with pytest.raises(BlockError, match=r"'Stage' \(node block\) uses block definition 'Res', which is not defined"):
        definitions_used(broken, ["Stage"])


# ------------------------------------------------------------------------- merging
def test_merge_into_an_empty_library_adds_copies_and_leaves_the_incoming_alone() -> None:
    source = three_levels()
    incoming = definitions_used(source, ["Net"])
    before = {name: json.dumps([(n.id, dict(n.params)) for n in d.graph]) for name, d in incoming.items()}
    target = BlockLibrary()
    renames = merge_definitions(target, incoming)
    assert renames == {"Res": "Res", "Stage": "Stage", "Net": "Net"}
    assert list(target) == ["Res", "Stage", "Net"]
    for name in target:
        assert target[name] is not source[name] and target[name].graph is not source[name].graph
        assert same_structure(target[name], source[name]) and target[name].doc == source[name].doc
    assert {name: json.dumps([(n.id, dict(n.params)) for n in d.graph]) for name, d in incoming.items()} == before


def test_merge_reuses_an_identical_definition_whatever_its_positions_and_doc() -> None:
    target = three_levels()
    incoming = definitions_used(three_levels(), ["Net"])
    incoming["Res"].doc = "another doc"
    incoming["Res"].graph.move_nodes({"conv1": (500.0, -40.0)})
    revision = target.revision
    assert merge_definitions(target, incoming) == {"Res": "Res", "Stage": "Stage", "Net": "Net"}
    assert list(target) == ["Res", "Stage", "Net"] and target.revision == revision
    assert target["Res"].doc == "x + relu(conv(x))"


def test_merge_renames_a_conflicting_definition_and_rewrites_nested_uses() -> None:
    target = BlockLibrary([residual(channels=4), stage(inner=residual(channels=4))])  # Res and Stage differ
    source = three_levels()
    incoming = definitions_used(source, ["Net"])
    renames = merge_definitions(target, incoming)
    # Res differs -> Res2; Stage (now using Res2) differs from the target's Stage -> Stage2; Net is new.
    assert renames == {"Res": "Res2", "Stage": "Stage2", "Net": "Net"}
    assert list(target) == ["Res", "Stage", "Res2", "Stage2", "Net"]
    assert target["Stage2"].uses() == [("block", "Res2")]
    assert target["Net"].uses() == [("s1", "Stage2"), ("s2", "Stage2")]
    assert target["Stage"].uses() == [("block", "Res")]  # the target's own definitions are untouched
    assert source["Stage"].uses() == [("block", "Res")] and source["Net"].uses() == [("s1", "Stage"), ("s2", "Stage")]
    assert same_structure(target["Res2"], source["Res"]) and not same_structure(target["Res"], source["Res"])
    # The merged definitions analyse like the originals.
    graph = model(target["Net"], instance="net", repeat=1)
    original = model(source["Net"], instance="net", repeat=1)
    after, before = analyze_blocks(graph, target).analysis, analyze_blocks(original, source).analysis
    assert after.valid and after.parameters == before.parameters > 0
    # Merging the same definitions again reuses the renamed copies.
    assert merge_definitions(target, definitions_used(source, ["Net"])) == renames
    assert len(target) == 5


def test_a_second_different_definition_gets_the_next_free_name() -> None:
    target = BlockLibrary([residual(channels=4)])
    merge_definitions(target, {"Res": residual(channels=8)})
    assert merge_definitions(target, {"Res": residual(channels=16)}) == {"Res": "Res3"}
    assert merge_definitions(target, {"Res": residual(channels=8)}) == {"Res": "Res2"}
    assert list(target) == ["Res", "Res2", "Res3"]


def test_renamed_names_stay_valid_identifiers() -> None:
    assert merge_definitions(BlockLibrary([residual("Stage1", 4)]), {"Stage1": residual("Stage1", 8)}) == \
        {"Stage1": "Stage1_2"}
    long = "B" * 64
    target = BlockLibrary([residual(long, 4)])
    new = merge_definitions(target, {long: residual(long, 8)})[long]
    assert len(new) == 64 and new.endswith("2") and new in target


def test_plan_merge_changes_nothing_and_merge_refuses_open_or_cyclic_sets_whole() -> None:
    target = BlockLibrary([residual(channels=4)])
    plan = plan_merge(target, definitions_used(three_levels(), ["Stage"]))
    assert plan.renames == {"Res": "Res2", "Stage": "Stage"} and [d.name for d in plan.added] == ["Res2", "Stage"]
    assert list(target) == ["Res"]
    source = three_levels()
    with pytest.raises(BlockError, match="'Stage' .* uses block definition 'Res', which is not defined"):
        merge_definitions(target, {"Stage": source["Stage"]})
    with pytest.raises(BlockError, match="given under the name 'Other'"):
        merge_definitions(target, {"Other": source["Res"]})
    source["Res"].graph.add_node(instance_node("loop", source["Stage"]))
    with pytest.raises(BlockError, match="contains itself"):
        merge_definitions(target, {"Res": source["Res"], "Stage": source["Stage"]})
    assert list(target) == ["Res"]


def test_same_structure_compares_params_training_options_edges_and_port_order() -> None:
    a, b = residual(), residual()
    assert same_structure(a, b)
    b.graph.set_training("conv1", "lr_scale", 0.5)
    assert not same_structure(a, b)
    c = residual()
    c.graph.set_param("conv1", "stride", (2, 2))
    assert not same_structure(a, c)
    d = residual()
    d.graph.remove_edge(d.graph.edge_into("add", "in2"))
    assert not same_structure(a, d)


# ----------------------------------------------------------------- library on disk
def test_save_and_load_round_trip_a_nested_definition(tmp_path: Path) -> None:
    folder = tmp_path / "blocks"  # missing: created on save
    assert load_library(folder) == ({}, [])
    library = three_levels()
    path = save_to_library(folder, library["Net"], library)
    assert path == folder / "Net.json"
    data = json.loads(path.read_text())
    assert (data["format"], data["version"], data["name"]) == (FORMAT_NAME, FORMAT_VERSION, "Net")
    assert list(data["blocks"]) == ["Res", "Stage", "Net"] and data["blocks"]["Res"]["doc"] == "x + relu(conv(x))"
    entries, problems = load_library(folder)
    assert problems == [] and list(entries) == ["Net"]
    entry = entries["Net"]
    assert (entry.name, entry.path, list(entry.needs)) == ("Net", path, ["Res", "Stage"])
    assert list(entry.definitions) == ["Res", "Stage", "Net"]
    for name, definition in entry.definitions.items():
        assert same_structure(definition, library[name]) and definition.doc == library[name].doc
        assert [n.position for n in definition.graph] == [n.position for n in library[name].graph]
    # Saving what was loaded writes the same bytes.
    again = save_to_library(tmp_path / "again", entry.definition, BlockLibrary(entry.needs))
    assert again.read_bytes() == path.read_bytes()
    # Dropping it into a project whose Res differs renames on conflict.
    project = BlockLibrary([residual(channels=4)])
    assert merge_definitions(project, entry.definitions) == {"Res": "Res2", "Stage": "Stage", "Net": "Net"}


def test_saving_again_overwrites_the_file_that_holds_the_name(tmp_path: Path) -> None:
    library = three_levels()
    first = save_to_library(tmp_path, library["Res"], library)
    library["Res"].doc = "changed"
    assert save_to_library(tmp_path, library["Res"], library) == first
    assert read_library_file(first).definition.doc == "changed"
    first.rename(tmp_path / "Mine.json")  # renamed by hand: still the file of Res
    assert save_to_library(tmp_path, library["Res"], library) == tmp_path / "Mine.json"
    (tmp_path / "Mine.json").rename(tmp_path / "Stage.json")  # Stage.json now holds Res
    assert save_to_library(tmp_path, library["Stage"], library) == tmp_path / "Stage-2.json"
    entries, problems = load_library(tmp_path)
    assert problems == [] and list(entries) == ["Res", "Stage"]


def test_saving_refuses_a_definition_that_contains_itself_or_uses_a_missing_one(tmp_path: Path) -> None:
    library = three_levels()
    with pytest.raises(BlockError, match="'Res', which is not defined"):
        save_to_library(tmp_path, library["Stage"], BlockLibrary())
    library["Res"].graph.add_node(instance_node("loop", library["Stage"]))
    with pytest.raises(BlockError, match="contains itself: Stage -> Res -> Stage"):
        save_to_library(tmp_path, library["Stage"], library)
    assert list(tmp_path.iterdir()) == []


def test_delete_removes_the_file_and_an_unknown_name_is_none(tmp_path: Path) -> None:
    path = saved(tmp_path)
    assert delete_from_library(tmp_path, "Stage") == path and not path.exists()
    assert delete_from_library(tmp_path, "Stage") is None
    assert delete_from_library(tmp_path / "missing", "Stage") is None


def test_a_second_file_for_a_saved_name_is_skipped_with_one_line(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (tmp_path / "Copy.json").write_bytes(path.read_bytes())
    entries, problems = load_library(tmp_path)
    assert list(entries) == ["Stage"] and entries["Stage"].path == path
    assert problems == [(f"{tmp_path / 'Copy.json'}: name: block definition 'Stage' is also saved in Stage.json; "
                         "this file is skipped")]
    path.rename(tmp_path / "Zcopy.json")  # neither is Stage.json: the first file wins
    entries, problems = load_library(tmp_path)
    assert entries["Stage"].path == tmp_path / "Copy.json" and problems[0].startswith(f"{tmp_path / 'Zcopy.json'}: ")


def test_names_windows_reserves_get_another_file_name() -> None:
    assert library_file_name("CON") == "CON-block.json" and library_file_name("com1") == "com1-block.json"
    assert library_file_name("Console") == "Console.json"


# ------------------------------------------------------------- corrupt and foreign files
def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data)
    return apply


def _set_conv(field: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(data: dict[str, Any]) -> None:
        conv = next(n for n in data["blocks"]["Res"]["nodes"] if n["id"] == "conv1")
        if field in ("position", "lr_scale", "type"):
            conv[field] = value
        else:
            conv["params"][field] = value
    return change


def _cycle(data: dict[str, Any]) -> None:
    stage_node = next(n for n in data["blocks"]["Stage"]["nodes"] if n["type"] == "block")
    data["blocks"]["Res"]["nodes"].append({**stage_node, "id": "loop", "params": {**stage_node["params"],
                                                                                   "definition": "Stage"}})


CORRUPT: dict[str, tuple[Callable[[str], str], str]] = {
    "truncated": (lambda t: t[: len(t) // 2], r"line \d+, column \d+: invalid JSON"),
    "empty": (lambda t: "", "line 1, column 1: invalid JSON"),
    "top level list": (lambda t: "[1, 2]", r"\(top level\): expected an object, got a list"),
    "project file": (_edit(lambda d: d.update(format="neural-canvas-project")), "format: a project file"),
    "foreign": (lambda t: '{"name": "x", "version": 3}', "format: not a Neural Canvas block file"),
    "newer version": (_edit(lambda d: d.update(version=99)), "version: block file version 99 was written by a newer"),
    "version type": (_edit(lambda d: d.update(version="1")), "version: expected a positive integer, got a string"),
    "unknown section": (_edit(lambda d: d.update(extra=1)), "extra: unknown section"),
    "name type": (_edit(lambda d: d.update(name=5)), "name: expected a string, got an integer"),
    "name not an identifier": (_edit(lambda d: d.update(name="a b")), "name: 'a b' is not a block definition name"),
    "name not defined": (_edit(lambda d: d.update(name="Other")), "name: block definition 'Other' is not in the file"),
    "no blocks": (_edit(lambda d: d.pop("blocks")), "blocks: missing"),
    "blocks a list": (_edit(lambda d: d.update(blocks=[])), "blocks: expected an object, got a list"),
    "nodes a string": (_edit(lambda d: d["blocks"]["Res"].update(nodes="x")), "blocks.Res.nodes: expected a list"),
    "param wrong type": (_edit(_set_conv("out_channels", "8")),
                         r"blocks.Res.nodes\[1\].params.out_channels: expected an integer"),
    "unknown layer type": (_edit(_set_conv("type", "os.system")),
                           r"blocks.Res.nodes\[1\].type: unknown layer type"),
    "unknown param": (_edit(_set_conv("__reduce__", 1)),
                      r"blocks.Res.nodes\[1\].params.__reduce__: .*no such parameter"),
    "huge float": (lambda t: t.replace('"momentum": 0.1', '"momentum": 1e999', 1) if '"momentum": 0.1' in t
                   else t.replace('"out_channels": 8', '"out_channels": 1e999', 1), "too large for a number"),
    "huge integer text": (lambda t: t.replace('"out_channels": 8', '"out_channels": ' + "9" * 5000, 1),
                          "Exceeds the limit"),
    "huge position": (_edit(_set_conv("position", [1e300, 0])),
                      r"blocks.Res.nodes\[1\].position: expected two numbers"),
    "huge lr_scale": (_edit(_set_conv("lr_scale", 1e6)), r"blocks.Res.nodes\[1\].lr_scale: must be from 0 to 100"),
    "NaN": (lambda t: t.replace('"out_channels": 8', '"out_channels": NaN', 1), "NaN is not a number JSON allows"),
    "deep nesting": (lambda t: "[" * 100_000 + "]" * 100_000, "invalid block file: JSON nested more than 500"),
    "cycle": (_edit(_cycle), "blocks.Res: block definition 'Res' contains itself: Res -> Stage -> Res"),
    "missing use": (_edit(lambda d: d["blocks"].pop("Res")),
                    (r"blocks.Stage.nodes\[2\].params.definition: node block uses block definition 'Res', which "
                     "the file does not define")),
    "bad edge": (_edit(lambda d: d["blocks"]["Res"]["edges"][0].update(port="nope")),
                 r"blocks.Res.edges\[0\]: node \w+ \(.*\) has no input 'nope'"),
    "not utf-8": (lambda t: "\udcff", "not a text file"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_or_foreign_file_is_one_line_naming_the_file_and_field(tmp_path: Path, case: str) -> None:
    good = saved(tmp_path)
    change, message = CORRUPT[case]
    bad = tmp_path / "Bad.json"
    bad.write_bytes(change(good.read_text()).encode("utf-8", "surrogateescape"))
    entries, problems = load_library(tmp_path)
    assert list(entries) == ["Stage"]  # the good file still loads
    assert len(problems) == 1 and "\n" not in problems[0]
    assert problems[0].startswith(f"{bad}: ")
    assert re.search(message, problems[0]), problems[0]
    with pytest.raises(ProjectFileError):
        read_library_file(bad)


def test_out_of_bounds_values_of_the_right_kind_load_as_in_a_project_file(tmp_path: Path) -> None:
    path = saved(tmp_path, "Res")
    path.write_text(_edit(_set_conv("out_channels", 10**30))(path.read_text()))
    entries, problems = load_library(tmp_path)
    assert problems == [] and entries["Res"].definition.graph.nodes["conv1"].params["out_channels"] == 10**30


def test_fuzzed_files_never_raise_and_each_problem_is_one_line(tmp_path: Path) -> None:
    text = saved(tmp_path / "src").read_bytes()
    rng = random.Random(14)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    for index in range(150):
        data = bytearray(text)
        kind = index % 3
        if kind == 0:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(data))
                if kind == 1:
                    data[position] = rng.randrange(256)
                else:
                    data[position:position] = rng.choice([b"{", b"]", b'"', b"-1", b"1e400", b",", b"null"])
        (folder / f"f{index:03}.json").write_bytes(bytes(data))
    entries, problems = load_library(folder)
    assert len(entries) + len(problems) >= 149  # copies that still read the same are duplicates: one line each
    for problem in problems:
        assert "\n" not in problem and problem.startswith(str(folder / "f")), problem
        assert "Traceback" not in problem and "cannot be read (" not in problem, problem


def test_a_pickle_or_a_folder_in_the_library_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    library = tmp_path / "blocks"
    library.mkdir()
    (library / "Evil.json").write_bytes(pickle.dumps(Payload()))
    (library / "Folder.json").mkdir()
    calls: list[str] = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append("loads"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append("load"))
    entries, problems = load_library(library)
    assert entries == {} and not marker.exists() and calls == []
    assert problems == [f"{library / 'Evil.json'}: not a text file (invalid UTF-8 at byte 0)",
                        f"{library / 'Folder.json'}: is a folder, not a block file"]
    source = (Path(__file__).parents[1] / "engine" / "graph" / "block_store.py").read_text()
    for word in ("import pickle", "eval(", "exec(", "torch.load", "importlib"):
        assert word not in source


def test_library_paths_that_are_not_folders_are_one_problem(tmp_path: Path) -> None:
    file = tmp_path / "blocks"
    file.write_text("")
    assert load_library(file) == ({}, [f"{file}: not a folder"])


# ------------------------------------------------------------------- atomic writes
def test_a_failure_mid_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = three_levels()
    path = save_to_library(tmp_path, library["Stage"], library)
    before = path.read_bytes()
    library["Stage"].doc = "new version"

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.fileio.os.fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        save_to_library(tmp_path, library["Stage"], library)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Stage.json"]  # no temp file left
    # A temp file left by a writer that was killed is not read as a library file.
    (tmp_path / f".Stage.json.{os.getpid()}.x.tmp").write_text("{half")
    entries, problems = load_library(tmp_path)
    assert problems == [] and entries["Stage"].definition.doc == ""


# ----------------------------------------------------------------- default folder
def test_default_folder_is_blocks_in_the_app_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    assert default_library_folder() == app_data_dir() / "blocks"
    assert app_data_dir().parts[-2:] == ("Neural Canvas", "Neural Canvas")
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "mine"))
    assert default_library_folder() == tmp_path / "mine"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="checks the XDG rule Qt follows on Linux")
@pytest.mark.parametrize("xdg", ["", "absolute"])
def test_app_data_dir_matches_qt_app_data_location(tmp_path: Path, xdg: str) -> None:
    pytest.importorskip("PySide6.QtCore")
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("XDG_DATA_HOME", None)
    if xdg:
        env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    script = ("from PySide6.QtCore import QCoreApplication as A, QStandardPaths as S\n"
              "A.setApplicationName('Neural Canvas'); A.setOrganizationName('Neural Canvas')\n"
              "print(S.writableLocation(S.StandardLocation.AppDataLocation))\n"
              "from engine.app_data import app_data_dir; print(app_data_dir())\n")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parents[1], check=True)
    qt, ours = result.stdout.splitlines()[-2:]
    assert qt == ours
