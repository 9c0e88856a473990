"""Issue #13: every architecture of the classic classification zoo imports exactly.

Per model of :data:`tests.zoo.ZOO` (the reduced variants; full sizes only where noted):

- ``import-torch`` (torch.fx) gives a valid project with the module's parameter count and its
  weights; the compiled project computes the module's outputs within 1e-5 in eval mode, and in
  train mode where the model's training forward differs (dropout, stochastic depth and
  batch-norm batch statistics draw the same random numbers in the same order, so a seeded
  forward matches; batch-norm running statistics and gradients match too);
- node ids follow module paths and every node records its module's path as its group;
- the imported project exports to onnx, pt2, safetensors and python, each passing its
  self-check;
- ``import-onnx`` of the module exported by ``torch.onnx.export(dynamo=True)``, with a fixed
  and with a dynamic batch axis, computes the module's outputs within 1e-4 (BatchNorm is folded
  into the convolutions by the exporter, so only outputs are compared there).

The reference's batch-norm statistics and constant-initialised tensors (norm scales, biases,
LayerScale's 1e-6, ViT's zero class token) are randomised first: at their initial values a
mapping that dropped or swapped them would go unnoticed.

ONNX and pt2 exports and ONNX imports cost seconds per model: all but ResNet-18's are ``slow``,
as are the safetensors and python exports of models whose layer types others already cover,
and the full-size imports other than ResNet-50, MobileNet v2 and EfficientNet-B0.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

from engine.compile import compile_graph
from engine.compile.export import ExportError, export_model
from engine.compile.export.common import quiet_export
from engine.compile.importers import ImportProblem, ImportResult, import_onnx, import_torch_module
from engine.compile.weights import apply_weights, save_weights
from engine.shapes import analyze
from tests.zoo import ZOO, ZOO_BY_NAME, ZooEntry

#: Why a model does not import yet (each an xfail, strict: it fails the day the gap closes).
TORCH_GAPS: dict[str, str] = {}
SWIN_PAD = ("F.pad in ShiftedWindowAttention and PatchMerging is exported as ONNX Pad (all pads zero here), "
            "which has no canvas mapping (Pad 11x); the ONNX form of shifted window attention is not recognized")
#: ONNX imports that fail, by (model, dynamic batch).
ONNX_GAPS: dict[tuple[str, bool], str] = {
    ("swin_t", False): SWIN_PAD,
    ("swin_t", True): SWIN_PAD,
}
#: Exports that fail their self-check, by (model, format).
EXPORT_GAPS: dict[tuple[str, str], str] = {}
#: The models whose slower checks (ONNX and pt2 export, ONNX import) run without ``-m slow``.
FAST = {"resnet18"}
#: The models whose safetensors and python exports run without ``-m slow``: together they use
#: every layer type of the zoo (checked below); ``-m slow`` exports every model.
FAST_EXPORT = FAST | {"vit_b_16", "inception_v3", "efficientnet_b0", "shufflenet_v2_x0_5", "mobilenet_v3_large",
                      "convnext_tiny", "swin_t", "squeezenet1_0", "mobilenet_v2"}
#: Full-size models imported without ``-m slow`` (about a second each on two cores; ViT-B/16 at 224 x 224,
#: VGG and Wide ResNet take 5 to 10 s).
FULL_FAST = {"resnet50", "mobilenet_v2", "efficientnet_b0"}
FORMATS = ("onnx", "pt2", "safetensors", "python")
SLOW_FORMATS = {"onnx", "pt2"}
BATCH = torch.export.Dim("batch", min=1, max=1024)


def spec_of(entry: ZooEntry) -> str:
    return f"{entry.builder.__module__}:{entry.builder.__name__}"


def cases(entries: list[ZooEntry], gaps: dict[str, str], slow: Callable[[ZooEntry], bool] = lambda e: False,
          ) -> list:
    """One pytest.param per entry: an xfail with its reason where ``gaps`` names it."""
    params = []
    for entry in entries:
        marks = [pytest.mark.slow] if slow(entry) else []
        if entry.name in gaps:
            marks.append(pytest.mark.xfail(reason=gaps[entry.name], strict=True))
        params.append(pytest.param(entry, id=entry.name, marks=marks))
    return params


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give batch norms non-trivial statistics and constant-initialised tensors random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(3)
        for name, tensor in model.named_parameters():
            first = tensor.flatten()[0]
            if tensor.numel() < 2 or not bool((tensor == first).all()):
                continue
            if name.endswith("layer_scale"):  # 1e-6 would hide the whole residual branch
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.4 + 0.1)
            elif float(first) == 0.0:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            else:
                tensor.mul_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model


def batch(entry: ZooEntry, size: int = 2, seed: int = 5) -> torch.Tensor:
    return torch.randn(size, *entry.reduced_input_shape, generator=torch.Generator().manual_seed(seed))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class Imported:
    reference: nn.Module
    result: ImportResult


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[ZooEntry], Imported]:
    """``imported(entry)``: the randomised reduced reference and its torch import, made once."""
    cache: dict[str, Imported] = {}
    folder = tmp_path_factory.mktemp("zoo_weights")

    def get(entry: ZooEntry) -> Imported:
        if entry.name not in cache:
            torch.manual_seed(0)
            reference = randomize(entry.build_reduced()).eval()
            weights = folder / f"{entry.name}.safetensors"
            save_weights(reference.state_dict(), weights)
            result = import_torch_module(spec_of(entry), entry.reduced_kwargs, entry.reduced_input_shape, weights)
            cache[entry.name] = Imported(reference, result)
        return cache[entry.name]

    return get


def compiled_module(result: ImportResult) -> nn.Module:
    module = compile_graph(result.project.graph).module
    apply_weights(module, result.weights, "imported")
    return module


def same_tensors(compiled: nn.Module, reference: nn.Module) -> dict[str, str]:
    """Each floating-point tensor of the compiled state dict -> the reference's tensor of equal value."""
    def fingerprint(tensor: torch.Tensor) -> tuple:
        return tuple(tensor.shape), float(tensor.double().sum()), float(tensor.flatten()[0])

    candidates: dict[tuple, list[tuple[str, torch.Tensor]]] = {}
    for key, tensor in reference.state_dict().items():
        if tensor.is_floating_point():
            candidates.setdefault(fingerprint(tensor), []).append((key, tensor))
    mapping = {}
    for key, tensor in compiled.state_dict().items():
        if not tensor.is_floating_point():
            continue
        equal = [k for k, v in candidates.get(fingerprint(tensor), []) if torch.equal(v, tensor)]
        assert len(equal) == 1, f"{key}: {len(equal)} tensors of the reference hold its values"
        mapping[key] = equal[0]
    assert len(set(mapping.values())) == len(mapping)
    return mapping


