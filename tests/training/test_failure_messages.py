"""Every failure is one sentence that names its cause, and files are written whole and readable.

Resume before the first checkpoint, settings of a failed resume, the CPU running out of memory,
a memory estimate before it happens, unsafe checkpoints, NaN weights, JSON that says where it is
wrong, integers shown as the file holds them, weights that do not fit a module, the permissions
of weights files, and temp files of killed saves.
"""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.compile.export import ExportError, export_model
from engine.errors import UserError
from engine.fileio import atomic_write_bytes
from engine.graph.fileformat import ProjectFileError, dumps, loads, save_project
from engine.shapes import analyze
from engine.training.checkpoint import load_checkpoint
from engine.training.events import Failed
from tests.conftest import ROOT
from tests.training.helpers import chain_project, mlp_project
from tests.training.test_trainer import train


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ----------------------------------------------------------------- resuming
def test_resuming_a_run_that_never_checkpointed_says_it_can_only_be_restarted(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "failed", "config": {}, "global_step": 0}))
    save_project(mlp_project(), run / "project.json")
    with pytest.raises(UserError, match="stopped before its first checkpoint.*start it again: python main.py train"):
        load_checkpoint(run / "checkpoint.pt")
    result = cli("train", "--resume", str(run))
    assert result.returncode == 1 and "stopped before its first checkpoint" in one_line(result.stderr)
    assert "was the run started with this folder" not in result.stderr


def test_a_failed_resume_does_not_make_its_settings_stick(tmp_path: Path) -> None:
    project = tmp_path / "mlp.json"
    save_project(mlp_project({"epochs": 2, "lr": 0.01}), project)
    run = tmp_path / "run"
    assert cli("train", str(project), "--out", str(run), "--quiet").returncode == 0
    device = "mps" if not torch.backends.mps.is_available() else "cuda"  # a device this machine lacks
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("needs a device the machine lacks")
    failed = cli("train", "--resume", str(run), "--lr", "3", "--device", device, "--epochs", "3", "--quiet")
    assert failed.returncode == 1
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["config"]["lr"] == 0.01 and info["config"]["device"] == "auto"
    again = cli("train", "--resume", str(run), "--epochs", "3", "--quiet")
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "run.json").read_text())["config"]["lr"] == 0.01


# ---------------------------------------------------------- out of memory
def test_cpu_out_of_memory_is_a_user_failure_with_a_batch_size_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.training.tasks.classification import ClassificationTask

    original = ClassificationTask.train_step

    def limited(self, x, y):  # noqa: ANN001, ANN202 - RAM for 20 samples per step
        if len(x) > 20:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 40000000000 bytes. Error code 12 (Cannot allocate "
                               "memory)")
        return original(self, x, y)

    monkeypatch.setattr(ClassificationTask, "train_step", limited)
    result, _ = train(mlp_project({"batch_size": 64}))
    assert isinstance(result, Failed) and result.reason == "out_of_memory"
    assert "out of memory on the CPU while allocating 37.3 GB with batch size 64: use batch size 16" in result.message
    assert "estimated need" in result.message and "internal error" not in result.message


def giant_project() -> object:
    return chain_project([("x", "input", {"shape": [100_000]}), ("fc", "linear", {"out_features": 1_000_000}),
                          ("out", "output", {})], {"name": "digits"}, {"optimizer": "adam"})


