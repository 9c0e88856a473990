"""The layer declaration API and the registry.

Each layer type is one subclass of :class:`LayerType` registered with :func:`register`.
It declares data (type id, title, category, doc, ports, parameters) and two functions:

* :meth:`LayerType.infer` — the analytic rule: output shape, parameter count and FLOPs
  from the parameter values and input shapes, without torch. It raises
  :class:`ShapeError` with an actionable sentence when the inputs do not fit.
* :meth:`LayerType.build` — the torch module for those values and shapes.

Everything else (palette, inspector, ports, inference, compilation, code export, file
format, docs, conformance tests) reads these declarations.

Shapes are per sample: the batch dimension ``N`` is implicit and never stored. FLOPs are
per sample and follow :mod:`torch.utils.flop_counter`'s convention: two FLOPs per
multiply-add of matrix products and convolutions; element-wise work counts zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, TypeVar

from engine.layers.calls import ModuleCall
from engine.layers.params import Param

if TYPE_CHECKING:  # pragma: no cover - typing only, torch is imported lazily
    import torch.fx
    from torch import nn

DType = Literal["float", "long"]
Role = Literal["input", "layer", "output"]

#: Categories in palette order.
CATEGORIES: tuple[str, ...] = (
    "Input / Output", "Core", "Convolution", "Pooling", "Normalization", "Activation",
    "Recurrent", "Attention", "Merge",
)


@dataclass(frozen=True)
class TensorSpec:
    """Shape and element type of one sample of a tensor (the batch dimension is implicit).

    Args:
        dims: Sizes after the batch dimension, e.g. ``(1, 28, 28)`` for a grey image.
        dtype: ``"float"`` for real values, ``"long"`` for integer token ids.
        vocab: For token ids, how many distinct ids occur (ids lie in ``[0, vocab)``).
    """

    dims: tuple[int, ...]
    dtype: DType = "float"
    vocab: int | None = None

    def with_dims(self, dims: tuple[int, ...]) -> "TensorSpec":
        """The same kind of tensor (dtype, vocabulary) with other dims."""
        return TensorSpec(tuple(dims), self.dtype, self.vocab)

    @property
    def rank(self) -> int:
        """Number of dimensions including the batch dimension."""
        return len(self.dims) + 1

    @property
    def numel(self) -> int:
        """Elements per sample."""
        return math.prod(self.dims)

    def __str__(self) -> str:
        return "(" + ", ".join(["N", *map(str, self.dims)]) + ")"

    def to_json(self) -> list[int | str]:
        """The shape with its batch dimension as ``"N"``, as in summaries."""
        return ["N", *self.dims]


@dataclass(frozen=True)
class Inference:
    """Result of a layer's analytic rule for one node.

    Args:
        output: Output tensor, or ``None`` for nodes without an output (Output markers); for a
            layer with several output ports, the first port's.
        parameters: Trainable parameter count of the built module.
        flops: Forward FLOPs per sample (flop_counter convention).
        outputs: For a layer with several output ports, every port's tensor, in port order
            (``output`` is the first); empty for one output.
        warnings: Sentences about a likely mistake that still computes (shown as warnings).
    """

    output: TensorSpec | None
    parameters: int = 0
    flops: int = 0
    outputs: tuple[TensorSpec, ...] = ()
    warnings: tuple[str, ...] = ()


class ShapeError(Exception):
    """The inputs or parameter values do not fit the layer.

    The message is a sentence for the user and should say what to do, e.g.
    ``"expects (N, features) but receives (N, 16, 4, 4): insert a Flatten before it"``.

    Args:
        message: What is wrong and how to fix it.
        field: The parameter at fault, when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Example:
    """Sample inputs (and parameter overrides) for one layer, used by the conformance tests
    and the layer reference.

    Args:
        inputs: Per-sample input dims for each input port; a ``TensorSpec`` to give a dtype.
        params: Parameter values that differ from the defaults.
    """

    inputs: tuple[tuple[int, ...] | TensorSpec, ...]
    params: Mapping[str, Any] = field(default_factory=dict)

    def specs(self) -> list[TensorSpec]:
        """The inputs as tensor specs."""
        return [s if isinstance(s, TensorSpec) else TensorSpec(tuple(s)) for s in self.inputs]


