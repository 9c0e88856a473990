"""``python main.py search``: trials as run folders, continuing a study, failures that do not end it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.search.projects import ROOT, spirals_search


def _search(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", "search", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_trials_are_run_folders_and_the_same_command_continues_the_study(tmp_path: Path) -> None:
    project = spirals_search(tmp_path, objectives=["metric", "flops", "parameters"], sampler="random")
    out = tmp_path / "out"
    report = _json(_search(str(project), "--out", str(out), "--trials", "2", "--workers", "2", "--json"))
    assert report["objectives"] == ["val_accuracy", "flops", "parameters"]
    assert report["directions"] == ["maximize", "minimize", "minimize"]
    assert report["trials"]["complete"] == 2 and report["best"]
    best = report["best"][0]
    assert set(best) == {"number", "params", "values", "run", "baseline"} and len(best["values"]) == 3
    run = Path(best["run"])
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    trained = json.loads((run / "project.json").read_text())
    width = next(n for n in trained["graph"]["nodes"] if n["id"] == "fc2")["params"]["out_features"]
    assert width == best["params"]["nodes.fc2.out_features"] and "search" not in trained
    assert (run / "model.safetensors").exists()

    again = _json(_search(str(project), "--out", str(out), "--trials", "3", "--workers", "1", "--json"))
    assert again["trials"]["complete"] == 3
    assert sorted(p.name for p in (out / "MLP-on-spirals").iterdir()) == ["trial-0000", "trial-0001", "trial-0002"]


def test_a_value_that_breaks_the_graph_fails_its_trial_and_the_study_goes_on(tmp_path: Path) -> None:
    data = json.loads((ROOT / "templates" / "cnn_digits.json").read_text())
    data["training"]["epochs"] = 1
    data["search"] = {"space": {"nodes.conv1.kernel_size": {"choices": [[3, 3], [11, 11]]}}, "sampler": "grid",
                      "trials": 10}
    project = tmp_path / "cnn.json"
    project.write_text(json.dumps(data))
    result = _search(str(project), "--out", str(tmp_path / "out"), "--workers", "1")
    assert result.returncode == 0, result.stderr
    failed = next(line for line in result.stdout.splitlines() if " failed " in line)
    assert "the trial's graph is invalid: node conv1 (Conv2d): kernel 11x11 is larger" in failed and "kernel_size=11x11" in failed
    assert "1 complete, 0 pruned, 1 failed" in result.stdout  # grid search: both values, then done


def test_a_killed_training_process_fails_only_its_trial(tmp_path: Path) -> None:
    project = spirals_search(tmp_path, epochs=2000, trials=2)
    search = subprocess.Popen([sys.executable, "main.py", "search", str(project), "--out", str(tmp_path / "out"),
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = _training_child(search.pid, tmp_path / "out" / "MLP-on-spirals" / "trial-0000")
        victim.kill()
        victim.wait(10)
        # the second trial would train 2000 epochs: stop it once it runs (Ctrl+C), it stays to continue
        _training_child(search.pid, tmp_path / "out" / "MLP-on-spirals" / "trial-0001")
        search.send_signal(signal.SIGINT)
        stdout, stderr = search.communicate(timeout=120)
    finally:
        search.kill()
    assert search.returncode == 0, stderr
    assert "trial 0 (the project as it is) failed  the training process was killed by signal 9" in stdout
    assert "trial 1 interrupted" in stdout and "0 complete, 0 pruned, 1 failed, 1 to continue" in stdout


def _training_child(pid: int, run_dir: Path) -> psutil.Process:
    """The search's training process, once it has written its first checkpoint in ``run_dir``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (run_dir / "checkpoint.pt").exists():
            for child in psutil.Process(pid).children():
                if "spawn_main" in " ".join(child.cmdline()):
                    return child
        time.sleep(0.05)
    pytest.fail(f"no training process wrote {run_dir}")


def test_ctrl_c_stops_after_the_epoch_and_the_same_command_finishes_the_trials(tmp_path: Path) -> None:
    project = spirals_search(tmp_path, epochs=400, trials=1)
    out = tmp_path / "out"
    search = subprocess.Popen([sys.executable, "main.py", "search", str(project), "--out", str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _training_child(search.pid, out / "MLP-on-spirals" / "trial-0000")
        search.send_signal(signal.SIGINT)
        stdout, stderr = search.communicate(timeout=120)
    finally:
        search.kill()
    assert search.returncode == 0 and "trial 0 (the project as it is) interrupted" in stdout, stderr
    metrics = out / "MLP-on-spirals" / "trial-0000" / "metrics.jsonl"
    stopped_at = metrics.read_text().count('"type": "epoch"')
    assert 0 < stopped_at < 400
    report = _json(_search(str(project), "--out", str(out), "--json"))
    assert report["trials"] == {"complete": 1, "pruned": 0, "fail": 0, "running": 0}
    assert metrics.read_text().count('"type": "epoch"') == 400  # continued from its checkpoint, not restarted


@pytest.mark.parametrize("args, message", [
    (["--storage", "postgresql://me:secret@127.0.0.1:1/db"], "cannot reach the study storage at 127.0.0.1:1"),
    (["--storage", "nosuch://x"], "--storage: not a database URL"),
    (["--join"], "--join needs --storage URL"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_bad_arguments_get_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _search(str(spirals_search(tmp_path)), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr and "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_empty_space_says_what_to_do(tmp_path: Path) -> None:
    result = _search(str(spirals_search(tmp_path, space={})))
    assert result.returncode == 1 and "search.space: nothing is searched" in result.stderr
