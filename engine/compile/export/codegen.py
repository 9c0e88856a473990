"""Readable PyTorch source for a compiled graph: the class a person would write.

``__init__`` builds one attribute per layer node, named after the node's id, from the
layer's :class:`~engine.layers.calls.ModuleCall` (so the source builds exactly the module
the app trains); ``forward`` has one line per node, its variable named after the node's id,
read off the torch.fx graph. Only validated values reach the source: identifiers are
checked, literals go through :func:`~engine.layers.calls.literal` (which refuses anything
but plain numbers, booleans, strings and tuples), and free text (names, descriptions) only
appears inside escaped docstrings.
"""

from __future__ import annotations

import inspect
import keyword
import operator
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from engine.compile.fx_builder import CompiledModel, attribute_name
from engine.graph.model import Graph
from engine.layers import Params, modules
from engine.layers.calls import ModuleCall, literal
from engine.layers.modules import CUSTOM_MODULES

#: Names the generated file uses at module level; local variables never take them.
RESERVED = frozenset({"torch", "nn", "F", "math", "self", "build_model", "build_generator",
                      "build_discriminator", *CUSTOM_MODULES}) | frozenset(keyword.kwlist)
_OPERATORS = {operator.add: "+", operator.mul: "*"}


class CodegenError(ValueError):
    """The graph holds something the source exporter cannot write (a bug, not user input)."""


def docstring(text: str, indent: str = "") -> str:
    """``text`` as a triple-quoted docstring that cannot end early or hide code.

    Backslashes and double quotes are escaped and non-printable characters dropped, so any
    project text (names, descriptions) stays text.
    """
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        clean = "".join(ch for ch in raw if ch.isprintable())
        lines.append(clean.replace("\\", "\\\\").replace('"', '\\"').rstrip())
    while lines and not lines[-1]:
        lines.pop()
    body = "\n".join(indent + line if line and index else line for index, line in enumerate(lines))
    if len(lines) > 1:
        body += "\n" + indent
    return f'{indent}"""{body}"""'


def class_name(name: str, fallback: str = "Model") -> str:
    """A CamelCase class name from free text (``"CNN on digits"`` -> ``CnnOnDigits``)."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    text = "".join(w[:1].upper() + w[1:].lower() if w.isupper() and len(w) > 1 else w[:1].upper() + w[1:]
                   for w in words)[:60]
    if not text:
        return fallback
    if text[0].isdigit():
        text = fallback + text
    return text + fallback if text in RESERVED or text == fallback + fallback else text


def module_calls(graph: Graph, compiled: CompiledModel) -> dict[str, ModuleCall]:
    """Constructor call of every submodule of ``compiled``, keyed by attribute name, in module order."""
    analysis = compiled.analysis
    by_attribute = {attribute_name(node.id): node for node in graph}
    calls = {}
    for name, _ in compiled.module.named_children():
        node = by_attribute[name]
        sources = [graph.incoming(node.id)[port].source for port in node.layer.input_ports(node.params)]
        specs = [analysis.nodes[s].output for s in sources]
        calls[name] = node.layer.constructor(Params(node.params), specs)  # type: ignore[arg-type]
    return calls


def custom_class_sources(calls: list[ModuleCall]) -> list[str]:
    """Source of each custom module class the calls use, base classes first."""
    needed: list[str] = []
    for call in calls:
        for name in call.custom_classes():
            cls = getattr(modules, name)
            for base in reversed(cls.__mro__):
                if base.__module__ == modules.__name__ and base.__name__ not in needed:
                    needed.append(base.__name__)
    return [inspect.getsource(getattr(modules, name)).rstrip() for name in needed]


class _Names:
    """Local variable names for fx nodes: the node's name unless reserved or taken."""

    def __init__(self) -> None:
        self.names: dict[fx.Node, str] = {}
        self.used: set[str] = set()

    def add(self, node: fx.Node) -> str:
        base = node.name
        if not base.isidentifier() or keyword.iskeyword(base):
            raise CodegenError(f"fx node name {base!r} is not an identifier")
        name = base if base not in RESERVED else f"{base}_"
        while name in self.used:
            name += "_"
        self.used.add(name)
        self.names[node] = name
        return name

    def expr(self, value: Any) -> str:
        if isinstance(value, fx.Node):
            return self.names[value]
        if isinstance(value, (list, tuple)) and any(isinstance(v, fx.Node) for v in value):
            items = ", ".join(self.expr(v) for v in value)
            return f"[{items}]" if isinstance(value, list) else f"({items},)" if len(value) == 1 else f"({items})"
        return literal(value)


