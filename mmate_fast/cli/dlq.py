"""``mmate dlq list|show|replay|purge``: the dead-letter queue tools of ``mmate_fast.reliability.dlq``
on the command line.

``list`` gets the queues of RabbitMQ from the management HTTP API of the broker ``--url`` points at
(``--management-url``, default derived from ``--url``), or from ``rabbitmqctl`` for the local node
when that API does not answer (``_queue_listing``), and says which source it used; ``show``,
``replay`` and ``purge`` work over AMQP. Exit codes: 0 done, 1 failed (one line on stderr), 2 bad use.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TextIO

from mmate_fast import errors
from mmate_fast.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_int, report, run_async
from mmate_fast.reliability import dlq

NAME = "dlq"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def add_parser(sub: Any) -> None:
    """Add ``dlq`` (with list/show/replay/purge) to the ``mmate`` subparsers."""
    p = sub.add_parser(NAME, help="inspect, replay and purge dead-letter queues (dlq.*)",
                       description="Inspect, replay and purge Mmate dead-letter queues (dlq.{queue}).")
    _add_connection_options(p, after_command=False)
    cmds = p.add_subparsers(dest="dlq_command", metavar="{list,show,replay,purge}")
    cmds.required = True
    ls = cmds.add_parser("list", help="dlq.* queues with their message counts",
                         description="List the dlq.* queues of the vhost with their message counts. On "
                                     "RabbitMQ the list comes from the management HTTP API (plugin "
                                     "rabbitmq_management) of the broker --url points at; for the local "
                                     "node, rabbitmqctl stands in when the API does not answer. The output "
                                     "says which source was used.")
    ls.add_argument("queues", nargs="*", help="also count these queues (over AMQP: they are listed even "
                                              "when no source can list the broker's queues)")
    ls.add_argument("--json", action="store_true",
                    help='print one JSON object: {"source", "vhost", "queues": [{"queue", "messages"}], ...}')
    show = cmds.add_parser("show", help="print messages without removing them")
    show.add_argument("queue")
    show.add_argument("--limit", type=positive_int, default=10, help="at most N messages (default 10)")
    show.add_argument("--json", action="store_true", help="print JSON lines")
    rp = cmds.add_parser("replay", help="move messages back to their original queue")
    rp.add_argument("queue")
    rp.add_argument("--limit", type=positive_int, default=None,
                    help="at most N messages (default: all there now)")
    rp.add_argument("--to", default=None, metavar="QUEUE",
                    help="target queue (default: where they came from)")
    pg = cmds.add_parser("purge", help="delete every message of the queue")
    pg.add_argument("queue")
    for sp in (ls, show, rp, pg):
        _add_connection_options(sp, after_command=True)
    p.set_defaults(run=run)


def _add_connection_options(p: argparse.ArgumentParser, *, after_command: bool) -> None:
    """``--url`` and ``--management-url``, before or after the dlq command (after it they default to
    SUPPRESS, so that they do not reset a value given before it)."""
    p.add_argument("--url", default=argparse.SUPPRESS if after_command else DEFAULT_URL,
                   help=f"broker URL (default {DEFAULT_URL}; memory://NAME too)")
    p.add_argument("--management-url", default=argparse.SUPPRESS if after_command else None, metavar="URL",
                   help="RabbitMQ management API (default: the host of --url, http on 15672, https on "
                        "15671 for amqps://, with the user and password of --url)")


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate dlq ...``; returns the exit code."""
    return run_async(run_command(args))


