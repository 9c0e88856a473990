"""The ``search`` command: trials per hour against its worker count, epochs saved by pruning, and
whether a search beats the CNN template at no more FLOPs.

Every figure comes from the real CLI (``python main.py search PROJECT --trials N --workers K
--out DIR --json`` in a subprocess) on project files generated from the templates in a temp
folder; the study is then read back from ``<out>/study.db`` (Optuna) and the trial run folders.

1. **Throughput**: trials/hour (trials / wall seconds of the whole command) with K=1 and K=2
   workers on templates/fnn_spirals.json and templates/cnn_digits.json, same space, same trial
   count, sampler ``random`` and pruner ``none`` (both K train exactly the same trials). K=1 and K=2
   alternate within each round (order flipped every round); medians over ``--rounds`` (quiet
   ones: see below); the ratio is paired per round. Target: K=2 / K=1 >= 1.6x on 2 cores.
2. **Pruning**: the same seeded TPE search on cnn_digits (``--prune-trials`` trials, K=1 by default
   so that pruning decisions do not depend on timing) with pruner ``median`` and ``none``: epochs
   trained over all trials (epoch lines of each trial's metrics.jsonl), best val_accuracy, wall
   time. Target: >= 40% fewer epochs at an equal best metric.
3. **Quality**: ``--quality-trials`` trials on cnn_digits over widths, learning rate and an optional
   dropout, once with objectives metric + flops (NSGA-II) and once with the metric alone (TPE,
   FLOPs read from the trials' user_attrs). The template itself is trained once with
   ``python main.py train`` (best epoch's val_accuracy, as a trial's value is its best epoch) and
   measured with ``summary --json``. Question: does a trial reach at least the template's accuracy
   with no more FLOPs? (NSGA-II's first generation, 50 trials, is random: 30 trials never leave it.)

Other processes' CPU use is measured around every timed search (``others' load``, cores), and
each timed search waits (up to a budget) for a quiet CPU first; part 1 sets aside rounds where
others used more than 0.3 cores (unless no round was that quiet). Results: bench/results/search.json.

Usage::

    python bench/search.py [--quick] [--trials 8] [--rounds 3] [--parts 1 2 3] [--dir DIR] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (ROOT, ForeignLoadWithChildren, QuietBudget, describe_machine, format_table,  # noqa: E402
                           machine_info, median, write_results)

NOISY = 0.3  # cores other processes used during a timed search: a round above it is set aside in part 1
STUDY = "bench"  # search.name: the trials go to <out>/bench/trial-NNNN
#: Part 1's space per template: a learning rate and one width (the layer the tests search too).
THROUGHPUT_SPACES: dict[str, dict[str, Any]] = {
    "fnn_spirals": {"training.lr": {"low": 1e-3, "high": 3e-2, "log": True},
                    "nodes.fc2.out_features": {"low": 8, "high": 64, "step": 8}},
    "cnn_digits": {"training.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                   "nodes.fc1.out_features": {"low": 16, "high": 128, "step": 16}},
}
#: Part 2's space: a wide learning rate range (some trials are hopeless early) and two widths.
PRUNING_SPACE = {"training.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                 "nodes.conv2.out_channels": {"low": 8, "high": 64, "step": 8},
                 "nodes.fc1.out_features": {"low": 16, "high": 128, "step": 16}}
#: Part 3's space: every width's steps include the template's value (16, 32, 64) and go below it.
QUALITY_SPACE = {"training.lr": {"low": 3e-4, "high": 3e-2, "log": True},
                 "nodes.conv1.out_channels": {"low": 4, "high": 32, "step": 4},
                 "nodes.conv2.out_channels": {"low": 8, "high": 48, "step": 8},
                 "nodes.fc1.out_features": {"low": 16, "high": 128, "step": 16},
                 "nodes.dropout": {"optional": True}}


# ------------------------------------------------------------------------ the CLI
def write_project(folder: Path, template: str, label: str, **search: Any) -> Path:
    """``templates/<template>.json`` with a ``search`` section, saved as ``<folder>/<label>.json``."""
    data = json.loads((ROOT / "templates" / f"{template}.json").read_text(encoding="utf-8"))
    data["search"] = {"name": STUDY, **search}
    path = folder / f"{label}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def main_py(*args: str) -> subprocess.CompletedProcess[str]:
    """``python main.py ARGS`` from the repository root (fails loudly)."""
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"main.py {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def search(project: Path, out: Path, trials: int, workers: int, quiet: QuietBudget) -> dict[str, Any]:
    """One timed ``main.py search``: its ``--json`` report plus ``seconds`` and ``others_load``."""
    shutil.rmtree(out, ignore_errors=True)  # a study left in --dir would be continued, not rerun
    quiet.wait()
    load = ForeignLoadWithChildren()
    load.start()
    started = time.perf_counter()
    result = main_py("search", str(project), "--trials", str(trials), "--workers", str(workers), "--out", str(out),
                     "--json")
    report = json.loads(result.stdout)
    report.update(seconds=time.perf_counter() - started, others_load=load.stop(), out=str(out))
    return report


def epoch_events(run_dir: Path) -> list[dict[str, Any]]:
    """The ``epoch`` lines of a run folder's metrics.jsonl."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e.get("type") == "epoch"]