def _function_name(fn: Any) -> str:
    name = getattr(fn, "__name__", "")
    if getattr(F, name, None) is fn:
        return f"F.{name}"
    if getattr(torch, name, None) is fn:
        return f"torch.{name}"
    raise CodegenError(f"no source form for function {fn!r}")


def forward_lines(gm: fx.GraphModule) -> tuple[list[str], list[str], str]:
    """The body of ``forward``: its argument names, statements and return expression."""
    names = _Names()
    arguments, body, result = [], [], ""
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            arguments.append(names.add(node))
            continue
        if node.op == "output":
            result = names.expr(node.args[0])
            continue
        args = [names.expr(a) for a in node.args]
        args += [f"{k}={names.expr(v)}" for k, v in node.kwargs.items()]
        if node.op == "call_module":
            if not str(node.target).isidentifier():
                raise CodegenError(f"submodule name {node.target!r} is not an identifier")
            value = f"self.{node.target}({', '.join(args)})"
        elif node.op == "call_function" and node.target is operator.getitem and len(args) == 2:
            value = f"{args[0]}[{args[1]}]"
        elif node.op == "call_function" and node.target in _OPERATORS and len(args) == 2 and not node.kwargs:
            value = f" {_OPERATORS[node.target]} ".join(args)
        elif node.op == "call_function":
            value = f"{_function_name(node.target)}({', '.join(args)})"
        elif node.op == "call_method" and str(node.target).isidentifier():
            value = f"{args[0]}.{node.target}({', '.join(args[1:])})"
        else:
            raise CodegenError(f"no source form for fx node {node.op} {node.target}")
        body.append(f"{names.add(node)} = {value}")
    return arguments, body, result


def class_source(graph: Graph, compiled: CompiledModel, name: str, doc: str) -> tuple[str, list[ModuleCall]]:
    """One ``nn.Module`` class for a compiled graph (or part of one).

    Args:
        graph: The project's graph.
        compiled: The compiled (part of the) graph.
        name: The class name (an identifier).
        doc: Free text for the class docstring (escaped here).

    Returns:
        The class source and the constructor calls it uses.
    """
    calls = module_calls(graph, compiled)
    init = [f"self.{attr} = {call.source()}" for attr, call in calls.items()]
    return model_class_text(compiled, name, doc, init), list(calls.values())


def model_class_text(compiled: CompiledModel, name: str, doc: str, init: list[str]) -> str:
    """The class of a whole model: ``__init__`` runs the statements ``init``; ``forward`` is the
    compiled module's code, documented with the model's input and output shapes."""
    arguments, body, result = forward_lines(compiled.module)
    shapes = [f"{arg}: {spec} {'token ids' if spec.dtype == 'long' else 'float'}"
              for arg, spec in zip(arguments, compiled.input_specs)]
    outs = ", ".join(str(spec) for spec in compiled.output_specs)
    forward_doc = "Run the model on a batch.\n\nArgs:\n" + "\n".join("    " + s for s in shapes)
    return class_text(name, doc, "", init, (arguments, body, result), len(compiled.output_specs),
                      f"{forward_doc}\n\nReturns:\n    {outs}")


def class_text(name: str, doc: str, init_arguments: str, init: list[str],
               forward: tuple[list[str], list[str], str], outputs: int, forward_doc: str) -> str:
    """The text of one ``nn.Module`` class.

    Args:
        name: The class name (an identifier).
        doc: Free text for the class docstring (escaped here).
        init_arguments: ``__init__``'s arguments after ``self`` (source, may be empty).
        init: The statements of ``__init__`` after ``super().__init__()``.
        forward: :func:`forward_lines` of the class's code.
        outputs: How many tensors ``forward`` returns (several: a tuple).
        forward_doc: Free text for ``forward``'s docstring.
    """
    arguments, body, result = forward
    lines = [f"class {name}(nn.Module):", docstring(doc, "    "), "",
             f"    def __init__(self{', ' + init_arguments if init_arguments else ''}) -> None:",
             "        super().__init__()"]
    lines += [f"        {statement}" for statement in init]
    returns = "torch.Tensor" if outputs == 1 else "tuple[torch.Tensor, ...]"
    signature = ", ".join(f"{a}: torch.Tensor" for a in arguments)
    lines += ["", f"    def forward(self, {signature}) -> {returns}:", docstring(forward_doc, "        ")]
    lines += [f"        {statement}" for statement in body]
    lines.append(f"        return {result}")
    return "\n".join(lines)
