"""``lr-find``: the learning-rate range test on a fresh copy of a project's model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.graph.fileformat import load_project


def register(commands: Any) -> None:
    """Add ``lr-find`` to the sub-parsers."""
    p = commands.add_parser("lr-find", help="learning-rate range test: loss against an exponentially rising "
                                            "learning rate, and a suggested value")
    p.add_argument("file", help="project file (.json)")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps over the range (default 200)")
    p.add_argument("--start", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last learning rate (default 10)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train")
    p.add_argument("--json", action="store_true", help="print lrs, losses, smoothed losses and the suggestion")
    p.set_defaults(handler=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    """Run the test; print a coarse table and the suggestion (or JSON)."""
    from tqdm import tqdm

    from engine.training.lr_finder import lr_range_test

    path = Path(args.file)
    project = load_project(path)
    bar = tqdm(total=args.steps, unit="step", file=sys.stderr, leave=False, disable=None, dynamic_ncols=True)

    def progress(step: int, lr: float, loss: float) -> None:
        bar.set_postfix_str(f"lr {lr:.2e} loss {loss:.4g}", refresh=False)
        bar.update(1)

    try:
        result = lr_range_test(project, path.parent, args.steps, args.start, args.end, args.device, progress)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"lrs": result.lrs, "losses": result.losses, "smoothed": result.smoothed,
                          "suggestion": result.suggestion, "lowest": result.lowest, "stopped": result.stopped}))
        return 0
    shown = sorted(set(range(0, len(result.lrs), max(1, len(result.lrs) // 12))) | {len(result.lrs) - 1})
    print(f"{'learning rate':>14}  {'loss (smoothed)':>16}")
    for i in shown:
        print(f"{result.lrs[i]:>14.3g}  {result.smoothed[i]:>16.4g}")
    print(f"{len(result.lrs)} steps ({result.stopped}); lowest loss at lr {result.lowest:.3g}")
    if result.suggestion is None:
        print("no suggestion: the loss never fell; check the model and the data (python main.py validate FILE)")
    else:
        print(f"suggested learning rate: {result.suggestion:.3g} (where the loss falls fastest); set training.lr")
    return 0
