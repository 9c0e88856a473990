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
        raise ImportProblem(f"{source}: cannot trace the module with torch.fx: {first_line(exc)}") from None
    return fx.GraphModule(model, graph)


def _shape_helper(node: fx.Node) -> bool:
    """``x.size(..)`` and ``x.shape`` nodes only feed views; they become no canvas node."""
    if node.op == "call_method" and node.target == "size":
        return True
    return node.op == "call_function" and (node.target is getattr or node.target is operator.getitem
                                           and isinstance(node.args[0], fx.Node)
                                           and node.args[0].op == "call_function" and node.args[0].target is getattr)


def map_traced(gm: fx.GraphModule, builder: GraphBuilder, inputs: list[tuple[str, dict[str, Any]]]) -> None:
    """Add one canvas node per traced operation (or record it as unmapped).

    Args:
        gm: The traced module.
        builder: Collects the result.
        inputs: ``(type_id, params)`` of each placeholder's Input node, in order.
    """
    ids: dict[fx.Node, str] = {}
    modules = dict(gm.named_modules())
    placeholders = iter(inputs)
    outputs: list[tuple[str, fx.Node]] = []

    def src(value: Any) -> str:
        return ids[value]

    for node in gm.graph.nodes:
        args, kwargs, name = node.args, node.kwargs, node.name
        if node.op == "placeholder":
            type_id, params = next(placeholders)
            ids[node] = builder.add(type_id, name, params, [])
        elif node.op == "output":
            result = args[0]
            results = list(result) if isinstance(result, (tuple, list)) else [result]
            outputs += [(f"output{i + 1}" if len(results) > 1 else "output", r) for i, r in enumerate(results)]
        elif _shape_helper(node):
            continue
        elif node.op == "call_module":
            mapped = map_module(modules[str(node.target)])
            if mapped is None or len(args) != 1 or kwargs or not isinstance(args[0], fx.Node):
                builder.skip(f"{node.target} ({type(modules[str(node.target)]).__name__})")
                continue
            type_id, params, tensors = mapped
            if args[0] not in ids:
                continue  # its input is unmapped (and reported)
            node.meta["recurrent"] = isinstance(modules[str(node.target)], nn.RNNBase)
            ids[node] = builder.add(type_id, str(node.target), params, [src(args[0])], tensors)
        else:
            mapped_fn = _map_call(node)
            if mapped_fn is None:
                builder.skip(f"{name} ({node.op} {getattr(node.target, '__name__', node.target)})")
                continue
            type_id, params, sources = mapped_fn
            if any(s not in ids for s in sources):
                continue  # an input is unmapped (and reported)
            if type_id == "":
                ids[node] = src(sources[0])  # a no-op such as dropout in evaluation, or getitem of RNN outputs
            else:
                ids[node] = builder.add(type_id, name, params, [src(s) for s in sources])
    for out_name, value in outputs:
        if value in ids:
            builder.add("output", out_name, {}, [ids[value]])
        elif not builder.unmapped:
            builder.skip(f"output {value}")


def _map_call(node: fx.Node) -> tuple[str, dict[str, Any], list[fx.Node]] | None:
    """``(type_id, params, source nodes)`` for a function or method call, or ``None``.

    ``type_id`` "" is a call that is no layer but passes its input on (the output sequence of
    ``out, _ = self.lstm(x)``).
    """
    target, args, kwargs = node.target, list(node.args), dict(node.kwargs)
    first = args[0] if args else None
    if not isinstance(first, fx.Node) and not (isinstance(first, (list, tuple)) and first):
        return None
    if node.op == "call_function" and target is operator.getitem:
        return _getitem(args)
    functions, methods = _call_tables()
    table = functions if node.op == "call_function" else methods if node.op == "call_method" else {}
    for type_id, recognizer in table.get(target if node.op == "call_function" else str(target), ()):
        found = recognizer.read(args, kwargs)
        if found is not None:
            params, sources = found
            return type_id, params, sources
    return None


def _getitem(args: list[Any]) -> tuple[str, dict[str, Any], list[fx.Node]] | None:
    base = args[0]
    # out, _ = self.lstm(x): the first element of a recurrent layer's result is its output sequence
    if args[1] == 0 and isinstance(base, fx.Node) and base.op == "call_module" and base.meta.get("recurrent"):
        return "", {}, [base]
    return None


_NAMESPACES = {"F": F, "torch": torch, "operator": operator}


@lru_cache(maxsize=1)
def _call_tables() -> tuple[dict[Any, tuple[tuple[str, FromCall], ...]], dict[str, tuple[tuple[str, FromCall], ...]]]:
    """Function object -> recognizers, and tensor method name -> recognizers, from the layer declarations."""
    functions: dict[Any, list[tuple[str, FromCall]]] = {}
    methods: dict[str, list[tuple[str, FromCall]]] = {}
    for type_id, recognizer in recognizers(FromCall):
        for name in recognizer.functions:
            space, _, attribute = name.partition(".")
            functions.setdefault(getattr(_NAMESPACES[space], attribute), []).append((type_id, recognizer))
        for method in recognizer.methods:
            methods.setdefault(method, []).append((type_id, recognizer))
    return ({k: tuple(v) for k, v in functions.items()}, {k: tuple(v) for k, v in methods.items()})
