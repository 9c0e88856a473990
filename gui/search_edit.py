"""Marking values as searched: targets, default ranges, one-line problems, and the undoable edit.

A project's ``search`` section (schema in :mod:`engine.search.space` and
:mod:`engine.search.settings`) is edited only through :func:`search_command`: one undo step that
replaces the ``space`` mapping by an edited copy (so undo puts the very same mapping back, in its
order) and sets or removes study fields. Every check here is the engine's own, so a range the
panel refuses is refused with the text ``python main.py search`` prints.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Callable

from engine.errors import UserError
from engine.graph.model import Node
from engine.graph.project import Project
from engine.layers.params import Param
from engine.search.space import bypass_problem, parse_space
from gui.commands import GraphCommand, set_settings

if TYPE_CHECKING:  # pragma: no cover
    from gui.document import Document

#: Parameter kinds a click can mark as searched (ranges for numbers, lists for the others).
SEARCHABLE_KINDS = ("int", "float", "choice", "bool", "int_tuple")
#: Layer types offered when a layer's type is searched (those with the same ports as the layer).
TYPE_CHOICES = ("relu", "gelu", "tanh", "leaky_relu", "silu")
#: Layer types whose type can be searched: element-wise activations (softmax is not one).
SWAPPABLE_TYPES = TYPE_CHOICES + ("elu", "mish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "softplus",
                                  "prelu")
#: Study fields and the value a field takes when the file leaves it out.
FIELD_DEFAULTS: dict[str, Any] = {"name": "", "objectives": ["metric"], "metric": "auto", "sampler": "auto",
                                  "pruner": "median", "trials": 20}
#: Ints that are multiples of this are searched in steps of it (channel counts, batch sizes).
INT_STEP = 8


def space_of(project: Project) -> dict[str, Any]:
    """The project's ``search.space`` mapping (empty when absent or not a mapping)."""
    space = project.search.get("space", {})
    return space if isinstance(space, dict) else {}


def node_target(document: Document, node_id: str, name: str | None = None) -> str | None:
    """The target naming parameter ``name`` of a node shown at the document's level (``None``:
    the layer itself, for ``optional`` and ``type``), or ``None`` where a search cannot reach it
    (blocks expanded for viewing; a whole layer inside a block definition)."""
    if document.expanded is not None:
        return None
    if not document.level:
        return f"nodes.{node_id}" + (f".{name}" if name else "")
    definition = document.view.definition
    if definition is None or name is None:
        return None
    return f"blocks.{definition.name}.{node_id}.{name}"


def searchable(param: Param) -> bool:
    """Whether a click can mark ``param`` as searched."""
    return param.kind in SEARCHABLE_KINDS


def default_range(param: Param, value: Any) -> dict[str, Any]:
    """The range a value starts with when it is marked as searched.

    Ints: a quarter to four times the value (in steps of 8 for multiples of 8); floats: a tenth to
    ten times the value on a log scale; choices: all of them; on / off: both. Always within the
    declaration's bounds.
    """
    if param.kind == "choice":
        return {"choices": list(param.choices)}
    if param.kind == "bool":
        return {"choices": [False, True]}
    if param.kind == "int_tuple":
        return {"choices": _tuple_choices(param, value)}
    lo = -math.inf if param.min is None else float(param.min)
    hi = math.inf if param.max is None else float(param.max)
    if param.kind == "int":
        return _int_range(int(value), lo, hi)
    value = float(value)
    if value > 0:
        low, high = max(lo, value / 10), min(hi, value * 10)
        if low > 0 and high > low:
            return {"low": _round(low), "high": _round(high), "log": True}
    low = max(lo, value * 10 if value < 0 else 0.0)
    high = min(hi, value / 10 if value < 0 else low + (0.1 if hi <= 1 else 1.0))  # from 0: a fraction, or up to 1
    if high <= low:
        high = min(hi, low + 1.0)
    return {"low": _round(low), "high": _round(high)}


def _tuple_choices(param: Param, value: Any) -> list[list[int]]:
    """A size one step smaller, the value, and one step larger (kernel sizes step by 2, so they
    stay odd and centred), each element within the bounds."""
    step = 2 if "kernel" in param.name else 1
    current = [int(v) for v in value]
    choices = []
    for delta in (-step, 0, step):
        candidate = [v + delta for v in current]
        if param.check(candidate) is None and candidate not in choices:
            choices.append(candidate)
    if len(choices) < 2:  # at a bound on both sides: the user lists the sizes by hand
        choices.append([v + 1 for v in current])
    return choices


