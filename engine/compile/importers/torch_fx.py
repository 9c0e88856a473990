"""Import a PyTorch ``nn.Module``: trace it with torch.fx and map each operation to a layer.

Submodules of ``torch.nn`` (and the app's own modules, also as written into exported
``model.py`` files) stay whole as leaves; functions and tensor methods map to the
functional layers (``F.relu``, ``torch.flatten``, ``x.view(x.size(0), -1)``, ``+``, ...).
"""

from __future__ import annotations

import importlib
import operator
import os
import sys
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from engine.compile.importers.builder import GraphBuilder, ImportProblem
from engine.errors import first_line
from engine.compile.importers.torch_modules import custom_leaves, map_module, module_candidates
from engine.compile.importers.torch_static import StaticValues
from engine.layers import get_layer
from engine.layers.recognize import FromCall, recognizers

def load_class(spec: str) -> type:
    """``package.module:Class`` -> the class.

    Raises:
        UserError: Malformed spec, module not importable, or no such class.
    """
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ImportProblem(f"{spec}: expected MODULE:CLASS, e.g. mypackage.models:LeNet")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside the user are importable
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - importing user code can raise anything
        raise ImportProblem(f"{spec}: cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    cls = module
    for part in class_name.split("."):
        cls = getattr(cls, part, None)  # type: ignore[assignment]
        if cls is None:
            raise ImportProblem(f"{spec}: {module_name} has no {class_name}")
    return cls  # type: ignore[return-value]


class _Tracer(fx.Tracer):
    """Keeps torch.nn modules and the app's own modules whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return type(m).__name__ in custom_leaves() or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module, source: str) -> fx.GraphModule:
    """Symbolically trace ``model``.

    Raises:
        ImportProblem: Tracing failed (data-dependent control flow, ...), with the reason.
    """
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - tracing user code can raise anything
        reason = first_line(exc)
        if "control flow" in reason or "cannot be used as inputs to control flow" in str(exc):
            reason = ("forward() branches or loops on the values of a tensor (data-dependent control flow), "
                      "which a drawn graph cannot express: compute both paths and select with torch.where, "
                      "or move the decision out of forward()")
        raise ImportProblem(f"{source}: cannot trace the module with torch.fx: {reason}") from None
    return fx.GraphModule(model, graph)


def map_traced(gm: fx.GraphModule, builder: GraphBuilder, inputs: list[tuple[str, dict[str, Any]]],
               static: StaticValues) -> None:
    """Add one canvas node per traced operation (or record it as unmapped).

    Args:
        gm: The traced module.
        builder: Collects the result.
        inputs: ``(type_id, params)`` of each placeholder's Input node, in order.
        static: What the model computes from shapes and parameters (sizes, learned tensors,
            asserts): such nodes become no canvas node; calls see their values.
    """
    ids: dict[fx.Node, str] = {}
    modules = dict(gm.named_modules())
    placeholders = iter(inputs)
    outputs: list[tuple[str, Any]] = []
    # a module or call returning a tuple: (the element that is the layer's output, its node id)
    tuples: dict[fx.Node, tuple[int, str]] = {}

    for node in gm.graph.nodes:
        name = node.name
        if node.op == "placeholder":
            type_id, params = next(placeholders)
            ids[node] = builder.add(type_id, name, params, [])
        elif node.op == "output":
            result = node.args[0]
            results = list(result) if isinstance(result, (tuple, list)) else [result]
            outputs += [(f"output{i + 1}" if len(results) > 1 else "output", r) for i, r in enumerate(results)]
        elif node in static or node.op == "get_attr":
            continue  # a size, a learned tensor, an assert: read by the calls that use it
        elif node.op == "call_module":
            _map_module_call(node, modules[str(node.target)], static, builder, ids, tuples)
        elif _element_of(node) is not None and node.args[0] in tuples:
            base, element = node.args[0], _element_of(node)
            index, node_id = tuples[base]
            if element == index:
                ids[node] = node_id
            elif not node.users:
                continue  # a result nobody reads: out, _ = self.attention(x, x, x); values, _ = x.max(1)
            else:
                module = base.op == "call_module"
                what = f"module {type(modules[str(base.target)]).__name__}" if module else _operation(base)
                builder.skip(f"{base.target if module else base.name}[{element}]",
                             f"{what}: a result the layer does not output (element {element} of its tuple; "
                             f"the layer is element {index})")
        elif node.op == "call_function" and node.target is operator.getitem and _port_of(node, ids, builder):
            ids[node] = _port_of(node, ids, builder)  # type: ignore[assignment]
        else:
            traced = _traced_args(static.substitute([*node.args, *node.kwargs.values()]))
            if any(arg in tuples for arg in traced):
                builder.skip(_where(node), f"{_operation(node)} of a whole tuple of results (only its elements map)")
                continue
            if any(arg not in ids for arg in traced):
                continue  # fed by an unmapped operation, which is reported
            mapped = _map_call(node, static)
            if mapped is None:
                builder.skip(_where(node), _operation(node))
                continue
            type_id, params, sources, tensors, recognizer = mapped
            if any(s not in ids for s in sources):
                continue  # an input is unmapped (and reported)
            if type_id == "":
                ids[node] = ids[sources[0]]  # passes its input on (x.contiguous())
                continue
            absorbed = _absorbed(node, sources, ids)
            owner = _owner(node)
            prefix = get_layer(type_id).id_prefix
            stem = prefix if absorbed and prefix else _base_name(node)  # a pattern is named after its layer
            node_id = builder.add(type_id, f"{owner}.{stem}" if owner else (stem if absorbed else name), params,
                                  [ids[s] for s in sources], tensors, group=owner)
            for removed in absorbed:
                builder.remove(removed)
            if recognizer is not None and recognizer.tuple_output is not None:
                tuples[node] = (recognizer.tuple_output, node_id)
            else:
                ids[node] = node_id
    for out_name, value in outputs:
        if isinstance(value, fx.Node) and value in ids:
            builder.add("output", out_name, {}, [ids[value]])
        elif not builder.unmapped:
            builder.skip(f"output {value}", "an output that is not computed from the input")


#: The elements of a tuple result by attribute: ``torch.max(x, 1).values`` / ``.indices``.
_NAMED_ELEMENTS = {"values": 0, "indices": 1}


def _element_of(node: fx.Node) -> int | None:
    """``i`` for ``t[i]`` and 0 / 1 for ``t.values`` / ``t.indices`` of a traced value ``t``; else ``None``."""
    if node.op != "call_function" or len(node.args) != 2 or not isinstance(node.args[0], fx.Node):
        return None
    if node.target is operator.getitem and isinstance(node.args[1], int):
        return node.args[1]
    if node.target is getattr and node.args[1] in _NAMED_ELEMENTS:
        return _NAMED_ELEMENTS[node.args[1]]  # type: ignore[index]
    return None


def _absorbed(node: fx.Node, sources: list[fx.Node], ids: dict[fx.Node, Any]) -> list[str]:
    """The canvas nodes of the calls between a pattern's sources and its last call, which the pattern's
    layer replaces (``view``, ``transpose``, ``view`` of a channel shuffle: the first two); empty when
    the recognizer read the call's own arguments. A call that something else also reads is kept."""
    between: set[fx.Node] = set()
    todo = [a for a in node.all_input_nodes if a not in sources and a in ids]
    while todo:
        current = todo.pop()
        if current not in between:
            between.add(current)
            todo += [a for a in current.all_input_nodes if a not in sources and a in ids]
    absorbed = set(between)
    changed = True
    while changed:
        changed = False
        for current in list(absorbed):
            if any(user is not node and user not in absorbed for user in current.users):
                absorbed.discard(current)
                changed = True
    kept = {ids[s] for s in sources} | {ids[n] for n in between - absorbed}
    return sorted({ids[n] for n in absorbed if isinstance(ids[n], str)} - kept)


def _owner(node: fx.Node) -> str:
    """The dotted path of the module whose ``forward`` made this call (``layer1.0``), "" at the top."""
    stack = node.meta.get("nn_module_stack") or {}
    return str(next(reversed(stack.values()))[0]) if stack else ""


def _where(node: fx.Node) -> str:
    """Where a call happens, for the list of unmapped operations: ``blocks.0.1.fft_fft``."""
    owner = _owner(node)
    return f"{owner}.{node.name}" if owner else node.name


def _base_name(node: fx.Node) -> str:
    """The node's name without the counter fx adds to repeated names (``add_3`` -> ``add``)."""
    base, _, counter = node.name.rpartition("_")
    return base if base and counter.isdigit() else node.name


def _traced_args(values: Any) -> list[fx.Node]:
    """The traced tensors among call arguments (nested in lists and tuples too)."""
    if isinstance(values, fx.Node):
        return [values]
    if isinstance(values, (list, tuple)):
        return [node for value in values for node in _traced_args(value)]
    return []


def _port_of(node: fx.Node, ids: dict[fx.Node, Any], builder: GraphBuilder) -> tuple[str, str] | None:
    """``parts[i]`` of a layer with several output ports (``x1, x2 = x.chunk(2, 1)``): its port i."""
    base, index = node.args[0], node.args[1]
    source = ids.get(base) if isinstance(base, fx.Node) else None
    if not isinstance(source, str) or not isinstance(index, int):
        return None
    ports = builder.graph.nodes[source].output_ports()
    return (source, ports[index]) if len(ports) > 1 and -len(ports) <= index < len(ports) else None


def _operation(node: fx.Node) -> str:
    """What a traced node does, for the list of unmapped operations: ``call_method expand``."""
    target = node.target
    return f"{node.op} {getattr(target, '__name__', target)}"


def _map_module_call(node: fx.Node, module: nn.Module, static: StaticValues, builder: GraphBuilder,
                     ids: dict[fx.Node, str], tuples: dict[fx.Node, tuple[int, str]]) -> None:
    kind = f"{type(module).__name__}"
    args, kwargs = static.substitute(list(node.args)), static.substitute(dict(node.kwargs))
    reasons: list[str] = []
    for type_id, params, tensors, recognizer in module_candidates(module):
        if recognizer.call is not None:
            called = recognizer.call(args, kwargs)
        else:
            called = list(args) if len(args) == 1 and not kwargs and isinstance(args[0], fx.Node) else None
        if isinstance(called, str):
            reasons.append(called)
            continue
        if called is None:
            continue
        sources, overrides = called if isinstance(called, tuple) else (called, {})
        if any(s not in ids for s in sources):
            return  # an input is unmapped (and reported)
        node_id = builder.add(type_id, str(node.target), {**params, **overrides}, [ids[s] for s in sources],
                              tensors, group=str(node.target).rpartition(".")[0])
        if recognizer.tuple_output is None:
            ids[node] = node_id
        else:
            tuples[node] = (recognizer.tuple_output, node_id)
        return
    if map_module(module) is None:
        builder.skip(str(node.target), f"module {kind}")
    else:
        builder.skip(str(node.target), f"module {kind} called with " + (reasons[0] if reasons else
                                                                       "other arguments than the layer takes"))


def _map_call(node: fx.Node, static: StaticValues) -> tuple[str, dict[str, Any], list[fx.Node], dict[str, Any],
                                                              FromCall | None] | None:
    """``(type_id, params, source nodes, tensors, recognizer)`` for a function or method call, or ``None``.

    ``type_id`` "" is a call that is no layer but passes its input on (``x.contiguous()``).
    """
    target = node.target
    args, kwargs = static.substitute(list(node.args)), static.substitute(dict(node.kwargs))
    if node.op == "call_method" and target in _PASS_ON and len(args) == 1 and not kwargs \
            and isinstance(args[0], fx.Node):
        return "", {}, [args[0]], {}, None
    if node.op == "call_function" and target in (torch.cat, torch.concat) and args \
            and isinstance(args[0], (list, tuple)) and len(args[0]) == 1 and isinstance(args[0][0], fx.Node):
        return "", {}, [args[0][0]], {}, None  # torch.cat([x], 1) is x (DenseNet's first layer of a block)
    functions, methods, named = _call_tables()
    if node.op == "call_function":
        found_for = functions.get(target, ()) or named.get(getattr(target, "__name__", ""), ())
    else:
        found_for = methods.get(str(target), ()) if node.op == "call_method" else ()
    for type_id, recognizer in found_for:
        found = recognizer.read(args, kwargs)
        if found is not None:
            params, sources = found[0], found[1]
            return type_id, params, sources, (found[2] if len(found) > 2 else {}), recognizer  # type: ignore[misc]
    return None


#: Tensor methods that change nothing a canvas graph sees.
_PASS_ON = ("contiguous",)


_NAMESPACES = {"F": F, "torch": torch, "operator": operator}


@lru_cache(maxsize=1)
def _call_tables() -> tuple[dict[Any, tuple[tuple[str, FromCall], ...]], dict[str, tuple[tuple[str, FromCall], ...]],
                            dict[str, tuple[tuple[str, FromCall], ...]]]:
    """Function object -> recognizers, tensor method name -> recognizers, and function name ->
    recognizers for ``"*.name"`` (a function of the user's that torch.fx keeps whole, such as a
    wrapped ``stochastic_depth``), from the layer declarations."""
    functions: dict[Any, list[tuple[str, FromCall]]] = {}
    methods: dict[str, list[tuple[str, FromCall]]] = {}
    named: dict[str, list[tuple[str, FromCall]]] = {}
    for type_id, recognizer in recognizers(FromCall):
        for name in recognizer.functions:
            space, _, attribute = name.partition(".")
            if space == "*":
                named.setdefault(attribute, []).append((type_id, recognizer))
            else:
                functions.setdefault(getattr(_NAMESPACES[space], attribute), []).append((type_id, recognizer))
        for method in recognizer.methods:
            methods.setdefault(method, []).append((type_id, recognizer))
    return tuple({k: tuple(sorted(v, key=lambda found: -found[1].priority)) for k, v in table.items()}  # type: ignore[return-value]
                 for table in (functions, methods, named))
