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
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from engine.compile.importers.builder import GraphBuilder, ImportProblem
from engine.errors import first_line
from engine.compile.importers.torch_modules import CUSTOM_LEAVES, map_module

_ACTIVATIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.leaky_relu: "leaky_relu", F.elu: "elu", F.gelu: "gelu", F.silu: "silu",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh", F.softmax: "softmax",
    torch.softmax: "softmax", F.log_softmax: "log_softmax", torch.log_softmax: "log_softmax",
}
_METHOD_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                       "log_softmax": "log_softmax"}
_ACTIVATION_DEFAULTS = {"leaky_relu": {"negative_slope": 0.01}, "elu": {"alpha": 1.0},
                        "gelu": {"approximate": "none"}, "softmax": {"dim": -1}, "log_softmax": {"dim": -1}}


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
        return type(m).__name__ in CUSTOM_LEAVES or super().is_leaf_module(m, module_qualified_name)


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


def _is_batch(value: Any) -> bool:
    """``-1`` or ``x.size(0)`` / ``x.shape[0]``: the batch dimension of a view."""
    if value == -1:
        return True
    if isinstance(value, fx.Node) and value.op == "call_method" and value.target == "size":
        return len(value.args) > 1 and value.args[1] == 0
    if isinstance(value, fx.Node) and value.op == "call_function" and value.target is operator.getitem:
        base = value.args[0]
        return value.args[1] == 0 and isinstance(base, fx.Node) and base.op == "call_function" \
            and base.target is getattr and base.args[1] == "shape"
    return False


def _int_args(values: Any) -> list[int] | None:
    values = list(values[0]) if len(values) == 1 and isinstance(values[0], (tuple, list)) else list(values)
    return values if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else None


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
    """``(type_id, params, source nodes)`` for a function or method call, or ``None``."""
    target, args, kwargs = node.target, list(node.args), dict(node.kwargs)
    first = args[0] if args else None
    if not isinstance(first, fx.Node) and not (isinstance(first, (list, tuple)) and first):
        return None
    handler: Callable[..., Any] | None = None
    if node.op == "call_function":
        handler = _FUNCTIONS.get(target)
        if handler is None and target in _ACTIVATIONS:
            return _activation(_ACTIVATIONS[target], args, kwargs)
    elif node.op == "call_method":
        handler = _METHODS.get(str(target))
        if handler is None and target in _METHOD_ACTIVATIONS:
            return _activation(_METHOD_ACTIVATIONS[str(target)], args, kwargs)
    return handler(args, kwargs) if handler else None


def _activation(type_id: str, args: list[Any], kwargs: dict[str, Any]) -> tuple[str, dict[str, Any], list[Any]] | None:
    names = list(_ACTIVATION_DEFAULTS.get(type_id, {}))
    params = dict(_ACTIVATION_DEFAULTS.get(type_id, {}))
    for name, value in zip(names, args[1:]):
        params[name] = value
    for name, value in kwargs.items():
        if name in params:
            params[name] = value
        elif name not in ("inplace", "dtype", "_stacklevel") or name == "dtype" and value is not None:
            return None
    return type_id, params, [args[0]]


def _binary(type_id: str) -> Callable[..., Any]:
    def handle(args: list[Any], kwargs: dict[str, Any]) -> Any:
        if len(args) == 2 and not kwargs and all(isinstance(a, fx.Node) for a in args):
            return type_id, {"num_inputs": 2}, args
        return None
    return handle


def _flatten(args: list[Any], kwargs: dict[str, Any]) -> Any:
    start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
    end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
    return ("flatten", {"start_dim": start, "end_dim": end}, [args[0]]) if start >= 1 else None


def _view(args: list[Any], kwargs: dict[str, Any]) -> Any:
    dims = list(args[1][0] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:])
    if kwargs or not dims or not _is_batch(dims[0]) or _int_args(dims[1:]) is None:
        return None
    if dims[1:] == [-1]:
        return "flatten", {"start_dim": 1, "end_dim": -1}, [args[0]]
    return "reshape", {"shape": list(dims[1:])}, [args[0]]


