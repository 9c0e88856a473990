"""Attributions with Captum: which parts of one input drove one prediction.

Every number comes from Captum (``captum.attr``); the canvas only picks the method, its
target and its baseline, and reduces the result for display (channels of an image into one
heat map, the embedding dimension of a token into one value). The methods:

- Integrated Gradients (``IntegratedGradients``; ``LayerIntegratedGradients`` on the Embedding
  for token ids, from a sequence of token 0),
- Saliency (``Saliency``: the size of the gradient; float inputs only),
- Grad-CAM (``LayerGradCam`` on a chosen 2-D convolution, upsampled with
  ``LayerAttribution.interpolate``; image models only),
- Occlusion (``Occlusion`` with a window of about an eighth of the image's side; images only).

:func:`model_facts` describes a compiled model once; :func:`available_methods` and
:func:`method_problem` say what applies to it and why the others do not; :func:`attribute` runs
one method on one sample (a batch of one); :mod:`engine.training.attribution_cache` keeps results
per (weights, sample, method, layer, output). Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.compile import CompiledModel
    from engine.graph import Graph

#: Interpolation steps of Integrated Gradients (Captum's default).
IG_STEPS = 50
#: Values one Integrated Gradients batch may hold (steps are split into batches above it).
IG_BATCH_VALUES = 1 << 22
#: Tasks whose prediction an attribution explains.
EXPLAINED_TASKS = ("classification", "regression", "forecasting", "language_model")


@dataclass(frozen=True)
class Method:
    """An attribution method: its key, its name and what its map means, in one line."""

    key: str
    title: str
    explanation: str
    signed: bool  # values of both signs (raise / lower the score) rather than sizes


METHODS: dict[str, Method] = {m.key: m for m in (
    Method("integrated_gradients", "Integrated Gradients",
           "How much each input moved the score from a blank input to this one, summed along the way.", True),
    Method("saliency", "Saliency",
           "How strongly a tiny change of each input would change the score (the size of the gradient).", False),
    Method("grad_cam", "Grad-CAM",
           "Where the chosen convolution layer's feature maps raise the score, scaled up to the image.", False),
    Method("occlusion", "Occlusion",
           "How much the score drops when a small patch of the image is blanked out there.", True),
)}
FEATURE_IG_EXPLANATION = ("How much each feature moved the score from a row of zeros (with normalized data: the "
                          "average row) to this one, summed along the way.")
TOKEN_IG_EXPLANATION = ("How much each token moved the score from a sequence of token 0 to this one, "
                        "summed along the way (through the Embedding).")


@dataclass(frozen=True)
class ModelFacts:
    """What decides which methods apply to a model.

    Args:
        task: The task name (``classification``, ``regression``...).
        input_kind: ``image`` ((C, H, W), or (H, W) of image data), ``features`` (a table row),
            ``sequence`` (float steps) or ``tokens`` (integer ids).
        input_dims: The per-sample input shape.
        output_dims: The per-sample output shape.
        conv_layers: Node ids of the 2-D convolutions that lead to the output, in graph order.
        embedding: Node id of the Embedding reading the token ids, if any.
    """

    task: str
    input_kind: str
    input_dims: tuple[int, ...]
    output_dims: tuple[int, ...]
    conv_layers: tuple[str, ...] = ()
    embedding: str | None = None


@dataclass
class Attribution:
    """One method's attribution of one prediction.

    Args:
        method: The method's key. ``layer``: Grad-CAM's convolution node id, else ``None``.
        values: Captum's result without the batch dimension, as float32 (token inputs: summed over
            the embedding dimension, one value per token; Grad-CAM: upsampled to the input, (1, H, W)).
        heat: Images: one (H, W) map (sum over channels; Saliency: maximum, as it is a size).
        target: The output explained: a class, ``(step, token)`` for language models, an output index.
        target_name: The target in words (``class 7``, ``next token 'e'``, ``output 0``).
        labels: The name of each value of a 1-D result (features, tokens), if known.
    """

    method: str
    layer: str | None
    values: np.ndarray
    heat: np.ndarray | None
    target: Any
    target_name: str
    labels: list[str] | None = None

    @property
    def info(self) -> Method:
        """The method's name, explanation and sign."""
        return METHODS[self.method]


