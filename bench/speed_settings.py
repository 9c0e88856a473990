"""What the Trainer's own speed settings are worth on every template (training steps per second).

engine/training/performance.py makes the Trainer train convolution networks with
channels-last weights (CPU and CUDA) and build SGD / Adam / AdamW with PyTorch's fused
kernel. This script builds each template's task exactly as the Trainer does, then a copy
with both settings undone (weights back to the default layout, the optimizer rebuilt
unfused), and times ``task.train_step`` on the same batches for both, interleaved:

* ``default kernels``: channels-first weights, foreach (unfused) optimizer: what a
  hand-written loop gets without extra effort, and what the Trainer did before.
* ``trainer``: the Trainer's settings.

A ratio above 1 means the settings make that template's steps faster. GAN templates time
one alternating discriminator + generator step.

Usage::

    python bench/speed_settings.py                   # every template, about 2 minutes on 2 cores
    python bench/speed_settings.py --templates cnn_digits,resnet_digits --rounds 9

Writes bench/results/speed_settings.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench._common import describe_machine, format_table, machine_info, median, quartiles, write_results
from engine.data import load_dataset, prepare_data
from engine.graph.fileformat import load_project
from engine.training.batches import BatchSource
from engine.settings import training_config
from engine.training.performance import wants_channels_last
from engine.training.tasks import Task, make_task, resolve_task

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def build(name: str, trainer_settings: bool) -> tuple[Task, BatchSource]:
    """The template's task as the Trainer builds it, or with its speed settings undone."""
    project = load_project(ROOT / "templates" / f"{name}.json")
    config = training_config(project.training, {"device": "cpu"})
    dataset = load_dataset(project.dataset)
    data = prepare_data(dataset, config.validation_fraction, config.seed, config.normalize)
    torch.manual_seed(config.seed)
    task = make_task(resolve_task(config, project, dataset), project, data, config, CPU, None)
    if not trainer_settings:
        for key, module in task.modules.items():
            module.to(memory_format=torch.contiguous_format)
            optimizer = task.optimizers[key]
            accepted = inspect.signature(type(optimizer)).parameters
            settings = {k: v for k, v in optimizer.defaults.items() if k in accepted and k not in ("fused", "foreach")}
            task.optimizers[key] = type(optimizer)(module.parameters(), **settings)
    return task, BatchSource(data, CPU, config.batch_size, config.seed)


def steps_per_second(task: Task, batches: BatchSource, steps: int) -> float:
    """Training steps per second over ``steps`` steps (batches as the Trainer draws them)."""
    done, epoch = 0, 0
    gc.collect()
    start = time.perf_counter()
    while done < steps:
        for _, (x, y) in batches.epoch(epoch):
            task.train_step(x, y)
            done += 1
            if done == steps:
                break
        epoch += 1
    return steps / (time.perf_counter() - start)


def bench_template(name: str, rounds: int, seconds: float) -> dict[str, Any]:
    variants = {"default kernels": build(name, False), "trainer": build(name, True)}
    task, batches = variants["trainer"]
    probe = steps_per_second(task, batches, 10)
    for built in variants.values():  # warm-up
        steps_per_second(*built, 10)
    steps = max(10, round(probe * seconds))
    rates: dict[str, list[float]] = {key: [] for key in variants}
    for r in range(rounds):
        for key in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            rates[key].append(steps_per_second(*variants[key], steps))
    model = next(iter(task.modules.values()))
    optimizer = next(iter(task.optimizers.values()))
    return {
        "template": name, "steps_per_round": steps, "batch_size": batches.batch_size,
        "channels_last": wants_channels_last(model, CPU), "optimizer": type(optimizer).__name__,
        "fused": bool(optimizer.defaults.get("fused")),
        "steps_per_s": {key: median(v) for key, v in rates.items()},
        "quartiles": {key: quartiles(v) for key, v in rates.items()},
        "paired_ratio": median([t / d for t, d in zip(rates["trainer"], rates["default kernels"])]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", help="comma-separated template names (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=0.6, help="length of one timed block (default 0.6)")
    parser.add_argument("--json", help="result file (default bench/results/speed_settings.json)")
    args = parser.parse_args(argv)
    names = args.templates.split(",") if args.templates else sorted(p.stem for p in (ROOT / "templates").glob("*.json"))
    info = machine_info(with_torch=True)
    print(f"# speed_settings: {describe_machine(info)}; {args.rounds} interleaved rounds per template")
    started = time.perf_counter()
    results = []
    for name in names:
        result = bench_template(name, args.rounds, args.seconds)
        results.append(result)
        rates = result["steps_per_s"]
        print(f"  {name}: default {rates['default kernels']:,.0f} steps/s, trainer {rates['trainer']:,.0f} steps/s, "
              f"paired ratio {result['paired_ratio']:.3f}", flush=True)
    rows = [(r["template"], r["optimizer"] + (" fused" if r["fused"] else ""),
             "yes" if r["channels_last"] else "-", r["batch_size"],
             f"{r['steps_per_s']['default kernels']:,.0f}", f"{r['steps_per_s']['trainer']:,.0f}",
             f"{r['steps_per_s']['trainer'] / r['steps_per_s']['default kernels']:.3f}", f"{r['paired_ratio']:.3f}")
            for r in results]
    print()
    print(format_table(("template", "optimizer", "channels-last", "batch", "default kernels steps/s",
                        "trainer steps/s", "ratio", "paired median"), rows))
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f} s")
    path = write_results("speed_settings", {
        "benchmark": "speed_settings",
        "command": " ".join(["python", "bench/speed_settings.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info, "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "total_seconds": total, "results": results,
    }, args.json)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
