"""Input and Output markers: where data enters the model and which values it returns."""

from __future__ import annotations

from engine.layers.base import Example, Inference, LayerType, Params, TensorSpec, register
from engine.layers.params import choice_param, int_list_param, int_param


@register
class TensorInput(LayerType):
    """A tensor input of a declared per-sample shape."""

    type_id = "input"
    title = "Input"
    category = "Input / Output"
    doc = ("Where data enters the model. The shape excludes the batch: (features,) for tables, "
           "(C, H, W) for images, (T, F) for sequences.")
    role = "input"
    inputs = ()
    id_prefix = "input"
    key_params = ("shape",)
    params = (
        int_list_param("shape", (1, 8, 8), "Per-sample shape without the batch dimension, e.g. 1, 28, 28.",
                       min=1, max=1_000_000, min_length=1, max_length=4),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        return Inference(TensorSpec(tuple(p.shape)))


@register
class TokenInput(LayerType):
    """A sequence of integer token ids (for Embedding layers)."""

    type_id = "token_input"
    title = "Token Input"
    category = "Input / Output"
    doc = "Integer token ids of shape (T,) per sample, each in [0, vocabulary size). Feed an Embedding."
    role = "input"
    inputs = ()
    id_prefix = "tokens"
    key_params = ("vocab_size", "seq_len")
    params = (
        int_param("vocab_size", 64, "Number of distinct tokens.", min=2, max=10_000_000),
        int_param("seq_len", 32, "Tokens per sample.", min=1, max=1_000_000),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        return Inference(TensorSpec((p.seq_len,), dtype="long", vocab=p.vocab_size))


@register
class NoiseInput(LayerType):
    """A random latent vector, sampled by the trainer, for generators."""

    type_id = "noise_input"
    title = "Noise Input"
    category = "Input / Output"
    doc = "A latent vector of random numbers (latent_dim,) that a generator turns into data."
    role = "input"
    inputs = ()
    id_prefix = "noise"
    key_params = ("latent_dim", "distribution")
    params = (
        int_param("latent_dim", 16, "Size of the latent vector.", min=1, max=1_000_000),
        choice_param("distribution", "normal", ("normal", "uniform"),
                     "Standard normal, or uniform on [-1, 1]."),
    )

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        return Inference(TensorSpec((p.latent_dim,)))


@register
class Output(LayerType):
    """Marks a value the model returns. Several are allowed."""

    type_id = "output"
    examples = (Example(((10,),)), Example(((3, 4),)))
    title = "Output"
    category = "Input / Output"
    doc = "Marks a model output. A model may have several; they are returned in the order they were added."
    role = "output"
    id_prefix = "output"

    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        return Inference(None)
