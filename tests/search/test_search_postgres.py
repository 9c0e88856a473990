"""Workers on several machines: two search processes share one study in a real PostgreSQL server.

The server comes from the ``postgres_url`` fixture (tests/postgres_server.py); CI installs
Debian's postgresql package, so this test runs there rather than being skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import optuna

from tests.search.projects import ROOT, spirals_search


def test_two_workers_share_one_study_in_postgresql(tmp_path: Path, postgres_url: str) -> None:
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")  # as a user types it
    project = spirals_search(tmp_path, epochs=3, trials=6, name="shared-study", pruner="none")
    storage = optuna.storages.RDBStorage(postgres_url)  # Optuna's tables exist before the workers start
    first = subprocess.Popen([sys.executable, "main.py", "search", str(project), "--storage", url, "--out",
                              str(tmp_path / "machine1"), "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "shared-study" not in optuna.get_all_study_names(storage):
            assert time.monotonic() < deadline and first.poll() is None, first.communicate()
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "main.py", "search", str(project), "--storage", url, "--join",
                                 "--out", str(tmp_path / "machine2"), "--workers", "1", "--json"], cwd=ROOT,
                                capture_output=True, text=True, timeout=240)
        out1, err1 = first.communicate(timeout=240)
        trials = optuna.load_study(study_name="shared-study", storage=storage).get_trials()
    finally:
        first.kill()
        storage.engine.dispose()
    assert first.returncode == 0, err1
    assert second.returncode == 0, second.stderr
    assert len(trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(6))
    pids = {t.user_attrs["pid"] for t in trials}
    assert len(pids) == 2  # both processes ran trials of the one study
    runs = {Path(t.user_attrs["run"]).parents[1].name for t in trials}
    assert runs == {"machine1", "machine2"}
    report = json.loads(second.stdout)
    assert report["storage"] == url and sum(report["trials"].values()) == 6  # the first may still be finishing


def test_a_study_of_another_space_is_refused(tmp_path: Path) -> None:
    project = spirals_search(tmp_path, trials=1)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = subprocess.run([sys.executable, "main.py", "search", str(project), "--storage", storage, "--out",
                            str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr
    data = json.loads(project.read_text())
    data["search"]["space"]["training.lr"]["high"] = 0.5
    project.write_text(json.dumps(data))
    second = subprocess.run([sys.executable, "main.py", "search", str(project), "--storage", storage], cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    assert second.returncode == 1
    assert "a study named 'MLP on spirals' already exists in this storage and its search space differs at " \
           "training.lr" in second.stderr