# ----------------------------------------------------------------------------- torch.fx import
@pytest.mark.parametrize("entry", cases(ZOO, TORCH_GAPS))
def test_torch_import_is_exact_in_eval_mode(entry: ZooEntry, imported: Callable[[ZooEntry], Imported]) -> None:
    got = imported(entry)
    analysis = analyze(got.result.project.graph)
    assert analysis.valid, [d.message for d in analysis.errors]
    assert analysis.parameters == count_parameters(got.reference)
    assert got.result.max_abs_diff <= 1e-5
    module = compiled_module(got.result).eval()
    assert count_parameters(module) == count_parameters(got.reference)
    same_tensors(module, got.reference)  # every imported tensor is one of the module's
    x = batch(entry)
    with torch.no_grad():
        torch.testing.assert_close(module(x), got.reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("entry", cases(ZOO, TORCH_GAPS))
def test_torch_import_is_exact_in_train_mode(entry: ZooEntry, imported: Callable[[ZooEntry], Imported]) -> None:
    """Seeded training forwards agree (ViT-B/16, whose training forward is its eval forward, too),
    and so do the gradients and batch-norm running statistics they leave."""
    got = imported(entry)
    reference = copy.deepcopy(got.reference).train()
    module = compiled_module(got.result).train()
    mapping = same_tensors(module, reference)
    x = batch(entry)
    weight = torch.randn(x.shape[0], entry.reduced_num_classes, generator=torch.Generator().manual_seed(9))
    outputs = []
    for model in (reference, module):
        torch.manual_seed(7)
        out = model(x)
        (out * weight).sum().backward()
        outputs.append(out.detach())
    if entry.train_differs:
        with torch.no_grad():
            assert not torch.equal(outputs[0], got.reference.eval()(x))  # the training forward was exercised
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=1e-5)
    ref_state, state = reference.state_dict(), module.state_dict()
    ref_params, params = dict(reference.named_parameters()), dict(module.named_parameters())
    for key, ref_key in mapping.items():
        if key in params:
            torch.testing.assert_close(params[key].grad, ref_params[ref_key].grad, rtol=1e-4, atol=1e-5,
                                       msg=lambda m, k=key: f"gradient of {k}: {m}")
        else:  # batch-norm running statistics, updated by the forward
            torch.testing.assert_close(state[key], ref_state[ref_key], rtol=0, atol=1e-6,
                                       msg=lambda m, k=key: f"{k}: {m}")
    counters = sorted(int(v) for k, v in state.items() if k.endswith("num_batches_tracked"))
    assert counters == sorted(int(v) for k, v in ref_state.items() if k.endswith("num_batches_tracked"))


