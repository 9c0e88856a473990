"""Training-step throughput of the compiled GraphModule vs the equivalent hand-written module.

For each of the five models of tests/test_compiler_equivalence.py (MLP, LeNet-5, residual
block, LSTM classifier, Transformer encoder classifier) the graph is compiled with
``compile_graph``, the weights are copied into the hand-written ``nn.Module`` and both are
checked to compute the same function. Then both run training steps (zero_grad, forward,
cross-entropy, ``loss.backward()``, SGD step) on the same batches.

Measurement: after a warm-up, blocks of N steps alternate between the two modules
(hand, compiled, then compiled, hand: the order flips every round) in one process, so
machine noise hits both alike. Per model the table gives the median steps/s of each and
their ratio (compiled / hand-written; target >= 0.98), plus the median and range of the
per-round paired ratios. Threads are torch's default unless --threads is given.

On a shared machine another process's CPU burst slows torch's OpenMP threads by up to
40x, so the CPU time other processes use is measured around every block (/proc/stat).
Before a round the script waits briefly for a quiet CPU; a round with more than
--max-foreign-load cores of foreign use is set aside and re-run, within a time budget
per model; if too few clean rounds were had, the noisy ones are used and flagged.
``--threads 1 --clock cpu`` measures this process's CPU time instead: much less sensitive
to other processes, for a machine that is never quiet.

Usage::

    python bench/compile_overhead.py            # full run (about 1.5 minutes on a quiet 2-core machine)
    python bench/compile_overhead.py --quick    # short run (about 20 s)
    python bench/compile_overhead.py --threads 1 --clock cpu   # on a busy machine
    python bench/compile_overhead.py --device cuda
    python bench/compile_overhead.py --profile mlp --threads 1   # cProfile both modules

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

from bench._common import (ForeignLoad, ModelCase, copy_weights, describe_machine, format_table,  # noqa: E402
                           machine_info, median, models, quartiles, write_results)
from engine.compile import compile_graph  # noqa: E402

TARGET_RATIO = 0.98
MIN_CLEAN_ROUNDS = 6

Runner = Callable[[int, float], int]


def make_runner(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                lr: float, optimizer_step: bool) -> Runner:
    """``run(n, deadline)``: up to ``n`` training steps of ``model`` on ``batches`` (cycled),
    stopping early at ``deadline`` (perf_counter seconds); returns the steps done."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    position = [0]

    def run(n: int, deadline: float = float("inf")) -> int:
        done = 0
        while done < n:
            x, y = batches[position[0] % len(batches)]
            position[0] += 1
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            if optimizer_step:
                optimizer.step()
            done += 1
            if time.perf_counter() > deadline:
                break
        return done

    return run


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Runner, n: int, device: torch.device, cap_seconds: float = float("inf"),
          clock: Callable[[], float] = time.perf_counter) -> tuple[float, float]:
    """Steps per second over up to ``n`` steps (cut at ``cap_seconds`` of wall time) by
    ``clock``, and the cores other processes used meanwhile."""
    gc.collect()
    monitor = ForeignLoad()
    sync(device)
    monitor.start()
    start = clock()
    done = run(n, time.perf_counter() + cap_seconds)
    sync(device)
    seconds = clock() - start
    return done / seconds, monitor.stop()


class Quiet:
    """Waits for other processes to leave the CPU alone, within a total budget."""

    def __init__(self, threshold: float, budget_seconds: float) -> None:
        self.threshold = threshold
        self.left = budget_seconds
        self.waited = 0.0

    def wait(self, at_most: float = 2.0) -> bool:
        """True once a 0.1 s window had less foreign load than the threshold."""
        end = time.perf_counter() + min(at_most, max(self.left, 0.0))
        while True:
            monitor = ForeignLoad()
            start = time.perf_counter()
            monitor.start()
            time.sleep(0.1)
            load = monitor.stop()
            spent = time.perf_counter() - start
            if load < self.threshold:
                return True
            self.left -= spent
            self.waited += spent
            if time.perf_counter() >= end:
                return False


def check_same_function(compiled: torch.nn.Module, reference: torch.nn.Module, x: torch.Tensor) -> float:
    """Max abs difference of the two outputs in evaluation mode (they share weights)."""
    compiled.eval()
    reference.eval()
    with torch.no_grad():
        diff = (compiled(x) - reference(x)).abs().max().item()
    compiled.train()
    reference.train()
    return diff


def bench_model(case: ModelCase, args: argparse.Namespace, device: torch.device, quiet: Quiet) -> dict[str, Any]:
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

    step = not args.no_optimizer_step
    runs = {"hand": make_runner(reference, batches, args.lr, step),
            "compiled": make_runner(compiled, batches, args.lr, step)}
    return {
        "model": case.name,
        "parameters": n_compiled,
        "batch": args.batch,
        "compile_graph_ms": compile_ms,
        "max_abs_output_diff": max_diff,
        **interleaved_rates(runs, args, device, quiet),
    }


