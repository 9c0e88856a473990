"""What every task shares: the model(s), optimizers, one training step, evaluation.

A task turns a project (graph + settings) and prepared data into modules on a device and
knows its loss, metrics and prediction snapshot. The :class:`~engine.training.trainer.Trainer`
owns the loop (epochs, batching, control, events, checkpoints) and calls into the task.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from engine.compile import CompiledModel, compile_graph
from engine.data.base import PreparedData
from engine.errors import UserError
from engine.graph.project import Project
from engine.layers.base import Params, TensorSpec
from engine.training.finetune import parameter_groups
from engine.training.optim import make_optimizer
from engine.training.performance import use_fast_layout

EVAL_BATCH = 1024
_NO_AUTOCAST = contextlib.nullcontext()  # reusable: one less object per training step


class TaskError(UserError):
    """The project does not fit the task (wrong inputs/outputs, shapes, loss); names the node."""


class Task:
    """Base of all tasks.

    Args:
        project: The frozen project to train.
        data: Split and normalized data.
        config: Training settings.
        device: Where to train.
        amp_dtype: Autocast dtype on CUDA, or ``None``.
    """

    name: ClassVar[str] = ""
    #: Metric watched by early stopping when the setting names one the task lacks.
    default_metric: ClassVar[str] = "val_loss"

    def __init__(self, project: Project, data: PreparedData, config: Params, device: torch.device,
                 amp_dtype: torch.dtype | None) -> None:
        self.project = project
        self.data = data
        self.config = config
        self.device = device
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
        self.grad_clip: float = config.grad_clip
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # --------------------------------------------------------------- helpers
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The mixed-precision context (CUDA, or bf16 on a CPU), or a no-op for fp32."""
        if self.amp_dtype is None:
            return _NO_AUTOCAST
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def compile(self, outputs: list[str] | None = None) -> CompiledModel:
        """Compile (part of) the project's graph and move it to the device, in its fastest layout."""
        compiled = compile_graph(self.project.graph, outputs=outputs)
        use_fast_layout(compiled.module.to(self.device), self.device)
        return compiled

    def output_source(self, output_id: str) -> str:
        """The node feeding Output ``output_id`` (named in messages about the output)."""
        return self.project.graph.incoming(output_id)["in"].source

    def optimize(self, name: str, loss: torch.Tensor, module: nn.Module) -> None:
        """Backward pass and one optimizer step, with loss scaling and gradient clipping."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        clip = self.grad_clip
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if clip > 0:
                self.scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(module.parameters(), clip)
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()

    def add_optimizer(self, name: str, module: nn.Module) -> None:
        """Register ``module`` and an optimizer for it under ``name``: frozen nodes are left out (their
        batch norms keep their statistics), nodes with an ``lr_scale`` get their own parameter group."""
        self.modules[name] = module
        what = "the model" if name == "model" else f"the {name}"
        self.optimizers[name] = make_optimizer(parameter_groups(module, self.project.graph, what), self.config)

    def eval_batches(self, x: torch.Tensor, y: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """Validation data in large batches (a streamed image folder's decoded by its workers)."""
        if hasattr(x, "device_batches"):
            yield from x.device_batches()
            return
        for start in range(0, len(x), EVAL_BATCH):
            xb = x[start:start + EVAL_BATCH].to(self.device, non_blocking=True)
            yield xb, None if y is None else y[start:start + EVAL_BATCH].to(self.device, non_blocking=True)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode and no gradients inside, train mode again after."""
        modes = {name: m.training for name, m in self.modules.items()}
        for module in self.modules.values():
            module.eval()
        try:
            with torch.no_grad(), self.autocast():
                yield
        finally:
            for name, module in self.modules.items():
                module.train(modes[name])

    # ------------------------------------------------------------- interface
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One optimization step on a batch; returns detached batch-mean metrics (``loss`` first)."""
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        """Validation metrics (``loss`` and the task's own)."""
        raise NotImplementedError

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        """A prediction snapshot ``(view, payload)`` from validation data, or ``None``."""
        return None

    def weights(self) -> dict[str, torch.Tensor]:
        """Every trained tensor, keyed as in the whole graph's compiled module."""
        state: dict[str, torch.Tensor] = {}
        for module in self.modules.values():
            state.update(unwrap(module).state_dict())
        return state


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module


def require_single_io(compiled: CompiledModel, what: str) -> None:
    """Refuse graphs with several Inputs or Outputs where the task needs one of each."""
    if len(compiled.input_ids) != 1:
        raise TaskError(f"{what} needs exactly one Input, the graph has {len(compiled.input_ids)} "
                        f"({', '.join(compiled.input_ids)})")
    if len(compiled.output_ids) != 1:
        raise TaskError(f"{what} needs exactly one Output, the graph has {len(compiled.output_ids)} "
                        f"({', '.join(compiled.output_ids)})")


def check_output(task: Task, compiled: CompiledModel, expected: tuple[int, ...], why: str) -> None:
    """Refuse an output whose per-sample shape is not ``expected``, naming the node to change."""
    spec: TensorSpec = compiled.output_specs[0]
    if spec.dims != expected:
        source = task.output_source(compiled.output_ids[0])
        node = task.project.graph.nodes[source]
        shown = TensorSpec(expected)
        raise TaskError(f"node {source} ({node.layer.title}) feeds Output {compiled.output_ids[0]} {spec} "
                        f"but {why} needs {shown}: change its size to {expected[-1] if expected else 1}")


def to_list(array: np.ndarray | torch.Tensor, decimals: int = 4) -> Any:
    """Array as nested lists of rounded floats, for JSON payloads."""
    if isinstance(array, torch.Tensor):
        array = array.detach().float().cpu().numpy()
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()