async def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Like :func:`run` inside a running event loop (tests, embedding); output goes to ``out``."""
    try:
        await _COMMANDS[args.dlq_command](args, out or sys.stdout)
    except (errors.MmateError, ValueError, OSError) as exc:
        report(NAME, exc)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILED
    return EXIT_OK


@contextlib.asynccontextmanager
async def _connected(url: str | None) -> AsyncIterator[Any]:
    """A connection to ``url`` (None for None: nothing to open), closed afterwards."""
    from mmate_fast.transports import connect

    conn = await connect(url) if url is not None else None
    try:
        yield conn
    finally:
        if conn is not None and not conn.is_closed:
            await conn.close()


# ---------------------------------------------------------------------------- list
async def _list(args: argparse.Namespace, out: TextIO) -> None:
    names: list[str] = list(args.queues)
    listed: list[tuple[str, int | None]] | None = None
    if args.url.lower().startswith("memory:"):
        source: dict[str, Any] = {"source": "embedded", "broker": args.url, "vhost": "/"}
        described = f"the embedded broker {args.url}"
    else:
        source, described, listed = await _list_rabbitmq(args.url, args.management_url, bool(names))
    # over AMQP: the embedded broker, named queues, and queues the API has no statistics of yet
    need_amqp = listed is None or bool(names) or any(count is None for _, count in listed)
    async with _connected(args.url if need_amqp else None) as conn:
        rows = await dlq.list_dlqs(conn, names=names, listed=listed)
    if args.json:
        out.write(json.dumps({**source, "queues": [{"queue": q, "messages": n} for q, n in rows]}) + "\n")
        return
    if not rows:
        out.write("no dead-letter queues\n")
    else:
        width = max(len(q) for q, _ in rows)
        for q, n in rows:
            out.write(f"{q:<{width}}  {n}\n")
    out.write(f"source: {described}\n")


async def _list_rabbitmq(url: str, management_url: str | None,
                         named: bool) -> tuple[dict[str, Any], str, list[tuple[str, int | None]]]:
    """(JSON source fields, the source for people, the dlq.* queues) of the broker at ``url``. When
    no source can list and queues were ``named``, those alone are counted (source ``named``)."""
    from mmate_fast.amqp.url import parse_urls
    from mmate_fast.cli._queue_listing import list_queues

    params = parse_urls(url)[0]  # a cluster: the first node (its management API sees them all)
    try:
        listing = await list_queues(params, management_url, name_regex="^" + re.escape(dlq.DLQ_PREFIX))
    except errors.ManagementAPIUnreachableError as exc:
        if not named:
            raise
        return ({"source": "named", "vhost": params.virtual_host, "fallback_reason": str(exc)},
                f"only the queues named, counted over AMQP; the {exc}", [])
    return listing.as_json(), listing.describe(), listing.rows


# ---------------------------------------------------------------------------- show, replay, purge
async def _show(args: argparse.Namespace, out: TextIO) -> None:
    async with _connected(args.url) as conn:
        letters = await dlq.peek(conn, args.queue, args.limit)
    for i, d in enumerate(letters, 1):
        if args.json:
            out.write(json.dumps({
                "queue": d.queue, "reason": d.reason, "error": d.error, "original_queue": d.original_queue,
                "failed_at": d.failed_at, "attempt": d.attempt, "type": d.message_type, "id": d.message_id,
                "body": d.body.decode("utf-8", "replace")}) + "\n")
            continue
        out.write(f"#{i} {d.message_type or '?'} id={d.message_id or '?'}\n"
                  f"  reason:   {d.reason or '-'}\n  error:    {d.error or '-'}\n"
                  f"  from:     {d.original_queue or '-'}\n  failed:   {d.failed_at or '-'}\n"
                  f"  attempts: {d.attempt if d.attempt is not None else '-'}\n"
                  f"  body:     {d.preview()}\n")
    if not letters and not args.json:
        out.write(f"{args.queue} is empty\n")


async def _replay(args: argparse.Namespace, out: TextIO) -> None:
    async with _connected(args.url) as conn:
        n = await dlq.replay(conn, args.queue, limit=args.limit, to=args.to)
    out.write(f"replayed {n} message(s) from {args.queue}\n")


async def _purge(args: argparse.Namespace, out: TextIO) -> None:
    async with _connected(args.url) as conn:
        n = await dlq.purge(conn, args.queue)
    out.write(f"purged {n} message(s) from {args.queue}\n")


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Awaitable[None]]] = {
    "list": _list, "show": _show, "replay": _replay, "purge": _purge}

__all__ = ["DEFAULT_URL", "add_parser", "run", "run_command"]