def _int_range(value: int, lo: float, hi: float) -> dict[str, Any]:
    if value > 0:
        low, high = max(lo, math.ceil(value / 4)), min(hi, value * 4)
    else:
        low, high = max(lo, value), min(hi, value + 10)
    if high <= low:
        low, high = max(lo, low - 1), min(hi, low + 1)
    spec: dict[str, Any] = {"low": int(low), "high": int(high)}
    if value >= INT_STEP and value % INT_STEP == 0:
        low8 = max(int(math.ceil(max(low, INT_STEP) / INT_STEP)) * INT_STEP, int(lo))
        high8 = low8 + (int(high) - low8) // INT_STEP * INT_STEP
        if high8 - low8 >= INT_STEP:
            spec = {"low": low8, "high": high8, "step": INT_STEP}
    return spec


def _round(value: float) -> float:
    """``value`` to four significant digits (``0.0001`` rather than ``9.999999e-05``)."""
    return float(f"{value:.4g}")


def entry_problem(project: Project, target: str, spec: Any) -> str | None:
    """The engine's one-line message for the space entry ``target: spec`` of ``project``, or ``None``."""
    trial = dataclasses.replace(project, search={"space": {target: spec}})
    try:
        parse_space(trial)
    except UserError as exc:
        return str(exc)
    return None


def type_choices(project: Project, node: Node) -> list[str]:
    """The types a search of ``node``'s type chooses from by default: its own and those of
    :data:`TYPE_CHOICES` with the same ports (empty when the layer's type cannot be searched)."""
    if node.type_id not in SWAPPABLE_TYPES or node.id not in project.graph.nodes:
        return []
    target = f"nodes.{node.id}.type"
    choices = [node.type_id] + [t for t in TYPE_CHOICES if t != node.type_id
                                and entry_problem(project, target, {"choices": [node.type_id, t]}) is None]
    return choices if len(choices) > 1 else []


def can_be_optional(project: Project, node: Node) -> bool:
    """Whether the top-level layer ``node`` can be left out by a search."""
    return node.id in project.graph.nodes and bypass_problem(project.graph, node.id) is None


def range_text(spec: Any) -> str:
    """A space entry in a few words: ``8 – 64, step 8``, ``0.0001 – 0.1, log``, ``relu, gelu``."""
    if not isinstance(spec, dict):
        return "?"
    if spec.get("optional") is True:
        return "kept or left out"
    if "choices" in spec and isinstance(spec["choices"], list):
        return ", ".join(choice_text(c) for c in spec["choices"])
    text = f"{number_text(spec.get('low'))} – {number_text(spec.get('high'))}"
    if spec.get("step") is not None:
        text += f", step {number_text(spec['step'])}"
    if spec.get("log"):
        text += ", log scale"
    return text


def number_text(value: Any) -> str:
    """A bound as a table cell shows it (``""`` when absent)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def choice_text(value: Any) -> str:
    """One choice as the Choices cell shows it: ``relu``, ``64``, ``3x3``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return number_text(value) if isinstance(value, float) else str(value)


def parse_choice(text: str) -> Any:
    """A choice typed in the Choices cell: a number, ``true`` / ``false``, ``3x3`` (a list), else text."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    parts = lowered.split("x")
    if len(parts) > 1 and all(p.strip().lstrip("+-").isdigit() for p in parts):
        return [int(p) for p in parts]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def search_command(project: Project, notify: Callable[[], None], text: str, fields: dict[str, Any] | None = None,
                   space: dict[str, Any] | None = None) -> GraphCommand:
    """One undo step editing ``project.search``.

    Args:
        project: Whose ``search`` section changes.
        notify: Called after every redo and undo (the document's ``search_changed``).
        text: What the undo history shows.
        fields: Study fields to set (``None`` removes one: it falls back to its default).
        space: Targets to set to a range (``None`` removes one). The ``space`` mapping is replaced by
            an edited copy, targets keep their place, new ones come last; an empty space is removed.

    Returns:
        The command; repeated edits of one study field merge (a trials spin box stepped up and up).
    """
    changes: dict[str, Any] = dict(fields or {})
    if space:
        edited = dict(space_of(project))
        for target, spec in space.items():
            if spec is None:
                edited.pop(target, None)
            else:
                edited[target] = spec
        changes["space"] = edited or None
    return set_settings(project.search, changes, notify, text, merge="space" not in changes)
