"""Start the desktop app: argument parsing, QApplication, the main window, --screenshot."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, Sequence


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the desktop app's arguments: ``[FILE] [--screenshot OUT.png] [--theme light|dark]``."""
    parser = argparse.ArgumentParser(prog="neural-canvas", description="Open the Neural Canvas desktop app. "
                                     "Subcommands validate, summary and templates run the command line.")
    parser.add_argument("file", nargs="?", help="project file to open (default: the CNN template)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="lay the window out, save it as PNG, and exit")
    parser.add_argument("--theme", choices=("light", "dark"),
                        help="light or dark panels and canvas (remembered; View > Light / Dark Theme switches too)")
    return parser.parse_args(list(argv))


def run_app(argv: Sequence[str]) -> int:
    """Run the desktop app until its window closes; returns the exit code."""
    args = parse_args(argv)
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from engine.templates import default_template
    from gui.main_window import MainWindow

    from gui.background import collect_garbage_on_gui_thread

    app = QApplication.instance() or QApplication([sys.argv[0]])
    collect_garbage_on_gui_thread()
    app.setApplicationName("Neural Canvas")
    app.setOrganizationName("Neural Canvas")
    settings = None
    if args.screenshot:  # a reproducible picture: default geometry and theme, nothing remembered
        import tempfile

        settings = QSettings(str(Path(tempfile.mkdtemp()) / "screenshot.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    if args.theme:
        window.use_dark_theme() if args.theme == "dark" else window.use_light_theme()
    opened = window.open_project(Path(args.file)) if args.file else window.open_project(default_template(),
                                                                                         untitled=True)
    if args.screenshot:
        if not opened:
            print(f"error: cannot open {args.file}", file=sys.stderr)
            return 1
        window.resize(1440, 900)
        window.show()

        def shoot() -> None:
            window.canvas.fit_readable()
            app.processEvents()
            ok = window.grab().save(args.screenshot)
            if not ok:
                print(f"error: cannot write {args.screenshot}", file=sys.stderr)
            app.exit(0 if ok else 1)

        QTimer.singleShot(300, shoot)
        return _finish(app.exec(), window)
    if window.document is None:  # the file could not be opened (the user saw why): start empty
        window.new_document()
    window.show()
    QTimer.singleShot(0, window.offer_recovery)
    quit_on_terminate(app, window)
    return _finish(app.exec(), window)


def quit_on_terminate(app: Any, window: Any) -> None:
    """SIGTERM or SIGHUP (logout, shutdown, ``kill``) quits without losing anything.

    Unsaved edits are written to the recovery file, which stays for the next start to
    offer; a run stops after its batch with its checkpoint; then the app quits. Python runs
    signal handlers only between bytecodes, so a timer wakes the interpreter a few times a
    second while Qt's event loop waits.
    """
    from PySide6.QtCore import QTimer

    def terminate() -> None:
        keep_everything(app, window)
        app.exit(0)  # not quit(): that closes the window, which would ask about unsaved changes

    def on_signal(signum: int, frame: Any) -> None:
        QTimer.singleShot(0, terminate)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    wake = QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(200)


def keep_everything(app: Any, window: Any) -> None:
    """Before the app is terminated: every main window (``window`` and those it opened, e.g. a
    search trial's project) writes its unsaved edits to its recovery file, which stays for the
    next start to offer, and stops its run and search (checkpoints written)."""
    from gui.main_window import MainWindow

    windows = [window] + [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w is not window]
    for each in windows:
        if each.autosaver is not None:
            each.autosaver.timer.stop()
            each.autosaver.save_now()
            each.autosaver = None  # the recovery file outlives this process
    for each in windows:
        each.training.shutdown()
        each.experiments.shutdown()  # a search's trials stop too (the next search continues them)


def _finish(code: int, window: object) -> int:
    """Destroy the window while Python still runs: its background threads finish first."""
    from shiboken6 import delete

    window.training.shutdown()  # type: ignore[attr-defined]
    window.experiments.shutdown()  # type: ignore[attr-defined]
    delete(window)
    return code