def interleaved_rates(runs: dict[str, Runner], args: argparse.Namespace, device: torch.device,
                      quiet: Quiet) -> dict[str, Any]:
    """Steps/s of ``runs["hand"]`` and ``runs["compiled"]`` in interleaved rounds, and their ratio.

    A warm-up (alternating), then, on a quiet CPU if possible, N is picked so that a block takes
    about ``args.block_seconds``; then rounds of one block each (the order flips every round).
    A round during which other processes used more than ``args.max_foreign_load`` cores is set
    aside; a block is cut at 3 x ``args.block_seconds``.
    """
    warm_end = time.perf_counter() + args.warmup_seconds
    while time.perf_counter() < warm_end:
        for name in ("hand", "compiled"):
            runs[name](2)
    quiet.wait()
    n = 1
    while True:
        start = time.perf_counter()
        runs["hand"](n)
        seconds = time.perf_counter() - start
        if seconds >= args.block_seconds / 8:
            break
        n *= 2
    steps = max(1, round(n * args.block_seconds / seconds))
    clean: list[tuple[float, float, float]] = []  # (hand rate, compiled rate, foreign load)
    noisy: list[tuple[float, float, float]] = []
    deadline = time.perf_counter() + args.model_budget
    attempt = 0
    while len(clean) < args.rounds and (time.perf_counter() < deadline or len(clean) + len(noisy) < 2):
        order = ("hand", "compiled") if attempt % 2 == 0 else ("compiled", "hand")
        attempt += 1
        quiet.wait()
        rate, load = {}, 0.0
        for name in order:
            rate[name], block_load = timed(runs[name], steps, device, 3 * args.block_seconds, args.clock_fn)
            load = max(load, block_load)
        (clean if load <= args.max_foreign_load else noisy).append((rate["hand"], rate["compiled"], load))
    used = clean if len(clean) >= MIN_CLEAN_ROUNDS else clean + noisy
    hand_rates = [r[0] for r in used]
    compiled_rates = [r[1] for r in used]
    paired = [c / h for h, c, _ in used]
    hand, comp = median(hand_rates), median(compiled_rates)
    return {
        "steps_per_block": steps,
        "rounds_used": len(used),
        "rounds_clean": len(clean),
        "rounds_noisy": len(noisy),
        "noisy_rounds_used": len(used) - len(clean),
        "foreign_load_per_round": [r[2] for r in used],
        "hand_steps_per_s": hand,
        "compiled_steps_per_s": comp,
        "ratio": comp / hand,
        "paired_ratio_median": median(paired),
        "paired_ratio_min": min(paired),
        "paired_ratio_max": max(paired),
        "paired_ratio_quartiles": quartiles(paired),
        "hand_rates": hand_rates,
        "compiled_rates": compiled_rates,
        "pass": comp / hand >= TARGET_RATIO,
    }