def best_accuracy(run_dir: Path) -> float:
    return max(float(e["val"]["accuracy"]) for e in epoch_events(run_dir))


def study_trials(out: Path) -> list[Any]:
    """Every trial of the study in ``<out>/study.db`` (Optuna FrozenTrials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{out / 'study.db'}").get_trials(deepcopy=False)


# ------------------------------------------------------------------------ part 1
def summarize_throughput(template: str, trials: int, space: dict[str, Any], rounds: list[dict[str, Any]]) -> dict:
    """Medians over the rounds where other processes used less than ``NOISY`` cores during both
    searches (over every round when none was that quiet)."""
    clean = [r for r in rounds if max(r["k1"]["others_load"], r["k2"]["others_load"]) < NOISY] or rounds
    return {"template": template, "trials": trials, "space": space, "rounds": rounds,
            "rounds_used": [rounds.index(r) + 1 for r in clean],
            "k1_trials_per_hour": median([r["k1"]["trials_per_hour"] for r in clean]),
            "k2_trials_per_hour": median([r["k2"]["trials_per_hour"] for r in clean]),
            "ratio": median([r["ratio"] for r in clean]),
            "others_load_max": max(max(r["k1"]["others_load"], r["k2"]["others_load"]) for r in clean)}


def throughput(args: argparse.Namespace, scratch: Path, quiet: QuietBudget) -> list[dict[str, Any]]:
    results = []
    for template, space in THROUGHPUT_SPACES.items():
        project = write_project(scratch, template, f"throughput-{template}", space=space, sampler="random",
                                pruner="none")
        rounds = []
        for index in range(args.rounds):
            runs = {}
            for workers in ((1, 2) if index % 2 == 0 else (2, 1)):
                report = search(project, scratch / f"tp-{template}-{index}-k{workers}", args.trials, workers, quiet)
                assert report["trials"]["complete"] == args.trials, report["trials"]
                runs[workers] = {"seconds": report["seconds"], "others_load": report["others_load"],
                                 "trials_per_hour": args.trials * 3600 / report["seconds"]}
            ratio = runs[2]["trials_per_hour"] / runs[1]["trials_per_hour"]
            rounds.append({"k1": runs[1], "k2": runs[2], "ratio": ratio})
            print(f"{template} round {index + 1}: K=1 {runs[1]['seconds']:.1f} s, K=2 {runs[2]['seconds']:.1f} s, "
                  f"ratio {rounds[-1]['ratio']:.2f}x", flush=True)
        results.append(summarize_throughput(template, args.trials, space, rounds))
    return results


# ------------------------------------------------------------------------ part 2
def pruning(args: argparse.Namespace, scratch: Path, quiet: QuietBudget) -> dict[str, Any]:
    result: dict[str, Any] = {"trials": args.prune_trials, "workers": args.prune_workers, "space": PRUNING_SPACE}
    for pruner in ("none", "median"):
        project = write_project(scratch, "cnn_digits", f"pruning-{pruner}", space=PRUNING_SPACE, pruner=pruner)
        out = scratch / f"pruning-{pruner}"
        report = search(project, out, args.prune_trials, args.prune_workers, quiet)
        epochs = [len(epoch_events(run)) for run in sorted((out / STUDY).glob("trial-*"))]
        seconds = {state: [t.duration.total_seconds() for t in study_trials(out) if t.state.name == state.upper()]
                   for state in ("complete", "pruned")}
        result[pruner] = {"seconds": report["seconds"], "others_load": report["others_load"],
                          "trials": report["trials"], "epochs": sum(epochs), "epochs_per_trial": epochs,
                          "trial_seconds": {k: median(v) if v else None for k, v in seconds.items()},
                          "best_val_accuracy": report["best"][0]["values"][0], "best": report["best"][0]}
        print(f"pruner {pruner}: {sum(epochs)} epochs, best {result[pruner]['best_val_accuracy']:.4f}, "
              f"{report['seconds']:.1f} s, {report['trials']}", flush=True)
    result["epochs_saved"] = 1 - result["median"]["epochs"] / result["none"]["epochs"]
    result["seconds_saved"] = 1 - result["median"]["seconds"] / result["none"]["seconds"]
    return result


# ------------------------------------------------------------------------ part 3
def quality(args: argparse.Namespace, scratch: Path, quiet: QuietBudget) -> dict[str, Any]:
    template_flops = int(json.loads(main_py("summary", str(ROOT / "templates" / "cnn_digits.json"), "--json").stdout)
                         ["flops"])
    main_py("train", str(ROOT / "templates" / "cnn_digits.json"), "--out", str(scratch / "template-run"), "--quiet")
    template_accuracy = best_accuracy(scratch / "template-run")
    result: dict[str, Any] = {"trials": args.quality_trials, "workers": args.quality_workers, "space": QUALITY_SPACE,
                              "template": {"val_accuracy": template_accuracy, "flops": template_flops},
                              "searches": []}
    for label, objectives in (("nsga2: metric + flops", ["metric", "flops"]), ("tpe: metric only", ["metric"])):
        project = write_project(scratch, "cnn_digits", f"quality-{len(objectives)}", space=QUALITY_SPACE,
                                objectives=objectives, pruner="none")
        out = scratch / f"quality-{len(objectives)}"
        report = search(project, out, args.quality_trials, args.quality_workers, quiet)
        # trial 0 trains the template itself (the study's baseline): it is the mark, not a find
        done = [t for t in study_trials(out) if t.state.name == "COMPLETE" and not t.user_attrs.get("baseline")]
        rows = [{"number": t.number, "val_accuracy": t.values[0], "flops": int(t.user_attrs["flops"]),
                 "params": t.params} for t in done]
        good = [r for r in rows if r["val_accuracy"] >= template_accuracy and r["flops"] <= template_flops]
        best = max(good, key=lambda r: (r["val_accuracy"], -r["flops"])) if good else None
        top = max(rows, key=lambda r: (r["val_accuracy"], -r["flops"]))
        result["searches"].append({"search": label, "objectives": objectives, "seconds": report["seconds"],
                                   "others_load": report["others_load"], "trials": report["trials"],
                                   "qualifying": len(good), "best_qualifying": best, "most_accurate": top,
                                   "all": rows})
        print(f"{label}: {len(good)} of {len(rows)} trials >= template accuracy at <= template FLOPs", flush=True)
    return result


# ------------------------------------------------------------------------ report
def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k.split('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.', 1)[-1]}={v}"
                    for k, v in params.items())


def print_throughput(results: dict[str, Any], args: dict[str, Any]) -> None:
    print(f"\n## 1. Trials per hour ({args['trials']} trials, random sampler, no pruning, median of the "
          f"quiet rounds of {args['rounds']})\n")
    print(format_table(["template", "K=1 trials/h", "K=2 trials/h", "K=2 / K=1", "target", "", "rounds used",
                        "others' load (max)"],
                       [[r["template"], f"{r['k1_trials_per_hour']:,.0f}", f"{r['k2_trials_per_hour']:,.0f}",
                         f"{r['ratio']:.2f}x", ">= 1.6x", "PASS" if r["ratio"] >= 1.6 else "MISS",
                         ", ".join(map(str, r["rounds_used"])), f"{r['others_load_max']:.2f}"] for r in results]))


def print_pruning(p: dict[str, Any]) -> None:
    print(f"\n## 2. Pruning (cnn_digits, {p['trials']} trials, seeded TPE, K={p['workers']})\n")
    print(format_table(["pruner", "epochs trained", "complete / pruned", "best val_accuracy", "wall s",
                        "median s per complete / pruned trial", "others' load"],
                       [[name, p[name]["epochs"], f"{p[name]['trials']['complete']} / {p[name]['trials']['pruned']}",
                         f"{p[name]['best_val_accuracy']:.4f}", f"{p[name]['seconds']:.1f}",
                         " / ".join(f"{v:.1f}" if v is not None else "-" for v in p[name]["trial_seconds"].values()),
                         f"{p[name]['others_load']:.2f}"] for name in ("none", "median")]))
    equal = p["median"]["best_val_accuracy"] >= p["none"]["best_val_accuracy"]
    target = "PASS" if p["epochs_saved"] >= 0.4 else "MISS"
    print(f"\nepochs saved: {p['epochs_saved']:.0%} (target >= 40%: {target}), "
          f"best metric {'equal or better' if equal else 'LOWER'} with pruning; "
          f"wall time saved {p['seconds_saved']:.0%}")


def print_quality(q: dict[str, Any]) -> None:
    t = q["template"]
    print(f"\n## 3. Quality (cnn_digits, {q['trials']} trials, K={q['workers']}): template val_accuracy "
          f"{t['val_accuracy']:.4f} at {t['flops']:,} FLOPs\n")
    rows = []
    for s in q["searches"]:
        b, top = s["best_qualifying"], s["most_accurate"]
        rows.append([s["search"], f"{s['qualifying']} of {len(s['all'])}",
                     f"#{b['number']} {b['val_accuracy']:.4f} at {b['flops']:,} FLOPs ({b['flops'] / t['flops']:.0%}): "
                     f"{_params(b['params'])}" if b else "none",
                     f"#{top['number']} {top['val_accuracy']:.4f} at {top['flops']:,}", f"{s['seconds']:.0f}",
                     f"{s['others_load']:.2f}"])
    print(format_table(["search", ">= template acc, <= its FLOPs", "best such trial", "most accurate trial",
                        "wall s", "others' load"], rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials x 1 round, 10 pruning and quality trials")
    parser.add_argument("--trials", type=int, default=8, help="part 1: trials per search")
    parser.add_argument("--rounds", type=int, default=3, help="part 1: rounds (medians)")
    parser.add_argument("--prune-trials", type=int, default=20)
    parser.add_argument("--prune-workers", type=int, default=1)
    parser.add_argument("--quality-trials", type=int, default=30)
    parser.add_argument("--quality-workers", type=int, default=2)
    parser.add_argument("--quiet-wait", type=float, default=300, help="seconds in all to wait for a quiet CPU")
    parser.add_argument("--parts", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2, 3])
    parser.add_argument("--dir", type=Path, help="keep the projects and trial runs here (default a temp folder)")
    parser.add_argument("--out", help="results file (default bench/results/search.json)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rounds, args.prune_trials, args.quality_trials = 4, 1, 10, 10
    info = machine_info(with_torch=True)
    print(f"# {describe_machine(info)}\n", flush=True)
    quiet = QuietBudget(threshold=0.3, budget_seconds=args.quiet_wait)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v
                                                         for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="nc_bench_search_") as tmp:
        scratch = args.dir or Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        for part, name, measure in ((1, "throughput", throughput), (2, "pruning", pruning), (3, "quality", quality)):
            if part in args.parts:
                results[name] = measure(args, scratch, quiet)
    results.update(total_seconds=time.perf_counter() - started, quiet_waited_s=quiet.waited)
    for name, show in (("throughput", lambda r: print_throughput(r, results["args"])), ("pruning", print_pruning),
                       ("quality", print_quality)):
        if name in results:
            show(results[name])
    path = write_results("search", results, args.out)
    print(f"\ntotal {results['total_seconds']:.0f} s (waited {quiet.waited:.0f} s for a quiet CPU); results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
