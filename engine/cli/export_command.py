"""``export``: write a project or trained run as ONNX, pt2, safetensors or PyTorch source."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    """Add ``export`` to the sub-parsers."""
    p = commands.add_parser("export", help="export a project or run (onnx, pt2, safetensors, python); "
                                           "reloads the result and checks its outputs",
                            description="Export a project file (fresh weights seeded by training.seed, or its "
                                        "sibling <stem>.safetensors) or a run folder (trained weights). The "
                                        "result is reloaded and fed the same batch as the original; a largest "
                                        "absolute difference above 1e-4 is an error (exit 1).")
    p.add_argument("source", metavar="FILE_OR_RUN", help="project file (.json) or run folder")
    p.add_argument("--format", required=True, choices=("onnx", "pt2", "safetensors", "python"),
                   help="what to write")
    p.add_argument("--out", required=True, help="file to write (a folder for --format python)")
    p.add_argument("--discriminator", action="store_true", help="GANs: export the discriminator, not the generator")
    p.add_argument("--quantize", choices=("int8", "fp16"),
                   help="ONNX from a trained run: a smaller model (int8: static quantization calibrated on training "
                        "samples for convolution networks, dynamic otherwise; fp16: half-precision weights), checked "
                        "by its metric on the validation split, with sizes and batch-1 CPU latency")
    p.add_argument("--float-fallback", action="store_true",
                   help="with --quantize: write the float model when ONNX Runtime cannot quantize this one")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export and print one line per written file and the self-check line."""
    from engine.compile.export import export_model

    result = export_model(args.source, args.format, args.out, discriminator=args.discriminator,
                          quantize=args.quantize, float_fallback=args.float_fallback,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.message)
    return 0
