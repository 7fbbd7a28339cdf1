"""``mmate demo``: run the order pipeline of ``mmate_fast.demo`` and print its summary.

Exit code 0 when every invalid order ended in the DLQ and every valid one completed; 1 with a
one-line message when the broker is unreachable, the URL is wrong or the run does not finish in time.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import mmate_fast
from mmate_fast import errors
from mmate_fast.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    PROG,
    loop_name,
    positive_float,
    positive_int,
    report,
    run_async,
)

NAME = "demo"


def add_parser(sub: Any) -> None:
    """Add ``demo`` to the ``mmate`` subparsers."""
    p = sub.add_parser(
        NAME, help="run an order pipeline (embedded broker by default, or RabbitMQ)",
        description="Run an order pipeline of four services (orders, inventory, billing, "
                    "notifications), each its own Client, in this process. Sends PlaceOrder commands, "
                    "some of them invalid (rejected into the orders DLQ), and prints throughput and "
                    "end-to-end latency. Queues of the run are deleted at the end.")
    p.add_argument("--url", default="memory://",
                   help="broker URL: memory:// (embedded, default) or amqp://user:pass@host:port/vhost")
    p.add_argument("--orders", type=positive_int, default=3000, help="orders to send (default 3000)")
    p.add_argument("--services", type=positive_int, default=1, metavar="N",
                   help="instances per service, competing for its queue (default 1)")
    p.add_argument("--bad-every", type=int, default=100, metavar="K",
                   help="every K-th order is invalid; 0 for none (default 100)")
    p.add_argument("--timeout", type=positive_float, default=60.0,
                   help="seconds the pipeline may take (default 60)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output, only the summary")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="show the library's log lines (one per rejected order)")
    p.set_defaults(run=run)


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


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate demo``; returns the exit code."""
    from mmate_fast.demo import DemoConfig, Progress, format_summary, run_demo, safe_url

    cfg = DemoConfig(url=args.url, orders=args.orders, services=args.services, timeout=args.timeout,
                     bad_every=max(0, args.bad_every))
    progress = Progress.for_stream(sys.stderr, quiet=args.quiet)
    if not args.quiet:
        print(f"mmate demo: {cfg.orders} orders through orders -> inventory + billing -> notifications "
              f"on {safe_url(cfg.url)} ...", file=sys.stderr)

    def warn(text: str) -> None:
        print(f"{PROG} {NAME}: warning: {text}", file=sys.stderr)

    try:
        with _library_logs(args.verbose):
            result = run_async(run_demo(cfg, progress, warn))
    except errors.MmateError as exc:
        progress.close()
        report(NAME, exc)
        return EXIT_FAILED
    finally:
        progress.close()
    print(format_summary(result, compiled=mmate_fast.COMPILED, loop=loop_name()))
    if result.rejected != result.expected_rejected or result.dead_letter_count != result.rejected:
        report(NAME, f"expected {result.expected_rejected} rejected orders in the DLQ, found "
                     f"{result.rejected} rejected and {result.dead_letter_count} dead-lettered")
        return EXIT_FAILED
    return EXIT_OK


__all__ = ["add_parser", "run"]
