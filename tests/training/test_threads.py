"""The CPU thread governor: as many threads as the cores other processes leave free."""

from __future__ import annotations

import pytest
import torch

from engine.training import threads as threads_module
from engine.training.threads import ThreadGovernor, threads_for
from tests.training.helpers import mlp_project
from tests.training.test_trainer import train


@pytest.mark.parametrize(("foreign", "cores", "most", "expected"), [
    (0.0, 2, 2, 2), (0.05, 2, 2, 2), (0.3, 2, 2, 2), (0.5, 2, 2, 1), (1.0, 2, 2, 1), (2.0, 2, 2, 1),
    (1.0, 8, 8, 7), (3.2, 8, 8, 5), (0.0, 8, 4, 4), (7.9, 8, 8, 1),
])
def test_threads_follow_the_free_cores(foreign: float, cores: int, most: int, expected: int) -> None:
    assert threads_for(foreign, cores, most) == expected


def test_the_governor_steps_down_under_load_and_back_up_when_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    started = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    set_to: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 4)
    # (wall, busy CPU of the machine, own CPU): 1 s apart; others use 0, then 2.1, then 0.2 cores
    samples = iter([(0.0, 0.0, 0.0), (1.0, 2.0, 2.0), (2.0, 5.1, 3.0), (3.0, 7.2, 5.0)])
    monkeypatch.setattr(ThreadGovernor, "_sample", staticmethod(lambda: next(samples)))
    governor = ThreadGovernor(enabled=True)
    assert governor.adjust(1.0) == 4 and set_to == []
    assert governor.adjust(2.0) == 2 and set_to == [2]
    assert governor.adjust(3.0) == 4 and set_to == [2, 4]
    governor.restore()
    assert torch.get_num_threads() == 4 and started >= 1


def test_a_run_gives_torch_its_thread_count_back() -> None:
    before = torch.get_num_threads()
    result, _ = train(mlp_project({"epochs": 2, "cpu_threads": 1}))
    assert result.kind == "finished" and torch.get_num_threads() == before
    result, _ = train(mlp_project({"epochs": 2}))
    assert result.kind == "finished" and torch.get_num_threads() == before

