"""``train``: run a project's training in a worker process with a progress bar."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from engine.block_shapes import model_analysis
from engine.errors import UserError
from engine.graph.fileformat import dumps, load_project, sibling_weights
from engine.graph.project import Project
from engine.training.events import Failed, Finished, exit_code
from engine.training.progress import ProgressPrinter


def register(commands: Any) -> None:
    """Add ``train`` to the sub-parsers."""
    p = commands.add_parser("train", help="train a project; writes a run folder")
    p.add_argument("file", nargs="?", help="project file (.json); omit with --resume")
    p.add_argument("--epochs", type=int, help="number of epochs (overrides the project)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped or crashed run")
    p.add_argument("--nproc", type=int, default=1, help="processes for distributed training (torchrun)")
    p.add_argument("--seed", type=int, help="random seed (overrides the project)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="mixed precision (default auto: bf16/fp16 on CUDA, fp32 elsewhere; bf16 also on CPU)")
    p.add_argument("--batch-size", type=int, help="samples per step (overrides the project)")
    p.add_argument("--lr", type=float, help="learning rate (overrides the project)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; print one line per epoch")
    p.add_argument("--torchrun-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to torchrun for multi-node runs, e.g. --torchrun-arg=--nnodes=2")
    p.set_defaults(handler=cmd_train)


def _prepare(args: argparse.Namespace) -> tuple[Project, Path, Path | None, dict[str, Any], bool, Path | None]:
    from engine.training.run_dir import default_run_dir, read_run

    overrides = {"epochs": args.epochs, "device": args.device, "seed": args.seed, "batch_size": args.batch_size,
                 "lr": args.lr, "precision": args.precision}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.resume is not None:
        if args.file:
            raise UserError("train: give either FILE or --resume RUN_DIR, not both")
        info, project = read_run(args.resume)
        previous = info.get("config", {})
        for key in ("epochs", "device", "seed", "batch_size", "lr", "precision"):
            if key not in overrides and key in previous:
                overrides[key] = previous[key]
        base = Path(info.get("base_dir") or args.resume)
        return project, args.resume, base, overrides, True, None
    if not args.file:
        raise UserError("train: give a project FILE (or --resume RUN_DIR)")
    path = Path(args.file)
    project = load_project(path)
    out = args.out or default_run_dir(path)
    if (out / "checkpoint.pt").exists():
        raise UserError(f"{out} already holds a run; choose another --out or continue it with --resume {out}")
    return project, out, path.parent, overrides, False, sibling_weights(path)


def cmd_train(args: argparse.Namespace) -> int:
    """Train and report; exit 0 when it finished, 1 for user-fixable failures, 2 otherwise."""
    if args.nproc < 1:
        raise UserError("train: --nproc must be at least 1")
    project, run_dir, base_dir, overrides, resume, weights_file = _prepare(args)
    analysis, lines = model_analysis(project)  # problems inside blocks are named by their paths (layer2.1/conv2)
    if not analysis.valid:
        for line in lines:
            print(line)
        raise UserError(f"the graph has {len(analysis.errors)} problem(s); fix them before training")
    from engine.settings import training_config

    training_config(project.training, overrides)  # refuse bad settings before starting a process
    if args.nproc > 1:
        from engine.training.distributed import launch

        return launch(project, run_dir, base_dir, overrides, resume, args.nproc, args.quiet, args.torchrun_arg,
                      weights_file)
    from engine.training.worker import TrainingProcess

    worker = TrainingProcess(dumps(project), run_dir, base_dir, overrides, resume, weights_file)
    return follow(worker, args.quiet)


def follow(worker: Any, quiet: bool) -> int:
    """Start ``worker``, draw its events until it ends, and map the end to an exit code.

    Ctrl+C (or SIGTERM) asks the worker to stop after its batch, which writes a resumable
    checkpoint; a second Ctrl+C ends it at once. The worker itself ignores SIGINT, so the
    Ctrl+C a terminal sends to the whole process group reaches only this process.
    """
    progress = ProgressPrinter(quiet)
    interrupts = 0

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            progress.write("stopping after this batch (a checkpoint is written; Ctrl+C again to abort)")
            worker.stop()
        else:
            worker.kill()

    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        while worker.running:
            for event in worker.poll(timeout=0.2):
                progress.show(event)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.close()
        worker.join(timeout=10)
    end = worker.finished
    assert isinstance(end, (Finished, Failed))
    return exit_code(end)
