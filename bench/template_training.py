"""Train every template as ``python main.py train`` does and report time and final metric.

Each template in templates/ is trained once with its stored settings and seed, in this
process, with the same ``Trainer`` the CLI uses (no run folder: nothing is written but the
results file). Reported per template: family, task, epochs, the wall time of the whole run
(dataset loading, compilation, training, evaluation and snapshots), this process's CPU
time, the CPU other processes used meanwhile (in cores, from /proc/stat: on a shared
machine a busy neighbour stretches the wall time of torch's 2 OpenMP threads many times
over), and the template's headline metric against its target (the same targets
tests/test_templates.py asserts, with further checks there).

Before each template the script waits (up to --max-wait seconds in all) for a quiet CPU.

Usage::

    python bench/template_training.py [--threads N] [--only name,name] [--device cpu] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (ForeignLoad, QuietBudget, describe_machine, format_table,  # noqa: E402
                           machine_info, write_results)

Check = Callable[[Any, dict[str, float]], tuple[str, str, bool]]


def _at_least(key: str, target: float) -> Check:
    def check(trainer: Any, metrics: dict[str, float]) -> tuple[str, str, bool]:
        value = metrics[key]
        return f"{key} {value:.4f}", f">= {target:g}", value >= target

    return check


def _at_most(key: str, target: float) -> Check:
    def check(trainer: Any, metrics: dict[str, float]) -> tuple[str, str, bool]:
        value = metrics[key]
        return f"{key} {value:.4f}", f"<= {target:g}", value <= target

    return check


def _below_unigram(trainer: Any, metrics: dict[str, float]) -> tuple[str, str, bool]:
    """Validation loss vs 70% of the unigram entropy (nats) of the text the training windows cover."""
    data = trainer.task.data
    seq_len, stride = data.dataset.x.shape[1], trainer.options.project.dataset.get("stride", 1)
    text = data.dataset.extras["text"]
    seen = {i for start in data.train_index * stride for i in range(start, start + seq_len + 1)}
    counts = Counter(text[i] for i in seen)
    total = sum(counts.values())
    entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    value = metrics["val_loss"]
    return (f"val_loss {value:.3f} ({1 - value / entropy:.0%} below unigram {entropy:.3f})",
            f"<= {0.7 * entropy:.3f} (30% below)", value <= 0.7 * entropy)


def _below_mean_image(trainer: Any, metrics: dict[str, float]) -> tuple[str, str, bool]:
    data = trainer.task.data
    baseline = float(((data.val_x - data.train_x.mean(0)) ** 2).mean())
    value = metrics["val_loss"]
    return (f"val_loss {value:.4f} (mean image {baseline:.4f})", f"<= {0.7 * baseline:.4f}",
            value <= 0.7 * baseline)


def _digit_classes(trainer: Any, metrics: dict[str, float]) -> tuple[str, str, bool]:
    """How many digit classes a logistic regression on real digits finds among 500 samples."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    task = trainer.task
    real = task.data.dataset.x.reshape(len(task.data.dataset.x), -1)
    samples = task.generate(task._noise(500, torch.Generator().manual_seed(7))).reshape(500, -1)
    classifier = LogisticRegression(max_iter=5000).fit(real, task.data.dataset.y)
    shares = np.bincount(classifier.predict(samples), minlength=10) / len(samples)
    found = int((shares >= 0.02).sum())
    return f"digit classes in samples {found}/10", ">= 7", found >= 7


