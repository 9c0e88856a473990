"""Fine-tuning vs training from scratch on the digits 5-9 (templates/finetune_digits.json).

The template's CNN starts from weights learned on the digits 0-4
(templates/finetune_digits.safetensors, written by bench/make_finetune_weights.py). Three
variants train on the digits 5-9 with the same budget (epochs, training samples, settings
and seed), in this process, with the Trainer ``python main.py train`` uses:

a. the template as shipped: the convolutions pretrained and frozen (``trainable`` off), the new
   classifier (new_fc1, new_fc2: not in the weights file) fresh and trained;
b. the convolutions pretrained, every layer trainable;
c. from scratch: the same graph, every layer trainable, no weights file.

Reported: the median validation accuracy over the seeds (the seed sets the split, the new
head's initialization, the batch order and dropout), with the lowest and highest, for each
budget; "little data" holds out half of the 896 images of 5-9 (448 train), "more data" the
template's 20% (717 train). With few epochs and little data the pretrained variants must
beat scratch: the table's verdict column says whether both medians do, and the script exits 1
when they do not with little data within 3 epochs.

Usage::

    python bench/finetune.py [--seeds 5] [--epochs 1,3,10] [--threads 1] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import describe_machine, format_table, machine_info, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "finetune_digits.json"
#: name -> (convolutions frozen, start from the pretrained weights)
VARIANTS = {"a frozen convs": (True, True), "b all trainable": (False, True), "c scratch": (False, False)}
#: label -> validation_fraction (the rest trains)
DATA = {"little data": 0.5, "more data": 0.2}


def project_for(frozen: bool) -> Any:
    """The template, with every layer trainable unless ``frozen`` (as shipped: convolutions frozen)."""
    from engine.graph.fileformat import load_project

    project = load_project(TEMPLATE)
    if not frozen:
        for node in project.graph:
            project.graph.set_training(node.id, "trainable", True)
    return project


def train_once(variant: str, epochs: int, validation_fraction: float, seed: int) -> dict[str, Any]:
    """One run; its final validation accuracy, training samples, seconds and what it started from."""
    from engine.training.events import Finished
    from engine.training.trainer import Trainer, TrainOptions

    frozen, pretrained = VARIANTS[variant]
    overrides = {"device": "cpu", "epochs": epochs, "seed": seed, "validation_fraction": validation_fraction,
                 "deterministic": True}
    options = TrainOptions(project_for(frozen), None, TEMPLATE.parent, overrides,
                           weights_file=TEMPLATE.with_suffix(".safetensors") if pretrained else None)
    trainer = Trainer(options, lambda event: None)
    start = time.perf_counter()
    result = trainer.run()
    seconds = time.perf_counter() - start
    if not isinstance(result, Finished) or result.reason != "completed":
        raise SystemExit(f"{variant}: {getattr(result, 'message', result)}")
    assert trainer.state is not None
    return {"variant": variant, "epochs": epochs, "validation_fraction": validation_fraction, "seed": seed,
            "val_accuracy": float(result.metrics["val_accuracy"]), "seconds": seconds,
            "train_samples": len(trainer.task.data.train_x), "started_from": trainer.state.initial_weights}


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per cell")
    parser.add_argument("--epochs", default="1,3,10", help="comma-separated epoch budgets")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="results JSON (default bench/results/finetune.json)")
    args = parser.parse_args(argv)
    budgets = [int(e) for e in args.epochs.split(",")]

    import torch

    torch.set_num_threads(args.threads)
    runs: list[dict[str, Any]] = []
    for data_label, fraction in DATA.items():
        for epochs in budgets:
            for variant in VARIANTS:
                for seed in range(args.seeds):
                    runs.append(train_once(variant, epochs, fraction, seed) | {"data": data_label})
    rows = []
    for data_label, fraction in DATA.items():
        for epochs in budgets:
            cell = {v: [r["val_accuracy"] for r in runs if r["data"] == data_label and r["epochs"] == epochs
                        and r["variant"] == v] for v in VARIANTS}
            samples = next(r["train_samples"] for r in runs if r["data"] == data_label)
            scratch = statistics.median(cell["c scratch"])
            beats = all(statistics.median(cell[v]) > scratch for v in ("a frozen convs", "b all trainable"))
            rows.append([f"{data_label} ({samples} train)", epochs, *(_cell(cell[v]) for v in VARIANTS),
                         "yes" if beats else "NO"])
    headers = ["data", "epochs", *(f"{v} (median [min-max])" for v in VARIANTS), "a, b beat c"]
    info = machine_info(with_torch=True)
    print(f"Fine-tuning on digits 5-9, val accuracy, seeds 0-{args.seeds - 1}; {describe_machine(info)}")
    print(format_table(headers, rows))
    seconds = {v: statistics.median(r["seconds"] / r["epochs"] for r in runs if r["variant"] == v) for v in VARIANTS}
    print("median seconds per epoch: " + ", ".join(f"{v} {s:.3f}" for v, s in seconds.items()))
    print("a and b: " + next(r["started_from"] for r in runs if r["variant"] == "a frozen convs"))
    path = write_results("finetune", {"machine": info, "headers": headers, "rows": rows, "runs": runs}, args.out)
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if all(row[-1] == "yes" for row in rows if row[0].startswith("little") and row[1] <= 3) else 1


if __name__ == "__main__":
    raise SystemExit(main())
