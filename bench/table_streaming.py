"""Tables larger than memory: peak memory and time of loading (and splitting) a CSV and an .npz
kept in memory against the same files streamed from disk.

Generates a CSV of ``--rows`` rows (20 numeric columns, one text column of 5 categories, a class
target) and an .npz of the same features (float32), then, each in a fresh process so that peak
resident memory (``ru_maxrss``) belongs to one load:

- ``memory``: ``load_dataset`` + ``prepare_data`` with ``storage: memory``;
- ``stream``: the same with ``storage: stream`` (CSV: two streamed passes, encoded into the cache
  on the first load; the second load reuses the encoded array; .npz: mapped in place).

Each figure is the median over ``--rounds`` fresh processes. Results go to
bench/results/table_streaming.json.

    python bench/table_streaming.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import RESULTS_DIR  # noqa: E402

FEATURES, CATEGORIES = 20, ("alpha", "beta", "gamma", "delta", "epsilon")

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from engine.data import load_dataset, prepare_data, streaming
from pathlib import Path
streaming.cache_root = lambda: Path({cache!r}) / "images"
start = time.perf_counter()
data = prepare_data(load_dataset({spec!r}), 0.2, seed=0)
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(data.dataset), "kind": type(data.train_x).__name__}}))
"""


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    """The CSV and the .npz of ``rows`` rows, written a block at a time."""
    rng = np.random.default_rng(0)
    csv_path, npz_path = folder / "table.csv", folder / "table.npz"
    x = np.empty((rows, FEATURES + 1), dtype=np.float32)
    y = np.empty(rows, dtype=np.int64)
    with csv_path.open("w") as handle:
        handle.write(",".join([f"f{i}" for i in range(FEATURES)] + ["kind", "label"]) + "\n")
        for start in range(0, rows, 100_000):
            block = rng.normal(size=(min(100_000, rows - start), FEATURES)).astype(np.float32)
            kinds = rng.integers(0, len(CATEGORIES), len(block))
            labels = (block[:, 0] + kinds * 0.3 > 0.5).astype(np.int64)
            x[start:start + len(block), :FEATURES], x[start:start + len(block), FEATURES] = block, kinds
            y[start:start + len(block)] = labels
            handle.write("".join(",".join(f"{v:.4f}" for v in row) + f",{CATEGORIES[k]},{lab}\n"
                                 for row, k, lab in zip(block, kinds, labels)))
    np.savez(npz_path, x=x, y=y)
    return csv_path, npz_path


def measure(spec: dict, cache: Path) -> dict:
    code = CHILD.format(root=str(ROOT), cache=str(cache), spec=spec)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv_path, npz_path = write_files(folder, args.rows)
        print(f"{args.rows:,} rows: CSV {csv_path.stat().st_size / 2**20:.0f} MiB, "
              f".npz {npz_path.stat().st_size / 2**20:.0f} MiB")
        for name, path in (("csv", csv_path), ("npz", npz_path)):
            for storage in ("memory", "stream"):
                cache = folder / f"cache-{name}-{storage}"
                spec = {"name": name, "path": str(path), "storage": storage}
                first = measure(spec, cache)  # a streamed CSV encodes into the cache here
                runs = [measure(spec, cache) for _ in range(args.rounds)]
                row = {"source": name, "storage": storage, "rows": args.rows, "first_load_s": first["seconds"],
                       "load_s": statistics.median(r["seconds"] for r in runs),
                       "peak_mib": statistics.median(r["peak_mib"] for r in runs),
                       "first_peak_mib": first["peak_mib"], "kind": first["kind"]}
                rows.append(row)
                print(f"{name:4} {storage:6}  first load {row['first_load_s']:6.1f} s "
                      f"(peak {row['first_peak_mib']:6.0f} MiB)  later loads {row['load_s']:6.1f} s "
                      f"(peak {row['peak_mib']:6.0f} MiB)  x: {row['kind']}", flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "table_streaming.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
