"""A project's search space: which settings and layer parameters a search varies, and how.

The project file's ``search.space`` maps a *target* to a *range*::

    "training.lr":            {"low": 1e-4, "high": 0.1, "log": true}
    "training.optimizer":     {"choices": ["adam", "sgd"]}
    "nodes.conv1.out_channels": {"low": 8, "high": 64, "step": 8}
    "nodes.act1.type":        {"choices": ["relu", "gelu", "tanh"]}
    "nodes.dropout":          {"optional": true}
    "blocks.Basic.conv1.kernel_size": {"choices": [[3, 3], [5, 5]]}

Targets: ``training.<setting>``; ``nodes.<id>.<parameter>`` (a block instance's ``repeat``
too); ``nodes.<id>.type`` (the layer type, among types with the same inputs); ``nodes.<id>``
with ``optional`` (the search may bypass the layer: its input feeds its consumers);
``blocks.<definition>.<id>.<parameter>`` (every instance of the definition). Each range is
checked against the declaration of what it varies, so a bound outside a parameter's limits
is refused with the target named.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError
from engine.graph.model import Graph
from engine.graph.project import Project
from engine.layers.base import get_layer
from engine.layers.params import Param
from engine.settings import TRAINING_PARAMS

_TRAINING = {p.name: p for p in TRAINING_PARAMS}
#: Settings a search may not vary: they say where and how a trial runs, not what it learns.
NOT_SEARCHABLE = ("device", "deterministic", "cpu_threads", "num_workers", "snapshot_seconds", "use_project_weights")
_RANGE_KEYS = ("low", "high", "step", "log", "choices", "optional")


@dataclass(frozen=True)
class Dimension:
    """One searched value.

    Args:
        target: What it sets (``training.lr``, ``nodes.conv1.out_channels``, ``nodes.drop``...).
        kind: ``float`` or ``int`` (a range), ``choice`` (a list), or ``optional`` (a layer kept or bypassed).
        low: Lower bound of a range (inclusive).
        high: Upper bound of a range (inclusive).
        step: Spacing of a range's values (``None``: continuous floats, or 1 for ints).
        log: Sample the range on a log scale.
        choices: The values of a ``choice`` dimension, as the project stores them.
    """

    target: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def grid_values(self) -> list[Any]:
        """Every value of the dimension, for grid search.

        Raises:
            UserError: A continuous range (grid search needs a step or a list of choices).
        """
        if self.kind == "optional":
            return [True, False]
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "float" and self.step is None:
            raise UserError(f"search.space.{self.target}: grid search needs a step or a list of choices for a "
                            f"continuous range")
        assert self.low is not None and self.high is not None
        step = self.step or 1
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        values = [self.low + i * step for i in range(count)]
        return [int(round(v)) for v in values] if self.kind == "int" else values


@dataclass(frozen=True)
class SearchSpace:
    """The validated ``search.space`` of a project: its dimensions in file order."""

    dimensions: tuple[Dimension, ...]

    def key(self) -> str:
        """A canonical text of the space, to tell whether a stored study searched the same one."""
        return json.dumps([d.__dict__ | {"choices": list(d.choices)} for d in self.dimensions], sort_keys=True)


def parse_space(project: Project) -> SearchSpace:
    """Validate the project's ``search.space`` against the graph and the settings' declarations.

    Raises:
        UserError: ``search.space.<target>: <problem>`` for the first bad entry, or an empty space.
    """
    section = project.search.get("space", {})
    if not isinstance(section, dict):
        raise UserError("search.space: must be an object mapping targets to ranges")
    if not section:
        raise UserError("search.space: nothing is searched; mark at least one setting or layer parameter as "
                        "searched (for example \"training.lr\": {\"low\": 0.0001, \"high\": 0.1, \"log\": true})")
    return SearchSpace(tuple(_dimension(str(target), spec, project) for target, spec in section.items()))


def _dimension(target: str, spec: Any, project: Project) -> Dimension:
    where = f"search.space.{target}"
    if not isinstance(spec, dict):
        raise UserError(f"{where}: must be an object such as {{\"low\": 1, \"high\": 8}} or {{\"choices\": [...]}}")
    unknown = [k for k in spec if k not in _RANGE_KEYS]
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(_RANGE_KEYS)})")
    parts = target.split(".")
    if parts[0] == "nodes" and len(parts) == 2:
        return _optional_dimension(where, target, spec, project.graph)
    if spec.get("optional") is not None:
        raise UserError(f"{where}: only a layer (nodes.<id>) can be optional")
    if parts[0] == "nodes" and len(parts) == 3 and parts[2] == "type":
        return _type_dimension(where, target, spec, project.graph, parts[1])
    return _value_dimension(where, target, spec, target_declaration(target, project))


def target_declaration(target: str, project: Project) -> Param:
    """The declaration of the value ``target`` names (a training setting or a layer parameter).

    Raises:
        UserError: The target names nothing that exists, or something a search may not vary.
    """
    where = f"search.space.{target}"
    parts = target.split(".")
    if parts[0] == "training" and len(parts) == 2:
        if parts[1] not in _TRAINING:
            raise UserError(f"{where}: no training setting {parts[1]!r}")
        if parts[1] in NOT_SEARCHABLE:
            raise UserError(f"{where}: says where or how a trial runs, not what it learns; it cannot be searched")
        return _TRAINING[parts[1]]
    if parts[0] == "nodes" and len(parts) == 3:
        return _layer_param(where, project.graph, parts[1], parts[2])
    if parts[0] == "blocks" and len(parts) == 4:
        if parts[1] not in project.blocks:
            raise UserError(f"{where}: the project has no block definition {parts[1]!r}")
        return _layer_param(where, project.blocks[parts[1]].graph, parts[2], parts[3])
    raise UserError(f"{where}: not a target; use training.<setting>, nodes.<id>.<parameter>, nodes.<id>.type, "
                    f"nodes.<id> (optional) or blocks.<definition>.<id>.<parameter>")


def _layer_param(where: str, graph: Graph, node_id: str, name: str) -> Param:
    node = next((n for n in graph if n.id == node_id), None)
    if node is None:
        raise UserError(f"{where}: no node {node_id!r} in the graph")
    try:
        return node.layer.param(name)
    except KeyError:
        known = ", ".join(p.name for p in node.layer.params) or "none"
        raise UserError(f"{where}: {node.layer.title} has no parameter {name!r} (parameters: {known})") from None


def _value_dimension(where: str, target: str, spec: dict[str, Any], decl: Param) -> Dimension:
    if "choices" in spec:
        return Dimension(target, "choice", choices=_choices(where, spec, decl.check, decl.coerce))
    if decl.kind not in ("int", "float"):
        raise UserError(f"{where}: a {decl.kind} value is searched over a list: give \"choices\"")
    if "low" not in spec or "high" not in spec:
        raise UserError(f"{where}: give \"low\" and \"high\" (or \"choices\")")
    low, high = (_number(where, key, spec[key]) for key in ("low", "high"))
    for key, value in (("low", low), ("high", high)):
        problem = decl.check(int(value) if decl.kind == "int" and float(value).is_integer() else value)
        if problem:
            raise UserError(f"{where}.{key}: {problem}")
    if decl.kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise UserError(f"{where}: {decl.name} takes whole numbers; low and high must be integers")
    if low >= high:
        raise UserError(f"{where}: low ({low:g}) must be below high ({high:g})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}.log: must be true or false")
    if log and low <= 0:
        raise UserError(f"{where}: a log scale needs low above 0, got {low:g}")
    step = spec.get("step")
    if step is not None:
        step = _number(where, "step", step)
        if step <= 0 or step > high - low:
            raise UserError(f"{where}.step: must be above 0 and at most high - low ({high - low:g})")
        if log:
            raise UserError(f"{where}: a range has either a step or a log scale, not both")
        if decl.kind == "int" and not float(step).is_integer():
            raise UserError(f"{where}.step: {decl.name} takes whole numbers; the step must be an integer")
    return Dimension(target, decl.kind, float(low), float(high), None if step is None else float(step), log)


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}.{key}: must be a finite number, got {value!r}")
    return float(value)


def _choices(where: str, spec: dict[str, Any], check: Any, coerce: Any) -> tuple[Any, ...]:
    choices = spec["choices"]
    if not isinstance(choices, list) or len(choices) < 2:
        raise UserError(f"{where}.choices: must be a list of at least two values")
    if any(key in spec for key in ("low", "high", "step", "log")):
        raise UserError(f"{where}: give either choices or a range (low, high), not both")
    seen: list[Any] = []
    for i, value in enumerate(choices):
        problem = check(value)
        if problem:
            raise UserError(f"{where}.choices[{i}]: {problem}")
        value = coerce(value)
        if value in seen:
            raise UserError(f"{where}.choices[{i}]: {value!r} is listed twice")
        seen.append(value)
    # Optuna stores categorical choices as JSON scalars: keep tuples (kernel sizes) as lists.
    return tuple(list(v) if isinstance(v, tuple) else v for v in seen)


def _type_dimension(where: str, target: str, spec: dict[str, Any], graph: Graph, node_id: str) -> Dimension:
    node = next((n for n in graph if n.id == node_id), None)
    if node is None:
        raise UserError(f"{where}: no node {node_id!r} in the graph")
    ports = node.input_ports()

    def check(type_id: Any) -> str | None:
        if not isinstance(type_id, str):
            return f"must be a layer type id, got {type_id!r}"
        try:
            layer = get_layer(type_id)
        except KeyError:
            return f"no layer type {type_id!r} (python main.py layers lists them)"
        defaults = {p.name: p.default for p in layer.params}
        if layer.input_ports(defaults) != ports or layer.output_ports(defaults) != node.output_ports():
            return f"{layer.title} has other ports than {node.layer.title}; only types with the same inputs and " \
                   f"outputs can replace it"
        return None

    if "choices" not in spec:
        raise UserError(f"{where}: give the layer types to choose from as \"choices\"")
    return Dimension(target, "choice", choices=_choices(where, spec, check, lambda v: v))


def _optional_dimension(where: str, target: str, spec: dict[str, Any], graph: Graph) -> Dimension:
    node_id = target.split(".")[1]
    node = next((n for n in graph if n.id == node_id), None)
    if node is None:
        raise UserError(f"{where}: no node {node_id!r} in the graph")
    if spec.get("optional") is not True or len(spec) != 1:
        raise UserError(f"{where}: a layer is searched as {{\"optional\": true}} (kept or bypassed); its "
                        f"parameters are searched as nodes.{node_id}.<parameter>")
    problem = bypass_problem(graph, node_id)
    if problem:
        raise UserError(f"{where}: {problem}")
    return Dimension(target, "optional")


def bypass_problem(graph: Graph, node_id: str) -> str | None:
    """Why the layer ``node_id`` cannot be bypassed (its one input feeding its consumers), or ``None``."""
    node = next(n for n in graph if n.id == node_id)
    if len(node.input_ports()) != 1 or len(node.output_ports()) != 1:
        return f"{node.layer.title} has {len(node.input_ports())} input(s) and {len(node.output_ports())} " \
               f"output(s); only a layer with one of each can be left out"
    if not graph.incoming(node_id):
        return f"{node.layer.title} has no incoming connection, so nothing could take its place"
    return None


def describe_value(value: Any) -> str:
    """A searched value as the progress lines and tables show it."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)

