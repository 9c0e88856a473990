"""The Input nodes of a traced module: shapes given by the user or read off the first layer."""

from __future__ import annotations

from typing import Any, Sequence

from torch import fx, nn

from engine.compile.importers.builder import ImportProblem


def _first_module(gm: fx.GraphModule, placeholder: fx.Node) -> nn.Module | None:
    modules = dict(gm.named_modules())
    for user in placeholder.users:
        if user.op == "call_module":
            return modules[str(user.target)]
    return None


def input_nodes(gm: fx.GraphModule, spec: str,
                shape: Sequence[int] | Sequence[Sequence[int] | None] | None) -> list[tuple[str, dict[str, Any]]]:
    """``(type_id, params)`` of the Input node for each argument of ``forward``.

    ``shape`` is one per-sample shape for every argument (``(1, 28, 28)``), or one per argument in
    order (``[(7,), (5,)]`` for ``forward(src, tgt)``; ``None`` for one read off its first layer).
    A first ``nn.Embedding`` makes a Token Input (its shape is then ``(seq_len,)``); a first
    ``nn.Linear`` gives ``(in_features,)`` when no shape is given.

    Raises:
        ImportProblem: As many shapes as arguments were not given, or none for an argument whose
            shape cannot be read off its first layer.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        raise ImportProblem(f"{spec}: forward() takes no tensor argument")
    names = ", ".join(n.name for n in placeholders)
    shapes = per_argument(shape)
    several = len(placeholders) > 1
    if shapes is None:
        shapes = [None] * len(placeholders)
    elif len(shapes) == 1:
        shapes = shapes * len(placeholders)  # one shape for every argument
    elif len(shapes) != len(placeholders):
        raise ImportProblem(f"{spec}: forward() takes {len(placeholders)} tensor argument(s) ({names}) but "
                            f"{len(shapes)} input shapes were given: give one --input-shape per argument, in order")
    give = f"one --input-shape per argument of forward ({names}), in order" if several else "--input-shape"
    result = []
    for node, dims in zip(placeholders, shapes):
        first = _first_module(gm, node)
        if isinstance(first, nn.Embedding):
            if dims is None or len(dims) != 1:
                raise ImportProblem(f"{spec}: argument {node.name} feeds an Embedding: its shape is SEQ_LEN "
                                    f"(give {give})")
            result.append(("token_input", {"vocab_size": first.num_embeddings, "seq_len": int(dims[0])}))
        elif dims is not None:
            result.append(("input", {"shape": [int(d) for d in dims]}))
        elif isinstance(first, nn.Linear):
            result.append(("input", {"shape": [first.in_features]}))
        else:
            raise ImportProblem(f"{spec}: cannot tell the shape of argument {node.name}: give {give}, e.g. 1,28,28")
    return result


def per_argument(shape: Sequence[int] | Sequence[Sequence[int] | None] | None) -> list[tuple[int, ...] | None] | None:
    """``(1, 28, 28)`` -> ``[(1, 28, 28)]``; ``[(7, 8), None]`` -> itself as tuples; ``None`` -> ``None``.

    Raises:
        ImportProblem: Neither sizes nor a list of shapes.
    """
    if shape is None:
        return None
    items = list(shape)
    if all(isinstance(d, int) and not isinstance(d, bool) for d in items):
        return [tuple(items)]  # type: ignore[arg-type]
    if all(s is None or isinstance(s, (list, tuple)) and all(isinstance(d, int) and not isinstance(d, bool)
                                                            for d in s) for s in items):
        return [None if s is None else tuple(s) for s in items]  # type: ignore[union-attr]
    raise ImportProblem(f"input shape {shape!r}: expected sizes like (1, 28, 28), or one such shape per argument")