def _sanitized(path: str) -> str:
    return re.sub(r"\W", "_", path)


@pytest.mark.parametrize("entry", cases(ZOO, TORCH_GAPS))
def test_node_ids_follow_module_paths(entry: ZooEntry, imported: Callable[[ZooEntry], Imported]) -> None:
    """Each module with weights is a node named after its path (or inside one: attention's
    out_proj), and the node's group is its parent module's path."""
    nodes = {node.id: node for node in imported(entry).result.project.graph}
    checked = 0
    for path, module in imported(entry).reference.named_modules():
        if not path or list(module.children()) or not list(module.parameters(recurse=False)):
            continue
        parts = path.split(".")
        owner = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                      if _sanitized(".".join(parts[:n])) in nodes), None)
        assert owner is not None, f"no node for the module {path}"
        assert nodes[_sanitized(owner)].group == owner.rpartition(".")[0], owner
        checked += 1
    assert checked >= 5


#: AdaptiveAvgPool2d(1) at the end of ``classifier`` and the ``torch.flatten`` after it in
#: SqueezeNet.forward become one node, named after the flatten (``flatten``, top level) but
#: grouped with the pool (``classifier``).
MERGED_GROUP = ("pooling and flatten merged into one node: id 'flatten' from the top-level torch.flatten, "
                "group 'classifier' from the AdaptiveAvgPool2d")


@pytest.mark.parametrize("entry", cases(ZOO, {**TORCH_GAPS, "squeezenet1_0": MERGED_GROUP,
                                              "squeezenet1_1": MERGED_GROUP}))
def test_node_ids_start_with_their_group(entry: ZooEntry, imported: Callable[[ZooEntry], Imported]) -> None:
    """Operations in a module's forward are named after the module: id and group agree."""
    graph = imported(entry).result.project.graph
    astray = [(node.id, node.group) for node in graph
              if node.group and not node.id.startswith(_sanitized(node.group) + "_")]
    assert not astray


def test_resnet_nodes_carry_their_blocks(imported: Callable[[ZooEntry], Imported]) -> None:
    nodes = {node.id: node for node in imported(ZOO_BY_NAME["resnet18"]).result.project.graph}
    assert nodes["layer1_0_conv1"].group == "layer1.0"
    assert nodes["layer1_0_add"].group == "layer1.0"  # the residual sum in BasicBlock.forward
    assert nodes["layer3_0_downsample_0"].group == "layer3.0.downsample"
    assert {nodes[i].group for i in nodes if i.startswith("layer4_1_")} == {"layer4.1"}


# ----------------------------------------------------------------------------- full sizes
@pytest.mark.parametrize("entry", cases(ZOO, TORCH_GAPS, slow=lambda e: e.name not in FULL_FAST))
def test_full_model_imports_with_its_published_parameter_count(entry: ZooEntry) -> None:
    """At the published width; at a small image where the model allows (the count does not
    depend on the image size after adaptive pooling), which makes the trace's forwards cheap."""
    hw = max(entry.min_hw, 32)
    shape = entry.input_shape if entry.fixed_size else (entry.input_shape[0], hw, hw)
    torch.manual_seed(0)
    result = import_torch_module(spec_of(entry), entry.full_kwargs, shape)
    analysis = analyze(result.project.graph)
    assert analysis.valid
    assert analysis.parameters == entry.params
    assert result.max_abs_diff <= 1e-4


# ----------------------------------------------------------------------------- export
def export_cases() -> list:
    params = []
    for entry in ZOO:
        for fmt in FORMATS:
            fast = entry.name in (FAST if fmt in SLOW_FORMATS else FAST_EXPORT)
            marks = [] if fast else [pytest.mark.slow]
            if entry.name in TORCH_GAPS:
                marks.append(pytest.mark.xfail(reason=TORCH_GAPS[entry.name], strict=True))
            elif (entry.name, fmt) in EXPORT_GAPS:
                marks.append(pytest.mark.xfail(reason=EXPORT_GAPS[entry.name, fmt], raises=ExportError, strict=True))
            params.append(pytest.param(entry, fmt, id=f"{entry.name}-{fmt}", marks=marks))
    return params


