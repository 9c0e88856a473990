"""Training speed while another program keeps a core busy, against the same run on an idle machine.

Workload: ``python main.py train TEMPLATE --epochs E`` (default templates/cnn_digits.json), the
CLI and its worker process as a user runs them. Training samples/s = median of the epochs'
``samples_per_s`` from epoch 2 on, read from metrics.jsonl.

Variants, interleaved over rounds (order rotating):

* ``auto idle`` / ``auto busy``: the Trainer's default, ``cpu_threads`` 0: the thread governor
  (engine/training/threads.py) follows the cores other processes leave free.
* ``fixed idle`` / ``fixed busy``: ``cpu_threads`` = torch's default thread count, i.e. what
  training did before the governor.

"busy" runs with one more process spinning on one core (``while True: pass``) for the whole run.
The slowdown of a policy is its idle samples/s over its busy samples/s, paired per round.

Target (issue #12): slowdown with one busy core <= 2.5x, as the median over rounds.

Usage::

    python bench/contention.py [--rounds 5] [--epochs 150] [--template templates/cnn_digits.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, describe_machine, epoch_rates, format_table, machine_info, median, write_results


def train(project: Path, epochs: int, out: Path, busy: bool) -> float:
    """Median training samples/s of one CLI run, with a spinning process beside it when ``busy``."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.3 if busy else 0.0)
        subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(project), "--epochs", str(epochs),
                        "--out", str(out), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return median(epoch_rates(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=ROOT / "templates" / "cnn_digits.json")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="results file (default bench/results/contention.json)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    from engine.graph.fileformat import load_project, save_project

    info = machine_info(with_torch=True)
    default_threads = torch.get_num_threads()
    print(f"# Training {args.template.name} with one core busy, {args.epochs} epochs, {args.rounds} rounds\n"
          f"# {describe_machine(info)}; torch's default threads: {default_threads}\n")
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        projects = {}
        for policy, threads in (("auto", 0), ("fixed", default_threads)):
            project = load_project(args.template)
            project.training["cpu_threads"] = threads
            projects[policy] = Path(scratch) / f"{policy}.json"
            save_project(project, projects[policy])
        variants = [("auto", False), ("auto", True), ("fixed", False), ("fixed", True)]
        for index in range(args.rounds):
            order = variants[index % len(variants):] + variants[:index % len(variants)]
            row = {}
            for policy, busy in order:
                name = f"{policy} {'busy' if busy else 'idle'}"
                row[name] = train(projects[policy], args.epochs, Path(scratch) / f"{index}-{policy}-{busy}", busy)
            row["auto slowdown"] = row["auto idle"] / row["auto busy"]
            row["fixed slowdown"] = row["fixed idle"] / row["fixed busy"]
            rounds.append(row)
            print(f"round {index + 1}: " + ", ".join(f"{k} {v:,.0f}" if "slowdown" not in k else f"{k} {v:.2f}x"
                                                     for k, v in row.items()), flush=True)
    names = ["auto idle", "auto busy", "fixed idle", "fixed busy"]
    table = [[name, f"{median([r[name] for r in rounds]):,.0f}"] for name in names]
    auto, fixed = median([r["auto slowdown"] for r in rounds]), median([r["fixed slowdown"] for r in rounds])
    print()
    print(format_table(["variant", "samples/s (median)"], table))
    print()
    print(format_table(["policy", "slowdown with one busy core (median of rounds)", "target", ""], [
        ["auto (governor)", f"{auto:.2f}x", "<= 2.5x", "PASS" if auto <= 2.5 else "MISS"],
        [f"fixed {default_threads} threads (before)", f"{fixed:.2f}x", "", ""],
    ]))
    path = write_results("contention", {"machine": info, "template": args.template.name, "epochs": args.epochs,
                                        "default_threads": default_threads, "rounds": rounds}, args.out)
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
