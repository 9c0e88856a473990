"""Block instance: one node standing for a block definition (a graph with boundary ports).

A block instance is an ordinary :class:`~engine.graph.model.Node` of type ``block``. Its
parameters name the definition it uses, how many copies it stacks (``repeat``), and copy the
definition's port names (``inputs``: the ids of the definition's Input nodes; ``outputs``: the
ids of its Output nodes, both in document order). Carrying the port names in the parameters
keeps the document model unchanged: ``Node.input_ports()`` / ``output_ports()``, edge checks,
undo and the file format work without access to the project's definitions.

The layer is not listed in the catalogue (``listed = False``) and has no rule of its own:
analysis and compile expand instances into the layers of their definitions
(:func:`engine.graph.flatten.flatten`, :mod:`engine.block_shapes`,
:mod:`engine.compile.block_compile`). Met by the plain inference or compiler, it is an error
that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from engine.layers.base import EmitContext, Inference, LayerType, Params, ShapeError, TensorSpec, register
from engine.layers.params import int_param, name_list_param, name_param

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: The type id of block instances.
BLOCK_TYPE = "block"
#: Most copies one instance stacks.
MAX_REPEAT = 1024


def _names(value: Any, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` as port names, or ``fallback`` while it is not a list of strings."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return fallback


@register
class BlockInstance(LayerType):
    """An instance of a block definition (see the module docstring)."""

    type_id = BLOCK_TYPE
    title = "Block"
    category = "Blocks"
    doc = ("A block: one node standing for a graph of layers (a block definition), with the definition's "
           "Inputs as its input ports and its Outputs as its output ports. Repeat stacks copies in sequence.")
    listed = False
    id_prefix = "block"
    key_params = ("definition", "repeat")
    params = (
        name_param("definition", "block", "Name of the block definition this instance uses."),
        int_param("repeat", 1, "Copies stacked in sequence, each feeding the next (the shapes must chain).",
                  min=1, max=MAX_REPEAT),
        name_list_param("inputs", ("in",), "Input ports: the ids of the definition's Input nodes, in order."),
        name_list_param("outputs", ("out",), "Output ports: the ids of the definition's Output nodes, in order."),
    )

    def input_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        return _names(p.get("inputs"), ("in",))

    def output_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        return _names(p.get("outputs"), ("out",))

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """A call of a submodule named after the instance, standing for its class in exported source
        (:mod:`engine.compile.export.nested` compiles one level of a graph this way; the stand-in
        module holds nothing and is never run)."""
        from torch import nn

        ctx.root.add_module(ctx.name, nn.Module())
        return ctx.graph.call_module(ctx.name, tuple(args))

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        raise ShapeError(f"block {p.definition!r} is analysed through its definition: "
                         "use the project's block-aware analysis")
