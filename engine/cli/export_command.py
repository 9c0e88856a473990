"""``export``: write a project or trained run as ONNX, pt2, safetensors or PyTorch source."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add ``export`` to the sub-parsers."""
    p = commands.add_parser("export", help="export a project or run (onnx, pt2, safetensors, python); "
                                           "reloads the result and checks its outputs")
    p.add_argument("source", metavar="FILE_OR_RUN", help="project file (.json) or run folder")
    p.add_argument("--format", required=True, choices=("onnx", "pt2", "safetensors", "python"),
                   help="what to write")
    p.add_argument("--out", required=True, help="file to write (a folder for --format python)")
    p.add_argument("--discriminator", action="store_true", help="GANs: export the discriminator, not the generator")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Export and print one line per written file and the self-check line."""
    from engine.compile.export import export_model

    result = export_model(args.source, args.format, args.out, discriminator=args.discriminator)
    print(result.message)
    return 0
