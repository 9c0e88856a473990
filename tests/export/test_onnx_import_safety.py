"""import-onnx on what real files hold: fixed batch sizes, external data, damaged constants.

Each is a one-line refusal or a correct import, never an internal error.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from engine.compile.export.common import quiet_export
from engine.compile.importers import ImportProblem, import_onnx
from tests.conftest import ROOT


class SmallCnn(torch.nn.Module):
    """Convolution, ReLU, a reshape that names the batch (``x.reshape(x.shape[0], -1)``), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.reshape(x.shape[0], -1))


class Mlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(5, 16), torch.nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


def export_fixed(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``torch.onnx.export``'s default: every dimension fixed at the example's sizes."""
    with quiet_export(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=True)
    return path


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("model, sample", [(SmallCnn, (1, 8, 8)), (Mlp, (5,))], ids=["cnn", "mlp"])
def test_fixed_batch_models_import_as_batch_free_graphs(tmp_path: Path, model: type, sample: tuple[int, ...],
                                                         batch: int) -> None:
    torch.manual_seed(0)
    original = model()
    path = export_fixed(original, torch.randn(batch, *sample), tmp_path / "fixed.onnx")
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == batch
    result = import_onnx(path)
    assert result.max_abs_diff <= 1e-5
    from engine.compile import compile_graph
    from engine.compile.weights import apply_weights

    compiled = compile_graph(result.project.graph)
    apply_weights(compiled.module, result.weights, "fixed.onnx")
    x = torch.randn(7, *sample)  # any batch size, not only the exported one
    with torch.no_grad():
        assert torch.allclose(compiled.module.eval()(x), original(x), atol=1e-5)


def _model_with_initializer(tensor: onnx.TensorProto) -> onnx.ModelProto:
    node = helper.make_node("MatMul", ["x", tensor.name], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_external_data_outside_the_models_folder_is_refused_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    folder = tmp_path / "models"
    folder.mkdir()
    tensor = onnx.TensorProto()
    tensor.name, tensor.data_type = "w", TensorProto.FLOAT
    tensor.dims.extend([4, 2])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "32")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path = folder / "escape.onnx"
    onnx.save(_model_with_initializer(tensor), str(path))
    with pytest.raises(ImportProblem, match=r"constant w keeps its data at '\.\./secret\.bin', outside the model's "
                                            r"folder: refused \(nothing was read\)"):
        import_onnx(path)
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "import-onnx", str(path), "--out",
                             str(tmp_path / "x.json")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "outside the model's folder" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.json").exists()


def test_external_data_beside_the_model_is_read(tmp_path: Path) -> None:
    values = np.arange(8, dtype=np.float32).reshape(4, 2)
    model = _model_with_initializer(numpy_helper.from_array(values, "w"))
    onnx.save(model, str(tmp_path / "beside.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="beside.data", size_threshold=0)
    assert (tmp_path / "beside.data").is_file()
    from engine.compile.importers.onnx_reader import _constants

    model = onnx.load(str(tmp_path / "beside.onnx"), load_external_data=False)
    assert model.graph.initializer[0].data_location == TensorProto.EXTERNAL
    assert np.array_equal(_constants(model.graph.initializer, tmp_path / "beside.onnx")["w"], values)


@pytest.mark.parametrize("dims, raw, message", [
    ([10**12, 10**12], b"", "impossible dims"),
    ([4, 2], b"\x00" * 12, "declares dims [4, 2] (32 bytes) but holds 12 bytes"),
])
def test_damaged_constants_are_refused_by_name(tmp_path: Path, dims: list[int], raw: bytes, message: str) -> None:
    tensor = onnx.TensorProto()
    tensor.name, tensor.data_type = "w", TensorProto.FLOAT
    tensor.dims.extend(dims)
    tensor.raw_data = raw
    path = tmp_path / "damaged.onnx"
    onnx.save(_model_with_initializer(tensor), str(path))
    with pytest.raises(ImportProblem, match=f"constant w.*{message}".replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        import_onnx(path)
