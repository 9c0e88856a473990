"""``validate``, ``summary`` and ``templates``: read-only commands on project files."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.memory import MemoryCheck, check_training_memory
from engine.shapes import Analysis, analyze
from engine.templates import list_templates


def register(commands: Any) -> None:
    """Add the subcommands to an argparse sub-parser collection."""
    p = commands.add_parser("validate", help="check a project's graph; exit 1 and list problems if invalid")
    p.add_argument("file", help="project file (.json)")
    p.set_defaults(handler=cmd_validate)

    p = commands.add_parser("summary", help="per-node output shape, parameters and FLOPs")
    p.add_argument("file", help="project file (.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_summary)

    p = commands.add_parser("layers", help="the layer reference: every layer type with its parameters")
    p.add_argument("type", nargs="?", help="show only this layer type id")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_layers)

    p = commands.add_parser("templates", help="list the template models")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_templates)


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the graph is valid; else print each problem and exit 1."""
    project = load_project(args.file)
    graph = project.graph
    result = analyze(graph)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    warnings = [d for d in result.diagnostics if d.severity == "warning"]
    if result.valid:
        memory = check_training_memory(graph, result, project.training).diagnostic
        warnings += [memory] if memory is not None else []
    for diagnostic in errors:
        print(diagnostic.format(graph))
    for diagnostic in warnings:
        text = diagnostic.format(graph)
        head, _, tail = text.partition(": ")
        print(f"{head}: warning: {tail}")
    if errors:
        return 1
    print(f"valid: {len(graph)} nodes, {result.parameters:,} parameters, {result.flops:,} FLOPs per sample")
    return 0


def summary_json(analysis: Analysis, graph: Any, memory: MemoryCheck | None = None) -> dict[str, Any]:
    """The ``summary --json`` document (``memory``: the training-memory check, when known)."""
    nodes = []
    for node in graph:
        info = analysis.nodes[node.id]
        nodes.append({
            "id": node.id,
            "type": node.type_id,
            "output_shape": info.output.to_json() if info.output else None,
            "parameters": info.parameters,
            "flops": info.flops,
        })
    return {
        "valid": analysis.valid,
        "parameters": analysis.parameters,
        "flops": analysis.flops,
        "nodes": nodes,
        "diagnostics": [d.to_json() for d in analysis.diagnostics] +
                       ([memory.diagnostic.to_json()] if memory is not None and memory.diagnostic else []),
        **({"memory": memory.to_json()} if memory is not None else {}),
    }


def cmd_summary(args: argparse.Namespace) -> int:
    """Print per-node shapes, parameters and FLOPs with totals (exit 0 even when invalid)."""
    project = load_project(args.file)
    graph = project.graph
    analysis = analyze(graph)
    memory = check_training_memory(graph, analysis, project.training)
    if args.json:
        print(json.dumps(summary_json(analysis, graph, memory), indent=2))
        return 0
    rows = [("node", "type", "output shape", "parameters", "FLOPs")]
    for node in graph:
        info = analysis.nodes[node.id]
        shape = str(info.output) if info.output else ("-" if not node.layer.has_output else "?")
        rows.append((node.id, node.layer.title, shape, f"{info.parameters:,}", f"{info.flops:,}"))
    rows.append(("total", "", "", f"{analysis.parameters:,}", f"{analysis.flops:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for index, row in enumerate(rows):
        if index == len(rows) - 1:
            print("  ".join("-" * w for w in widths))
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4])]
        print("  ".join(cells).rstrip())
    status = "valid" if analysis.valid else f"invalid ({len(analysis.errors)} error(s))"
    print(f"\n{status}; {_human(analysis.flops)} per sample")
    print(memory.line())
    for diagnostic in analysis.diagnostics + ([memory.diagnostic] if memory.diagnostic else []):
        print(f"{diagnostic.severity}: {diagnostic.format(graph)}")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    """List templates as a table or JSON; unreadable template files are reported on stderr."""
    templates, problems = list_templates()
    for problem in problems:
        print(f"warning: skipped {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([t.to_json() for t in templates], indent=2))
        return 0
    if not templates:
        print("no templates found")
        return 0
    width = max(len(t.name) for t in templates)
    for t in templates:
        print(f"{t.name.ljust(width)}  {t.family:<11}  {t.task:<14}  {t.dataset:<12}  {t.path}")
    return 0


def _human(flops: int) -> str:
    for unit, scale in (("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.2f} {unit}"
    return f"{flops} FLOPs"


def cmd_layers(args: argparse.Namespace) -> int:
    """Print the layer reference (every registered declaration) as text or JSON."""
    from engine.layers import all_layers, get_layer

    if args.type:
        try:
            layers = [get_layer(args.type)]
        except KeyError:
            known = ", ".join(layer.type_id for layer in all_layers())
            raise UserError(f"unknown layer type {args.type!r}; known types: {known}") from None
    else:
        layers = all_layers()
    if args.json:
        print(json.dumps([layer_reference(layer) for layer in layers], indent=2))
        return 0
    category = None
    for layer in layers:
        if layer.category != category:
            category = layer.category
            print(f"\n## {category}\n")
        ports = ", ".join(layer.input_ports(layer.defaults())) or "none"
        print(f"{layer.title} ({layer.type_id}) - {layer.doc}")
        print(f"    inputs: {ports}; output: {'yes' if layer.has_output else 'none'}")
        for decl in layer.params:
            extra = f" one of {', '.join(decl.choices)};" if decl.choices else ""
            bounds = "" if decl.min is None and decl.max is None else f" [{_bound(decl.min)}, {_bound(decl.max)}];"
            print(f"    {decl.name} ({decl.kind}, default {decl.to_json(decl.default)}):{extra}{bounds} {decl.doc}")
    return 0


def layer_reference(layer: Any) -> dict[str, Any]:
    """One layer declaration as plain JSON data."""
    return {
        "type": layer.type_id, "title": layer.title, "category": layer.category, "doc": layer.doc,
        "inputs": list(layer.input_ports(layer.defaults())), "has_output": layer.has_output,
        "params": [{"name": d.name, "kind": d.kind, "default": d.to_json(d.default), "doc": d.doc, "min": d.min,
                    "max": d.max, "choices": list(d.choices) or None} for d in layer.params],
    }


def _bound(value: float | None) -> str:
    if value is None:
        return "-inf"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
