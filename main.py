"""Neural Canvas entry point.

``python main.py``                 opens the desktop app with the default template
``python main.py FILE``            opens that project
``python main.py [FILE] --screenshot OUT.png``  renders the window to a PNG and exits
``python main.py <subcommand> ...`` runs the command line (validate, summary, templates, ...)
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the CLI or the desktop app; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    from engine.cli import SUBCOMMANDS, run_cli

    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help")):
        return run_cli(args)
    from gui.app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