class Params(dict):  # type: ignore[type-arg]
    """Parameter values of one node with attribute access (``p.out_channels``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass
class EmitContext:
    """What :meth:`LayerType.emit` needs to add a node to a torch.fx graph.

    Args:
        graph: The fx graph being built.
        root: The module that owns submodules (``call_module`` targets).
        name: Python identifier for this node's submodule and value.
    """

    graph: "torch.fx.Graph"
    root: "nn.Module"
    name: str

    def call_function(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> "torch.fx.Node":
        """Add a ``call_function`` node named after this canvas node."""
        return self.graph.create_node("call_function", fn, args, kwargs or {}, name=self.name)

    def call_method(self, method: str, args: tuple[Any, ...]) -> "torch.fx.Node":
        """Add a ``call_method`` node (``args[0].method(*args[1:])``) named after this canvas node."""
        return self.graph.create_node("call_method", method, args, {}, name=self.name)


class LayerType:
    """Declaration of one layer type. Subclass, fill in the class attributes, register."""

    type_id: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[str]
    doc: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    inputs: ClassVar[tuple[str, ...]] = ("in",)
    role: ClassVar[Role] = "layer"
    #: Short id prefix for new nodes ("conv" gives conv1, conv2, ...).
    id_prefix: ClassVar[str] = ""
    #: Parameters shown on the node on the canvas.
    key_params: ClassVar[tuple[str, ...]] = ()
    #: Input shapes the conformance test runs the layer on (at least two for layers with inputs).
    examples: ClassVar[tuple[Example, ...]] = ()
    #: How the importers recognize this layer in foreign models: torch modules, traced calls,
    #: ONNX operators (:mod:`engine.layers.recognize`).
    imports: ClassVar[tuple[Any, ...]] = ()
    #: Whether the layer is in the catalogue (:func:`all_layers`: the palette, the layer reference,
    #: the importers, the conformance tests). A block instance is not: it is placed from a block
    #: definition and analysed and compiled through :mod:`engine.graph.flatten`.
    listed: ClassVar[bool] = True

    # ----------------------------------------------------------------- ports
    @property
    def has_output(self) -> bool:
        """Whether nodes of this type have an output port."""
        return self.role != "output"

    def input_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        """Input port names for these parameter values (merges vary the count)."""
        return self.inputs

    def output_port(self) -> str | None:
        """The (first) output port name, or ``None`` for Output markers."""
        ports = self.output_ports({})
        return ports[0] if ports else None

    def output_ports(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        """Output port names for these parameter values: ``("out",)``, none for Output markers,
        or several for a layer that splits its input (``out1``, ``out2``, ...); a layer with
        several emits a tuple, one element per port."""
        return ("out",) if self.has_output else ()

    # ------------------------------------------------------------ parameters
    def param(self, name: str) -> Param:
        """Return the declaration of parameter ``name``.

        Raises:
            KeyError: No such parameter.
        """
        for decl in self.params:
            if decl.name == name:
                return decl
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        """Default parameter values."""
        return {decl.name: decl.default for decl in self.params}

    def check_params(self, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Return ``(field, problem)`` for each invalid value, including cross-field rules.

        Missing values count as their defaults. Cross-field rules
        (:meth:`check_combination`) run only when every value is valid on its own, and
        receive coerced values (tuples as tuples) with defaults filled in.
        """
        problems = []
        coerced = {}
        for decl in self.params:
            value = p.get(decl.name, decl.default)
            problem = decl.check(value)
            if problem:
                problems.append((decl.name, problem))
            else:
                coerced[decl.name] = decl.coerce(value)
        if not problems:
            problems.extend(self.check_combination(Params(coerced)))
        return problems

    def check_combination(self, p: Params) -> list[tuple[str, str]]:
        """Rules across several parameters (override); values are individually valid."""
        return []

    # -------------------------------------------------------- the two rules
    def infer(self, p: Params, inputs: list[TensorSpec]) -> Inference:
        """Analytic rule: output shape, parameter count, FLOPs.

        Args:
            p: Valid parameter values.
            inputs: One spec per input port, in port order.

        Returns:
            The inference for this node.

        Raises:
            ShapeError: The inputs do not fit; the message says what to do.
        """
        raise NotImplementedError

    def constructor(self, p: Params, inputs: list[TensorSpec]) -> ModuleCall:
        """The torch module for valid values and inputs, as a constructor call.

        The compiler instantiates it and the source exporter prints it, so exported code
        builds exactly the module the app trains. Functional layers (that only ``emit``)
        need not override it.
        """
        raise NotImplementedError(f"{self.type_id} builds no module")

    def build(self, p: Params, inputs: list[TensorSpec]) -> "nn.Module":
        """Build the torch module for valid values and inputs (imports torch lazily)."""
        return self.constructor(p, inputs).instantiate()

    def emit(self, ctx: EmitContext, p: Params, args: list["torch.fx.Node"],
             inputs: list[TensorSpec]) -> "torch.fx.Node":
        """Add this node to an fx graph; the default calls the built module.

        Functional layers (merges, reshapes) override this to emit ``call_function``
        or ``call_method`` nodes instead of a submodule.
        """
        ctx.root.add_module(ctx.name, self.build(p, inputs))
        return ctx.graph.call_module(ctx.name, tuple(args))


