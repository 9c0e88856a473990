"""Import models onto the canvas: a PyTorch ``nn.Module`` (traced with torch.fx) or an ONNX file.

Python API (no Qt; blocking)::

    from engine.compile.importers import import_onnx, import_torch_module, save_imported
    project, weights = import_torch_module("mypackage.models:LeNet", [], (1, 32, 32))
    project, weights = import_torch_module("mypackage.models:Seq2Seq", [], [(7,), (5,)])  # forward(src, tgt)
    project, weights = import_onnx("model.onnx")
    save_imported(project, weights, "lenet.json")   # writes lenet.json and lenet.safetensors

Both return an :class:`ImportResult`, which unpacks as ``(project, weights)`` and also
carries the import's self-check: the largest absolute difference between the original
model and the imported graph on the same random batch (refused above 1e-4).

Hierarchy: by default (``flat=True``) every layer lies on the top level, named after its module
path (``layer1_0_conv1``) with that path as its group. With ``flat=False`` (the CLI's default) the
module hierarchy becomes blocks (:mod:`engine.compile.importers.hierarchy`): ResNet-50 opens as
Stem, layer1..layer4 and Head.

What cannot be mapped exactly is listed by name and nothing is imported
(:class:`~engine.compile.importers.builder.ImportProblem`, a UserError: exit 1).

Weights: ``weights`` is keyed like the compiled graph's state dict (``conv1.weight``); with blocks,
like the state dict of the flattened graph (``layer1__bottleneck_0__conv1.weight``), which is what
training, export and the app compile.
:func:`save_imported` writes it as ``<stem>.safetensors`` beside the project file, the
sibling convention of :mod:`engine.compile.weights` that export and the app read.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from engine.compile.export.selfcheck import RELATIVE, TOLERANCE, compare, run_module
from engine.compile.fx_builder import CompiledModel, compile_graph
from engine.compile.importers.builder import GraphBuilder, ImportProblem
from engine.compile.weights import WEIGHTS_SUFFIX, apply_weights, save_weights
from engine.graph.fileformat import save_project
from engine.graph.project import Project

#: Largest allowed difference between the original model and the imported graph: this much, plus
#: IMPORT_RELATIVE times the largest output (float32 arithmetic in another order, e.g. by ONNX
#: Runtime, moves outputs of size 200 by about 1e-4); the exports' self-check uses the same rule.
IMPORT_TOLERANCE = TOLERANCE
IMPORT_RELATIVE = RELATIVE
_FAMILIES = (("transformer_encoder_layer", "transformer"), ("self_attention", "transformer"), ("lstm", "lstm"),
             ("gru", "gru"), ("rnn", "rnn"), ("conv2d", "cnn"), ("conv1d", "cnn"), ("add", "resnet"))


@dataclass
class ImportResult:
    """An imported project, its weights and the import's self-check figure.

    Unpacks as ``project, weights = result``.
    """

    project: Project
    weights: dict[str, torch.Tensor]
    max_abs_diff: float
    source: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.project, self.weights))


def _finish(builder: GraphBuilder, name: str, description: str, reference: Any,
            inputs: Sequence[Any], flat: bool = True) -> ImportResult:
    project, weights = builder.finish(name, description)
    types = {node.type_id for node in project.graph}
    project.meta["family"] = next((family for type_id, family in _FAMILIES if type_id in types), "fnn")
    compiled = builder.compiled  # holds the weights already
    if compiled is None:
        compiled = compile_graph(project.graph)
        apply_weights(compiled.module, weights, builder.source)
    if not flat:
        project, weights, compiled = _as_blocks(project, weights, builder, compiled)
    compiled.module.eval()
    tensors = [torch.as_tensor(np.asarray(x)) for x in inputs]
    expected = reference(tensors)
    check = compare(expected, run_module(compiled.module, tensors), "import")
    allowed = check.allowed(IMPORT_TOLERANCE)
    if not check.diff <= allowed:
        raise ImportProblem(f"{builder.source}: the imported graph computes something else: max |diff| "
                            f"{check.diff:.2e} from the original (tolerance {allowed:.1e} for outputs up to "
                            f"{check.largest:.3g})")
    return ImportResult(project, weights, check.diff, builder.source)


def _as_blocks(project: Project, weights: dict[str, torch.Tensor], builder: GraphBuilder,
               compiled: CompiledModel) -> tuple[Project, dict[str, torch.Tensor], CompiledModel]:
    """The project with its module hierarchy as blocks, its weights keyed by flat id, and its compile."""
    from engine.compile.block_compile import compile_with_blocks
    from engine.compile.fx_builder import attribute_name
    from engine.compile.importers.hierarchy import blocks_from_modules

    blocks = blocks_from_modules(project.graph, builder.module_classes, compiled.analysis)
    if not blocks.library:
        return project, weights, compiled
    renamed = {node_id: attribute_name(flat_id) for flat_id, node_id in blocks.origins.items()}
    tensors = {}
    for key, tensor in weights.items():
        node_id, _, rest = key.partition(".")
        tensors[f"{renamed[node_id]}.{rest}"] = tensor
    project = dataclasses.replace(project, graph=blocks.graph, blocks=blocks.library)
    compiled = compile_with_blocks(project.graph, project.blocks)[0]
    apply_weights(compiled.module, tensors, builder.source)
    return project, {key: tensors[key] for key in compiled.module.state_dict()}, compiled


def _sample(compiled_specs: Any, seed: int = 0, batch: int = 3) -> list[np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    result = []
    for spec in compiled_specs:
        if spec.dtype == "long":
            result.append(torch.randint(0, spec.vocab or 2, (batch, *spec.dims), generator=generator).numpy())
        else:
            result.append(torch.randn(batch, *spec.dims, generator=generator).numpy())
    return result


def import_torch_module(spec: str, args: Any = None,
                        input_shape: Sequence[int] | Sequence[Sequence[int] | None] | None = None,
                        weights: str | os.PathLike[str] | None = None, flat: bool = True) -> ImportResult:
    """Trace ``package.module:Class`` built with ``args`` and map it onto canvas layers.

    Args:
        spec: ``package.module:Class`` (importable from the working directory or sys.path).
        args: Constructor arguments: a list (positional) or a dict (keywords); ``None`` for none.
        input_shape: Per-sample input shape, e.g. ``(1, 28, 28)``, used for every argument of
            ``forward``; or one per argument in order, e.g. ``[(7,), (5,)]`` for ``forward(src,
            tgt)`` (``None`` for one to read off its first layer). A shape is inferred from a
            first Linear when omitted (images need it); an argument feeding an Embedding (token
            ids) takes ``(seq_len,)``.
        weights: A safetensors file of the module's ``state_dict()`` to load before tracing
            (e.g. trained weights); the constructor's initial weights when omitted.
        flat: Every layer on the top level (default); ``False``: the module hierarchy as blocks.

    Returns:
        The project (laid out) and its weights; unpacks as ``(project, weights)``.

    Raises:
        ImportProblem: Not importable, not a module, fails to trace, unmapped operations
            (all listed), or outputs that differ from the original.
    """
    from engine.compile.importers.torch_fx import load_class, map_traced, trace
    from engine.compile.importers.torch_inputs import input_nodes

    cls = load_class(spec)
    try:
        model = cls(**args) if isinstance(args, dict) else cls(*(args or []))
    except Exception as exc:  # noqa: BLE001 - user constructors can raise anything
        raise ImportProblem(f"{spec}: constructing it failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ImportProblem(f"{spec}: builds a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        from engine.errors import first_line
        from engine.compile.weights import load_weights, state_dict_mismatch

        state = load_weights(weights)
        mismatch = state_dict_mismatch(model.state_dict(), state)
        if mismatch:
            raise ImportProblem(f"{weights}: does not fit {spec}: {mismatch}")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ImportProblem(f"{weights}: does not fit {spec}: {first_line(exc)}") from None
    model.eval()
    gm = trace(model, spec)
    builder = GraphBuilder(spec)
    builder.module_classes = {path: f"{type(m).__module__}.{type(m).__qualname__}"
                              for path, m in model.named_modules() if path}
    inputs = input_nodes(gm, spec, input_shape)
    sample = _sample(compile_graph_specs(inputs), batch=2)  # shapes (batch not 1) and the self-check
    map_traced(gm, builder, inputs, _static_values(gm, sample, spec))
    reference = (lambda xs: run_module(model, xs))
    return _finish(builder, cls.__name__, f"Imported from the PyTorch module {spec}.", reference, sample, flat)


def _static_values(gm: Any, sample: list[np.ndarray], spec: str) -> Any:
    """Run the traced model once on the sample to fold its size arithmetic (see torch_static)."""
    from engine.compile.importers.torch_static import StaticValues
    from engine.errors import first_line

    try:
        return StaticValues(gm, [torch.as_tensor(x) for x in sample])
    except Exception as exc:  # noqa: BLE001 - user code runs here
        raise ImportProblem(f"{spec}: running the model on a sample of its input shape failed: "
                            f"{type(exc).__name__}: {first_line(exc)} (is --input-shape right? one per argument "
                            "of forward, in order)") from None


def compile_graph_specs(inputs: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Per-sample specs of Input nodes given as ``(type_id, params)``."""
    from engine.layers import Params, get_layer

    specs = []
    for type_id, params in inputs:
        layer = get_layer(type_id)
        specs.append(layer.infer(Params({**layer.defaults(), **params}), []).output)
    return specs


