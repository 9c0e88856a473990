"""``evaluate``: a trained run's metrics on its held-out test split (or its validation split)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add ``evaluate`` to the sub-parsers."""
    p = commands.add_parser("evaluate", help="a trained run's metrics on its test split (per-class scores, "
                            "confusion matrix and every sample for classifiers)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder written by train")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="the held-out test split (default; set training.test_fraction before training) or "
                        "the validation split")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write one row per sample to FILE")
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the report (or JSON); exit 0, or 1 with one line for a user error."""
    from engine.training.evaluate import evaluate_run, to_json_text

    evaluation = evaluate_run(args.run_dir, args.split)
    if args.csv is not None:
        evaluation.write_csv(args.csv)
    print(to_json_text(evaluation) if args.json else evaluation.report())
    return 0
