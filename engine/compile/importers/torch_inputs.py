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


def input_nodes(gm: fx.GraphModule, spec: str, shape: Sequence[int] | None) -> list[tuple[str, dict[str, Any]]]:
    """``(type_id, params)`` of the Input node for each argument of ``forward``.

    A first ``nn.Embedding`` makes a Token Input (``shape`` is then ``(seq_len,)``); a first
    ``nn.Linear`` gives ``(in_features,)`` when no shape is given.

    Raises:
        ImportProblem: No shape given and none can be read off the first layer.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        raise ImportProblem(f"{spec}: forward() takes no tensor argument")
    result = []
    for node in placeholders:
        first = _first_module(gm, node)
        if isinstance(first, nn.Embedding):
            if shape is None or len(shape) != 1:
                raise ImportProblem(f"{spec}: argument {node.name} feeds an Embedding: give --input-shape SEQ_LEN")
            result.append(("token_input", {"vocab_size": first.num_embeddings, "seq_len": int(shape[0])}))
        elif shape is not None:
            result.append(("input", {"shape": [int(d) for d in shape]}))
        elif isinstance(first, nn.Linear):
            result.append(("input", {"shape": [first.in_features]}))
        else:
            raise ImportProblem(f"{spec}: cannot tell the shape of argument {node.name}: give --input-shape, "
                                "e.g. 1,28,28")
    return result
