"""``export --format onnx --quantize int8|fp16``: smaller models checked by their validation metric."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from engine.compile.export import ExportError, export_model
from engine.compile.export.quantize import QuantizedReport
from tests.search.projects import ROOT


def _train(template: str, out: Path, epochs: int) -> Path:
    subprocess.run([sys.executable, "main.py", "train", str(ROOT / "templates" / template), "--epochs", str(epochs),
                    "--out", str(out), "--quiet"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("cnn_digits.json", tmp_path_factory.mktemp("quantize") / "cnn", epochs=6)


def test_int8_cnn_is_calibrated_three_times_smaller_and_as_accurate(cnn_run: Path, tmp_path: Path) -> None:
    result = export_model(cnn_run, "onnx", tmp_path / "cnn8.onnx", quantize="int8")
    report = result.quantized
    assert report is not None and report.method == "static" and report.metric == "accuracy"
    assert report.float_bytes / report.quantized_bytes >= 3.0
    assert report.float_metric - report.quantized_metric <= 0.5 and report.float_metric > 90
    model = onnx.load(str(tmp_path / "cnn8.onnx"))
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in model.graph.node}
    assert "validation accuracy" in result.message and "x smaller" in result.message
    # uint8 activations, int8 per-channel weights; the convolution reading the input stays float
    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {i.name: i for i in model.graph.initializer}
    first, second = [node for node in model.graph.node if node.op_type == "Conv"]
    assert first.input[0] == model.graph.input[0].name
    assert initializers[first.input[1]].data_type == onnx.TensorProto.FLOAT
    weight = producers[second.input[1]]
    assert weight.op_type == "DequantizeLinear" and initializers[weight.input[0]].data_type == onnx.TensorProto.INT8
    activation = producers[second.input[0]]
    assert activation.op_type == "DequantizeLinear"
    assert initializers[activation.input[2]].data_type == onnx.TensorProto.UINT8  # its zero point


def test_fp16_halves_the_weights(cnn_run: Path, tmp_path: Path) -> None:
    report = export_model(cnn_run, "onnx", tmp_path / "cnn16.onnx", quantize="fp16").quantized
    assert report is not None and report.method == "fp16"
    assert report.float_bytes / report.quantized_bytes > 1.7
    assert abs(report.float_metric - report.quantized_metric) <= 0.5


def test_a_linear_network_is_quantized_dynamically(tmp_path: Path) -> None:
    run = _train("fnn_spirals.json", tmp_path / "mlp", epochs=10)
    report = export_model(run, "onnx", tmp_path / "mlp8.onnx", quantize="int8").quantized
    assert report is not None and report.method == "dynamic" and report.quantized_bytes < report.float_bytes


@pytest.mark.parametrize("source, fmt, message", [
    ("project", "onnx", "give a trained run folder, not a project file"),
    ("run", "pt2", "only ONNX models are quantized"),
])
def test_what_cannot_be_quantized_says_why(cnn_run: Path, tmp_path: Path, source: str, fmt: str,
                                           message: str) -> None:
    path = ROOT / "templates" / "cnn_digits.json" if source == "project" else cnn_run
    with pytest.raises(ExportError, match=message):
        export_model(path, fmt, tmp_path / "x", quantize="int8")


def test_a_quantizer_failure_falls_back_to_float_only_when_asked(cnn_run: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.compile.export.quantized_export as quantized_export

    def refuse(*args: object, **kwargs: object) -> QuantizedReport:
        raise ExportError("int8: ONNX Runtime cannot quantize this model (static): unsupported op Foo")

    monkeypatch.setattr(quantized_export, "quantize", refuse)
    with pytest.raises(ExportError, match="unsupported op Foo; add --float-fallback"):
        export_model(cnn_run, "onnx", tmp_path / "a.onnx", quantize="int8")
    result = export_model(cnn_run, "onnx", tmp_path / "b.onnx", quantize="int8", float_fallback=True)
    assert "the float model was written instead" in result.message and result.quantized is None
    assert (tmp_path / "b.onnx").exists()


def test_an_accuracy_drop_beyond_the_limit_is_reported() -> None:
    report = QuantizedReport("int8", "static", "accuracy", 97.5, 95.0, 4000, 1000, 0.01, 0.01)
    assert report.problem() == ("int8: validation accuracy drops 2.50 points (97.50% -> 95.00%), more than the 0.5 "
                                "allowed")
    fine = QuantizedReport("int8", "dynamic", "mae", 0.10, 0.104, 4000, 1000, 0.01, 0.01)
    assert fine.problem() is None
    worse = QuantizedReport("int8", "dynamic", "mae", 0.10, 0.2, 4000, 1000, 0.01, 0.01)
    assert "validation mae grows from 0.1 to 0.2" in (worse.problem() or "")


def test_the_cli_prints_the_table(cnn_run: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "main.py", "export", str(cnn_run), "--format", "onnx", "--quantize",
                             "int8", "--out", str(tmp_path / "m.onnx")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "int8 (static): file size" in result.stdout and "latency, batch 1" in result.stdout
    assert result.stderr == ""


def test_an_operator_onnx_runtime_cannot_run_converted_is_named_and_kept_in_float(tmp_path: Path) -> None:
    """ONNX Runtime 1.32 segfaults building a session for the fp16 copy of the RNN template (its
    Transpose): the check runs in a child process, so the export survives, finds the operator type
    whose float form makes the model run, keeps it in float and says so."""
    run = _train("rnn_digits_rows.json", tmp_path / "rnn", epochs=1)
    out = tmp_path / "rnn16.onnx"
    result = export_model(run, "onnx", out, quantize="fp16")
    report = result.quantized
    assert report is not None and out.exists() and abs(report.float_metric - report.quantized_metric) <= 0.5
    if report.kept_float:  # ONNX Runtime 1.32; a newer one may run every fp16 operator
        assert report.kept_float == ("Transpose",)
        assert "fp16: kept in float: Transpose (ONNX Runtime cannot run its fp16 form)" in result.message
        kinds = {(n.op_type, n.output[0]) for n in onnx.load(str(out)).graph.node}
        assert any(op == "Transpose" for op, _ in kinds) and any(op == "Cast" for op, _ in kinds)


def test_a_model_onnx_runtime_cannot_run_either_way_is_one_line(cnn_run: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.compile.export.quantize as quantize

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("ONNX Runtime crashed while loading or running the model")

    monkeypatch.setattr(quantize, "measure_apart", crash)
    out = tmp_path / "cnn16.onnx"
    with pytest.raises(ExportError) as error:
        export_model(cnn_run, "onnx", out, quantize="fp16")
    message = str(error.value)
    assert message.startswith("fp16: the fp16 model cannot be checked: ONNX Runtime crashed")
    assert "keeping any one operator type in float does not help" in message and "--float-fallback" in message
    assert "\n" not in message and not out.exists()


def test_the_culprit_search_tries_the_types_the_complaint_names_first(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.compile.export.quantize_write as quantize_write

    run = _train("fnn_spirals.json", tmp_path / "mlp", epochs=1)
    float_path = tmp_path / "mlp.onnx"
    export_model(run, "onnx", float_path)
    types = quantize_write.convertible_types(float_path, "fp16")
    assert {"Gemm", "Relu"} <= set(types) and types[0] != "Relu"
    kept: list[tuple[str, ...]] = []

    def write(float_path: Path, out: Path, method: str, x: object, name: str, keep_float: tuple[str, ...]) -> None:
        kept.append(tuple(keep_float))
        out.write_bytes(b"attempt")

    monkeypatch.setattr(quantize_write, "write_converted", write)
    find = quantize_write.find_float_culprit
    assert find(float_path, "fp16", None, "x", lambda path: kept[-1] == ("Relu",), tmp_path,
                "Could not find an implementation for Relu(14) node with name '/relu/Relu'") == "Relu"
    assert kept == [("Relu",)]
    kept.clear()
    said: list[str] = []
    assert find(float_path, "fp16", None, "x", lambda path: False, tmp_path, progress=said.append) is None
    assert [k[0] for k in kept] == types and not list(tmp_path.glob("keep-*.onnx"))
    # each attempt is told first, in one line naming the type and the count (the search takes seconds)
    assert len(said) == len(types) and f"{types[0]} kept in float (attempt 1 of {len(types)})" in said[0]
    assert all("\n" not in line for line in said)
