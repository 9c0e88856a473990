"""The PyTorch source export: readable model.py, matching weights, a train.py that runs."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from engine.compile.export import ExportResult, export_model
from engine.compile.export.source import load_source
from engine.graph import Project
from engine.graph.fileformat import save_project
from engine.layers import Params, all_layers, modules
from engine.layers.calls import literal
from engine.layers.modules import CUSTOM_MODULES
from tests.export.conftest import TEMPLATE_IDS, TEMPLATES
from tests.graph_builders import chain, node

Exported = Callable[..., ExportResult]


def import_file(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_model_py_reproduces_the_app(template: Path, exported: Exported) -> None:
    folder = exported(template, "python").paths[0].parent
    text = (folder / "model.py").read_text(encoding="utf-8")
    compile(text, "model.py", "exec")
    for noise in ("getattr_", ";  ", " = None", "torch.nn.functional.", "_tensor_constant"):
        assert noise not in text, noise
    generated = import_file(folder / "model.py", f"generated_{template.stem}")
    model = generated.build_model()
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    model.eval()
    source = load_source(template)
    inputs = source.sample_inputs(batch=4, seed=3)
    with torch.no_grad():
        expected, actual = source.compiled.module(*inputs), model(*inputs)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    assert [name for name, _ in model.named_children()] == [n for n, _ in source.compiled.module.named_children()]


def test_layer_constructor_source_builds_the_same_module() -> None:
    namespace = {"nn": nn, **{name: getattr(modules, name) for name in CUSTOM_MODULES}}
    checked = 0
    for layer in all_layers():
        for example in layer.examples:
            params = Params({**layer.defaults(), **{k: layer.param(k).coerce(v) for k, v in example.params.items()}})
            try:
                call = layer.constructor(params, example.specs())
            except NotImplementedError:
                continue
            built = call.instantiate().eval()
            literal_copy = eval(call.source(concise=False), namespace)  # our own generated source
            assert repr(literal_copy) == repr(built), call.source(concise=False)
            concise = eval(call.source(), namespace).eval()
            concise.load_state_dict(built.state_dict())
            x = [torch.randint(0, s.vocab or 2, (2, *s.dims)) if s.dtype == "long" else torch.randn(2, *s.dims)
                 for s in example.specs()]
            with torch.no_grad():
                torch.testing.assert_close(concise(*x), built(*x), msg=call.source())
            checked += 1
    assert checked > 30


def test_literals_refuse_anything_but_plain_values() -> None:
    assert literal((3, 3)) == "(3, 3)" and literal("a'\"\\") == repr("a'\"\\") and literal(-1.5) == "-1.5"
    for bad in (float("nan"), object(), {"a": 1}, b"bytes"):
        with pytest.raises(ValueError):
            literal(bad)


def test_project_text_cannot_inject_code(tmp_path: Path) -> None:
    graph_project = Project(meta={"name": 'Evil"""\nimport os\nos.system("echo pwned")\n"""',
                                  "description": 'x\\"""; raise SystemExit(3) #\r\n\x00\u2028"""'})
    graph = graph_project.graph
    chain(graph, node("input", "F", shape=[3]), node("linear", "nn", out_features=2), node("relu", "torch"),
          node("linear", "self_", out_features=2), node("output", "math"))
    path = tmp_path / "evil.json"
    save_project(graph_project, path)
    result = export_model(path, "python", tmp_path / "out")
    text = (tmp_path / "out" / "model.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    kinds = {type(statement).__name__ for statement in tree.body}
    assert kinds <= {"Expr", "Import", "ImportFrom", "ClassDef", "FunctionDef"}
    assert isinstance(tree.body[0], ast.Expr) and sum(isinstance(s, ast.Expr) for s in tree.body) == 1
    assert "os.system" in ast.get_docstring(tree)  # the name stays text
    assert result.max_abs_diff == 0.0
    assert "self.nn = nn.Linear(3, 2)" in text and "nn_ = self.nn(" in text and "torch_ = F.relu(nn_, inplace=True)" in text
    assert "\n        F = " not in text and "\n        nn = " not in text


def test_gan_model_py_has_both_parts(exported: Exported, test_projects: dict[str, Path]) -> None:
    folder = exported(test_projects["gan_ring"], "python").paths[0].parent
    generated = import_file(folder / "model.py", "generated_gan")
    assert type(generated.build_model()).__name__ == "Generator"
    assert generated.build_discriminator()(torch.zeros(2, 2)).shape == (2, 1)


def _run(script_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "error::UserWarning"}
    return subprocess.run(list(command), check=False, cwd=script_dir, capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.mark.parametrize("name", ["cnn", "gan_ring", "language_model"])
def test_train_py_runs_one_epoch(name: str, exported: Exported, test_projects: dict[str, Path]) -> None:
    from engine.templates import default_template

    source = default_template() if name == "cnn" else test_projects[name]
    folder = exported(source, "python").paths[0].parent
    result = _run(folder, sys.executable, "train.py", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout and (folder / "trained.safetensors").exists()
    if name == "cnn":
        assert "val accuracy" in result.stdout


def test_train_py_runs_under_torchrun(exported: Exported, test_projects: dict[str, Path]) -> None:
    folder = exported(test_projects["mlp_iris"], "python").paths[0].parent
    result = _run(folder, sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "train.py",
                  "--epochs", "2", "--out", "ddp.safetensors")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch 2/2") == 1  # rank 0 reports
    trained = load_file(str(folder / "ddp.safetensors"))
    assert set(trained) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_train_py_saves_other_datasets_beside_it(exported: Exported, test_projects: dict[str, Path]) -> None:
    result = exported(test_projects["language_model"], "python")
    assert any(p.name == "data.npz" for p in result.paths)
    assert "data.npz" in (result.paths[0].parent / "train.py").read_text(encoding="utf-8")
