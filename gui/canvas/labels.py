"""Short texts shown on the canvas: key parameters, shapes, parameter counts, tooltips.

Pure functions of the model and the analysis (no Qt), so they are cheap to test and the
items only call them when something they show has changed.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.layers import LayerType
from engine.layers.block import BLOCK_TYPE
from engine.shapes import NodeInfo
from gui.style import status_color

#: How a key parameter reads on a node; ``{}`` is the formatted value. Parameters not
#: listed read as their bare value (the main size of a layer: 16 channels, 64 features).
_KEY_FORMATS: dict[str, str] = {
    "stride": "s{}",
    "padding": "p{}",
    "dilation": "d{}",
    "num_heads": "{} heads",
    "nhead": "{} heads",
    "dim_feedforward": "ff {}",
    "num_inputs": "{} inputs",
    "dim": "dim {}",
    "p": "p {}",
    "negative_slope": "slope {}",
    "alpha": "α {}",
    "scale_factor": "×{}",
    "vocab_size": "vocab {}",
    "num_embeddings": "vocab {}",
    "seq_len": "len {}",
    "embedding_dim": "dim {}",
    "normalized_dims": "last {} dims",
    "output_size": "→ {}",
    "latent_dim": "{}-d",
    "num_groups": "{} groups",
    "groups": "{} groups",
    "index": "[{}]",
    "beta": "β {}",
    "init_value": "init {}",
    "init": "init {}",
}
#: Values that mean "the default behaviour" and are left off the node.
_SILENT_VALUES: dict[str, tuple[Any, ...]] = {
    "stride": (0, (0,), (0, 0)),
    "approximate": ("none",),
}
_SEPARATOR = " · "


#: Per-axis parameters that read as one number when every axis has the same value.
_UNIFORM_AS_ONE = frozenset({"stride", "padding", "dilation", "scale_factor"})


def format_value(value: Any, name: str = "") -> str:
    """A compact rendering of one parameter value.

    A square kernel ``(3, 3)`` reads ``3x3``; a uniform stride ``(1, 1)`` reads ``1``;
    other tuples read ``(0, 2, 1)``.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        if value and len(set(value)) == 1 and name in _UNIFORM_AS_ONE:
            return str(value[0])
        if value and len(value) <= 3 and name not in ("shape", "dims"):
            return "x".join(str(v) for v in value)
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def node_title(layer: LayerType, params: Mapping[str, Any]) -> str:
    """A card's title: the layer's title, or for a block instance its definition's name (``Bottleneck ×3``)."""
    if layer.type_id != BLOCK_TYPE:
        return layer.title
    repeat = params.get("repeat", 1)
    return f"{params.get('definition', layer.title)}{f' ×{repeat}' if repeat != 1 else ''}"


def key_params_text(layer: LayerType, params: Mapping[str, Any]) -> str:
    """The node's key parameters in one line, e.g. ``16 · 3x3 · s1``.

    Booleans show their name when true and nothing when false; values that mean the
    default behaviour (a pooling stride of 0) are left out.

    Args:
        layer: The node's layer declaration.
        params: The node's parameter values.

    Returns:
        The line, or an empty string when the layer has no key parameters to show.
    """
    if layer.type_id == BLOCK_TYPE:
        return "block"  # the definition and repeat are its title
    parts = []
    for name in layer.key_params:
        if name not in params or (layer.role == "input" and name == "shape"):
            continue  # an Input's shape already reads as its output shape
        value = params[name]
        if value in _SILENT_VALUES.get(name, ()):
            continue
        if isinstance(value, bool):
            if value:
                parts.append(name.replace("_", " "))
            continue
        if name == "num_layers":
            parts.append(f"{value} layer" + ("" if value == 1 else "s"))
            continue
        if name == "normalized_dims" and value == 1:
            parts.append("last dim")
            continue
        parts.append(_KEY_FORMATS.get(name, "{}").format(format_value(value, name)))
    return _SEPARATOR.join(parts)


def count_text(count: int) -> str:
    """``160 params``, ``61,706 params``, ``1 param``, ``no params``."""
    if count == 0:
        return "no params"
    return f"{count:,} param" + ("" if count == 1 else "s")


def shape_text(info: NodeInfo | None, has_output: bool, input_shape: str | None = None) -> str:
    """What the node's output line reads.

    Args:
        info: The node's analysis, ``None`` before the first analysis.
        has_output: Whether the node has an output port.
        input_shape: For Output markers, the shape they receive (their model output), or
            ``"?"`` when connected to a layer whose shape is unknown.

    Returns:
        ``(N, 16, 8, 8)``; for an Output marker ``returns (N, 10)`` or ``not connected``;
        ``shape unknown`` when inference could not tell.
    """
    if not has_output:
        if not input_shape:
            return "not connected"
        return "returns shape unknown" if input_shape == "?" else f"returns {input_shape}"
    if info is None or info.output is None:
        return "shape unknown"
    return str(info.output)


def compact_shape_text(info: NodeInfo | None, has_output: bool) -> str:
    """The per-sample output dims for zoomed-out cards, e.g. ``16×8×8`` (empty when unknown)."""
    if not has_output or info is None or info.output is None:
        return ""
    return "×".join(str(d) for d in info.output.dims)


def tooltip_text(node_id: str, layer: LayerType, info: NodeInfo | None, input_shape: str | None = None,
                 title: str | None = None) -> str:
    """Hover text of a node (rich text): identity, what the layer does, output shape, parameters,
    FLOPs, and each diagnostic on its own line."""
    lines = [f"<b>{_html(title or layer.title)}</b> <span style='color:gray'>{_html(node_id)}</span>",
             _html(layer.doc)]
    facts = []
    if info is not None and info.output is not None:
        facts.append(f"Output: <b>{_html(str(info.output))}</b>")
    elif not layer.has_output:
        facts.append(f"Model output: {_html(input_shape or 'not connected')}")
    elif info is not None:
        facts.append("Output: shape unknown")
    if info is not None and layer.role == "layer":
        facts.append(f"Parameters: {info.parameters:,}")
        facts.append(f"FLOPs: {info.flops:,} per sample")
    if facts:
        lines.append("<br>".join(facts))
    for diagnostic in info.diagnostics if info is not None else ():
        color = status_color("error" if diagnostic.severity == "error" else "warning")
        lines.append(f"<span style='color:{color}'>{diagnostic.severity}: {_html(diagnostic.message)}</span>")
    return "<p style='margin:0'>" + "</p><p style='margin-top:6px'>".join(lines) + "</p>"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
