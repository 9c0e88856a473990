"""ONNX operator -> canvas layer: the table, built from the layer declarations.

Each layer says which ONNX operators it imports (:class:`~engine.layers.recognize.FromOnnx`)
and how; an operator several layers claim is tried with each in turn. A handler returns
``None`` when it added a node (or aliased its output), and a reason string when the node
cannot be mapped exactly; the reason is listed in the import error. Identity and Dropout (a
no-op in inference) are no layer: their output is their input.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from engine.compile.importers.onnx_context import Context
from engine.layers.recognize import FromOnnx, recognizers

Handler = Callable[[Context, Any, dict[str, Any]], "str | None"]


def passthrough(ctx: Context, node: Any, a: dict[str, Any]) -> str | None:
    """Identity, and Dropout in inference: the output is the input."""
    if node.input[0] not in ctx.values:
        return "a constant"
    ctx.values[node.output[0]] = ctx.values[node.input[0]]
    return None


def _trying(readers: tuple[Handler, ...]) -> Handler:
    """A handler that asks each reader in turn; the last one's reason when none maps the node."""
    def handle(ctx: Context, node: Any, attributes: dict[str, Any]) -> str | None:
        reason: str | None = "no layer maps it"
        for read in readers:
            reason = read(ctx, node, attributes)
            if reason is None:
                return None
        return reason
    return handle


@lru_cache(maxsize=1)
def handlers() -> dict[str, Handler]:
    """ONNX operator type -> its handler."""
    readers: dict[str, list[Handler]] = {"Identity": [passthrough], "Dropout": [passthrough]}
    for _type_id, recognizer in recognizers(FromOnnx):
        for op in recognizer.ops:
            readers.setdefault(op, []).append(recognizer.read)
    return {op: found[0] if len(found) == 1 else _trying(tuple(found)) for op, found in readers.items()}


__all__ = ["Context", "Handler", "handlers", "passthrough"]
