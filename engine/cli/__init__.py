"""Command-line interface: ``python main.py <subcommand> ...``.

Exit codes: 0 success, 1 user error (one line on stderr, no traceback), 2 internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Callable, NoReturn, Sequence

from engine.cli import download_command, export_command, import_commands, inspect_commands, train_command
from engine.cli import evaluate_command, lr_find_command, overfit_command, predict_command, search_command
from engine.errors import UserError
from engine.graph.fileformat import ProjectFileError

EXIT_OK, EXIT_USER, EXIT_INTERNAL = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand registered."""
    parser = _Parser(prog="neural-canvas", description="Neural Canvas command line. "
                     "Run without a subcommand to open the desktop app.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    inspect_commands.register(commands)
    train_command.register(commands)
    evaluate_command.register(commands)
    predict_command.register(commands)
    export_command.register(commands)
    import_commands.register(commands)
    download_command.register(commands)
    search_command.register(commands)
    lr_find_command.register(commands)
    overfit_command.register(commands)
    return parser


#: Subcommand names, so main.py can tell a subcommand from a project file to open.
SUBCOMMANDS = ("validate", "summary", "templates", "layers", "train", "export", "import-torch", "import-onnx",
               "download", "evaluate", "predict", "search", "lr-find", "overfit-batch")


def run_cli(argv: Sequence[str]) -> int:
    """Parse ``argv``, run the subcommand and map failures to exit codes."""
    try:
        args = build_parser().parse_args(list(argv))
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except (UserError, ProjectFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_USER
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (please report this)", file=sys.stderr)
        return EXIT_INTERNAL
