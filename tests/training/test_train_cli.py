"""``python main.py train``: run folder, resume, exit codes, one-line errors, two processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.graph.fileformat import save_project
from tests.conftest import ROOT
from tests.training.helpers import mlp_project


def train(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "train", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    save_project(mlp_project(), path)
    return path


def test_train_then_resume_with_more_epochs(project_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(str(project_file), "--epochs", "2", "--out", str(run), "--seed", "5")
    assert first.returncode == 0, first.stderr
    assert "epoch 2/2" in first.stdout and "completed" in first.stdout
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_completed"] == 2 and info["config"]["seed"] == 5
    again = train("--resume", str(run), "--epochs", "3")
    assert again.returncode == 0, again.stderr
    assert "resumed at epoch 2" in again.stdout and "epoch 3/3" in again.stdout
    assert json.loads((run / "run.json").read_text())["epochs_completed"] == 3


@pytest.mark.parametrize(("args", "message"), [
    (("missing.json",), "error: missing.json: no such file"),
    (("--resume", "nowhere"), "error: nowhere: not a run folder"),
    (("PROJECT", "--device", "cuda"), "no CUDA GPU is available here") if not torch.cuda.is_available() else
    (("PROJECT", "--epochs", "0"), "training.epochs: must be between 1"),
    (("PROJECT", "--epochs", "0"), "training.epochs: must be between 1"),
])
def test_user_errors_exit_1_with_one_line(project_file: Path, args: tuple[str, ...], message: str) -> None:
    result = train(*(str(project_file) if a == "PROJECT" else a for a in args))
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_invalid_graph_lists_problems_and_exits_1(tmp_path: Path) -> None:
    project = mlp_project()
    project.graph.remove_edge(project.graph.edge_into("fc2", "in"))
    path = tmp_path / "broken.json"
    save_project(project, path)
    result = train(str(path))
    assert result.returncode == 1
    assert "node fc2 (Linear): its input is not connected" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("error: the graph has 1 problem(s)")


def test_two_processes_on_cpu_train_one_run(project_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = train(str(project_file), "--nproc", "2", "--epochs", "2", "--out", str(run), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "completed"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["type"] == "run_started" for line in lines) == 1  # only rank 0 writes
    started = json.loads(lines[0])
    assert started["train_samples"] == 240  # two ranks share the 240 training samples
    assert set(load_file(str(run / "model.safetensors"))) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_precision_flag_reaches_the_trainer(project_file: Path, tmp_path: Path) -> None:
    ok = train(str(project_file), "--epochs", "1", "--precision", "bf16", "--out", str(tmp_path / "bf16"), "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "bf16" / "run.json").read_text())["config"]["precision"] == "bf16"
    refused = train(str(project_file), "--epochs", "1", "--precision", "fp16", "--device", "cpu",
                    "--out", str(tmp_path / "fp16"), "--quiet")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "needs a CUDA GPU" in refused.stderr and "choose bf16" in refused.stderr
