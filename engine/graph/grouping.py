"""Group selected nodes into a new block, and ungroup a block instance: plans, not edits.

:func:`plan_group` (the app's Ctrl+G, and the importers turning module paths into blocks) and
:func:`plan_ungroup` (Ctrl+Shift+G) only read the graph. They return what to take out and what
to put in, so the app can apply a plan as undoable model mutations; :func:`apply_group` and
:func:`apply_ungroup` apply one directly (engine code, tests).

Grouping keeps every inner node (same id, same parameters, same position relative to the
selection's top-left) and adds one Input node per distinct outside tensor the selection reads
(``in``, ``in2``, ...) and one Output node per selected output that something outside reads
(``out``, ``out2``, ...); the instance takes the selection's place and its edges. What the
selection cannot be grouped as is refused with one line naming the nodes (:class:`BlockError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from engine.graph.blocks import BlockDefinition, BlockError, BlockLibrary, free_name, instance_node, port_problem
from engine.graph.model import NODE_ID_PATTERN, OUT, Edge, Graph, Node
from engine.layers.block import BLOCK_TYPE

if TYPE_CHECKING:  # pragma: no cover
    from engine.layers.base import TensorSpec
    from engine.shapes import Analysis

#: Horizontal distance of a definition's port nodes from its layers (the layout's column spacing).
PORT_SPACING = 240.0
#: Vertical distance between port nodes stacked on one side.
PORT_ROW = 140.0
_SHOWN = 4


@dataclass
class GroupPlan:
    """How to replace a selection with an instance of a new definition.

    Apply in this order: remove ``remove_edges``, remove ``remove_nodes``, add ``instance``
    (where the first removed node was, in document order), add ``add_edges``, add
    ``definition`` to the library.

    Args:
        definition: The new definition (inner nodes are copies; port nodes added).
        instance: The new block instance (not yet in the graph).
        remove_edges: Every edge touching a selected node, in document order.
        remove_nodes: The selected node ids, in document order.
        add_edges: Outside sources -> the instance's input ports, its output ports -> outside consumers.
    """

    definition: BlockDefinition
    instance: Node
    remove_edges: list[Edge]
    remove_nodes: list[str]
    add_edges: list[Edge]


@dataclass
class UngroupPlan:
    """How to replace a block instance with the layers of its definition (one level).

    Apply in this order: remove ``remove_edges``, remove ``instance``, add ``nodes`` (where the
    instance was, in document order), add ``add_edges``.

    Args:
        remove_edges: Every edge touching the instance.
        instance: The instance node that goes.
        nodes: New nodes (copies of the definition's layers; every copy of a repeated instance).
        add_edges: Their inner edges, and the edges from what fed the instance / to what it fed.
    """

    remove_edges: list[Edge]
    instance: Node
    nodes: list[Node]
    add_edges: list[Edge]


# ---------------------------------------------------------------------------------------- group
def plan_group(graph: Graph, node_ids: list[str], library: BlockLibrary, name: str | None = None,
               analysis: Analysis | None = None) -> GroupPlan:
    """Plan turning the nodes ``node_ids`` of ``graph`` into one instance of a new definition.

    Args:
        graph: The graph holding the selection (the top level or a definition's inside).
        node_ids: The selection (any order; repeats ignored). Block instances may be among them.
        library: The definitions in use: the new name must be free there.
        name: The new definition's name (a Python identifier); default ``Block``, ``Block2``, ...
        analysis: Current shapes of ``graph`` (``Analysis.nodes`` by node id): the new Input
            nodes declare the shapes they receive, so the definition can be analysed alone.

    Returns:
        The plan (nothing is changed).

    Raises:
        BlockError: One line: nothing selected, an unknown node, a model Input or Output
            selected, a name that is taken or invalid, or a selection that would cut an
            outside node off (it reads from the group and feeds back into it).
    """
    selected = list(dict.fromkeys(node_ids))
    if not selected:
        raise BlockError("nothing to group: select the layers that should become a block")
    unknown = [n for n in selected if n not in graph.nodes]
    if unknown:
        raise BlockError(f"cannot group: no node {_listed([repr(n) for n in unknown])}")
    order = {node_id: index for index, node_id in enumerate(graph.nodes)}
    selected.sort(key=order.__getitem__)
    _refuse_ends(graph, selected)
    chosen = set(selected)
    _refuse_cut(graph, chosen, order)
    name = name or default_name(library)
    if name in library:
        raise BlockError(f"a block definition named {name!r} already exists: choose another name")
    definition = BlockDefinition(name)  # checks the name

    taken = set(chosen)
    inputs: dict[tuple[str, str], str] = {}  # (outside source, port) -> Input node id
    outputs: dict[tuple[str, str], str] = {}  # (selected node, port) -> Output node id
    inside: list[Edge] = []
    for node_id in selected:
        for port in graph.nodes[node_id].input_ports():
            edge = graph.edge_into(node_id, port)
            if edge is not None and edge.source not in chosen and (edge.source, edge.source_port) not in inputs:
                inputs[(edge.source, edge.source_port)] = _fresh(taken, "in")
    for node_id in selected:
        leaving = [e for e in graph.outgoing(node_id) if e.target not in chosen]
        for port in graph.nodes[node_id].output_ports():
            if any(e.source_port == port for e in leaving):
                outputs[(node_id, port)] = _fresh(taken, "out")

    left = min(graph.nodes[n].position[0] for n in selected)
    top = min(graph.nodes[n].position[1] for n in selected)
    right = max(graph.nodes[n].position[0] for n in selected) - left
    inner = definition.graph
    for row, ((source, port), port_id) in enumerate(inputs.items()):
        spec = _spec(analysis, source, port)
        inner.add_node(port_input(port_id, spec, (-PORT_SPACING, row * PORT_ROW)))
    for node_id in selected:
        node = graph.nodes[node_id]
        inner.add_node(node.copy(position=(node.position[0] - left, node.position[1] - top)))
    for row, port_id in enumerate(outputs.values()):
        inner.add_node(Node(port_id, "output", {}, (right + PORT_SPACING, row * PORT_ROW)))
    for edge in graph.edges:
        if edge.target not in chosen:
            continue
        if edge.source in chosen:
            inside.append(edge)
        else:
            inside.append(Edge(inputs[(edge.source, edge.source_port)], edge.target, edge.target_port, OUT))
    for (node_id, port), port_id in outputs.items():
        inside.append(Edge(node_id, port_id, inner.nodes[port_id].input_ports()[0], port))
    for edge in inside:
        inner.add_edge(Edge(edge.source, edge.target, edge.target_port, edge.source_port))

    # The instance takes the place of the layer where data enters the group: that spot is free
    # (the layer leaves), where the selection's top-left corner may hold another node.
    entry = next((e.target for e in graph.edges if e.target in chosen and e.source not in chosen), selected[0])
    instance = instance_node(instance_id(graph, name, chosen), definition, 1, graph.nodes[entry].position)
    add_edges = [Edge(source, instance.id, port_id, port) for (source, port), port_id in inputs.items()]
    add_edges += [Edge(instance.id, e.target, e.target_port, outputs[(e.source, e.source_port)])
                  for e in graph.edges if e.source in chosen and e.target not in chosen]
    remove_edges = [e for e in graph.edges if e.source in chosen or e.target in chosen]
    return GroupPlan(definition, instance, remove_edges, selected, add_edges)


def apply_group(graph: Graph, library: BlockLibrary | None, plan: GroupPlan) -> None:
    """Apply ``plan`` to ``graph`` and add its definition to ``library`` (directly, without undo;
    ``library`` ``None``: the definition is there already)."""
    removed = set(plan.remove_nodes)
    index = next((i for i, node_id in enumerate(graph.nodes) if node_id in removed), None)
    for edge in plan.remove_edges:
        graph.remove_edge(edge)
    for node_id in plan.remove_nodes:
        graph.remove_node(node_id)
    graph.add_node(plan.instance, index)
    for edge in plan.add_edges:
        graph.add_edge(edge)
    if library is not None:
        library.add(plan.definition)


def default_name(library: BlockLibrary, base: str = "Block") -> str:
    """``base``, else ``base2``, ``base3``, ... : the first name not in ``library`` (:func:`free_name`)."""
    return free_name(library, base)


def instance_id(graph: Graph, name: str, avoid: Iterable[str] = ()) -> str:
    """A fresh node id for an instance of definition ``name``: ``Block1`` -> ``block1``,
    ``ResidualUnit`` -> ``residual_unit1`` (a number added as :meth:`Graph.new_id` does, unless
    the name ends in one and that id is free). Ids in ``avoid`` count as taken."""
    taken = set(graph.nodes) | set(avoid)
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()[:56] or "block"
    if base[-1].isdigit() and base not in taken:
        return base
    stem = f"{base}_" if base[-1].isdigit() else base
    n = 1
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


def port_input(node_id: str, spec: TensorSpec | None, position: tuple[float, float] = (0.0, 0.0)) -> Node:
    """An Input node declaring ``spec`` (token ids -> a Token Input); default parameters when the
    shape is unknown or no Input layer can declare it."""
    if spec is not None and spec.dtype == "long" and spec.vocab and len(spec.dims) == 1:
        return Node(node_id, "token_input", {"vocab_size": max(2, spec.vocab), "seq_len": spec.dims[0]}, position)
    if spec is not None and 1 <= len(spec.dims) <= 4 and all(1 <= d <= 1_000_000 for d in spec.dims):
        return Node(node_id, "input", {"shape": list(spec.dims)}, position)
    return Node(node_id, "input", {}, position)


def _spec(analysis: Analysis | None, node_id: str, port: str) -> TensorSpec | None:
    info = analysis.nodes.get(node_id) if analysis is not None else None
    return info.output_of(port) if info is not None else None


def _fresh(taken: set[str], base: str) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{n}"
    taken.add(candidate)
    return candidate


def _named(graph: Graph, ids: list[str]) -> str:
    """``a (Conv2d), b (ReLU)``: nodes with their titles, at most a few."""
    return _listed([f"{n} ({graph.nodes[n].layer.title})" for n in ids])


def _listed(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _refuse_ends(graph: Graph, selected: list[str]) -> None:
    """Refuse selected model Inputs and Outputs, saying where their tensors come from / go."""
    ends = [n for n in selected if graph.nodes[n].layer.role in ("input", "output")]
    if not ends:
        return
    roles = {graph.nodes[n].layer.role for n in ends}
    why = []
    if "input" in roles:
        why.append("a model's Input takes its tensor from the data")
    if "output" in roles:
        why.append("a model's Output sends its tensor to the loss")
    one = len(ends) == 1
    raise BlockError(f"cannot group {'node' if one else 'nodes'} {_named(graph, ends)}: {' and '.join(why)}, "
                     f"so {'it stays' if one else 'they stay'} outside blocks; leave {'it' if one else 'them'} "
                     "out of the selection")


def _refuse_cut(graph: Graph, chosen: set[str], order: dict[str, int]) -> None:
    """Refuse a selection that an outside path leaves and re-enters (it would cut that path's nodes off)."""
    g = graph.nx_graph()

    def reach(step: str) -> set[str]:
        neighbours = g.successors if step == "down" else g.predecessors
        found: set[str] = set()
        todo = [m for n in chosen for m in neighbours(n) if m not in chosen]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(m for m in neighbours(current) if m not in chosen and m not in found)
        return found

    cut = reach("down") & reach("up")
    if not cut:
        return
    bad = sorted(cut, key=order.__getitem__)
    takes = sorted({p for n in cut for p in g.predecessors(n) if p in chosen}, key=order.__getitem__)
    feeds = sorted({s for n in cut for s in g.successors(n) if s in chosen}, key=order.__getitem__)
    one = len(bad) == 1
    raise BlockError(
        f"grouping would cut {'node' if one else 'nodes'} {_named(graph, bad)} off from the group: "
        f"{'it takes' if one else 'they take'} input from inside the group ({_listed(takes)}) and "
        f"{'feeds' if one else 'feed'} back into it ({_listed(feeds)}); select {'it' if one else 'them'} "
        f"too or leave out {_listed(feeds)}")


# -------------------------------------------------------------------------------------- ungroup
def plan_ungroup(graph: Graph, instance_id: str, library: BlockLibrary) -> UngroupPlan:
    """Plan replacing block instance ``instance_id`` with the layers of its definition.

    Inner nodes keep their ids where ``graph`` has them free, else get fresh ones
    (``conv1`` -> ``conv3``); they sit at the instance's position plus their offset from the
    definition's entry layer (the first one an Input port feeds), where grouping put the instance. Copy ``k`` of a repeated instance reads copy ``k - 1``'s outputs
    (as :func:`engine.graph.flatten.flatten` expands it) and sits right of it. Nested instances
    stay instances (one level).

    Raises:
        BlockError: One line: no such node, not a block instance, a missing definition, ports
            that do not match it, or a repeat that cannot chain.
    """
    node = graph.nodes.get(instance_id)
    if node is None:
        raise BlockError(f"cannot ungroup: no node {instance_id!r}")
    where = f"cannot ungroup node {instance_id} ({node.layer.title})"
    if node.type_id != BLOCK_TYPE:
        raise BlockError(f"{where}: only block instances ungroup")
    problems = node.layer.check_params(node.params)
    if problems:
        raise BlockError(f"{where}: {problems[0][0]} {problems[0][1]}")
    name = node.params["definition"]
    definition = library.get(name)
    if definition is None:
        raise BlockError(f"{where}: its block definition {name!r} does not exist")
    problem = port_problem(node, definition)
    if problem:
        raise BlockError(f"{where}: {problem}")
    repeat = node.params["repeat"]
    if repeat > 1 and len(definition.inputs) != len(definition.outputs):
        raise BlockError(f"{where}: repeat {repeat} chains outputs to inputs, but block definition {name!r} has "
                         f"{len(definition.inputs)} input(s) and {len(definition.outputs)} output(s)")
    inner_graph = definition.graph
    ports = set(definition.inputs) | set(definition.outputs)
    layers = [n for n in inner_graph if n.id not in ports]
    # The layer where data enters sits where the instance was (grouping put the instance there).
    entry = next((e.target for e in inner_graph.edges if e.source in definition.inputs and e.target not in ports),
                 layers[0].id if layers else None)
    x0, y0 = inner_graph.nodes[entry].position if entry is not None else (0.0, 0.0)
    width = max((n.position[0] for n in layers), default=0.0) - min((n.position[0] for n in layers), default=0.0) \
        + PORT_SPACING
    taken = set(graph.nodes)
    nodes: list[Node] = []
    add_edges: list[Edge] = []
    sources = {p: _source_of(graph.edge_into(instance_id, p)) for p in definition.inputs}
    results: dict[str, tuple[str, str] | None] = {}
    for copy in range(repeat):
        ids = {}
        for layer in layers:
            new_id = layer.id if layer.id not in taken else _fresh_like(taken, layer)
            taken.add(new_id)
            ids[layer.id] = new_id
            position = (node.position[0] + layer.position[0] - x0 + copy * width,
                        node.position[1] + layer.position[1] - y0)
            nodes.append(layer.copy(id=new_id, position=position))
        for edge in inner_graph.edges:
            if edge.target in ports:
                continue
            source = sources[edge.source] if edge.source in ports else (ids[edge.source], edge.source_port)
            if source is not None:
                add_edges.append(Edge(source[0], ids[edge.target], edge.target_port, source[1]))
        results = {}
        for port in definition.outputs:
            edge = next(iter(inner_graph.incoming(port).values()), None)
            results[port] = None if edge is None else (
                sources[edge.source] if edge.source in ports else (ids[edge.source], edge.source_port))
        sources = {p: results[o] for p, o in zip(definition.inputs, definition.outputs)}
    for edge in graph.outgoing(instance_id):
        source = results.get(edge.source_port)
        if source is not None:
            add_edges.append(Edge(source[0], edge.target, edge.target_port, source[1]))
    remove_edges = [e for e in graph.edges if instance_id in (e.source, e.target)]
    return UngroupPlan(remove_edges, node, nodes, add_edges)


def apply_ungroup(graph: Graph, plan: UngroupPlan) -> None:
    """Apply ``plan`` to ``graph`` (directly, without undo)."""
    index = graph.node_index(plan.instance.id)
    for edge in plan.remove_edges:
        graph.remove_edge(edge)
    graph.remove_node(plan.instance.id)
    for offset, node in enumerate(plan.nodes):
        graph.add_node(node, index + offset)
    for edge in plan.add_edges:
        graph.add_edge(edge)


def _source_of(edge: Edge | None) -> tuple[str, str] | None:
    return None if edge is None else (edge.source, edge.source_port)


def _fresh_like(taken: set[str], node: Node) -> str:
    """A fresh id in the style of ``node``'s (``conv1`` -> ``conv<n>``), as :meth:`Graph.new_id` makes them."""
    stem = node.id.rstrip("0123456789") or node.layer.id_prefix or "node"
    stem = stem[:60]
    n = 1
    while f"{stem}{n}" in taken or not NODE_ID_PATTERN.match(f"{stem}{n}"):
        n += 1
    return f"{stem}{n}"