@pytest.mark.parametrize(("entry", "fmt"), export_cases())
def test_imported_model_exports(entry: ZooEntry, fmt: str, imported: Callable[[ZooEntry], Imported],
                                tmp_path: Path) -> None:
    result = imported(entry).result
    suffix = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}[fmt]
    exported = export_model(result.project, fmt, tmp_path / f"{entry.name}{suffix}", weights=result.weights,
                            base_dir=tmp_path)
    assert exported.max_abs_diff <= exported.tolerance
    assert all(path.exists() for path in exported.paths)


def test_fast_exports_use_every_layer_type_of_the_zoo(imported: Callable[[ZooEntry], Imported]) -> None:
    def types(entry: ZooEntry) -> set[str]:
        return {node.type_id for node in imported(entry).result.project.graph}

    every = set().union(*(types(entry) for entry in ZOO if entry.name not in TORCH_GAPS))
    covered = set().union(*(types(ZOO_BY_NAME[name]) for name in FAST_EXPORT if name not in TORCH_GAPS))
    assert every <= covered, f"add a model using {sorted(every - covered)} to FAST_EXPORT"


# ----------------------------------------------------------------------------- ONNX import
def onnx_cases() -> list:
    params = []
    for entry in ZOO:
        for dynamic in (False, True):
            marks = [] if entry.name in FAST else [pytest.mark.slow]
            reason = ONNX_GAPS.get((entry.name, dynamic))
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, raises=ImportProblem, strict=True))
            kind = "dynamic_batch" if dynamic else "fixed_batch"
            params.append(pytest.param(entry, dynamic, id=f"{entry.name}-{kind}", marks=marks))
    return params


def assert_within(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    """|got - expected| <= tolerance + 1e-5 * the largest |expected| (the importer's own bound:
    float32 arithmetic in another order, ONNX Runtime's, moves outputs of size 100 by about 1e-4)."""
    assert got.shape == expected.shape
    allowed = tolerance + 1e-5 * expected.abs().max().item()
    diff = (got - expected).abs().max().item()
    assert diff <= allowed, f"max |diff| {diff:.2e} above {allowed:.2e}"


def onnx_file(reference: nn.Module, x: torch.Tensor, path: Path, dynamic: bool) -> Path:
    extra = {"dynamic_shapes": ({0: BATCH},)} if dynamic else {}
    with quiet_export(), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(reference, (x,), str(path), dynamo=True, **extra)
    return path


def check_onnx_import(entry: ZooEntry, dynamic: bool, shape: tuple[int, int, int], path: Path) -> None:
    torch.manual_seed(0)
    reference = randomize(entry.build_reduced()).eval()
    sample = torch.randn(2, *shape, generator=torch.Generator().manual_seed(3))
    result = import_onnx(onnx_file(reference, sample, path, dynamic))
    with torch.no_grad():
        largest = reference(sample).abs().max().item()
    assert result.max_abs_diff <= 1e-4 + 1e-5 * largest
    analysis = analyze(result.project.graph)
    assert analysis.valid, [d.message for d in analysis.errors]
    module = compiled_module(result).eval()
    for size in [1, 2, 5] if dynamic else [2]:
        x = torch.randn(size, *shape, generator=torch.Generator().manual_seed(size))
        with torch.no_grad():
            assert_within(module(x), reference(x), 1e-4)


@pytest.mark.parametrize(("entry", "dynamic"), onnx_cases())
def test_onnx_import_computes_the_same(entry: ZooEntry, dynamic: bool, tmp_path: Path) -> None:
    check_onnx_import(entry, dynamic, entry.reduced_input_shape, tmp_path / f"{entry.name}.onnx")


@pytest.mark.slow
def test_onnx_import_of_convnext_with_a_larger_last_stage(tmp_path: Path) -> None:
    """At 64 x 64 ConvNeXt's last stage is 2 x 2 (1 x 1 at the reduced size): the dynamic batch
    export then computes the as_strided indices, as it does for the published model at 224."""
    check_onnx_import(ZOO_BY_NAME["convnext_tiny"], True, (3, 64, 64), tmp_path / "convnext.onnx")