def test_a_model_too_large_for_memory_is_refused_before_allocating_it(tmp_path: Path) -> None:
    path = tmp_path / "giant.json"
    save_project(giant_project(), path)
    result = cli("train", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "the model's weights alone need 372.5 GB" in line and "node fc (Linear) alone holds 372.5 GB" in line


def test_summary_and_validate_estimate_training_memory_and_warn_when_it_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "giant.json"
    save_project(giant_project(), path)
    summary = json.loads(cli("summary", str(path), "--json").stdout)
    memory = summary["memory"]
    weights = 100_001_000_000 * 4
    assert memory["weights"] == memory["gradients"] == weights and memory["optimizer"] == 2 * weights
    assert memory["batch_size"] == 64 and memory["device"] == "cpu" and memory["fits"] is False
    assert memory["total"] > 4 * weights and memory["largest_batch_that_fits"] == 0
    (warning,) = [d for d in summary["diagnostics"] if "training needs about" in d["message"]]
    assert warning["severity"] == "warning" and warning["node"] == "fc"
    assert "the model alone does not fit" in warning["message"]
    validate = cli("validate", str(path))
    assert validate.returncode == 0 and "node fc (Linear): warning: training needs about" in validate.stdout
    small = json.loads(cli("summary", str(ROOT / "templates" / "cnn_digits.json"), "--json").stdout)
    assert small["memory"]["fits"] is True and not any("training needs" in d["message"]
                                                        for d in small["diagnostics"])


def test_the_estimate_counts_optimizer_state_and_activations_per_setting() -> None:
    from engine.memory import estimate_training_memory

    project = mlp_project()
    analysis = analyze(project.graph)
    sgd = estimate_training_memory(project.graph, analysis, {"optimizer": "sgd", "momentum": 0.0, "batch_size": 10})
    adam = estimate_training_memory(project.graph, analysis, {"optimizer": "adam", "batch_size": 20})
    assert sgd.weights == analysis.parameters * 4 and sgd.optimizer == 0 and adam.optimizer == 2 * adam.weights
    assert adam.activations == 2 * sgd.activations and sgd.activations_per_sample > 0


# ------------------------------------------------------------- safe loads
def test_a_pickle_checkpoint_is_refused_without_advice_to_load_it_unsafely(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this must never run",))

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"version": 1, "x": Payload()}))
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "not a readable checkpoint" in message and "never runs code" in message
    assert "weights_only" not in message and "False" not in message and "\n" not in message


# ------------------------------------------------------------ NaN weights
def test_nan_starting_weights_are_named_as_the_cause_not_the_learning_rate(tmp_path: Path) -> None:
    from engine.compile.fx_builder import compile_graph
    from engine.compile.weights import save_weights

    project = mlp_project({"epochs": 1})
    path = tmp_path / "mlp.json"
    save_project(project, path)
    state = {k: torch.full_like(v, float("nan")) if k == "fc1.weight" else v
             for k, v in compile_graph(project.graph).module.state_dict().items()}
    save_weights(state, path.with_suffix(".safetensors"))
    result = cli("train", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "mlp.safetensors: fc1.weight holds NaN or infinite values" in line
    assert "starting weights are the cause" in line and "lower the learning rate" not in line


def test_export_of_nan_weights_fails_instead_of_passing_its_self_check(tmp_path: Path) -> None:
    from engine.compile.fx_builder import compile_graph

    project = mlp_project()
    state = {k: torch.full_like(v, float("nan")) for k, v in compile_graph(project.graph).module.state_dict().items()}
    with pytest.raises(ExportError, match="hold NaN or infinite values"):
        export_model(project, "onnx", tmp_path / "model.onnx", weights=state)
    assert not (tmp_path / "model.onnx").exists()


def test_the_self_check_refuses_non_finite_original_outputs() -> None:
    import numpy as np

    from engine.compile.export.selfcheck import max_abs_diff

    nan = [np.full((3, 2), np.nan)]
    with pytest.raises(ExportError, match="original model's output 0 holds NaN"):
        max_abs_diff(nan, nan, "onnx")


# ------------------------------------------------------------ file text
def test_json_constants_and_deep_nesting_are_located_by_line_and_column() -> None:
    text = dumps(mlp_project()).replace('"lr": 0.01', '"lr": NaN')
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "NaN" in row)
    with pytest.raises(ProjectFileError, match=rf"line {line}, column \d+: invalid JSON: NaN is not a number"):
        loads(text, source="p.json")
    with pytest.raises(ProjectFileError, match=r"line 2, column 8: invalid JSON: -Infinity"):
        loads('{"a": "NaN",\n "b": [-Infinity]}', source="p.json")
    deep = '{"training": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ProjectFileError, match=r"line 1, column 513: invalid project file: JSON nested more than 500"):
        loads(deep, source="p.json")


