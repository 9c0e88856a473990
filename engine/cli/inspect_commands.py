"""``validate``, ``summary`` and ``templates``: read-only commands on project files."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.block_shapes import analyze_blocks, format_path
from engine.errors import UserError
from engine.graph.fileformat import load_project
from engine.graph.flat_project import has_blocks
from engine.graph.flatten import Flattened
from engine.graph.project import Project
from engine.layers.block import BLOCK_TYPE
from engine.memory import MemoryCheck, check_training_memory
from engine.shapes import Analysis, Diagnostic, analyze
from engine.templates import list_templates
from engine.trainable import ParameterSplit, instance_parameters, node_parameters, parameter_split


def register(commands: Any) -> None:
    """Add the subcommands to an argparse sub-parser collection."""
    p = commands.add_parser("validate", help="check a project's graph; exit 1 and list problems if invalid")
    p.add_argument("file", help="project file (.json)")
    p.set_defaults(handler=cmd_validate)

    p = commands.add_parser("summary", help="per-node output shape, parameters and FLOPs")
    p.add_argument("file", help="project file (.json)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--flat", action="store_true",
                   help="list every layer inside blocks with its path (stage2/block1/conv2), not one row per block")
    p.set_defaults(handler=cmd_summary)

    p = commands.add_parser("layers", help="the layer reference: every layer type with its parameters")
    p.add_argument("type", nargs="?", help="show only this layer type id")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=cmd_layers)

    p = commands.add_parser("templates", help="list the template models")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_templates)


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 0 when the graph is valid; else print each problem and exit 1.

    With blocks, problems are found in the flattened graph and name inner layers by their
    paths (``node layer2.1/conv2 (Conv2d): ...``).
    """
    project = load_project(args.file)
    view = _View(project, flat=True)
    graph, result = view.graph, view.analysis
    errors = [d for d in result.diagnostics if d.severity == "error"]
    warnings = [d for d in result.diagnostics if d.severity == "warning"]
    if result.valid:
        memory = check_training_memory(graph, result, project.training).diagnostic
        warnings += [memory] if memory is not None else []
    for diagnostic in errors:
        print(view.format(diagnostic))
    for diagnostic in warnings:
        text = view.format(diagnostic)
        head, _, tail = text.partition(": ")
        print(f"{head}: warning: {tail}")
    if errors:
        return 1
    print(f"valid: {len(graph)} nodes, {result.parameters:,} parameters, {result.flops:,} FLOPs per sample")
    return 0


class _View:
    """The graph and analysis a command reports: the project's own, or (with blocks) the top
    level with one entry per instance, or (``flat``) every layer named by its path.

    Args:
        project: The loaded project.
        flat: List every layer of the flattened graph instead of the top level.
    """

    def __init__(self, project: Project, flat: bool) -> None:
        self.project = project
        self.blocks = has_blocks(project)
        self.flat = flat
        self.paths: dict[str, str] = {}
        self.flattened: Flattened | None = None
        if not self.blocks:
            self.graph, self.analysis = project.graph, analyze(project.graph)
            return
        result = analyze_blocks(project.graph, project.blocks)
        self.flattened = result.flat
        self.paths = result.flat.paths
        self.flat_graph, self.flat_analysis = result.flat.graph, result.flat_analysis
        if flat:
            self.graph, self.analysis = result.flat.graph, result.flat_analysis
        else:
            self.graph, self.analysis = project.graph, result.analysis

    def format(self, diagnostic: Diagnostic) -> str:
        """``node <id or path> (<Title>): <message>``."""
        if self.flattened is None or not self.flat:
            return diagnostic.format(self.graph)
        return format_path(diagnostic, self.flattened)

    def node_id(self, node_id: str | None) -> str | None:
        """The name shown for a node: its path in the flat listing, else its id."""
        return self.paths.get(node_id, node_id) if node_id is not None and self.flat else node_id

    def memory(self) -> MemoryCheck:
        """The training-memory check (of the flat graph, which holds every layer)."""
        if self.flattened is None:
            return check_training_memory(self.graph, self.analysis, self.project.training)
        return check_training_memory(self.flat_graph, self.flat_analysis, self.project.training)


