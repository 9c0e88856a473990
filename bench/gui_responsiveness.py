"""GUI responsiveness while training, and what the dashboard costs the training.

Workload: a template (default templates/cnn_digits.json) trained for E epochs.

Variants, interleaved: each round runs headless, dashboard, dashboard, headless (the mirror
in every other round), so machine drift hits both alike; a round's figure is the mean of its
two runs of each variant, and its lateness the worse of the two:

* ``headless``: ``python main.py train TEMPLATE --epochs E`` (the CLI: Trainer in-process,
  progress bar to a pipe).
* ``dashboard``: the app's main window (the platform of this process: offscreen by default,
  xcb when ``--xcb`` and a DISPLAY), the template opened, Train pressed through the window's
  action, the dashboard drawing every event (curves at up to 20 Hz, prediction views,
  run list, progress). A ``QTimer`` (PreciseTimer) ticking every 10 ms measures the event
  loop's lateness: for each tick, the time since the previous tick minus 10 ms. The
  percentiles cover the training (first step to the end of the run); the worst tick before
  it (window start, worker start-up) is reported separately.

Training samples/s = mean of ``EpochEnd.samples_per_s`` over epochs 2..E (epoch 1 is
warm-up), read from each run's metrics.jsonl.

Targets (issues #5 and #12): as the median of the rounds, lateness p99 < 50 ms and dashboard /
headless samples/s >= 0.95; in every round, p99 < 80 ms and the ratio >= 0.9.

Usage::

    python bench/gui_responsiveness.py [--epochs 8] [--rounds 2] [--template templates/cnn_digits.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    describe_machine,
    epoch_rates,
    format_table,
    machine_info,
    median,
    write_results,
)

TICK_MS = 10


def run_headless(template: Path, epochs: int, out: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(template), "--epochs", str(epochs),
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rates = epoch_rates(out)
    return {"samples_per_s": sum(rates) / len(rates), "wall_s": time.perf_counter() - start}


def run_dashboard(template: Path, epochs: int, out: Path, xcb: bool) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb" if xcb else "offscreen", NEURAL_CANVAS_RUNS_DIR=str(out))
    result = subprocess.run([sys.executable, __file__, "--child", str(template), "--epochs", str(epochs)],
                            env=env, check=True, capture_output=True, text=True)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    runs = [p for p in out.iterdir() if p.is_dir()]
    rates = epoch_rates(runs[0])
    data["samples_per_s"] = sum(rates) / len(rates)
    return data


def child(template: Path, epochs: int) -> None:
    """Inside the GUI process: open, train, measure lateness, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.graph.fileformat import load_project, save_project
    from gui.main_window import MainWindow

    app = QApplication([])
    folder = Path(tempfile.mkdtemp())
    project = load_project(template)
    project.training["epochs"] = epochs
    path = folder / template.name
    save_project(project, path)
    window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    window.open_project(path)
    lateness: list[float] = []  # while training: from the run's start to its end
    startup: list[float] = []  # before: window start, worker start-up
    stalls: list[tuple[float, float]] = []  # (seconds since start, lateness ms) of ticks > 100 ms late
    last, began = [0.0], time.perf_counter()
    ended: list[object] = []
    started: list[float] = []

    def tick() -> None:
        now = time.perf_counter()
        if last[0]:
            late = (now - last[0]) * 1000 - TICK_MS
            (lateness if started and not ended else startup).append(late)
            if late > 100:
                stalls.append((round(now - began, 2), round(late, 1)))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    cpu: list[float] = []  # this (GUI) process's CPU seconds at the run's start and end

    def on_state(state: str) -> None:
        if state == "running" and not started:
            started.append(time.perf_counter())
            cpu.append(time.process_time())

    window.training.session.state_changed.connect(on_state)
    window.training.session.run_ended.connect(lambda event: cpu.append(time.process_time()))
    window.training.session.run_ended.connect(ended.append)
    window.training.session.run_ended.connect(lambda event: app.quit())
    QTimer.singleShot(500, window.start_training)
    QTimer.singleShot(100, timer.start)
    app.exec()
    lateness.sort()
    count = len(lateness)
    print(json.dumps({
        "startup_lateness_max_ms": max(startup, default=0.0), "ticks": count,
        "lateness_p50_ms": lateness[count // 2], "lateness_p99_ms": lateness[int(count * 0.99)],
        "lateness_max_ms": lateness[-1], "redraws": window.training.dashboard.plots.redraw_count,
        "ended": type(ended[0]).__name__ if ended else "none", "platform": app.platformName(),
        "stalls": stalls, "run_started_s": round(started[0] - began, 2) if started else None,
        "gui_cpu_share": (cpu[1] - cpu[0]) / (time.perf_counter() - started[0]) if len(cpu) == 2 else None}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=ROOT / "templates" / "cnn_digits.json")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--xcb", action="store_true", help="use the X11 platform (needs DISPLAY)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", help="results file (default bench/results/gui_responsiveness.json)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    info = machine_info()
    print(f"# GUI responsiveness while training {args.template.name}, {args.epochs} epochs\n"
          f"# {describe_machine(info)}\n")
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.rounds):
            # A-B-B-A: machine speed drifts over seconds (a headless run beside another varies by up to
            # 14% here), so each round brackets two dashboard runs with two headless ones, or the mirror
            pair = ["headless", "dashboard"] if index % 2 == 0 else ["dashboard", "headless"]
            runs: dict[str, list[dict]] = {"headless": [], "dashboard": []}
            for position, variant in enumerate(pair + pair[::-1]):
                out = Path(scratch) / f"{variant}-{index}-{position}"
                runs[variant].append(run_headless(args.template, args.epochs, out) if variant == "headless"
                                     else run_dashboard(args.template, args.epochs, out, args.xcb))
            row = {"headless": combine(runs["headless"]), "dashboard": combine(runs["dashboard"]), "runs": runs}
            row["ratio"] = row["dashboard"]["samples_per_s"] / row["headless"]["samples_per_s"]
            first, second = (r["samples_per_s"] for r in runs["headless"])
            row["headless_spread"] = min(first, second) / max(first, second)
            rounds.append(row)
            print(f"round {index + 1}: headless {row['headless']['samples_per_s']:,.0f} samples/s (its two runs "
                  f"within {1 - row['headless_spread']:.0%}), dashboard {row['dashboard']['samples_per_s']:,.0f} "
                  f"samples/s (ratio {row['ratio']:.3f}), lateness p99 {row['dashboard']['lateness_p99_ms']:.1f} ms",
                  flush=True)
    ratio = median([r["ratio"] for r in rounds])
    worst_ratio = min(r["ratio"] for r in rounds)
    p99_median = median([r["dashboard"]["lateness_p99_ms"] for r in rounds])
    p99 = max(r["dashboard"]["lateness_p99_ms"] for r in rounds)
    rows = [
        ["event-loop lateness p50 (ms)", f"{median([r['dashboard']['lateness_p50_ms'] for r in rounds]):.2f}", "", ""],
        ["event-loop lateness p99 (ms), median of rounds", f"{p99_median:.1f}", "< 50", _mark(p99_median < 50)],
        ["event-loop lateness p99 (ms), worst round", f"{p99:.1f}", "< 80", _mark(p99 < 80)],
        ["lateness before the first step, max (ms)",
         f"{max(r['dashboard']['startup_lateness_max_ms'] for r in rounds):.1f}", "", ""],
        ["event-loop lateness max (ms), worst round",
         f"{max(r['dashboard']['lateness_max_ms'] for r in rounds):.1f}", "", ""],
        ["headless samples/s (median)", f"{median([r['headless']['samples_per_s'] for r in rounds]):,.0f}", "", ""],
        ["dashboard samples/s (median)", f"{median([r['dashboard']['samples_per_s'] for r in rounds]):,.0f}", "", ""],
        ["dashboard / headless (median of rounds)", f"{ratio:.3f}", ">= 0.95", _mark(ratio >= 0.95)],
        ["dashboard / headless (worst round)", f"{worst_ratio:.3f}", ">= 0.9", _mark(worst_ratio >= 0.9)],
        ["headless run beside headless run, worst round (noise)",
         f"{min(r['headless_spread'] for r in rounds):.3f}", "", ""],
    ]
    print()
    print(format_table(["measure", "value", "target", ""], rows))
    path = write_results("gui_responsiveness", {"machine": info, "template": args.template.name,
                                                "epochs": args.epochs, "rounds": rounds}, args.out)
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def combine(runs: list[dict]) -> dict:
    """One round's figures from its two runs of a variant: mean samples/s, the worse lateness."""
    combined = {"samples_per_s": sum(r["samples_per_s"] for r in runs) / len(runs)}
    for key in ("lateness_p99_ms", "lateness_max_ms", "startup_lateness_max_ms"):
        if key in runs[0]:
            combined[key] = max(r[key] for r in runs)
    if "lateness_p50_ms" in runs[0]:
        combined["lateness_p50_ms"] = median([r["lateness_p50_ms"] for r in runs])
    if runs[0].get("gui_cpu_share") is not None:
        combined["gui_cpu_share"] = sum(r["gui_cpu_share"] or 0 for r in runs) / len(runs)
    return combined


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


if __name__ == "__main__":
    main()
