"""Start the desktop app: argument parsing, QApplication, the main window, --screenshot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the desktop app's arguments: ``[FILE] [--screenshot OUT.png]``."""
    parser = argparse.ArgumentParser(prog="neural-canvas", description="Open the Neural Canvas desktop app. "
                                     "Subcommands validate, summary and templates run the command line.")
    parser.add_argument("file", nargs="?", help="project file to open (default: the CNN template)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="lay the window out, save it as PNG, and exit")
    return parser.parse_args(list(argv))


def run_app(argv: Sequence[str]) -> int:
    """Run the desktop app until its window closes; returns the exit code."""
    args = parse_args(argv)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine.templates import default_template
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Neural Canvas")
    app.setOrganizationName("Neural Canvas")
    window = MainWindow()
    path = Path(args.file) if args.file else default_template()
    if not window.open_project(path, untitled=args.file is None):
        if args.screenshot:
            return 1
    window.resize(1280, 800)
    window.show()
    if args.screenshot:
        def shoot() -> None:
            ok = window.grab().save(args.screenshot)
            if not ok:
                print(f"error: cannot write {args.screenshot}", file=sys.stderr)
            app.exit(0 if ok else 1)

        QTimer.singleShot(200, shoot)
    return app.exec()
