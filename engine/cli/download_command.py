"""``download``: fetch MNIST, Fashion-MNIST or CIFAR-10 from its canonical source."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.data.download import (
    SOURCES,
    Progress,
    default_folder,
    download_dataset,
    missing_files,
)


def register(commands: Any) -> None:
    """Add ``download`` to the sub-parsers."""
    p = commands.add_parser("download", help="download mnist, fashion_mnist or cifar10 (checksum-verified, resumable)",
                            description="Download a standard dataset from its canonical source into the app's "
                                        "datasets folder (or --to), verify its MD5 checksums and unpack what the "
                                        "loader reads. An interrupted download continues where it stopped when run "
                                        "again; files already there are not fetched again. Projects that name the "
                                        "dataset without a path read it from the default folder.")
    p.add_argument("name", choices=tuple(SOURCES), help="the dataset")
    p.add_argument("--to", metavar="FOLDER", help="where to put the files (default: the app's datasets folder; "
                                                  "NEURAL_CANVAS_DATASETS_DIR overrides it)")
    p.add_argument("--url", metavar="BASE_URL", help="fetch the files from this base URL instead of the canonical "
                                                     "mirrors (a local copy)")
    p.set_defaults(handler=cmd_download)


class _Bar:
    """One tqdm bar per file, on stderr."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.file = ""

    def __call__(self, progress: Progress) -> None:
        if progress.file != self.file:
            self.close()
            from tqdm import tqdm

            self.file = progress.file
            self.bar = tqdm(total=progress.total, initial=progress.done, unit="B", unit_scale=True,
                            unit_divisor=1024, desc=f"{progress.file} ({progress.index}/{progress.count})",
                            file=sys.stderr, dynamic_ncols=True, disable=None)
        if self.bar is not None:
            if progress.done < self.bar.n:  # the server ignored Range: the file starts over
                self.bar.reset(total=progress.total)
            self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_download(args: argparse.Namespace) -> int:
    """Download, then print where the files are."""
    folder = Path(args.to).expanduser() if args.to else default_folder(args.name)
    was_missing = bool(missing_files(args.name, folder))
    bar = _Bar()
    try:
        download_dataset(args.name, folder, progress=bar, base_url=args.url)
    finally:
        bar.close()
    done = "downloaded and verified in" if bar.file else "unpacked in" if was_missing else "already in"
    print(f"{args.name}: {done} {folder}")
    return 0
