"""Batched augmentation on the training device vs a per-sample CPU loop doing the same transforms.

The trainer augments whole training batches with torch ops (engine/training/augment.py). The
baseline is what a ``Dataset.__getitem__`` transform pipeline does: the same transforms, one
image at a time (each op called on a batch of one), then the batch stacked. Both draw from a
seeded generator; the figures are samples/s at 64x64x3, batch 128, median over rounds (each
round times ``--batches`` batches), with the other processes' CPU load around each timed block.
Mixup / cutmix are batch-level (one draw per batch) and are left out of the comparison.

Usage::

    python bench/augmentation.py [--rounds 7] [--batches 4] [--threads 1] [--device cpu] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ForeignLoad, describe_machine, format_table, machine_info, write_results  # noqa: E402

#: name -> the dataset.augment section it measures
PIPELINES = {
    "flip + padded crop (CIFAR style)": {"hflip": True, "crop": "padded", "crop_padding": 4},
    "resized crop + rotation + flips": {"crop": "resized", "rotation": 15, "hflip": True, "vflip": True},
    "colour jitter + erasing + noise": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "erasing": 0.5,
                                        "noise": 0.1},
    "all of the above (resized crop)": {"crop": "resized", "rotation": 15, "hflip": True, "vflip": True,
                                        "brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "erasing": 0.5,
                                        "noise": 0.1},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=4, help="batches timed per round")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default); on a "
                        "shared 2-core machine 2 threads stall whenever another process takes a core")
    parser.add_argument("--out")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from engine.training.augment import augment_batch, read_augment

    device = torch.device(args.device)
    n, size = args.batch_size, args.size
    images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))

    def batched(options, generator) -> None:  # noqa: ANN001
        x = images.to(device)
        augment_batch(x, None, options, generator)

    def per_sample(options, generator) -> None:  # noqa: ANN001
        torch.stack([augment_batch(images[i:i + 1], None, options, generator)[0][0] for i in range(n)])

    def rate(step, options, generator) -> tuple[float, float]:  # noqa: ANN001
        step(options, generator)  # warm-up
        load = ForeignLoad()
        load.start()
        started = time.perf_counter()
        for _ in range(args.batches):
            step(options, generator)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        return args.batches * n / seconds, load.stop()

    rows, results = [], []
    for name, section in PIPELINES.items():
        options = read_augment({"augment": section})
        fast, slow, loads = [], [], []
        for _ in range(args.rounds):
            for kind, step in (("batched", batched), ("per_sample", per_sample)):
                generator = torch.Generator(device=device if kind == "batched" else "cpu").manual_seed(1)
                value, load = rate(step, options, generator)
                (fast if kind == "batched" else slow).append(value)
                loads.append(load)
        ratios = [f / s for f, s in zip(fast, slow)]
        result = {"pipeline": name, "options": section, "batched_samples_per_s": fast,
                  "per_sample_samples_per_s": slow, "ratios": ratios, "foreign_load_cores": loads}
        results.append(result)
        rows.append([name, f"{statistics.median(fast):,.0f}", f"{statistics.median(slow):,.0f}",
                     f"{statistics.median(ratios):.1f}x", f"{max(loads):.2f}"])
    info = machine_info(with_torch=True)
    headers = ["pipeline", f"batched {device.type} samples/s", "per-sample CPU loop samples/s",
               "speed-up (median)", "others' load, cores (max)"]
    print(describe_machine(info))
    print(f"{n} images of 3x{size}x{size} per batch, {args.batches} batches per round, median of {args.rounds} rounds")
    print(format_table(headers, rows))
    path = write_results("augmentation", {"machine": info, "batch_size": n, "size": size, "device": str(device),
                                          "rounds": args.rounds, "results": results}, args.out)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
