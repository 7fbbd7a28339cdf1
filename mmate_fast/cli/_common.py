"""What every ``mmate`` command shares: the program name, the event loop, argument types, and one
way to turn a failure into a message and an exit code.

Exit codes: 0 done; 1 failed (the one-line message is on stderr); 2 bad use (argparse's usage
errors; ``mmate dlq`` also for values the library refuses, e.g. a bad URL); 130 interrupted.
Never a traceback for an error of the library.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
PROG = "mmate"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0 (a delay or a lag that may be zero)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value:g}")
    return value


def loop_name() -> str:
    """``uvloop`` when it imports (the loop the commands run on), else ``asyncio``."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return "asyncio"
    return "uvloop"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it imports, else on the stock asyncio loop."""
    if loop_name() == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def report(command: str, exc: BaseException | str) -> None:
    """Print ``mmate COMMAND: error: ...`` (one line, no traceback) to stderr."""
    print(f"{PROG} {command}: error: {exc}", file=sys.stderr)


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "PROG", "loop_name", "positive_float", "positive_int",
           "report", "run_async"]
