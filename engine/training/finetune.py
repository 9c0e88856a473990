"""Fine-tuning: frozen nodes and per-node learning-rate multipliers applied to a compiled model.

A node whose ``trainable`` option is off keeps what it loaded: its parameters get
``requires_grad = False`` and stay out of the optimizer, and its batch-norm layers stay in
eval mode (their running statistics do not move) while the rest of the model trains, through
every ``train()`` / ``eval()`` switch the loop makes. A node's ``lr_scale`` puts its
parameters into a parameter group of their own whose learning rate is the scheduled one times
the multiplier (the group carries ``lr_scale``; :class:`~engine.training.optim.LearningRateSchedule`
applies it at every step, and the optimizer's state dict keeps it, so a resumed run continues
identically).

The compiled module has one submodule per layer node, named by
:func:`~engine.compile.fx_builder.attribute_name` of its id, which is how parameters are
matched to nodes.
"""

from __future__ import annotations

import types
from typing import Any

from torch import nn

from engine.compile.fx_builder import attribute_name
from engine.errors import UserError
from engine.graph.model import Graph

#: Normalization layers with running statistics that a frozen node keeps.
_STATISTICS = (nn.modules.batchnorm._NormBase,)


class NothingToTrain(UserError):
    """Every layer with parameters of a model (or one network of a GAN) is frozen."""


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """``train()`` of a frozen node's batch norm: it stays in eval mode, its statistics as loaded."""
    return nn.Module.train(self, False)


def freeze_statistics(module: nn.Module) -> int:
    """Keep every batch-norm layer inside ``module`` in eval mode for good; returns how many."""
    count = 0
    for inner in module.modules():
        if isinstance(inner, _STATISTICS):
            inner.train = types.MethodType(_stay_in_eval, inner)  # type: ignore[method-assign]
            inner.eval()
            count += 1
    return count


def parameter_groups(module: nn.Module, graph: Graph, what: str = "the model") -> list[Any]:
    """Freeze ``module``'s frozen nodes and return what the optimizer trains.

    Args:
        module: A compiled model (a submodule per layer node, or part of the graph's nodes).
        graph: The graph it was compiled from (its nodes carry ``trainable`` and ``lr_scale``).
        what: The model in messages (``"the generator"``).

    Returns:
        The trainable parameters as a plain list when no node scales its learning rate (the
        optimizer then is exactly the one an unscaled project gets), else parameter groups
        ``{"params", "lr_scale"}`` in the order their first parameter appears.

    Raises:
        NothingToTrain: The model has parameters but every one belongs to a frozen node.
    """
    by_name = {attribute_name(node.id): node for node in graph}
    scale_of: dict[str, float] = {}
    for name, child in module.named_children():
        node = by_name.get(name)
        if node is None:
            continue
        if not node.trainable:
            child.requires_grad_(False)
            freeze_statistics(child)
        elif node.lr_scale != 1.0:
            scale_of[name] = node.lr_scale
    named = list(module.named_parameters())
    trainable = [(name, p) for name, p in named if p.requires_grad]
    if named and not trainable:
        raise NothingToTrain(f"every layer of {what} is frozen: nothing would train; switch Trainable on for at "
                             "least one layer (e.g. the last one)")
    if not scale_of:
        return [p for _, p in trainable]
    groups: dict[float, list[nn.Parameter]] = {}
    for name, parameter in trainable:
        groups.setdefault(scale_of.get(name.split(".", 1)[0], 1.0), []).append(parameter)
    return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]