def _permute(args: list[Any], kwargs: dict[str, Any]) -> Any:
    dims = _int_args(args[1:])
    return ("permute", {"dims": dims}, [args[0]]) if dims and dims[0] == 0 and not kwargs else None


def _cat(args: list[Any], kwargs: dict[str, Any]) -> Any:
    tensors = list(args[0])
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not 2 <= len(tensors) <= 8 or not all(isinstance(t, fx.Node) for t in tensors):
        return None
    return "concat", {"num_inputs": len(tensors), "dim": dim}, tensors


def _pool(type_id: str) -> Callable[..., Any]:
    def handle(args: list[Any], kwargs: dict[str, Any]) -> Any:
        names = ("kernel_size", "stride", "padding")
        values = dict(zip(names, args[1:4]))
        values.update({k: v for k, v in kwargs.items() if k in names})
        harmless = {"dilation": (1, (1, 1), [1, 1]), "ceil_mode": (False,), "return_indices": (False,),
                    "count_include_pad": (True,), "divisor_override": (None,)}
        if any(k not in names and (k not in harmless or v not in harmless[k]) for k, v in kwargs.items()):
            return None
        if "kernel_size" not in values or len(args) > 4:
            return None
        ndim = 1 if type_id == "maxpool1d" else 2
        size = (lambda v: v if ndim == 1 else ([v, v] if isinstance(v, int) else list(v)))
        stride = values.get("stride") or 0
        return type_id, {"kernel_size": size(values["kernel_size"]), "stride": size(stride),
                         "padding": size(values.get("padding", 0))}, [args[0]]
    return handle


def _adaptive(args: list[Any], kwargs: dict[str, Any]) -> Any:
    size = kwargs.get("output_size", args[1] if len(args) > 1 else None)
    size = [size, size] if isinstance(size, int) else list(size or [])
    return ("adaptive_avgpool2d", {"output_size": size, "flatten": False}, [args[0]]) if len(size) == 2 else None


def _dropout(args: list[Any], kwargs: dict[str, Any]) -> Any:
    p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
    return "dropout", {"p": p}, [args[0]]


def _interpolate(args: list[Any], kwargs: dict[str, Any]) -> Any:
    options = {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
               "recompute_scale_factor": None, "antialias": False}
    options.update(dict(zip(options, args[1:])))
    options.update(kwargs)
    factor = options["scale_factor"]
    if options["size"] is not None or options["mode"] not in ("nearest", "bilinear") or options["align_corners"] \
            or options["antialias"] or not isinstance(factor, (int, float)) or not float(factor).is_integer():
        return None
    return "upsample", {"scale_factor": int(factor), "mode": options["mode"]}, [args[0]]


def _getitem(args: list[Any], kwargs: dict[str, Any]) -> Any:
    base = args[0]
    # out, _ = self.lstm(x): the first element of a recurrent layer's result is its output sequence
    if args[1] == 0 and isinstance(base, fx.Node) and base.op == "call_module" and base.meta.get("recurrent"):
        return "", {}, [base]
    return None


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    operator.add: _binary("add"), torch.add: _binary("add"), operator.mul: _binary("multiply"),
    torch.mul: _binary("multiply"), torch.flatten: _flatten, torch.cat: _cat, torch.concat: _cat,
    torch.permute: _permute, torch.reshape: _view, F.max_pool1d: _pool("maxpool1d"),
    F.max_pool2d: _pool("maxpool2d"), F.avg_pool2d: _pool("avgpool2d"), F.adaptive_avg_pool2d: _adaptive,
    F.dropout: _dropout, operator.getitem: _getitem, F.interpolate: _interpolate,
}
_METHODS: dict[str, Callable[..., Any]] = {
    "view": _view, "reshape": _view, "flatten": _flatten, "permute": _permute,
    "add": _binary("add"), "mul": _binary("multiply"),
}
