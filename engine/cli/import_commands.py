"""``import-torch`` and ``import-onnx``: put an existing model on the canvas, with its weights.

Both keep the model's module hierarchy as blocks (ResNet-50: Stem, layer1..layer4, Head);
``--flat`` puts every layer on the top level instead.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.errors import UserError


def register(commands: Any) -> None:
    """Add the import subcommands to the sub-parsers."""
    p = commands.add_parser("import-torch", help="trace a PyTorch nn.Module with torch.fx and save it as a project")
    p.add_argument("spec", metavar="MODULE:CLASS", help="e.g. mypackage.models:LeNet (importable from here)")
    p.add_argument("--args", default="[]", help="constructor arguments as a JSON list or object")
    p.add_argument("--input-shape", action="append",
                   help="per-sample input shape, e.g. 1,28,28 (default: from the first layer); repeat it for a "
                        "forward() of several arguments, one per argument in order (--input-shape 7 --input-shape "
                        "5 for forward(src, tgt)); given once, it is every argument's; SEQ_LEN for token ids")
    p.add_argument("--weights", help="safetensors file of the module's state_dict to load first (e.g. trained)")
    p.add_argument("--out", required=True, help="project file to write; weights go to <stem>.safetensors")
    p.add_argument("--flat", action="store_true", help=_FLAT_HELP)
    p.set_defaults(handler=cmd_import_torch)

    p = commands.add_parser("import-onnx", help="read an ONNX model and save it as a project")
    p.add_argument("file", help="the .onnx file")
    p.add_argument("--out", required=True, help="project file to write; weights go to <stem>.safetensors")
    p.add_argument("--flat", action="store_true", help=_FLAT_HELP)
    p.set_defaults(handler=cmd_import_onnx)


_FLAT_HELP = ("every layer on the top level, named after its module path (default: the module hierarchy "
              "becomes blocks, identical modules sharing one definition)")


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise UserError(f"--input-shape: expected sizes like 1,28,28, got {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise UserError(f"--input-shape: expected positive sizes like 1,28,28, got {text!r}")
    return dims


def cmd_import_torch(args: argparse.Namespace) -> int:
    """Trace, map, lay out and save; print what was written."""
    from engine.compile.importers import import_torch_module, save_imported

    try:
        constructor_args = json.loads(args.args)
    except ValueError as exc:
        raise UserError(f"--args: not JSON: {exc}") from None
    shapes = [_shape(text) for text in args.input_shape or []]
    shape: Any = None if not shapes else shapes[0] if len(shapes) == 1 else shapes
    result = import_torch_module(args.spec, constructor_args, shape, args.weights, flat=args.flat)
    for line in save_imported(result.project, result.weights, args.out):
        print(line)
    print(_check_line(result.max_abs_diff))
    return 0


def _check_line(diff: float) -> str:
    from engine.compile.importers import IMPORT_RELATIVE, IMPORT_TOLERANCE

    return (f"import: self-check max |diff| {diff:.1e} against the original (tolerance {IMPORT_TOLERANCE:.0e} "
            f"+ {IMPORT_RELATIVE:.0e} x the largest output)")


def cmd_import_onnx(args: argparse.Namespace) -> int:
    """Read, map, lay out and save; print what was written."""
    from engine.compile.importers import import_onnx, save_imported

    result = import_onnx(args.file, flat=args.flat)
    for line in save_imported(result.project, result.weights, args.out):
        print(line)
    print(_check_line(result.max_abs_diff))
    return 0