def test_huge_integers_are_shown_and_saved_as_the_file_holds_them() -> None:
    data = json.loads(dumps(mlp_project()))
    data["graph"]["nodes"][1]["params"]["out_features"] = 18446744073709551617
    project = loads(json.dumps(data))
    (problem,) = [d.message for d in analyze(project.graph).diagnostics if d.node == "fc1"]
    assert problem.endswith("got 18446744073709551617")
    assert "18446744073709551617" in dumps(project)
    data["graph"]["nodes"][1]["params"]["out_features"] = 10**300
    project = loads(json.dumps(data))
    (problem,) = [d.message for d in analyze(project.graph).diagnostics if d.node == "fc1"]
    assert "got 100000000000...(301 digits)" in problem and str(10**300) in dumps(project)


def test_weights_that_do_not_fit_a_module_name_the_keys(tmp_path: Path) -> None:
    module_file = tmp_path / "two_layers.py"
    module_file.write_text("import torch\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n"
                           "        super().__init__()\n        self.a = torch.nn.Linear(4, 8)\n"
                           "        self.b = torch.nn.Linear(8, 2)\n\n    def forward(self, x):\n"
                           "        return self.b(torch.relu(self.a(x)))\n")
    from safetensors.torch import save_file

    save_file({"a.weight": torch.zeros(8, 5), "a.bias": torch.zeros(8), "c.weight": torch.zeros(1)},
              str(tmp_path / "w.safetensors"))
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "import-torch", "two_layers:Net", "--input-shape",
                             "4", "--weights", str(tmp_path / "w.safetensors"), "--out", str(tmp_path / "net.json")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "missing: b.weight, b.bias" in line and "not in the module: c.weight" in line
    assert "other shape: a.weight (8x5 in the file, 8x4 in the module)" in line


def test_weights_files_follow_the_umask_like_every_other_output(tmp_path: Path) -> None:
    from engine.compile.weights import save_weights

    old = os.umask(0o022)
    try:
        save_weights({"w": torch.ones(2)}, tmp_path / "w.safetensors")
        save_project(mlp_project(), tmp_path / "p.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "p.json").stat().st_mode) == 0o644


def test_temp_files_of_killed_saves_are_cleaned_on_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    dead = tmp_path / ".p.json.4194000.abcdefgh.tmp"  # a PID that no longer runs
    live = tmp_path / f".p.json.{os.getppid()}.abcdefgh.tmp"  # a save in progress in another process
    old_style = tmp_path / ".p.json.k2j4h5g6.tmp"  # written before temp names carried the PID
    other = tmp_path / ".q.json.4194000.abcdefgh.tmp"  # another file's
    for path in (dead, live, old_style, other):
        path.write_text("half")
    past = time.time() - 7200
    os.utime(old_style, (past, past))
    atomic_write_bytes(target, b"{}")
    assert target.read_text() == "{}"
    assert not dead.exists() and not old_style.exists() and live.exists() and other.exists()


def test_a_save_killed_mid_write_leaves_the_old_file_and_no_temp_after_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    target.write_text("old")
    script = ("import os, sys, tempfile; sys.path.insert(0, sys.argv[1]); import engine.fileio as f\n"
              "real = os.replace\n"
              "def stop(*a): os.kill(os.getpid(), 9)\n"
              "f.os.replace = stop\n"
              "f.atomic_write_bytes(sys.argv[2], b'new' * 100000)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(ROOT), str(target)], timeout=60)
    assert killed.returncode == -9 and target.read_text() == "old"
    assert len(list(tmp_path.glob(".p.json.*.tmp"))) == 1
    atomic_write_bytes(target, b"newer")
    assert target.read_text() == "newer" and not list(tmp_path.glob(".p.json.*.tmp"))