def profile_model(case: ModelCase, args: argparse.Namespace, device: torch.device, steps: int = 2000) -> str:
    """cProfile ``steps`` training steps of the hand-written and of the compiled module."""
    import cProfile
    import io
    import pstats

    torch.manual_seed(0)
    compiled = compile_graph(case.graph).module
    reference = case.make_reference()
    copy_weights(compiled, reference, case.name_map(reference) if case.name_map else None)
    x = torch.randn(args.batch, *case.input_shape).to(device)
    y = torch.randint(0, case.classes, (args.batch,)).to(device)
    out = io.StringIO()
    for name, model in (("hand-written", reference.to(device).train()), ("compiled", compiled.to(device).train())):
        run = make_runner(model, [(x, y)], args.lr, not args.no_optimizer_step)
        run(max(steps // 10, 2))
        profiler = cProfile.Profile()
        profiler.enable()
        run(steps)
        sync(device)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        calls = sum(v[1] for k, v in stats.stats.items() if k[2] == "_call_impl")  # type: ignore[attr-defined]
        out.write(f"===== {case.name}, {name}: {steps} steps; nn.Module calls per step: {calls / steps:g}\n")
        stats.sort_stats("tottime").print_stats(15)
        out.write("\n".join(line for line in text.getvalue().splitlines() if line.strip()) + "\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run: fewer, shorter rounds")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    parser.add_argument("--rounds", type=int, help="clean interleaved rounds per model (default 30, quick 8)")
    parser.add_argument("--block-seconds", type=float, help="length of one timed block (default 0.15, quick 0.08)")
    parser.add_argument("--warmup-seconds", type=float, help="warm-up per model (default 1.5, quick 0.5)")
    parser.add_argument("--model-budget", type=float,
                        help="seconds per model for the rounds, re-runs included (default 40, quick 6)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: this process's CPU time, robust to other "
                             "processes on a busy machine but meaningful only with --threads 1 (implies "
                             "--max-foreign-load inf --max-wait 0 unless given)")
    parser.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate")
    parser.add_argument("--no-optimizer-step", action="store_true", help="forward + backward only")
    parser.add_argument("--models", help="comma-separated subset of model names (case-insensitive prefixes)")
    parser.add_argument("--max-foreign-load", type=float,
                        help="set a round aside when other processes used more CPU cores than this (default 0.1; "
                             "inf with --clock cpu)")
    parser.add_argument("--max-wait", type=float,
                        help="total seconds to wait for other processes to go quiet (default 60; 0 with --clock cpu)")
    parser.add_argument("--profile", metavar="MODEL",
                        help="instead of the benchmark, cProfile training steps of one model (name prefix)")
    parser.add_argument("--json", help="result file (default bench/results/compile_overhead.json)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (8 if args.quick else 30)
    args.block_seconds = args.block_seconds or (0.08 if args.quick else 0.15)
    args.warmup_seconds = args.warmup_seconds or (0.5 if args.quick else 1.5)
    args.model_budget = args.model_budget or (6.0 if args.quick else 40.0)
    cpu_clock = args.clock == "cpu"
    if args.max_foreign_load is None:
        args.max_foreign_load = float("inf") if cpu_clock else 0.1
    if args.max_wait is None:
        args.max_wait = 0.0 if cpu_clock else 60.0
    if cpu_clock and args.threads != 1:
        parser.error("--clock cpu needs --threads 1 (with more threads CPU time counts OpenMP spinning)")
    if cpu_clock and args.device != "cpu":
        parser.error("--clock cpu is for --device cpu")
    args.clock_fn = time.process_time if cpu_clock else time.perf_counter

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine_info(with_torch=True)
    info["device"] = str(device)
    print(f"# compile_overhead: {describe_machine(info)}; device {device}")
    if not args.profile:
        print(f"# batch {args.batch}, {args.rounds} interleaved rounds of ~{args.block_seconds:g} s per module "
              f"({args.clock} clock), "
              f"step = zero_grad + forward + cross_entropy + backward"
              f"{'' if args.no_optimizer_step else ' + SGD step'}")

    cases = models()
    if args.profile:
        case = next(c for c in cases if c.name.lower().startswith(args.profile.lower()))
        print(profile_model(case, args, device))
        return 0
    if args.models:
        wanted = [w.strip().lower() for w in args.models.split(",")]
        cases = [c for c in cases if any(c.name.lower().startswith(w) for w in wanted)]
    started = time.perf_counter()
    quiet = Quiet(args.max_foreign_load, args.max_wait)
    results = []
    for case in cases:
        result = bench_model(case, args, device, quiet)
        results.append(result)
        print(f"  {case.name}: hand {result['hand_steps_per_s']:.1f}/s, compiled "
              f"{result['compiled_steps_per_s']:.1f}/s, ratio {result['ratio']:.3f} "
              f"({result['rounds_clean']} clean, {result['rounds_noisy']} noisy rounds)", flush=True)
    total = time.perf_counter() - started

    rows = [(r["model"], f"{r['parameters']:,}", f"{r['hand_steps_per_s']:.1f}", f"{r['compiled_steps_per_s']:.1f}",
             f"{r['ratio']:.3f}",
             f"{r['paired_ratio_median']:.3f} [{r['paired_ratio_quartiles'][0]:.3f}, "
             f"{r['paired_ratio_quartiles'][1]:.3f}]",
             f"{r['rounds_used']}" + (f" ({r['noisy_rounds_used']} noisy)" if r["noisy_rounds_used"] else ""),
             f"{r['compile_graph_ms']:.1f}", "PASS" if r["pass"] else "MISS")
            for r in results]
    print()
    print(format_table(("model", "params", "hand-written steps/s", "compiled steps/s", "ratio",
                        "paired ratio median [IQR]", "rounds", "compile_graph ms",
                        f"ratio >= {TARGET_RATIO}"), rows))
    print(f"\ntotal {total:.0f} s (waited {quiet.waited:.0f} s for a quiet CPU)")
    noisy = [r["model"] for r in results if r["noisy_rounds_used"]]
    if noisy:
        print(f"WARNING: too few rounds without other processes on the CPU for: {', '.join(noisy)}; "
              "those figures include noisy rounds and are less reliable")
    path = write_results("compile_overhead", {
        "benchmark": "compile_overhead",
        "command": " ".join(["python", "bench/compile_overhead.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": info,
        "settings": {k: (None if v == float("inf") else v) for k, v in vars(args).items()
                     if k not in ("json", "clock_fn")},
        "target_ratio": TARGET_RATIO,
        "total_seconds": total,
        "seconds_waited_for_quiet_cpu": quiet.waited,
        "results": results,
    }, args.json)
    print(f"wrote {path}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
