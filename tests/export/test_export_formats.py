"""Every template and test project exports in every format and passes its self-check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
import torch

from engine.compile.export import FORMATS, TOLERANCE, ExportError, ExportResult, export_model
from engine.compile.export.source import load_source
from engine.compile.export.selfcheck import SelfCheck, require_within
from tests.export.conftest import TEMPLATE_IDS, TEMPLATES

Exported = Callable[..., ExportResult]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_every_template_exports_and_checks_itself(template: Path, fmt: str, exported: Exported) -> None:
    result = exported(template, fmt)
    assert 0.0 <= result.max_abs_diff <= result.tolerance
    assert TOLERANCE <= result.tolerance < 2 * TOLERANCE  # outputs of these templates stay below 10
    assert all(path.exists() for path in result.paths)
    assert result.message.splitlines()[-1].startswith(f"{fmt}: self-check max |diff| ")
    assert len(result.message.splitlines()) == len(result.paths) + 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["image_zoo", "sequence_zoo", "gan_ring", "language_model"])
def test_every_layer_type_exports(name: str, fmt: str, exported: Exported, test_projects: dict[str, Path]) -> None:
    result = exported(test_projects[name], fmt)
    assert result.max_abs_diff <= TOLERANCE


def test_onnx_has_a_dynamic_batch_and_runs_other_batch_sizes(exported: Exported,
                                                              test_projects: dict[str, Path]) -> None:
    import onnxruntime

    path = exported(test_projects["image_zoo"], "onnx").paths[0]
    model = onnx.load(str(path))
    assert not model.graph.initializer or all(not t.HasField("data_location") or t.data_location == 0
                                             for t in model.graph.initializer)  # weights inside the file
    assert model.graph.input[0].name == "image"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        (out,) = session.run(None, {"image": np.zeros((batch, 1, 8, 8), np.float32)})
        assert out.shape == (batch, 10)


def test_pt2_reloads_with_a_dynamic_batch(exported: Exported, test_projects: dict[str, Path]) -> None:
    path = exported(test_projects["sequence_zoo"], "pt2").paths[0]
    program = torch.export.load(str(path))
    source = load_source(test_projects["sequence_zoo"])
    for batch in (1, 7):
        x = torch.randn(batch, 8, 8)
        torch.testing.assert_close(program.module()(x), source.compiled.module(x))


def test_gan_exports_generator_or_discriminator(exported: Exported, test_projects: dict[str, Path]) -> None:
    generator = exported(test_projects["gan_ring"], "onnx")
    discriminator = exported(test_projects["gan_ring"], "onnx", discriminator=True)
    assert (generator.part, discriminator.part) == ("generator", "discriminator")
    inputs = [[i.name for i in onnx.load(str(r.paths[0])).graph.input] for r in (generator, discriminator)]
    assert inputs == [["z"], ["points"]]
    assert "(generator)" in generator.message.splitlines()[0]


def test_language_model_exports_its_vocabulary(exported: Exported, test_projects: dict[str, Path]) -> None:
    result = exported(test_projects["language_model"], "onnx")
    vocab_file = next(p for p in result.paths if p.name.endswith(".vocab.json"))
    vocabulary = json.loads(vocab_file.read_text(encoding="utf-8"))
    props = {p.key: p.value for p in onnx.load(str(result.paths[0])).metadata_props}
    assert json.loads(props["vocabulary"]) == vocabulary and len(vocabulary) > 20
    folder = exported(test_projects["language_model"], "python").paths[0].parent
    assert json.loads((folder / "vocab.json").read_text(encoding="utf-8")) == vocabulary


def test_safetensors_copy_opens_with_its_weights(exported: Exported, test_projects: dict[str, Path]) -> None:
    result = exported(test_projects["mlp_iris"], "safetensors")
    weights, project_copy = result.paths[:2]
    assert project_copy.suffix == ".json" and weights.suffix == ".safetensors"
    again = load_source(project_copy)
    assert again.origin == f"weights from {weights.name}"
    original = load_source(test_projects["mlp_iris"])
    x = torch.randn(4, 4)
    torch.testing.assert_close(again.compiled.module(x), original.compiled.module(x))


def test_a_run_directory_exports_its_trained_weights(tmp_path: Path, test_projects: dict[str, Path]) -> None:
    from engine.compile.weights import save_weights
    from engine.graph.fileformat import load_project, save_project

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    save_project(load_project(test_projects["mlp_iris"]), run / "project.json")
    trained = {k: torch.full_like(v, 0.5) for k, v in load_source(test_projects["mlp_iris"]).weights.items()}
    save_weights(trained, run / "model.safetensors")
    result = export_model(run, "pt2", tmp_path / "trained.pt2")
    assert result.origin == "trained run"
    module = torch.export.load(str(result.paths[0])).module()
    assert float(module(torch.zeros(1, 4)).detach()[0, 0]) == pytest.approx(0.5 * 16 * 0.5 + 0.5)


def test_self_check_allows_float32_rounding_of_large_outputs() -> None:
    """MNASNet's outputs reach 4e3: ONNX Runtime's float32 order moves them by 3.7e-3 (1e-6 of
    them), within 1e-4 + 1e-5 x 4e3; a difference of 1e-4 of them is still an error."""
    assert require_within("onnx", SelfCheck(3.7e-3, 4e3)) == pytest.approx(0.0401)
    with pytest.raises(ExportError, match=r"above the tolerance 0.04 \(0.0001 plus 1e-05 of the largest output, "
                                          r"4e\+03\)"):
        require_within("onnx", SelfCheck(0.4, 4e3))


def test_self_check_above_tolerance_is_an_error(tmp_path: Path, test_projects: dict[str, Path]) -> None:
    with pytest.raises(ExportError, match=r"^pt2: self-check failed: max \|diff\| .* above the tolerance -1"):
        export_model(test_projects["mlp_iris"], "pt2", tmp_path / "m.pt2", tolerance=-1.0)


def test_untrained_export_is_seeded(tmp_path: Path, test_projects: dict[str, Path]) -> None:
    first = load_source(test_projects["mlp_iris"]).weights
    second = load_source(test_projects["mlp_iris"]).weights
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_project_in_memory_exports_with_given_weights(tmp_path: Path, test_projects: dict[str, Path]) -> None:
    from engine.graph.fileformat import load_project

    project = load_project(test_projects["mlp_iris"])
    zeros = {k: torch.zeros_like(v) for k, v in load_source(test_projects["mlp_iris"]).weights.items()}
    result = export_model(project, "safetensors", tmp_path / "mem.safetensors", weights=zeros)
    assert result.origin == "weights in memory" and result.max_abs_diff == 0.0
    reopened = load_source(tmp_path / "mem.json")
    assert all(float(t.abs().sum()) == 0.0 for t in reopened.weights.values())
