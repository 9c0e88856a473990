"""Distributed training: ``train --nproc N`` runs the same trainer under torchrun with DDP.

:func:`launch` starts ``torch.distributed.run`` with this module as the per-rank program.
Each rank joins a process group (NCCL on CUDA, gloo on CPU), wraps its models in
DistributedDataParallel and trains on its share of every epoch's permutation. Only rank 0
writes the run folder and prints progress. Multi-node options (``--nnodes``,
``--node-rank``, ``--master-addr``, ``--master-port``, ``--rdzv-endpoint``...) pass through
to torchrun with ``--torchrun-arg``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from engine.graph.fileformat import dumps
from engine.graph.project import Project

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from engine.training.run_options import DistributedInfo
    from engine.training.tasks import Task


def launch(project: Project, run_dir: Path, base_dir: Path | None, overrides: dict[str, Any], resume: bool,
           nproc: int, quiet: bool, torchrun_args: Sequence[str] = (), weights_file: Path | None = None) -> int:
    """Run training on ``nproc`` processes; returns the exit code of rank 0's run."""
    with tempfile.TemporaryDirectory(prefix="neural-canvas-ddp-") as tmp:
        project_file = Path(tmp) / "project.json"
        project_file.write_text(dumps(project), encoding="utf-8")
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
        multi_node = any(arg.startswith(("--nnodes", "--rdzv", "--master")) for arg in torchrun_args)
        command += list(torchrun_args) if multi_node else ["--standalone", *torchrun_args]
        command += ["-m", "engine.training.distributed", str(project_file), "--run-dir", str(run_dir),
                    "--overrides", json.dumps(overrides)]
        if base_dir is not None:
            command += ["--base-dir", str(base_dir)]
        if resume:
            command.append("--resume")
        if weights_file is not None:
            command += ["--weights-file", str(weights_file)]
        if quiet:
            command.append("--quiet")
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run(command, env=env, check=False).returncode


def rank_main(argv: Sequence[str] | None = None) -> int:
    """One rank: join the process group, train, leave. Rank 0 reports progress."""
    import torch
    import torch.distributed as dist

    from engine.graph.fileformat import load_project
    from engine.training.events import exit_code
    from engine.training.progress import ProgressPrinter
    from engine.training.run_options import DistributedInfo, TrainOptions
    from engine.training.trainer import Trainer

    parser = argparse.ArgumentParser(prog="engine.training.distributed")
    parser.add_argument("project", type=Path)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--base-dir", type=Path)
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--weights-file", type=Path)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    info = DistributedInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend)
    try:
        printer = ProgressPrinter(args.quiet)
        options = TrainOptions(load_project(args.project), args.run_dir, args.base_dir, json.loads(args.overrides),
                               args.resume, info, args.weights_file)
        result = Trainer(options, printer.show).run()
        printer.close()
        dist.barrier()  # rank 0 writes the run folder last: no rank may tear gloo down under it
    finally:
        dist.destroy_process_group()
    return exit_code(result)


if __name__ == "__main__":
    exit_code = rank_main()
    # Leave without running C++ static destructors: at interpreter exit a rank sometimes aborts
    # ("terminate called without an active exception") after its process group is gone, which
    # torchrun reports as a failed run. Every file is written and closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


# ---------------------------------- helpers of the trainer's ranks (torch imported when used)
def rank_device(info: DistributedInfo) -> str:
    """The device of this rank: its local GPU, else the CPU."""
    import torch

    return f"cuda:{info.local_rank}" if torch.cuda.is_available() else "cpu"


def wrap_models(task: Task, device: torch.device) -> None:
    """Wrap every model of ``task`` in DistributedDataParallel (the task's attributes follow)."""
    from torch.nn.parallel import DistributedDataParallel

    for name, module in list(task.modules.items()):
        wrapped = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
        task.modules[name] = wrapped
        setattr(task, name, wrapped)


def all_reduce_sums(values: dict[str, float], seen: int, device: torch.device) -> tuple[dict[str, float], int]:
    """Metric sums and sample counts added up over every rank."""
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys] + [float(seen)], dtype=torch.float64,
                          device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return {k: float(v) for k, v in zip(keys, tensor[:-1])}, int(tensor[-1])
