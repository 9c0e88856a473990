"""The CLI contracts: validate, summary, templates, exit codes, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.templates import FAMILIES
from tests.conftest import ROOT

LENET = ROOT / "tests" / "data" / "lenet5.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_summary_json_reports_lenet_parameters() -> None:
    result = run("summary", str(LENET), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True and data["parameters"] == 61_706 and data["diagnostics"] == []
    assert set(data) >= {"valid", "parameters", "flops", "nodes", "diagnostics"}
    conv1 = next(n for n in data["nodes"] if n["id"] == "conv1")
    assert conv1 == {"id": "conv1", "type": "conv2d", "output_shape": ["N", 6, 28, 28], "parameters": 156,
                     "flops": 2 * 6 * 28 * 28 * 25, "trainable": True, "lr_scale": 1.0, "trainable_parameters": 156,
                     "frozen_parameters": 0}
    assert data["trainable_parameters"] == 61_706 and data["frozen_parameters"] == 0
    assert data["flops"] == sum(n["flops"] for n in data["nodes"])


def test_summary_table_has_totals() -> None:
    result = run("summary", str(LENET))
    assert result.returncode == 0
    assert "(N, 16, 5, 5)" in result.stdout
    assert any(line.startswith("total") and "61,706" in line for line in result.stdout.splitlines())


def test_validate_valid_file() -> None:
    result = run("validate", str(LENET))
    assert result.returncode == 0 and result.stdout.startswith("valid: 14 nodes, 61,706 parameters")


def test_validate_invalid_graph_lists_problems(tmp_path: Path) -> None:
    data = json.loads(LENET.read_text())
    conv2 = next(n for n in data["graph"]["nodes"] if n["id"] == "conv2")
    conv2["params"]["kernel_size"] = [20, 20]  # larger than the 14 x 14 it receives
    path = tmp_path / "big_kernel.json"
    path.write_text(json.dumps(data))
    result = run("validate", str(path))
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("node conv2 (Conv2d): ") and "kernel" in line
    summary = json.loads(run("summary", str(path), "--json").stdout)
    assert summary["valid"] is False
    assert summary["diagnostics"][0]["node"] == "conv2" and summary["diagnostics"][0]["severity"] == "error"


@pytest.mark.parametrize("args", [
    ("validate", "missing.json"),
    ("summary", "tests"),
    ("validate",),
    ("summary", "x.json", "--bogus"),
])
def test_user_errors_are_one_line_exit_1(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr


def test_corrupt_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.json"
    path.write_text(LENET.read_text()[:300])
    result = run("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {path}: line ") and "invalid JSON" in result.stderr


def test_templates_json_lists_contract_fields() -> None:
    result = run("templates", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert entries, "at least the default template exists"
    for entry in entries:
        assert set(entry) >= {"name", "path", "family", "task", "dataset", "description"}
        assert entry["family"] in FAMILIES and Path(entry["path"]).is_file()
    assert run("templates").returncode == 0


def test_every_template_validates() -> None:
    for entry in json.loads(run("templates", "--json").stdout):
        assert run("validate", entry["path"]).returncode == 0, entry["name"]


def test_layers_reference_lists_every_declaration() -> None:
    from engine.layers import all_layers

    data = json.loads(run("layers", "--json").stdout)
    assert [entry["type"] for entry in data] == [layer.type_id for layer in all_layers()]
    conv = next(entry for entry in data if entry["type"] == "conv2d")
    assert conv["params"][0] == {"name": "out_channels", "kind": "int", "default": 16, "min": 1, "max": 1_000_000,
                                 "doc": "Number of output channels (filters).", "choices": None}
    text = run("layers", "lstm").stdout
    assert "LSTM (lstm)" in text and "hidden_size" in text
    assert run("layers", "nope").returncode == 1
