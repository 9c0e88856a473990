"""``overfit-batch``: can the model memorize one batch? (a quick wiring check)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.graph.fileformat import load_project


def register(commands: Any) -> None:
    """Add ``overfit-batch`` to the sub-parsers."""
    p = commands.add_parser("overfit-batch", help="train a fresh copy on one batch until its loss is near zero "
                                                  "(exit 1 when it cannot: a wiring or capacity problem)")
    p.add_argument("file", help="project file (.json)")
    p.add_argument("--steps", type=int, default=300, help="most steps (default 300)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train")
    p.set_defaults(handler=cmd_overfit)


def cmd_overfit(args: argparse.Namespace) -> int:
    """Print the verdict; exit 0 when the batch was fitted, 1 when not."""
    from tqdm import tqdm

    from engine.errors import UserError
    from engine.training.overfit_batch import overfit_one_batch

    if args.steps < 1:
        raise UserError("overfit-batch: --steps must be at least 1")
    path = Path(args.file)
    bar = tqdm(total=args.steps, unit="step", file=sys.stderr, leave=False, disable=None, dynamic_ncols=True)

    def progress(step: int, loss: float) -> None:
        bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
        bar.update(1)

    try:
        result = overfit_one_batch(load_project(path), path.parent, args.steps, args.device, progress)
    finally:
        bar.close()
    print(result.message())
    return 0 if result.fitted else 1
