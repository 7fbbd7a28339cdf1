"""The ``mmate`` command line: ``main`` builds the parser and dispatches to one module per command.

Each command module (``demo``, ``dlq``, ``flows``, ``contracts``, ``health``, ``run``, ...) has
``add_parser(subparsers)``, which builds its parser and sets ``run`` (``args -> exit code``); add new
ones to ``COMMANDS``. Exit codes are in ``mmate_fast.cli._common``: 0 done, 1 failed (one line on
stderr, never a traceback), 2 bad use.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

import mmate_fast
from mmate_fast.cli import bench, contracts, demo, dlq, flows, health, monitor, run
from mmate_fast.cli._common import EXIT_USAGE, PROG

#: the command modules, in the order ``mmate --help`` lists them
COMMANDS: tuple[ModuleType, ...] = (demo, dlq, flows, contracts, monitor, health, bench, run)


def _compiled_text() -> str:
    # every codec module (each has a twin in mmate_fast._py), also those no command has imported yet
    import pkgutil

    from mmate_fast import _py
    from mmate_fast._ext import load

    for info in pkgutil.iter_modules(_py.__path__):
        if not info.name.startswith("_"):
            load(info.name)
    built = [name for name, on in sorted(mmate_fast.COMPILED.items()) if on]
    return ", ".join(built) if built else "none (pure-Python twins)"


def build_parser() -> argparse.ArgumentParser:
    """The ``mmate`` parser with every command."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Mmate messaging over RabbitMQ (wire-compatible with mmate-go) and the embedded\n"
                    "in-memory broker.",
        epilog="Run 'mmate COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {mmate_fast.__version__} (mmate_fast; compiled extensions: "
                                f"{_compiled_text()}; Python {sys.version.split()[0]})")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmate`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
