"""The ``mmate`` command line.

Each subcommand is one ``_add_<name>(subparsers)`` function that builds its parser and sets
``run`` (``args -> exit code``); add new ones to ``_SUBCOMMANDS``. Errors of the library
(MmateError) end the command with exit code 1 and their message, never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import mmate_fast
from mmate_fast import errors

T = TypeVar("T")
PROG = "mmate"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return "asyncio"
    return "uvloop"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it imports, else on the stock asyncio loop."""
    if _loop_name() == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


@contextlib.contextmanager
def _library_logs(verbose: bool) -> Iterator[None]:
    """Without ``--verbose``, keep the library's per-message log lines (e.g. the traceback of every
    rejected order) off the terminal: the summary reports them."""
    if verbose:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        yield
        return
    logger = logging.getLogger("mmate_fast")
    saved = logger.propagate, list(logger.handlers)
    logger.handlers = [logging.NullHandler()]
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate, logger.handlers = saved[0], saved[1]


def _compiled_text() -> str:
    built = [name for name, on in sorted(mmate_fast.COMPILED.items()) if on]
    return ", ".join(built) if built else "none (pure-Python twins)"


# ---------------------------------------------------------------------------- mmate demo
def _add_demo(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="run an order pipeline (embedded broker by default, or RabbitMQ)",
        description="Run an order pipeline of four services (orders, inventory, billing, "
                    "notifications), each its own Client, in this process. Sends PlaceOrder commands, "
                    "some of them invalid (rejected into the orders DLQ), and prints throughput and "
                    "end-to-end latency. Queues of the run are deleted at the end.")
    p.add_argument("--url", default="memory://",
                   help="broker URL: memory:// (embedded, default) or amqp://user:pass@host:port/vhost")
    p.add_argument("--orders", type=_positive_int, default=3000, help="orders to send (default 3000)")
    p.add_argument("--services", type=_positive_int, default=1, metavar="N",
                   help="instances per service, competing for its queue (default 1)")
    p.add_argument("--bad-every", type=int, default=100, metavar="K",
                   help="every K-th order is invalid; 0 for none (default 100)")
    p.add_argument("--timeout", type=_positive_float, default=60.0,
                   help="seconds the pipeline may take (default 60)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output, only the summary")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show the library's log lines (one per rejected order)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from mmate_fast.demo import DemoConfig, Progress, format_summary, run_demo, safe_url

    cfg = DemoConfig(url=args.url, orders=args.orders, services=args.services, timeout=args.timeout,
                     bad_every=max(0, args.bad_every))
    progress = Progress.for_stream(sys.stderr, quiet=args.quiet)
    if not args.quiet:
        print(f"mmate demo: {cfg.orders} orders through orders -> inventory + billing -> notifications "
              f"on {safe_url(cfg.url)} ...", file=sys.stderr)

    def warn(text: str) -> None:
        print(f"{PROG} demo: warning: {text}", file=sys.stderr)

    try:
        with _library_logs(args.verbose):
            result = run_async(run_demo(cfg, progress, warn))
    except errors.MmateError as exc:
        progress.close()
        print(f"{PROG} demo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    print(format_summary(result, compiled=mmate_fast.COMPILED, loop=_loop_name()))
    if result.rejected != result.expected_rejected or result.dead_letter_count != result.rejected:
        print(f"{PROG} demo: error: expected {result.expected_rejected} rejected orders in the DLQ, "
              f"found {result.rejected} rejected and {result.dead_letter_count} dead-lettered",
              file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- the parser
def _add_dlq(sub: Any) -> None:
    from mmate_fast.reliability.dlq_cli import add_dlq_parser, main_dlq

    add_dlq_parser(sub)

    def run_dlq(args: argparse.Namespace) -> int:
        try:
            return main_dlq(args)
        except errors.MmateError as exc:
            print(f"{PROG} dlq: error: {exc}", file=sys.stderr)
            return 1

    sub.choices["dlq"].set_defaults(run=run_dlq)


_SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (_add_demo, _add_dlq)


def build_parser() -> argparse.ArgumentParser:
    """The ``mmate`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Mmate messaging over RabbitMQ (wire-compatible with mmate-go) and the embedded\n"
                    "in-memory broker.",
        epilog="Run 'mmate COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version",
                        version=f"{PROG} {mmate_fast.__version__} (mmate_fast; compiled extensions: "
                                f"{_compiled_text()}; Python {sys.version.split()[0]})")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmate`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover - ``python -m mmate_fast.cli``
    sys.exit(main())
