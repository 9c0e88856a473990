"""The Data panel's download row: MNIST, Fashion-MNIST and CIFAR-10 fetched in a thread, with a
progress bar (file n of m, megabytes) and a Cancel that keeps the partial file for a resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from engine.data.download import SOURCES as DOWNLOADABLE
from engine.data.download import Progress, download_dataset
from gui.background import BackgroundCall

#: Seconds between progress updates from the download thread (the last one always comes).
PROGRESS_INTERVAL_S = 0.1


class DownloadRow(QWidget):
    """Download button, progress bar and Cancel for one dataset at a time.

    Signals:
        finished(object, str): The download ended: its folder (``None`` on failure) and the error
            message (``""`` when it succeeded).
    """

    finished = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.button = QPushButton("Download")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the download; the next Download continues where it stopped")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.progress, 1)
        layout.addWidget(self.cancel_button)
        self._call = BackgroundCall(self)
        self._call.done.connect(self._on_done)
        self._call.progress.connect(lambda ticket, progress: self._show_progress(progress))
        self._stop = threading.Event()
        self.running = False
        self.destroyed.connect(self._stop.set)  # a closing window does not wait for the download

    def offer(self, name: str, folder: Path) -> None:
        """Show the idle button for ``name``'s files (going to ``folder``)."""
        if self.running:
            return
        self.button.setToolTip(f"Download {name} from {DOWNLOADABLE[name].mirrors[0]} into {folder}")
        self.progress.hide()
        self.cancel_button.hide()

    def start(self, name: str, folder: Path) -> None:
        """Download ``name``'s files into ``folder`` in the background."""
        if self.running:
            return
        stop, last = self._stop, [0.0]
        stop.clear()

        def download(report: Callable[[Progress], None]) -> Path:
            def every_tenth_second(progress: Progress) -> None:  # the download thread: a few updates a second
                now = time.monotonic()
                if now - last[0] >= PROGRESS_INTERVAL_S or progress.done == progress.total:
                    last[0] = now
                    report(progress)

            return download_dataset(name, folder, progress=every_tenth_second, cancelled=stop.is_set)

        self.running = True
        self.button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setFormat("connecting…")
        self.progress.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self._call.start_reporting(download)

    def cancel(self) -> None:
        """Stop the running download after its current chunk (its partial file is kept)."""
        self._stop.set()
        self.cancel_button.setEnabled(False)

    def _show_progress(self, progress: Progress) -> None:
        bar, total = self.progress, progress.total
        if total:
            bar.setRange(0, max(1, total // 1024))  # KiB: a QProgressBar counts in 32-bit ints
            bar.setValue(min(progress.done, total) // 1024)
        else:
            bar.setRange(0, 0)
        size = f"{_megabytes(progress.done)} of {_megabytes(total)}" if total else _megabytes(progress.done)
        bar.setFormat(f"{progress.index}/{progress.count} · {size}" if progress.count > 1 else size)
        bar.setToolTip(progress.file)

    def _on_done(self, ticket: int, folder: Path | None, error: str) -> None:
        self.running = False
        self.progress.hide()
        self.cancel_button.hide()
        self.finished.emit(folder, error)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
