"""int8 variants of a convolution template (default: the CNN) against its float model: batch-1 CPU latency, one thread.

Issue #18 asks for int8 latency no worse than float on the CNN template. The export uses
ONNX Runtime's static QDQ quantization (int8 activations and per-channel int8 weights); this
script measures the other ways ONNX Runtime can quantize the same trained model, to show
whether any of them would meet the target: QDQ with uint8 activations, the QOperator format
(QLinearConv / QGemm kernels), leaving the first convolution or every convolution in float,
and dynamic quantization. Every session is built once and timed in interleaved rounds (each
round: 200 warm-up runs, then the median of 300), and the result is the median over rounds.

Usage::

    python bench/quantize_variants.py [--template cnn_digits] [--rounds 7] [--epochs 15] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_machine, format_table, machine_info, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _variants(first_conv: str) -> dict[str, dict[str, Any]]:
    from onnxruntime.quantization import QuantFormat, QuantType

    qdq, qop = QuantFormat.QDQ, QuantFormat.QOperator  # the export's: QDQ u8/s8 with the first convolution float
    s8, u8 = QuantType.QInt8, QuantType.QUInt8
    return {
        "QDQ s8 act, s8 per-channel weights": dict(quant_format=qdq, per_channel=True,
                                                                  activation_type=s8, weight_type=s8),
        "QDQ u8 act, s8 per-channel weights": dict(quant_format=qdq, per_channel=True, activation_type=u8,
                                                   weight_type=s8),
        "QOperator u8 act, s8 weights": dict(quant_format=qop, activation_type=u8, weight_type=s8),
        "QOperator u8 act, u8 weights": dict(quant_format=qop, activation_type=u8, weight_type=u8),
        "QDQ s8/s8, first convolution float": dict(quant_format=qdq, per_channel=True, activation_type=s8,
                                                   weight_type=s8, nodes_to_exclude=[first_conv]),
        "QDQ u8/s8, first convolution float (the export's)": dict(quant_format=qdq, per_channel=True, activation_type=u8,
                                                   weight_type=s8, nodes_to_exclude=[first_conv]),
        "QOperator u8/s8, first convolution float": dict(quant_format=qop, activation_type=u8, weight_type=s8,
                                                         nodes_to_exclude=[first_conv]),
        "QDQ s8/s8, convolutions float (Gemm only)": dict(quant_format=qdq, activation_type=s8, weight_type=s8,
                                                          op_types_to_quantize=["Gemm", "MatMul"]),
    }


def _session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (medians)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--template", default="cnn_digits", help="template stem (default cnn_digits)")
    parser.add_argument("--out", help="results JSON (default bench/results/quantize_variants.json)")
    args = parser.parse_args()
    import numpy as np
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from engine.compile.export import export_model
    from engine.compile.export.quantize_write import _Calibration
    from engine.compile.export.run_samples import run_samples

    info = machine_info(with_torch=True)
    print(describe_machine(info))
    with tempfile.TemporaryDirectory(prefix="bench-quantize-variants-") as tmp:
        folder = Path(tmp)
        run = folder / "cnn"
        subprocess.run([sys.executable, "main.py", "train", str(ROOT / "templates" / f"{args.template}.json"), "--epochs",
                        str(args.epochs), "--out", str(run), "--quiet"], cwd=ROOT, check=True, capture_output=True)
        float_path, prepared = folder / "float.onnx", folder / "prepared.onnx"
        export_model(run, "onnx", float_path)
        quant_pre_process(str(float_path), str(prepared))
        samples = run_samples(run)
        name = onnx.load(str(float_path)).graph.input[0].name
        first_conv = next(n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv")
        paths = {"float (the export's float model)": float_path}
        for label, options in _variants(first_conv).items():
            paths[label] = folder / f"v{len(paths)}.onnx"
            quantize_static(str(prepared), str(paths[label]), _Calibration(samples.calibration_x, name), **options)
        paths["dynamic int8"] = folder / "dynamic.onnx"
        quantize_dynamic(str(prepared), str(paths["dynamic int8"]), weight_type=QuantType.QInt8)
        sessions = {label: _session(path) for label, path in paths.items()}
        accuracy = {label: float((s.run(None, {name: samples.val_x})[0].argmax(1) == samples.val_y).mean() * 100)
                    for label, s in sessions.items()}
        one = np.ascontiguousarray(samples.val_x[:1])
        timings: dict[str, list[float]] = {label: [] for label in sessions}
        for _ in range(args.rounds):
            for label, session in sessions.items():
                for _ in range(200):
                    session.run(None, {name: one})
                runs = []
                for _ in range(300):
                    start = time.perf_counter()
                    session.run(None, {name: one})
                    runs.append(time.perf_counter() - start)
                timings[label].append(statistics.median(runs) * 1e6)
        sizes = {label: path.stat().st_size / 1024 for label, path in paths.items()}
    base = statistics.median(timings["float (the export's float model)"])
    results, rows = {}, []
    for label in sessions:
        us = statistics.median(timings[label])
        results[label] = {"us": us, "speed": base / us, "accuracy": accuracy[label], "kib": sizes[label],
                          "rounds_us": timings[label]}
        rows.append([label, f"{sizes[label]:.1f}", f"{accuracy[label]:.2f}", f"{us:.1f}", f"{base / us:.2f}x"])
    print(format_table(["model", "KiB", "val acc %", "batch-1 us", "speed vs float"], rows))
    path = write_results(f"quantize_variants_{args.template}", {"machine": info, "template": args.template,
                                                                  "rounds": args.rounds, "results": results}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
