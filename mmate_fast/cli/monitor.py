"""``mmate monitor``: a live view of a RabbitMQ vhost's queues (``_monitor_data`` gathers the figures).

Per queue: messages ready and unacknowledged, consumers, publish / deliver / ack rates, the depth of
its dead-letter queue ``dlq.{queue}`` and the consumer lag (ready / deliver rate, in seconds). From
the management HTTP API; when that does not answer, passive declares over AMQP of the queues named
on the command line (counts only; the view says so). ``--once`` prints one snapshot, ``--json``
prints JSON (one object per refresh). Exit codes: 0 done (Ctrl-C ends the live view with 0), 1
failed (one line on stderr), 2 bad use.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, TextIO

from mmate_fast import errors
from mmate_fast.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    positive_float,
    positive_int,
    report,
    run_async,
)

NAME = "monitor"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def add_parser(sub: Any) -> None:
    """Add ``monitor`` to the ``mmate`` subparsers."""
    p = sub.add_parser(
        NAME, help="live view of queues: depth, rates, consumers, DLQ depth, consumer lag",
        description="A live view of the queues of the vhost --url points at: messages ready and "
                    "unacknowledged, publish/deliver/ack rates, consumers, the depth of each queue's "
                    "dlq.{queue} and the consumer lag (ready messages / deliver rate). The figures come "
                    "from the RabbitMQ management HTTP API; when it does not answer, the queues named "
                    "on the command line are counted by passive queue.declare over AMQP (no rates). "
                    "Ctrl-C ends the view.")
    p.add_argument("queues", nargs="*", metavar="QUEUE",
                   help="watch these queues (also what is counted over AMQP when the API does not answer)")
    p.add_argument("--filter", "-f", action="append", default=[], metavar="PATTERN", dest="patterns",
                   help="watch queues whose name matches this shell-style pattern, e.g. 'orders.*' "
                        "(repeatable; default: every queue)")
    p.add_argument("--url", default=DEFAULT_URL, help=f"broker URL (default {DEFAULT_URL})")
    p.add_argument("--management-url", default=None, metavar="URL",
                   help="RabbitMQ management API (default: the host of --url, http on 15672, https on "
                        "15671 for amqps://, with the user and password of --url)")
    p.add_argument("--interval", "-i", type=positive_float, default=2.0, metavar="SECONDS",
                   help="seconds between refreshes (default 2)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--count", type=positive_int, default=None, metavar="N",
                   help="exit after N refreshes (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true",
                   help='print JSON: one object per refresh {"source", "vhost", "queues": [{"name", '
                        '"ready", "unacked", "consumers", "publish_rate", "deliver_rate", "ack_rate", '
                        '"dlq_messages", "lag_seconds"}], ...}')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate monitor``; returns the exit code."""
    try:
        return run_async(run_command(args))
    except KeyboardInterrupt:  # the normal end of the live view
        return EXIT_OK


async def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Like :func:`run` inside a running event loop (tests, embedding); output goes to ``out``."""
    from mmate_fast.amqp.url import parse_urls

    stream = out or sys.stdout
    if args.url.lower().startswith("memory:"):
        report(NAME, "the embedded broker (memory://) lives inside the process that uses it: monitor "
                     "watches RabbitMQ (amqp:// or amqps://)")
        return EXIT_USAGE
    try:
        amqp = parse_urls(args.url)[0]  # a cluster: the first node (its management API sees them all)
        count = 1 if args.once else args.count
        if args.json:
            await _json_lines(args, amqp, stream, count)
        else:
            await _live(args, amqp, stream, count)
    except (errors.MmateError, OSError) as exc:
        report(NAME, exc)
        return EXIT_USAGE if isinstance(exc, errors.InvalidURLError) else EXIT_FAILED
    return EXIT_OK


async def _snapshot(args: argparse.Namespace, amqp: Any) -> Any:
    from mmate_fast.cli._monitor_data import take_snapshot

    return await take_snapshot(args.url, amqp, args.management_url, list(args.queues), list(args.patterns))


async def _json_lines(args: argparse.Namespace, amqp: Any, out: TextIO, count: int | None) -> None:
    done = 0
    while True:
        started = time.monotonic()
        snap = await _snapshot(args, amqp)
        out.write(json.dumps(snap.as_json()) + "\n")
        out.flush()
        done += 1
        if count is not None and done >= count:
            return
        await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))


async def _live(args: argparse.Namespace, amqp: Any, out: TextIO, count: int | None) -> None:
    from rich.live import Live

    from mmate_fast.cli._monitor_view import console_for, render

    console = console_for(out)
    snap = await _snapshot(args, amqp)
    if count == 1:
        console.print(render(snap))
        return
    done = 1
    with Live(render(snap), console=console, auto_refresh=False) as live:
        while count is None or done < count:
            await asyncio.sleep(args.interval)
            try:
                snap = await _snapshot(args, amqp)
            except (errors.MmateError, OSError) as exc:  # keep watching: the broker may come back
                live.update(render(snap, error=str(exc)), refresh=True)
            else:
                live.update(render(snap), refresh=True)
            done += 1


__all__ = ["DEFAULT_URL", "add_parser", "run", "run_command"]