# ------------------------------------------------------------------ registry
_REGISTRY: dict[str, LayerType] = {}
L = TypeVar("L", bound=type[LayerType])


def register(cls: L) -> L:
    """Class decorator: validate a declaration and add it to the registry.

    Raises:
        ValueError: Duplicate type id, unknown category, or a default that fails its check.
    """
    layer = cls()
    if layer.type_id in _REGISTRY:
        raise ValueError(f"layer type {layer.type_id!r} registered twice")
    if layer.listed and layer.category not in CATEGORIES:
        raise ValueError(f"layer type {layer.type_id!r}: unknown category {layer.category!r}")
    problems = layer.check_params(layer.defaults())
    if problems:
        raise ValueError(f"layer type {layer.type_id!r}: default {problems[0][0]} {problems[0][1]}")
    _REGISTRY[layer.type_id] = layer
    return cls


def get_layer(type_id: str) -> LayerType:
    """Return the registered declaration for ``type_id``.

    Raises:
        KeyError: Unknown type id.
    """
    return _REGISTRY[type_id]


def all_layers() -> list[LayerType]:
    """All listed declarations (see :attr:`LayerType.listed`), grouped by category in palette order."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted((layer for layer in _REGISTRY.values() if layer.listed), key=lambda l: order[l.category])


# ------------------------------------------------------------ rule helpers
def require_rank(spec: TensorSpec, ranks: tuple[int, ...], layout: str, hint: str = "") -> None:
    """Raise :class:`ShapeError` unless ``spec`` has one of ``ranks`` (batch included).

    Args:
        spec: The incoming tensor.
        ranks: Allowed ranks counting the batch dimension.
        layout: Expected layout for the message, e.g. ``"(N, C, H, W)"``.
        hint: What to insert or change, appended after a colon.
    """
    if spec.rank not in ranks:
        message = f"expects {layout} but receives {spec}"
        raise ShapeError(f"{message}: {hint}" if hint else message)


def require_float(spec: TensorSpec, what: str) -> None:
    """Raise :class:`ShapeError` when integer token ids reach a layer that needs real values."""
    if spec.dtype != "float":
        raise ShapeError(f"receives integer token ids {spec} but {what} needs real values: "
                         "insert an Embedding before it")


def require_sequence(x: TensorSpec, what: str, features: str = "features") -> None:
    """Raise :class:`ShapeError` unless ``x`` holds real values shaped (N, T, features).

    Args:
        x: The incoming tensor.
        what: The layer's title, for the message.
        features: Name of the last dimension in the message ("features", "embedding").
    """
    require_float(x, what)
    if x.rank == 2:
        # a vector: one value per step, or (for attention) a squarish split into steps
        size = x.dims[0]
        width = 1 if features == "features" else _squarish_factor(size)
        example = f", e.g. ({size // width}, {width})"
    elif x.rank > 3:
        # an image or volume: each row of each channel becomes one step
        example = f", e.g. ({math.prod(x.dims[:-1])}, {x.dims[-1]})"
    else:
        example = ""
    require_rank(x, (3,), f"(N, T, {features})", f"insert a Reshape to (T, {features}) before it{example}")


def _squarish_factor(size: int) -> int:
    """Largest divisor of ``size`` up to its square root (searching at most 1024 candidates)."""
    for factor in range(min(math.isqrt(size), 1024), 1, -1):
        if size % factor == 0:
            return factor
    return 1