TARGETS: dict[str, Check] = {
    "fnn_spirals": _at_least("val_accuracy", 0.95),
    "fnn_breast_cancer": _at_least("val_accuracy", 0.95),
    "cnn_digits": _at_least("val_accuracy", 0.97),
    "finetune_digits": _at_least("val_accuracy", 0.95),
    "resnet_digits": _at_least("val_accuracy", 0.97),
    "rnn_digits_rows": _at_least("val_accuracy", 0.90),
    "gru_digits_rows": _at_least("val_accuracy", 0.90),
    "lstm_sine_forecast": _at_most("val_loss", 0.02),
    "transformer_digits_rows": _at_least("val_accuracy", 0.90),
    "transformer_char_lm": _below_unigram,
    "autoencoder_digits_2d": _below_mean_image,
    "denoising_conv_autoencoder": _at_most("val_mse_vs_noise", 0.5),
    "gan_ring": _at_least("val_modes_covered", 6),
    "dcgan_digits": _digit_classes,
}


def run_template(path: Path, device: str, seed: int | None = None) -> dict[str, Any]:
    """Train one template; returns the row's figures."""
    from engine.graph.fileformat import load_project, sibling_weights
    from engine.training.events import Finished
    from engine.training.trainer import Trainer, TrainOptions

    project = load_project(path)
    foreign = ForeignLoad()
    cpu0 = os.times()
    foreign.start()
    started = time.perf_counter()
    overrides = {"device": device, "seed": seed}
    # as the CLI does: a template with weights beside it (fine-tuning) starts from them
    options = TrainOptions(project, None, path.parent, overrides, weights_file=sibling_weights(path))
    trainer = Trainer(options, lambda event: None)
    result = trainer.run()
    wall = time.perf_counter() - started
    load = foreign.stop()
    cpu1 = os.times()
    row: dict[str, Any] = {
        "template": path.stem, "family": project.meta.get("family", ""), "task": project.meta.get("task", ""),
        "epochs": trainer.state.config.epochs, "wall_s": round(wall, 2),
        "cpu_s": round(cpu1.user + cpu1.system - cpu0.user - cpu0.system, 2), "foreign_load": round(load, 2),
    }
    if not isinstance(result, Finished):
        row.update(metric=f"failed: {getattr(result, 'message', result)}", target="", ok=False)
        return row
    check = TARGETS.get(path.stem)
    if check is None:
        row.update(metric="(no target)", target="", ok=False)
    else:
        metric, target, ok = check(trainer, result.metrics)
        row.update(metric=metric, target=target, ok=ok)
    row["final_metrics"] = result.metrics
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--only", help="comma-separated template names (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--seed", type=int, help="train with this seed instead of the stored one (robustness)")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="seconds in all to wait for a quiet CPU before templates (default 120)")
    parser.add_argument("--out", help="results file (default bench/results/template_training.json)")
    args = parser.parse_args()

    import torch

    from engine.templates import TEMPLATES_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(TEMPLATES_DIR.glob("*.json"))
    if args.only:
        wanted = set(args.only.split(","))
        paths = [p for p in paths if p.stem in wanted]
    info = machine_info(with_torch=True)
    print(describe_machine(info), flush=True)
    quiet = QuietBudget(threshold=0.25, budget_seconds=args.max_wait)
    rows = []
    for path in paths:
        quiet.wait()
        row = run_template(path, args.device, args.seed)
        rows.append(row)
        print(f"{row['template']}: {row['wall_s']:.1f} s, {row['metric']} ({'PASS' if row['ok'] else 'MISS'})",
              flush=True)
    headers = ["template", "family", "task", "epochs", "wall s", "CPU s", "foreign CPU", "final metric", "target",
               "met"]
    table = [[r["template"], r["family"], r["task"], r["epochs"], f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
              f"{r['foreign_load']:.2f}", r["metric"], r["target"], "PASS" if r["ok"] else "MISS"] for r in rows]
    total = sum(r["wall_s"] for r in rows)
    print()
    print(format_table(headers, table))
    print(f"\nall templates: {total:.1f} s wall; waited {quiet.waited:.1f} s for a quiet CPU")
    target = write_results("template_training", {"machine": info, "device": args.device, "seed": args.seed,
                                                  "rows": rows,
                                                  "total_wall_s": round(total, 2)}, args.out)
    print(f"results: {target}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