def import_onnx(path: str | os.PathLike[str], flat: bool = True) -> ImportResult:
    """Read an ONNX model and map its operators onto canvas layers, with its weights.

    Args:
        path: The ``.onnx`` file.
        flat: Every layer on the top level (default); ``False``: the module hierarchy the exporter
            recorded as blocks (``torch.onnx.export(dynamo=True)``'s name scopes and classes, or
            the TorchScript exporter's node names such as ``/layer1/layer1.0/conv1/Conv``).

    Returns:
        The project (laid out) and its weights; unpacks as ``(project, weights)``.

    Raises:
        ImportProblem: Not an ONNX file, unsupported operators (all listed), or outputs that
            differ from ONNX Runtime's.
    """
    from engine.compile.importers.onnx_reader import read_onnx

    builder, name, session, feeds, inputs, batch = read_onnx(Path(path))
    reference = (lambda xs: [np.asarray(a, dtype=np.float64) for a in
                             session.run(None, {n: x.numpy() for n, x in zip(feeds, xs)})])
    return _finish(builder, name, f"Imported from the ONNX file {Path(path).name}.", reference,
                   _sample(compile_graph_specs(inputs), batch=batch), flat)


def save_imported(project: Project, weights: dict[str, torch.Tensor], out: str | os.PathLike[str]) -> list[str]:
    """Write ``out`` (the project) and ``<stem>.safetensors`` (its weights) beside it.

    Returns:
        One line per file written and a summary line, for the CLI.
    """
    target = Path(out)
    if target.suffix != ".json":
        target = target.with_suffix(".json") if target.suffix else target.with_name(target.name + ".json")
    if not target.parent.is_dir():
        raise ImportProblem(f"cannot write {target}: the folder {target.parent} does not exist")
    weights_path = target.with_suffix(WEIGHTS_SUFFIX)
    save_weights(weights, weights_path, metadata={"format": "neural-canvas-weights", "project": target.name})
    save_project(project, target)
    count = sum(int(t.numel()) for t in weights.values() if t.is_floating_point())
    blocks = f", {len(project.blocks)} block definition(s)" if project.blocks else ""
    return [f"{target} written ({len(project.graph)} nodes{blocks})", f"{weights_path} written ({count:,} values)"]


__all__ = ["IMPORT_TOLERANCE", "ImportProblem", "ImportResult", "import_onnx", "import_torch_module",
           "save_imported"]
