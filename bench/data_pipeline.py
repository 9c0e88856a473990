"""Streamed image folders against a hand-written Dataset + DataLoader loop over the same files.

Generates folders of 64x64 RGB PNGs in 10 classes (20,000 and 100,000 files by default,
``--quick``: 2,000), then trains the same small CNN one epoch after another with

- the streaming pipeline (``storage: stream``: the image folder source, the split,
  :class:`engine.training.batches.BatchSource` with decoding workers and the decoded-image cache;
  epoch 1 decodes and fills the cache, epoch 2 reads the cache), trained as the app's trainer
  trains on a CPU: its :class:`~engine.training.threads.ThreadGovernor` gives torch the cores the
  decoding workers leave free;
- a plain ``torch.utils.data.Dataset`` that opens each PNG with Pillow, with a ``DataLoader``
  of the same worker count and batch size (it has no cache: epoch 2 decodes again), and torch's
  default threads, as a hand-written loop has.

It reports training samples/s of each epoch and the peak resident memory of the training
process (psutil, sampled every 20 ms; decoding workers are separate processes and not counted).
Each pipeline runs in a fresh process; a round runs both (the one that goes first alternates), the
streaming one from an empty cache; medians over ``--rounds`` rounds (ratios: each round's, then
their median). Results go to bench/results/data_pipeline.json.

    python bench/data_pipeline.py --quick
    python bench/data_pipeline.py --sizes 20000 100000 --rounds 3 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import RESULTS_DIR  # noqa: E402

SIZE, CLASSES = 64, 10


def make_folder(root: Path, count: int) -> Path:
    """``count`` PNGs in ``CLASSES`` class folders (made once; reused when present)."""
    from PIL import Image

    marker = root / f".complete_{count}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        c = i % CLASSES
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        pixels[..., c % 3] //= 2 + c // 3  # a learnable colour cue
        Image.fromarray(pixels).save(root / f"class{c}" / f"{i:06d}.png", compress_level=1)
    marker.write_text("ok")
    return root


def cnn():  # noqa: ANN201
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 16 * 16, CLASSES))


class PeakMemory:
    """Peak RSS of this process, sampled in a thread."""

    def __init__(self) -> None:
        import psutil

        self.process, self.peak, self.running = psutil.Process(), 0, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return max(self.peak, self.process.memory_info().rss)


def _epoch(model, optimizer, batches, device, governor=None) -> tuple[float, int]:  # noqa: ANN001
    import torch

    started, seen = time.perf_counter(), 0
    for x, y in batches:
        if governor is not None and time.perf_counter() >= governor.due:  # as the trainer does, once a batch
            governor.adjust(time.perf_counter())
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        seen += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started), seen


def run_streaming(folder: Path, cache: Path, batch: int, workers: int, device) -> dict:  # noqa: ANN001
    import torch

    from engine.data import load_dataset, prepare_data, streaming
    from engine.training.batches import BatchSource
    from engine.training.threads import ThreadGovernor

    shutil.rmtree(cache, ignore_errors=True)
    streaming.cache_root = lambda: cache  # type: ignore[assignment]
    memory = PeakMemory()
    started = time.perf_counter()
    data = load_dataset({"name": "image_folder", "path": str(folder), "size": [SIZE, SIZE], "color": "rgb",
                         "storage": "stream"})
    prepared = prepare_data(data, 0.0, seed=0).without_test()
    source = BatchSource(prepared, device, batch, seed=0, num_workers=workers)
    setup = time.perf_counter() - started
    torch.manual_seed(0)
    model = cnn().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    # the app's trainer sets torch's threads to the cores its decoding workers (and others) leave free
    governor = ThreadGovernor(device.type == "cpu")
    rates = [_epoch(model, optimizer, (b for _, b in source.epoch(e)), device, governor)[0] for e in range(2)]
    governor.restore()
    return {"setup_s": setup, "epoch1": rates[0], "epoch2": rates[1], "peak_rss": memory.stop(),
            "threads": governor.state()}


class PlainImages:
    """The hand-written baseline: decode each PNG with Pillow in ``__getitem__``."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted(folder.glob("class*/*.png"))
        self.labels = [int(p.parent.name[5:]) for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):  # noqa: ANN204
        import torch
        from PIL import Image

        with Image.open(self.files[i]) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy()), self.labels[i]


def run_plain(folder: Path, batch: int, workers: int, device) -> dict:  # noqa: ANN001
    import torch
    from torch.utils.data import DataLoader

    memory = PeakMemory()
    torch.manual_seed(0)
    loader = DataLoader(PlainImages(folder), batch_size=batch, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    model = cnn().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rates = [_epoch(model, optimizer, loader, device)[0] for _ in range(2)]
    return {"epoch1": rates[0], "epoch2": rates[1], "peak_rss": memory.stop()}


def _one(kind: str, count: int, base: Path, batch: int, workers: int, device_name: str) -> dict:
    """One pipeline's two epochs on ``count`` files, run in this (fresh) process."""
    import torch

    device = torch.device(device_name)
    folder = base / f"png_{count}"
    if kind == "plain":
        return run_plain(folder, batch, workers, device)
    return run_streaming(folder, base / f"cache_{count}", batch, workers, device)


def _in_child(kind: str, count: int, base: Path, args: argparse.Namespace, workers: int) -> dict:
    """:func:`_one` in a fresh Python process, so each figure (peak memory above all) is its own."""
    command = [sys.executable, __file__, "--one", kind, "--sizes", str(count), "--dir", str(base),
               "--batch", str(args.batch), "--workers", str(workers), "--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {count} files failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (medians are reported)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0, help="0: the streaming pipeline's automatic count")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dir", type=Path, default=None, help="where the PNG folders go (default a temp folder)")
    parser.add_argument("--one", choices=("plain", "stream"), help=argparse.SUPPRESS)  # a child's single run
    args = parser.parse_args()
    from engine.training.streamed import auto_workers

    workers = auto_workers(args.workers)
    if args.one:
        print(json.dumps(_one(args.one, args.sizes[0], args.dir, args.batch, workers, args.device)))
        return
    from bench._common import cpu_model, machine_info, median

    sizes = [2_000] if args.quick else args.sizes
    base = args.dir or Path(tempfile.mkdtemp(prefix="nc_data_pipeline_"))
    rows = []
    for count in sizes:
        started = time.perf_counter()
        make_folder(base / f"png_{count}", count)
        made = time.perf_counter() - started
        rounds = []
        for index in range(args.rounds):
            load = os.getloadavg()[0]
            order = ("plain", "stream") if index % 2 == 0 else ("stream", "plain")  # neither always goes first
            result = {kind: _in_child(kind, count, base, args, workers) for kind in order}
            result["load_before"] = load
            rounds.append(result)
            plain, stream = result["plain"], result["stream"]
            print(f"{count:>7} files, round {index + 1}/{args.rounds} (load {load:.2f}): "
                  f"plain {plain['epoch1']:,.0f} / {plain['epoch2']:,.0f} samples/s, "
                  f"stream {stream['epoch1']:,.0f} / {stream['epoch2']:,.0f} (epoch 2 cached), "
                  f"ratio {stream['epoch1'] / plain['epoch1']:.2f} / {stream['epoch2'] / plain['epoch2']:.2f}, "
                  f"peak RSS {plain['peak_rss'] / 2**20:,.0f} / {stream['peak_rss'] / 2**20:,.0f} MiB", flush=True)

        def mid(kind: str, key: str) -> float:
            return median([r[kind][key] for r in rounds])

        summary = {f"{kind}_{key}": mid(kind, key) for kind in ("plain", "stream")
                   for key in ("epoch1", "epoch2", "peak_rss")}
        summary["stream_setup_s"] = mid("stream", "setup_s")
        for epoch in ("epoch1", "epoch2"):  # the ratio of each round, then their median
            summary[f"ratio_{epoch}"] = median([r["stream"][epoch] / r["plain"][epoch] for r in rounds])
        rows.append({"files": count, "workers": workers, "device": args.device, "made_s": made,
                     "rounds": rounds, "median": summary})
        print(f"{count:>7} files, median of {args.rounds}: plain {summary['plain_epoch1']:,.0f} / "
              f"{summary['plain_epoch2']:,.0f}, stream {summary['stream_epoch1']:,.0f} / "
              f"{summary['stream_epoch2']:,.0f} samples/s, ratio {summary['ratio_epoch1']:.2f} / "
              f"{summary['ratio_epoch2']:.2f}, setup {summary['stream_setup_s']:.1f} s, peak RSS "
              f"{summary['plain_peak_rss'] / 2**20:,.0f} / {summary['stream_peak_rss'] / 2**20:,.0f} MiB", flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "data_pipeline.json"
    try:  # sizes measured in an earlier run on the same machine stay (one size can be run at a time)
        earlier = json.loads(path.read_text(encoding="utf-8"))
        kept = [row for row in earlier.get("sizes", [])
                if row["files"] not in sizes and row.get("machine") == cpu_model()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        kept = []
    for row in rows:
        row["machine"] = cpu_model()
    rows = sorted(kept + rows, key=lambda row: row["files"])
    path.write_text(json.dumps({"machine": machine_info(with_torch=True), "sizes": rows}, indent=2) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    main()
