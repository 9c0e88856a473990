"""int8 and fp16 ONNX models of every classification template: file size, validation accuracy
and batch-1 CPU latency, float against quantized.

Each classification template is trained once as shipped (``python main.py train TEMPLATE``,
its own epochs and seed), then exported with ``export --format onnx --quantize int8`` (and
fp16 with ``--fp16``) through the same code the CLI runs. The latency is ONNX Runtime's median
over 200 runs at batch 1 on one thread, float and quantized measured in the same process one
after the other (the export's own table); ``--rounds`` repeats the export and reports medians.
An operator type the export had to keep in float (ONNX Runtime cannot run its converted form)
is named in the mode column.

Targets (the CNN template): int8 file at least 3x smaller, accuracy drop at most 0.5 points,
int8 latency no worse than float.

Usage::

    python bench/quantize.py [--templates cnn_digits,fnn_spirals] [--rounds 3] [--fp16] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_machine, format_table, machine_info, write_results  # noqa: E402
from engine.errors import UserError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def classification_templates() -> list[Path]:
    """Every template whose task is classification."""
    from engine.templates import list_templates

    return [Path(t.path) for t in list_templates()[0] if t.task == "classification"]


def train(template: Path, folder: Path) -> Path:
    """Train the template as shipped into ``folder``; returns the run folder."""
    run = folder / template.stem
    subprocess.run([sys.executable, "main.py", "train", str(template), "--out", str(run), "--quiet"], cwd=ROOT,
                   check=True, capture_output=True, timeout=3600)
    return run


def measure(run: Path, mode: str, folder: Path, rounds: int) -> dict[str, Any]:
    """Export ``rounds`` times; medians of the latencies, the (deterministic) sizes and accuracies."""
    from engine.compile.export import export_model

    reports = [export_model(run, "onnx", folder / f"{run.name}-{mode}-{i}.onnx", quantize=mode).quantized
               for i in range(rounds)]
    first = reports[0]
    assert first is not None
    return {"method": first.method, "float_kib": first.float_bytes / 1024, "quantized_kib": first.quantized_bytes / 1024,
            "size_ratio": first.float_bytes / first.quantized_bytes, "float_accuracy": first.float_metric,
            "quantized_accuracy": first.quantized_metric, "kept_float": list(first.kept_float),
            "float_ms": statistics.median(r.float_ms for r in reports if r is not None),
            "quantized_ms": statistics.median(r.quantized_ms for r in reports if r is not None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", help="comma-separated template stems (default: every classification one)")
    parser.add_argument("--rounds", type=int, default=3, help="exports per model (latency medians)")
    parser.add_argument("--fp16", action="store_true", help="also fp16")
    parser.add_argument("--out", help="results JSON (default bench/results/quantize.json)")
    args = parser.parse_args()
    templates = classification_templates()
    if args.templates:
        wanted = args.templates.split(",")
        templates = [t for t in templates if t.stem in wanted]
    modes = ["int8", "fp16"] if args.fp16 else ["int8"]
    info = machine_info(with_torch=True)
    print(describe_machine(info))
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        for template in templates:
            run = train(template, Path(tmp))
            for mode in modes:
                try:
                    r = measure(run, mode, Path(tmp), args.rounds)
                except UserError as exc:  # reported, as the export reports it
                    results[f"{template.stem}/{mode}"] = {"error": str(exc)}
                    rows.append([template.stem, mode, "", "", "", "", "", "", "", "", str(exc)[:60]])
                    print(rows[-1], flush=True)
                    continue
                results[f"{template.stem}/{mode}"] = r
                kept = f" ({', '.join(r['kept_float'])} kept float)" if r["kept_float"] else ""
                rows.append([template.stem, f"{mode} {r['method']}{kept}", f"{r['float_kib']:,.1f}",
                             f"{r['quantized_kib']:,.1f}", f"{r['size_ratio']:.2f}x", f"{r['float_accuracy']:.2f}",
                             f"{r['quantized_accuracy']:.2f}", f"{r['quantized_accuracy'] - r['float_accuracy']:+.2f}",
                             f"{r['float_ms']:.4f}", f"{r['quantized_ms']:.4f}", f"{r['float_ms'] / r['quantized_ms']:.2f}x"])
                print(rows[-1], flush=True)
    print(format_table(["template", "mode", "float KiB", "quant KiB", "smaller", "float acc %", "quant acc %",
                        "change", "float ms", "quant ms", "speed"], rows))
    path = write_results("quantize", {"machine": info, "rounds": args.rounds, "results": results}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