def model_facts(compiled: CompiledModel, graph: Graph, task: str, image_data: bool) -> ModelFacts:
    """Describe ``compiled`` (of ``graph``) for :func:`available_methods`; ``image_data``: the
    dataset holds images (so a (H, W) input is an image, not a sequence)."""
    if not compiled.input_ids or not compiled.output_specs:
        return ModelFacts(task, "none", (), ())
    spec, dims = compiled.input_specs[0], tuple(compiled.input_specs[0].dims)
    if spec.dtype == "long":
        kind = "tokens"
    elif len(dims) == 3 or (len(dims) == 2 and image_data):
        kind = "image"
    else:
        kind = "features" if len(dims) == 1 else "sequence"
    analysis, first = compiled.analysis, compiled.input_ids[0]
    convs = tuple(n.id for n in graph if n.type_id == "conv2d" and n.id in analysis.in_model
                  and len(dims) == 3 and analysis.nodes[n.id].output is not None)
    embedding = next((n.id for n in graph if n.type_id == "embedding" and n.id in analysis.in_model
                      and graph.incoming(n.id)["in"].source == first), None) if kind == "tokens" else None
    return ModelFacts(task, kind, dims, tuple(compiled.output_specs[0].dims), convs, embedding)


def method_problem(facts: ModelFacts, method: str) -> str | None:
    """Why ``method`` does not apply to the model (one line), or ``None`` when it does."""
    if method not in METHODS:
        return f"unknown attribution method '{method}'; choose one of {', '.join(METHODS)}"
    title = METHODS[method].title
    if facts.task not in EXPLAINED_TASKS or facts.input_kind == "none":
        return (f"attributions explain a predicted class, value or token; {facts.task.replace('_', ' ')} models "
                f"do not predict one")
    tokens = facts.input_kind == "tokens"
    if method == "integrated_gradients" and tokens and facts.embedding is None:
        return (f"{title} on token ids needs an Embedding right after the Token Input (its baseline is the "
                f"embedding of token 0); this model has none")
    if method == "saliency" and tokens:
        return f"{title} needs real-valued inputs; token ids have no gradient (use Integrated Gradients)"
    if method == "grad_cam" and (facts.input_kind != "image" or not facts.conv_layers):
        return f"{title} needs a 2-D convolution layer over an image input; this model has none"
    if method == "occlusion" and facts.input_kind != "image":
        return f"{title} slides a blank patch over an image; this model reads {_kind_words(facts.input_kind)}"
    return None


def available_methods(facts: ModelFacts) -> list[Method]:
    """The methods that apply to the model, in a fixed order."""
    return [m for key, m in METHODS.items() if method_problem(facts, key) is None]


def explanation(facts: ModelFacts, method: str) -> str:
    """The one-line meaning of ``method`` on this model."""
    if method == "integrated_gradients" and facts.input_kind == "tokens":
        return TOKEN_IG_EXPLANATION
    if method == "integrated_gradients" and facts.input_kind == "features":
        return FEATURE_IG_EXPLANATION
    return METHODS[method].explanation


def choice(facts: ModelFacts, method: str, layer: str | None, output: int) -> tuple[str, str | None, int]:
    """``(method, layer, output)`` with what does not matter to ``method`` dropped (a cache key's part):
    the layer is Grad-CAM's own (its last convolution by default), the output a regression's own."""
    layer = (layer or (facts.conv_layers[-1] if facts.conv_layers else None)) if method == "grad_cam" else None
    return method, layer, output if facts.task in ("regression", "forecasting") else 0


