"""The speed settings the trainer applies by itself: channels-last convolutions, fused optimizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.compile import compile_graph
from engine.data import load_dataset, prepare_data
from engine.settings import training_config
from engine.training.optim import make_optimizer
from engine.training.performance import fused_optimizer, match_state_layout, use_fast_layout, wants_channels_last
from engine.training.tasks import make_task, resolve_task
from engine.training.trainer import Trainer, TrainOptions
from tests.training.helpers import cnn_project, mlp_project

CPU = torch.device("cpu")


def _task(project):  # noqa: ANN001, ANN202
    config = training_config(project.training, {"device": "cpu"})
    dataset = load_dataset(project.dataset)
    data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize)
    return make_task(resolve_task(config, project, dataset), project, data, config, CPU, None)


def test_a_convolution_network_trains_channels_last_and_an_mlp_is_untouched() -> None:
    cnn = _task(cnn_project()).modules["model"]
    conv_weight = cnn.get_submodule("conv2").weight
    assert conv_weight.is_contiguous(memory_format=torch.channels_last) and not conv_weight.is_contiguous()
    assert cnn.get_submodule("fc").weight.is_contiguous()  # 2-D weights keep their layout
    mlp = _task(mlp_project()).modules["model"]
    assert all(p.is_contiguous() for p in mlp.parameters())
    assert not wants_channels_last(mlp, CPU)
    assert not wants_channels_last(cnn, torch.device("mps"))  # only where it is known to be faster


def test_channels_last_computes_what_the_default_layout_computes() -> None:
    torch.manual_seed(0)
    plain = compile_graph(cnn_project().graph).module.eval()
    fast = compile_graph(cnn_project().graph).module.eval()
    fast.load_state_dict(plain.state_dict())
    use_fast_layout(fast, CPU)
    x = torch.randn(16, 1, 8, 8)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_sgd_adam_and_adamw_are_fused(name: str) -> None:
    config = training_config({"optimizer": name}, {})
    optimizer = make_optimizer(torch.nn.Linear(3, 2).parameters(), config)
    assert optimizer.defaults["fused"] is True


def test_optimizers_without_a_fused_kernel_fall_back() -> None:
    config = training_config({"optimizer": "rmsprop"}, {})
    assert isinstance(make_optimizer(torch.nn.Linear(3, 2).parameters(), config), torch.optim.RMSprop)
    # parameters the fused kernel cannot take get the default implementation, not an error at step 1
    for unsupported in (torch.zeros(3, dtype=torch.int64), torch.zeros(3, device="meta")):
        assert not fused_optimizer(torch.optim.Adam, [unsupported], lr=0.1).defaults["fused"]


def test_saved_weights_of_a_channels_last_run_are_plain_and_reload(tmp_path: Path) -> None:
    project = cnn_project({"epochs": 1})
    result = Trainer(TrainOptions(project, tmp_path / "run"), lambda event: None).run()
    assert result.kind == "finished", getattr(result, "message", "")
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(t.is_contiguous() for t in weights.values())
    fresh = compile_graph(project.graph).module
    fresh.load_state_dict(weights)  # strict: every tensor present with the right shape


def _channels_first(value):  # noqa: ANN001, ANN202
    """``value`` with every 4-D tensor rewritten in the default (channels-first) layout."""
    if isinstance(value, torch.Tensor):
        return value.contiguous()
    if isinstance(value, dict):
        return {k: _channels_first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_channels_first(v) for v in value]
    return value


def test_a_checkpoint_written_channels_first_resumes_exactly(tmp_path: Path) -> None:
    """An older run's checkpoint (moments in the default layout) must not mislead the fused kernel."""
    project = cnn_project({"epochs": 2})
    Trainer(TrainOptions(project, tmp_path / "full"), lambda event: None).run()
    Trainer(TrainOptions(project, tmp_path / "split", overrides={"epochs": 1}), lambda event: None).run()
    checkpoint = tmp_path / "split" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    moments = state["optimizers"]["model"]["state"]
    assert any(not t.is_contiguous() for s in moments.values() for t in s.values() if t.dim() == 4)
    torch.save(_channels_first(state), checkpoint)
    resumed = Trainer(TrainOptions(project, tmp_path / "split", resume=True, overrides={"epochs": 2}),
                      lambda event: None).run()
    assert resumed.kind == "finished", getattr(resumed, "message", "")
    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "model.safetensors"))
    for key in full:
        torch.testing.assert_close(split[key], full[key], rtol=0, atol=1e-6, msg=key)


def test_match_state_layout_keeps_values_and_takes_the_parameter_layout() -> None:
    param = torch.nn.Parameter(torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last))
    optimizer = torch.optim.Adam([param], fused=True)
    moment = torch.randn(4, 3, 3, 3)
    optimizer.state[param] = {"step": torch.tensor(1.0), "exp_avg": moment.clone(), "exp_avg_sq": moment.abs()}
    match_state_layout(optimizer)
    state = optimizer.state[param]
    assert state["exp_avg"].stride() == param.stride() and torch.equal(state["exp_avg"], moment)
    assert state["step"].shape == ()
