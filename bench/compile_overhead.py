"""Training-step throughput of the compiled GraphModule vs the equivalent hand-written module.

For each of the five models of tests/test_compiler_equivalence.py (MLP, LeNet-5, residual
block, LSTM classifier, Transformer encoder classifier) the graph is compiled with
``compile_graph``, the weights are copied into the hand-written ``nn.Module`` and both are
checked to give the same output. Then both run training steps (zero_grad, forward,
cross-entropy, ``loss.backward()``, SGD step) on the same batches.

Measurement: after a warm-up, blocks of N steps alternate between the two modules
(hand, compiled, compiled, hand, hand, ... : the order flips every round) in one process,
so machine noise hits both alike. Per model the table gives the median steps/s of each
and their ratio (compiled / hand-written; target >= 0.98), plus the median and range of
the per-round paired ratios. Threads are torch's default.

On a shared machine another process's CPU burst slows torch's OpenMP threads by up to
40x, so the CPU time other processes use is measured around every block (/proc/stat):
before a round the script waits (120 s in all at most) for a quiet CPU, and a round with
more than --max-foreign-load cores of foreign use is discarded and re-run.

Usage::

    python bench/compile_overhead.py            # full run (about 1.5 minutes on 2 cores)
    python bench/compile_overhead.py --quick    # short run (about 20 s)
    python bench/compile_overhead.py --device cuda

Writes bench/results/compile_overhead.json (or --json PATH).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench._common import (ForeignLoad, ModelCase, copy_weights, describe_machine, format_table, machine_info,  # noqa: E402
                           median, models, write_results)
from engine.compile import compile_graph  # noqa: E402

TARGET_RATIO = 0.98


def make_step(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
              lr: float, optimizer_step: bool) -> Callable[[int], None]:
    """A function running ``n`` training steps of ``model`` on ``batches`` (cycled)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    position = [0]

    def run(n: int) -> None:
        for _ in range(n):
            x, y = batches[position[0] % len(batches)]
            position[0] += 1
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if optimizer_step:
                optimizer.step()

    return run


def timed(run: Callable[[int], None], n: int, device: torch.device) -> tuple[float, float]:
    """Seconds for ``n`` steps, and the cores other processes used meanwhile."""
    gc.collect()
    monitor = ForeignLoad()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    monitor.start()
    start = time.perf_counter()
    run(n)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return seconds, monitor.stop()


class QuietBudget:
    """Waits (up to a total budget) for other processes to leave the CPU alone."""

    def __init__(self, threshold: float, budget_seconds: float) -> None:
        self.threshold = threshold
        self.left = budget_seconds
        self.waited = 0.0

    def wait(self) -> bool:
        """Return True once a 0.1 s window had less foreign load than the threshold."""
        while True:
            monitor = ForeignLoad()
            monitor.start()
            time.sleep(0.1)
            if monitor.stop() < self.threshold:
                return True
            if self.left <= 0:
                return False
            self.left -= 0.1
            self.waited += 0.1


def check_same_function(compiled: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor) -> float:
    """Max abs difference of the two outputs in evaluation mode (they share weights)."""
    compiled.eval()
    reference.eval()
    with torch.no_grad():
        diff = (compiled(x) - reference(x)).abs().max().item()
    compiled.train()
    reference.train()
    return diff


