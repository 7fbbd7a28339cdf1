"""``mmate dlq list|show|replay|purge``: the DLQ tools on the command line.

The lead hooks it into ``mmate_fast.cli`` with ``add_dlq_parser(subparsers)``; the parsed
arguments go to ``main_dlq(args)``, which returns the exit code (0 ok, 1 failure, 2 bad use).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from mmate_fast import errors
from mmate_fast.reliability import dlq

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def add_dlq_parser(subparsers: Any) -> None:
    """Add the ``dlq`` subcommand (with list/show/replay/purge) to an argparse subparsers object."""
    p = subparsers.add_parser("dlq", help="inspect, replay and purge dead-letter queues (dlq.*)",
                              description="Inspect, replay and purge Mmate dead-letter queues (dlq.{queue}).")
    p.add_argument("--url", default=DEFAULT_URL,
                   help=f"broker URL (default {DEFAULT_URL}; memory://NAME too)")
    sub = p.add_subparsers(dest="dlq_command", metavar="{list,show,replay,purge}")
    sub.required = True
    ls = sub.add_parser("list", help="dlq.* queues with their message counts")
    ls.add_argument("queues", nargs="*", help="also count these queues (needed where rabbitmqctl is missing)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", help="print messages without removing them")
    show.add_argument("queue")
    show.add_argument("--limit", type=int, default=10, help="at most N messages (default 10)")
    show.add_argument("--json", action="store_true", help="print JSON lines")
    rp = sub.add_parser("replay", help="move messages back to their original queue")
    rp.add_argument("queue")
    rp.add_argument("--limit", type=int, default=None, help="at most N messages (default: all there now)")
    rp.add_argument("--to", default=None, metavar="QUEUE",
                    help="target queue (default: where they came from)")
    pg = sub.add_parser("purge", help="delete every message of the queue")
    pg.add_argument("queue")
    for sp in (ls, show, rp, pg):
        sp.add_argument("--url", default=argparse.SUPPRESS, help="broker URL")
    p.set_defaults(func=main_dlq)


def _vhost(url: str) -> str:
    if url.startswith("memory://"):
        return "/"
    from mmate_fast.amqp.url import parse_url

    return parse_url(url).virtual_host


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    from mmate_fast.transports import connect

    conn = await connect(args.url)
    try:
        cmd = args.dlq_command
        if cmd == "list":
            rows = await dlq.list_dlqs(conn, names=args.queues, vhost=_vhost(args.url))
            if args.json:
                out.write(json.dumps([{"queue": q, "messages": n} for q, n in rows]) + "\n")
            elif not rows:
                out.write("no dead-letter queues\n")
            else:
                width = max(len(q) for q, _ in rows)
                for q, n in rows:
                    out.write(f"{q:<{width}}  {n}\n")
        elif cmd == "show":
            if args.limit < 1:
                raise errors.ConfigurationError("--limit must be >= 1")
            letters = await dlq.peek(conn, args.queue, args.limit)
            for i, d in enumerate(letters, 1):
                if args.json:
                    out.write(json.dumps({
                        "queue": d.queue, "reason": d.reason, "error": d.error,
                        "original_queue": d.original_queue,
                        "failed_at": d.failed_at, "attempt": d.attempt, "type": d.message_type,
                        "id": d.message_id, "body": d.body.decode("utf-8", "replace")}) + "\n")
                    continue
                out.write(f"#{i} {d.message_type or '?'} id={d.message_id or '?'}\n"
                          f"  reason:   {d.reason or '-'}\n  error:    {d.error or '-'}\n"
                          f"  from:     {d.original_queue or '-'}\n  failed:   {d.failed_at or '-'}\n"
                          f"  attempts: {d.attempt if d.attempt is not None else '-'}\n"
                          f"  body:     {d.preview()}\n")
            if not letters and not args.json:
                out.write(f"{args.queue} is empty\n")
        elif cmd == "replay":
            if args.limit is not None and args.limit < 1:
                raise errors.ConfigurationError("--limit must be >= 1")
            n = await dlq.replay(conn, args.queue, limit=args.limit, to=args.to)
            out.write(f"replayed {n} message(s) from {args.queue}\n")
        elif cmd == "purge":
            n = await dlq.purge(conn, args.queue)
            out.write(f"purged {n} message(s) from {args.queue}\n")
        else:  # pragma: no cover - argparse rejects it
            raise errors.ConfigurationError(f"unknown dlq command {cmd!r}")
    finally:
        if not conn.is_closed:
            await conn.close()
    return 0


def main_dlq(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run a parsed ``dlq`` command; returns the exit code. Errors go to stderr, never a traceback."""
    try:
        return asyncio.run(_run(args, out or sys.stdout))
    except ValueError as exc:
        print(f"mmate dlq: {exc}", file=sys.stderr)
        return 2
    except (errors.MmateError, OSError) as exc:
        print(f"mmate dlq: {exc}", file=sys.stderr)
        return 1


async def main_dlq_async(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Like :func:`main_dlq` inside a running event loop (tests, embedding)."""
    try:
        return await _run(args, out or sys.stdout)
    except ValueError as exc:
        print(f"mmate dlq: {exc}", file=sys.stderr)
        return 2
    except (errors.MmateError, OSError) as exc:
        print(f"mmate dlq: {exc}", file=sys.stderr)
        return 1


__all__ = ["DEFAULT_URL", "add_dlq_parser", "main_dlq", "main_dlq_async"]