def occlusion_window(dims: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Occlusion's sliding window and strides for an image of ``dims`` ((C, H, W) or (H, W)): about an
    eighth of each side, moved by half of it, across all channels at once."""
    sides = tuple(dims[-2:])
    window = tuple(max(1, round(side / 8)) for side in sides)
    strides = tuple(max(1, w // 2) for w in window)
    channels = tuple(dims[:-2])
    return channels + window, channels + strides


def choose_target(output: torch.Tensor, facts: ModelFacts, index: int = 0) -> Any:
    """The output an attribution explains: the predicted class (a one-logit binary classifier: its
    logit, 0), the predicted next token at the last step, or the ``index``-th output value."""
    values = output[0]
    if facts.task == "classification":
        return 0 if values.numel() == 1 else int(values.argmax())
    if facts.task == "language_model":
        return (values.shape[0] - 1, int(values[-1].argmax()))
    if not 0 <= index < values.numel():
        raise UserError(f"output {index} does not exist: the model has {values.numel()} output value(s)")
    return index if values.dim() == 1 else tuple(int(i) for i in np.unravel_index(index, tuple(values.shape)))


def target_words(target: Any, facts: ModelFacts, names: Sequence[str] | None) -> str:
    """``target`` in words, with ``names`` of the classes (language models: the vocabulary)."""
    if facts.task == "language_model":
        token = target[1]
        return f"next token {names[token]!r}" if names and token < len(names) else f"next token {token}"
    if facts.task == "classification":
        if facts.output_dims in ((1,), ()):
            return "the logit (class 1)"
        return f"class {names[target]}" if names and target < len(names) else f"class {target}"
    flat = target if isinstance(target, int) else int(np.ravel_multi_index(target, facts.output_dims))
    return f"output {flat}"


def attribute(module: torch.nn.Module, inputs: Sequence[torch.Tensor], facts: ModelFacts, method: str,
              layer: str | None = None, output: int = 0, names: Sequence[str] | None = None,
              labels: Sequence[str] | None = None) -> Attribution:
    """Run one Captum method on one sample.

    Args:
        module: The compiled model, in eval mode.
        inputs: One tensor per model input, batch of one; the first is attributed, the others pass through.
        facts: :func:`model_facts` of ``module``.
        method: A key of :data:`METHODS` that applies (:func:`method_problem`).
        layer: Grad-CAM's convolution node id (default: the last one).
        output: Regression and forecasting: which output value to explain (flat index).
        names: Class names (language models: the vocabulary), for :attr:`Attribution.target_name`.
        labels: Names of the input's values for 1-D results (table features, the text of tokens);
            a language model's tokens are named through ``names`` when omitted.

    Shape:
        inputs[0]: (1, *facts.input_dims). Result values: facts.input_dims (tokens: (T,); Grad-CAM (1, H, W)).

    Raises:
        UserError: The method does not apply (the reason), an unknown layer or output.
    """
    import torch
    from captum import attr

    problem = method_problem(facts, method)
    if problem is not None:
        raise UserError(problem)
    first, rest = inputs[0], tuple(inputs[1:])
    with torch.no_grad():
        target = choose_target(_first(module(*inputs)).float(), facts, output)
    forward = _forward(module)
    extra = rest or None
    if facts.input_kind == "tokens":
        embedding = _submodule(module, str(facts.embedding))
        ids = first.long()
        raw = attr.LayerIntegratedGradients(forward, embedding).attribute(
            ids, baselines=torch.zeros_like(ids), target=target, additional_forward_args=extra, n_steps=IG_STEPS,
            internal_batch_size=_ig_batch(ids.numel() * embedding.embedding_dim))
        values = raw.detach().float()[0].sum(-1)  # one value per token
        if labels is None and facts.task == "language_model" and names:
            labels = [str(names[t]) if t < len(names) else str(t) for t in ids[0].tolist()]
        return _result(method, None, values, target, facts, names, labels)
    x = first.detach().float().clone().requires_grad_(True)  # Captum warns when it has to set this itself
    if method == "integrated_gradients":
        raw = attr.IntegratedGradients(forward).attribute(
            x, baselines=torch.zeros_like(x), target=target, additional_forward_args=extra, n_steps=IG_STEPS,
            internal_batch_size=_ig_batch(x.numel()))
    elif method == "saliency":
        raw = attr.Saliency(forward).attribute(x, target=target, additional_forward_args=extra)
    elif method == "grad_cam":
        layer = layer or facts.conv_layers[-1]
        if layer not in facts.conv_layers:
            raise UserError(f"Grad-CAM: {layer} is not a 2-D convolution of this model; choose one of "
                            f"{', '.join(facts.conv_layers)}")
        cam = attr.LayerGradCam(forward, _submodule(module, layer)).attribute(
            x, target=target, additional_forward_args=extra, relu_attributions=True)
        raw = attr.LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")
    else:
        window, strides = occlusion_window(facts.input_dims)
        raw = attr.Occlusion(forward).attribute(x, sliding_window_shapes=window, strides=strides, baselines=0,
                                               target=target, additional_forward_args=extra,
                                               perturbations_per_eval=16)
    values = raw.detach().float()[0]
    return _result(method, layer if method == "grad_cam" else None, values, target, facts, names,
                   labels if values.dim() == 1 else None)


def _result(method: str, layer: str | None, values: torch.Tensor, target: Any, facts: ModelFacts,
            names: Sequence[str] | None, labels: Sequence[str] | None) -> Attribution:
    array, heat = values.numpy().astype(np.float32), None
    if facts.input_kind == "image":
        heat = array.max(0) if method == "saliency" and array.ndim == 3 else \
            (array.sum(0) if array.ndim == 3 else array)
    return Attribution(method, layer, array, heat, target, target_words(target, facts, names),
                       None if labels is None else [str(label) for label in labels])


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _forward(module: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """``module`` as Captum calls it: one tensor out (the first output of several)."""
    return lambda *args: _first(module(*args))


def _submodule(module: torch.nn.Module, node_id: str) -> torch.nn.Module:
    from engine.compile import attribute_name

    found = getattr(module, attribute_name(node_id), None)
    if found is None:
        raise UserError(f"node {node_id} has no layer module in the compiled model")
    return found


def _ig_batch(values_per_step: int) -> int:
    return max(1, min(IG_STEPS, IG_BATCH_VALUES // max(1, values_per_step)))


def _kind_words(kind: str) -> str:
    return {"features": "a table row", "sequence": "a sequence of values", "tokens": "token ids"}.get(kind, kind)