def summary_json(analysis: Analysis, graph: Any, memory: MemoryCheck | None = None,
                 view: _View | None = None) -> dict[str, Any]:
    """The ``summary --json`` document (``memory``: the training-memory check, when known).

    With blocks (``view``), a block instance is one entry with ``"type": "block"``, its
    ``"definition"`` and its totals; the flat listing (``--flat``) adds each layer's ``path``.
    """
    split, split_nodes = _parameter_counts(view, graph, analysis)
    nodes = []
    for node in graph:
        info = analysis.nodes[node.id]
        entry: dict[str, Any] = {
            "id": node.id,
            "type": node.type_id,
            "output_shape": info.output.to_json() if info.output else None,
            "parameters": info.parameters,
            "flops": info.flops,
            **_training_entry(node, split_nodes),
        }
        if node.type_id == BLOCK_TYPE:
            entry["definition"] = node.params["definition"]
            entry["repeat"] = node.params["repeat"]
        if view is not None and view.flat:
            entry["path"] = view.paths.get(node.id, node.id)
        nodes.append(entry)
    diagnostics = []
    for d in analysis.diagnostics:
        data = d.to_json()
        data["node"] = view.node_id(d.node) if view is not None else d.node
        diagnostics.append(data)
    return {
        "valid": analysis.valid,
        "parameters": analysis.parameters,
        "trainable_parameters": split.trainable,
        "frozen_parameters": split.frozen,
        "flops": analysis.flops,
        "nodes": nodes,
        "diagnostics": diagnostics +
                       ([memory.diagnostic.to_json()] if memory is not None and memory.diagnostic else []),
        **({"memory": memory.to_json()} if memory is not None else {}),
    }


def _parameter_counts(view: _View | None, graph: Any,
                      analysis: Analysis) -> tuple[ParameterSplit, dict[str, tuple[int, int]]]:
    """Trainable / frozen totals and per listed node ``(trainable, frozen)`` (a block instance: its layers')."""
    if view is None or view.flattened is None or view.flat:
        return parameter_split(graph, analysis), node_parameters(graph, analysis)
    flat_counts = node_parameters(view.flat_graph, view.flat_analysis)
    return parameter_split(view.flat_graph, view.flat_analysis), instance_parameters(flat_counts, view.paths)


def _training_entry(node: Any, counts: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """A node's fine-tuning fields in ``summary --json``."""
    trainable, frozen = counts.get(node.id, (0, 0))
    return {"trainable": node.trainable, "lr_scale": node.lr_scale, "trainable_parameters": trainable,
            "frozen_parameters": frozen}


def cmd_summary(args: argparse.Namespace) -> int:
    """Print per-node shapes, parameters and FLOPs with totals (exit 0 even when invalid)."""
    project = load_project(args.file)
    view = _View(project, flat=args.flat)
    graph, analysis = view.graph, view.analysis
    memory = view.memory()
    if args.json:
        print(json.dumps(summary_json(analysis, graph, memory, view), indent=2))
        return 0
    rows = [("node", "type", "output shape", "parameters", "FLOPs")]
    for node in graph:
        info = analysis.nodes[node.id]
        shape = str(info.output) if info.output else ("-" if not node.layer.has_output else "?")
        title = f"Block {node.params['definition']}" if node.type_id == BLOCK_TYPE else node.layer.title
        if node.type_id == BLOCK_TYPE and node.params["repeat"] > 1:
            title += f" x{node.params['repeat']}"
        name = view.node_id(node.id) or node.id
        title += "" if node.trainable else " (frozen)"
        title += f" (lr x{node.lr_scale:g})" if node.trainable and node.lr_scale != 1.0 else ""
        rows.append((name, title, shape, f"{info.parameters:,}", f"{info.flops:,}"))
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
    split, _ = _parameter_counts(view, graph, analysis)
    print(f"trainable parameters: {split.trainable:,}; frozen: {split.frozen:,}")
    print(memory.line())
    for diagnostic in analysis.diagnostics:
        print(f"{diagnostic.severity}: {view.format(diagnostic)}")
    if memory.diagnostic:
        print(f"{memory.diagnostic.severity}: {view.format(memory.diagnostic)}")
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