def bench_model(case: ModelCase, args: argparse.Namespace, device: torch.device,
                quiet: QuietBudget) -> dict[str, Any]:
    torch.manual_seed(0)
    start = time.perf_counter()
    compiled = compile_graph(case.graph).module
    compile_ms = (time.perf_counter() - start) * 1e3
    reference = case.make_reference()
    n_compiled = sum(p.numel() for p in compiled.parameters())
    n_reference = sum(p.numel() for p in reference.parameters())
    assert n_compiled == n_reference, (case.name, n_compiled, n_reference)
    copy_weights(compiled, reference, case.name_map(reference) if case.name_map else None)
    compiled.to(device).train()
    reference.to(device).train()

    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(args.batch, *case.input_shape, generator=generator).to(device),
                torch.randint(0, case.classes, (args.batch,), generator=generator).to(device))
               for _ in range(4)]
    max_diff = check_same_function(compiled, reference, batches[0][0])
    assert max_diff < 1e-4, (case.name, max_diff)

    runs = {"hand": make_step(reference, batches, args.lr, not args.no_optimizer_step),
            "compiled": make_step(compiled, batches, args.lr, not args.no_optimizer_step)}

    # Warm-up (alternating), then, on a quiet CPU, pick N so that a block takes --block-seconds.
    warm_end = time.perf_counter() + args.warmup_seconds
    while time.perf_counter() < warm_end:
        for name in ("hand", "compiled"):
            runs[name](2)
    quiet.wait()
    n = 2
    while True:
        seconds = timed(runs["hand"], n, device)[0]
        if seconds >= args.block_seconds / 8:
            break
        n *= 2
    steps = max(2, round(n * args.block_seconds / seconds))

    # Interleaved rounds; a round during which another process used more than
    # --max-foreign-load cores is discarded and re-run (at most 2 x rounds extra tries).
    rates: dict[str, list[float]] = {"hand": [], "compiled": []}
    foreign: list[float] = []
    discarded = 0
    attempt = 0
    while len(foreign) < args.rounds:
        order = ("hand", "compiled") if attempt % 2 == 0 else ("compiled", "hand")
        attempt += 1
        quiet.wait()
        got = {}
        load = 0.0
        for name in order:
            seconds, block_load = timed(runs[name], steps, device)
            got[name] = steps / seconds
            load = max(load, block_load)
        if load > args.max_foreign_load and discarded < 2 * args.rounds:
            discarded += 1
            continue
        for name in order:
            rates[name].append(got[name])
        foreign.append(load)
    paired = [c / h for c, h in zip(rates["compiled"], rates["hand"])]
    hand, comp = median(rates["hand"]), median(rates["compiled"])
    return {
        "model": case.name,
        "parameters": n_compiled,
        "batch": args.batch,
        "compile_graph_ms": compile_ms,
        "max_abs_output_diff": max_diff,
        "steps_per_block": steps,
        "rounds": args.rounds,
        "rounds_discarded": discarded,
        "rounds_kept_with_foreign_load": sum(1 for f in foreign if f > args.max_foreign_load),
        "foreign_load_max": max(foreign),
        "foreign_load_per_round": foreign,
        "hand_steps_per_s": hand,
        "compiled_steps_per_s": comp,
        "ratio": comp / hand,
        "paired_ratio_median": median(paired),
        "paired_ratio_min": min(paired),
        "paired_ratio_max": max(paired),
        "hand_rates": rates["hand"],
        "compiled_rates": rates["compiled"],
        "pass": comp / hand >= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run: fewer, shorter rounds")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per model (default 20, quick 6)")
    parser.add_argument("--block-seconds", type=float, help="length of one timed block (default 0.4, quick 0.1)")
    parser.add_argument("--warmup-seconds", type=float, help="warm-up per model (default 2, quick 0.5)")
    parser.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate")
    parser.add_argument("--no-optimizer-step", action="store_true", help="forward + backward only")
    parser.add_argument("--models", help="comma-separated subset of model names (case-insensitive prefixes)")
    parser.add_argument("--max-foreign-load", type=float, default=0.15,
                        help="re-run a round when other processes used more CPU cores than this (default 0.15)")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="total seconds to wait for other processes to go quiet (default 120)")
    parser.add_argument("--json", help="result file (default bench/results/compile_overhead.json)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (6 if args.quick else 20)
    args.block_seconds = args.block_seconds or (0.1 if args.quick else 0.4)
    args.warmup_seconds = args.warmup_seconds or (0.5 if args.quick else 2.0)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    info = machine_info(with_torch=True)
    info["device"] = str(device)
    print(f"# compile_overhead: {describe_machine(info)}; device {device}")
    print(f"# batch {args.batch}, {args.rounds} interleaved rounds of ~{args.block_seconds:g} s per module, "
          f"step = zero_grad + forward + cross_entropy + backward"
          f"{'' if args.no_optimizer_step else ' + SGD step'}")

    cases = models()
    if args.models:
        wanted = [w.strip().lower() for w in args.models.split(",")]
        cases = [c for c in cases if any(c.name.lower().startswith(w) for w in wanted)]
    started = time.perf_counter()
    quiet = QuietBudget(args.max_foreign_load, args.max_wait)
    results = []
    for case in cases:
        result = bench_model(case, args, device, quiet)
        results.append(result)
        print(f"  {case.name}: hand {result['hand_steps_per_s']:.1f}/s, compiled "
              f"{result['compiled_steps_per_s']:.1f}/s, ratio {result['ratio']:.3f}", flush=True)
    total = time.perf_counter() - started

    rows = [(r["model"], f"{r['parameters']:,}", f"{r['hand_steps_per_s']:.1f}", f"{r['compiled_steps_per_s']:.1f}",
             f"{r['ratio']:.3f}",
             f"{r['paired_ratio_median']:.3f} [{r['paired_ratio_min']:.3f}, {r['paired_ratio_max']:.3f}]",
             f"{r['rounds']} ({r['rounds_discarded']})", f"{r['compile_graph_ms']:.1f}",
             "PASS" if r["pass"] else "MISS")
            for r in results]
    print()
    print(format_table(("model", "params", "hand-written steps/s", "compiled steps/s", "ratio",
                        "paired ratio median [min, max]", "rounds (discarded)", "compile_graph ms",
                        f"ratio >= {TARGET_RATIO}"), rows))
    noisy = [r["model"] for r in results if r["rounds_kept_with_foreign_load"]]
    if noisy or quiet.left <= 0:
        print(f"\nWARNING: other processes were using the CPU during kept rounds of: {', '.join(noisy) or '-'}; "
              f"the figures are less reliable (waited {quiet.waited:.0f} s for a quiet machine)")
    print(f"\ntotal {total:.0f} s")
    path = write_results("compile_overhead", {
        "benchmark": "compile_overhead",
        "command": " ".join(["python", "bench/compile_overhead.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "target_ratio": TARGET_RATIO,
        "total_seconds": total,
        "seconds_waited_for_quiet_cpu": quiet.waited,
        "results": results,
    }, args.json)
    print(f"wrote {path}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
