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
from engine.compile.importers.torch_modules import custom_leaves, map_module
from engine.compile.importers.torch_static import StaticValues
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
    tuples: dict[fx.Node, tuple[int, str]] = {}  # a module returning a tuple: (the output's index, its node id)

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
        elif node.op == "call_function" and node.target is operator.getitem and node.args[0] in tuples:
            index, node_id = tuples[node.args[0]]
            if node.args[1] == index:
                ids[node] = node_id
            elif not node.users:
                continue  # a result nobody reads: out, _ = self.attention(x, x, x)
            else:
                builder.skip(f"{node.args[0].target}[{node.args[1]}]",
                             f"module {type(modules[str(node.args[0].target)]).__name__}: a result the layer "
                             "does not output")
        elif node.op == "call_function" and node.target is operator.getitem and _port_of(node, ids, builder):
            ids[node] = _port_of(node, ids, builder)  # type: ignore[assignment]
        else:
            if any(arg not in ids for arg in _traced_args(static.substitute([*node.args, *node.kwargs.values()]))):
                continue  # fed by an unmapped operation, which is reported
            mapped = _map_call(node, static)
            if mapped is None:
                builder.skip(name, _operation(node))
                continue
            type_id, params, sources, tensors = mapped
            if any(s not in ids for s in sources):
                continue  # an input is unmapped (and reported)
            if type_id == "":
                ids[node] = ids[sources[0]]  # passes its input on (x.contiguous())
            else:
                owner = _owner(node)
                ids[node] = builder.add(type_id, f"{owner}.{_base_name(node)}" if owner else name, params,
                                        [ids[s] for s in sources], tensors, group=owner)
    for out_name, value in outputs:
        if isinstance(value, fx.Node) and value in ids:
            builder.add("output", out_name, {}, [ids[value]])
        elif not builder.unmapped:
            builder.skip(f"output {value}", "an output that is not computed from the input")


def _owner(node: fx.Node) -> str:
    """The dotted path of the module whose ``forward`` made this call (``layer1.0``), "" at the top."""
    stack = node.meta.get("nn_module_stack") or {}
    return str(next(reversed(stack.values()))[0]) if stack else ""


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
    mapped = map_module(module)
    if mapped is None:
        builder.skip(str(node.target), f"module {kind}")
        return
    type_id, params, tensors, recognizer = mapped
    args, kwargs = static.substitute(list(node.args)), static.substitute(dict(node.kwargs))
    if recognizer.call is not None:
        sources = recognizer.call(args, kwargs)
    else:
        sources = list(args) if len(args) == 1 and not kwargs and isinstance(args[0], fx.Node) else None
    if sources is None:
        builder.skip(str(node.target), f"module {kind} called with other arguments than the layer takes")
        return
    if any(s not in ids for s in sources):
        return  # an input is unmapped (and reported)
    node_id = builder.add(type_id, str(node.target), params, [ids[s] for s in sources], tensors,
                          group=str(node.target).rpartition(".")[0])
    if recognizer.tuple_output is None:
        ids[node] = node_id
    else:
        tuples[node] = (recognizer.tuple_output, node_id)


def _map_call(node: fx.Node, static: StaticValues) -> tuple[str, dict[str, Any], list[fx.Node], dict[str, Any]] | None:
    """``(type_id, params, source nodes, tensors)`` for a function or method call, or ``None``.

    ``type_id`` "" is a call that is no layer but passes its input on (``x.contiguous()``).
    """
    target = node.target
    args, kwargs = static.substitute(list(node.args)), static.substitute(dict(node.kwargs))
    if node.op == "call_method" and target in _PASS_ON and len(args) == 1 and not kwargs \
            and isinstance(args[0], fx.Node):
        return "", {}, [args[0]], {}
    if node.op == "call_function" and target in (torch.cat, torch.concat) and args \
            and isinstance(args[0], (list, tuple)) and len(args[0]) == 1 and isinstance(args[0][0], fx.Node):
        return "", {}, [args[0][0]], {}  # torch.cat([x], 1) is x (DenseNet's first layer of a block)
    functions, methods, named = _call_tables()
    if node.op == "call_function":
        found_for = functions.get(target, ()) or named.get(getattr(target, "__name__", ""), ())
    else:
        found_for = methods.get(str(target), ()) if node.op == "call_method" else ()
    for type_id, recognizer in found_for:
        found = recognizer.read(args, kwargs)
        if found is not None:
            params, sources = found[0], found[1]
            return type_id, params, sources, (found[2] if len(found) > 2 else {})  # type: ignore[misc]
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
    return tuple({k: tuple(v) for k, v in table.items()} for table in (functions, methods, named))  # type: ignore[return-value]
