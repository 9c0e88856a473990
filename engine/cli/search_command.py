"""``search``: an Optuna study over the project's ``search`` section, trials in worker processes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UserError
from engine.graph.fileformat import load_project, sibling_weights
from engine.search.space import describe_value

if TYPE_CHECKING:  # Optuna loads only when a search runs: other commands start faster
    from engine.search.study import OpenStudy
    from engine.search.trial import TrialUpdate


def register(commands: Any) -> None:
    """Add ``search`` to the sub-parsers."""
    p = commands.add_parser("search", help="hyper-parameter and architecture search over the project's search "
                                           "section (Optuna)")
    p.add_argument("file", help="project file (.json) with a search section")
    p.add_argument("--trials", type=int, help="trials the study should hold in all (default: search.trials)")
    p.add_argument("--timeout", type=float, metavar="S", help="start no new trial after S seconds")
    p.add_argument("--workers", type=int, help="trials at a time on this machine (default: one per core, at most 4)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage, e.g. postgresql://user:pw@host/db, shared "
                                                    "by workers on several machines (default: SQLite in --out)")
    p.add_argument("--join", action="store_true", help="join a study another machine started in --storage")
    p.add_argument("--out", type=Path, help="folder of the trial runs (default runs/<name>-search)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where trials train")
    p.add_argument("--json", action="store_true", help="print the best trial(s) as JSON")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """Run the search; exit 0 when trials ran (or the user stopped it), 1 when none could complete."""
    from engine.search.runner import SearchRunner, default_workers, out_dir_for
    from engine.search.session import SearchRequest, start_search

    if args.join and not args.storage:
        raise UserError("search: --join needs --storage URL (the study another machine started)")
    path = Path(args.file)
    project = load_project(path)
    request = SearchRequest(project, path, args.out or out_dir_for(path), args.storage, args.join, args.trials,
                            default_workers() if args.workers is None else args.workers, args.timeout, args.device)
    printer = _Printer(quiet=args.json)
    context, limits, opened = start_search(request, printer.show, sibling_weights(path))
    printer.begin(opened, limits.trials, request.out_dir)
    runner = SearchRunner(context, limits)

    def on_interrupt(signum: int, frame: Any) -> None:
        runner.stop()
        printer.write({1: "stopping after the running trials' epoch (Ctrl+C again: within one batch, a third "
                          "time: at once); run the same command to continue",
                       2: "stopping the running trials now", 3: "killing the running trials"}
                      .get(runner._stops, "killing the running trials"))

    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        printer.close()
    return _conclude(opened, args.json, request.out_dir, runner.stopping)


def _conclude(opened: OpenStudy, as_json: bool, out_dir: Path, stopped: bool) -> int:
    from engine.search.runner import trial_rows
    from engine.search.study import shown_url

    study, names = opened.study, opened.settings.objective_names()
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "complete"]
    best_trials = study.best_trials if len(names) > 1 else [study.best_trial] if complete else []
    best = [_best_row(t, opened) for t in best_trials] if complete else []
    counts = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail", "running")}
    if as_json:
        print(json.dumps({"study": study.study_name, "storage": shown_url(opened.storage_url),
                          "objectives": names, "directions": opened.settings.directions, "trials": counts,
                          "best": best}, indent=2))
    else:
        print(f"study {study.study_name!r}: {counts['complete']} complete, {counts['pruned']} pruned, "
              f"{counts['fail']} failed, {counts['running']} to continue ({shown_url(opened.storage_url)})")
        for row in best:
            values = "  ".join(f"{n} {_fmt(v)}" for n, v in zip(names, row["values"]))
            print(f"best: trial {row['number']}  {values}  {_params(row['params'])}")
            print(f"      run folder: {row['run']}")
    if not complete and not stopped:
        failed = [r for r in rows if r["state"] == "fail"]
        if failed:
            raise UserError(f"no trial completed; trial {failed[-1]['number']}: {failed[-1]['message']}")
    return 0


def _best_row(trial: Any, opened: OpenStudy) -> dict[str, Any]:
    from engine.search.sampling import stored_values

    return {"number": trial.number, "params": stored_values(trial.params, opened.space), "values": list(trial.values),
            "run": trial.user_attrs.get("run", ""), "baseline": bool(trial.user_attrs.get("baseline"))}


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k.split('.', 1)[-1]}={describe_value(v)}" for k, v in params.items())


class _Printer:
    """A tqdm bar over the study's trials and one line per finished trial."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.best: float | None = None
        self.direction = "maximize"
        self.metric = ""

    def begin(self, opened: OpenStudy, total: int, out_dir: Path) -> None:
        from engine.search.study import shown_url

        study = opened.study
        self.metric, self.direction = opened.settings.metric, opened.settings.directions[0]
        done = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
        self.write(f"study {study.study_name!r} in {shown_url(opened.storage_url)}: {done} of {total} trials done; "
                   f"optimizing {', '.join(opened.settings.objective_names())} with "
                   f"{opened.settings.sampler_name}; trial runs in {out_dir}")
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=min(done, total), unit="trial", dynamic_ncols=True, file=sys.stderr,
                            leave=False, disable=None)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        elif not self.quiet:
            print(text, flush=True)
        else:
            print(text, file=sys.stderr, flush=True)

    def show(self, update: TrialUpdate) -> None:
        if update.state == "running":
            return
        if update.state == "complete" and update.values:
            value = update.values[0]
            better = self.best is None or (value > self.best if self.direction == "maximize" else value < self.best)
            self.best = value if better else self.best
        if self.bar is not None:
            if update.state != "interrupted":
                self.bar.update(1)
            if self.best is not None:
                self.bar.set_postfix_str(f"best {self.metric} {_fmt(self.best)}")
        result = "  ".join(_fmt(v) for v in update.values) if update.values else update.message
        own = " (the project as it is)" if update.baseline else ""
        self.write(f"trial {update.number}{own} {update.state}  {result}  {_params(update.params)}  "
                   f"({update.seconds:.1f} s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
