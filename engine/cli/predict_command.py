"""``predict``: a trained run's predictions on new images, tables, arrays or text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add ``predict`` to the sub-parsers."""
    p = commands.add_parser("predict", help="a trained run's predictions on new data (image files or folders, CSV, "
                            ".npz, text for character language models) through the run's own preprocessing")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR_OR_EXPORTED_SOURCE",
                   help="the run folder written by train, or a folder export --format python wrote from a run")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files or folders of images, .csv files (the training columns, any order), .npz "
                        "files (array x), or text / .txt files for a character language model")
    p.add_argument("--out", type=Path, metavar="FILE", help="write one CSV row per input to FILE")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.add_argument("--top-k", type=int, default=3, metavar="K", dest="top_k",
                   help="classes (characters) listed per input for classifiers (language models); default 3")
    p.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict and print the table (or JSON), writing ``--out``; exit 0, or 1 with one line for a user error."""
    from engine.training.predict import predict_run
    from engine.training.predict_table import skipped_line

    predictions = predict_run(args.run_dir, list(args.inputs), args.top_k)
    if args.out is not None:
        predictions.write_csv(args.out)
    if args.json:
        print(json.dumps(predictions.to_json(), indent=2, allow_nan=False))
    elif args.out is not None:
        print(f"wrote {len(predictions.rows)} predictions to {args.out}")
        if predictions.skipped:
            print(skipped_line(predictions.skipped), file=sys.stderr)
    else:
        print(predictions.table())
    return 0
