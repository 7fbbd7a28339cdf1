"""``mmate contracts list|show|export``: the endpoint contracts the services on a broker announce.

The contracts come from the broker, live: a Client with discovery listening on ``mmate.contracts``
(not announcing, not answering) asks the fleet once with a discovery request and collects what is
answered or announced for up to ``--wait`` seconds (it returns as soon as a responder answered,
unless ``--listen``). Services of ours answer requests with everything they know; mmate-go services
never answer (their responder is unfinished) but announce every 30 s: ``--wait 31 --listen`` sees
them all.

``list``: a table (``--json``: ``{"contracts": [...]}`` with Go's keys); ``show ID``: one endpoint with
its schemas (``ID`` may be a pattern, ``orders.*``); ``export``: an AsyncAPI 3.0 document of the
contracts (``--format json``: the contracts themselves). Exit codes: 0 done, 1 failed (nothing found
for ``show``, broker unreachable), 2 bad use.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_float, report, run_async
from mmate_fast.client import Client
from mmate_fast.contracts import to_payload
from mmate_fast.discovery import DiscoveryOptions, EndpointContract, asyncapi_document

NAME = "contracts"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_WAIT = 5.0

_env = load("envelope")


def add_parser(sub: Any) -> None:
    """Add ``contracts`` (list/show/export) to the ``mmate`` subparsers."""
    p = sub.add_parser(NAME, help="list, show and export the contracts services announce",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    cmds = p.add_subparsers(dest="contracts_command", metavar="{list,show,export}")
    cmds.required = True
    ls = cmds.add_parser("list", help="the announced endpoint contracts, one line each")
    show = cmds.add_parser("show", help="one endpoint contract with its schemas")
    show.add_argument("endpoint", metavar="ID", help="endpoint id (or a pattern: orders.*)")
    ex = cmds.add_parser("export", help="an AsyncAPI 3.0 document of the announced contracts")
    ex.add_argument("--format", choices=("asyncapi", "json"), default="asyncapi",
                    help="asyncapi (default): an AsyncAPI 3.0 document; json: the contracts")
    ex.add_argument("--output", "-o", metavar="FILE", default=None, help="write to FILE (default stdout)")
    ex.add_argument("--title", default="Mmate contracts", help="the document's info.title")
    for sp in (ls, show, ex):
        sp.add_argument("--url", default=DEFAULT_URL, help=f"broker URL (default {DEFAULT_URL})")
        sp.add_argument("--wait", type=positive_float, default=DEFAULT_WAIT, metavar="SECONDS",
                        help="collect answers and announcements for up to SECONDS (default "
                             f"{DEFAULT_WAIT:g}; mmate-go services announce every 30 s)")
        sp.add_argument("--listen", action="store_true",
                        help="keep listening the whole --wait even after a responder answered")
        sp.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
        if sp is not show:
            sp.add_argument("--pattern", default="", help="endpoint id pattern, * = anything (default: all)")
        sp.add_argument("--version", dest="version_constraint", default="", metavar="CONSTRAINT",
                        help="version: exact, 1.x, or a semver constraint such as ^1.2")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate contracts ...``; returns the exit code."""
    return run_async(run_command(args))


async def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Like :func:`run` inside a running event loop (tests, embedding); output goes to ``out``."""
    out = out or sys.stdout
    command = args.contracts_command
    pattern = args.endpoint if command == "show" else args.pattern
    try:
        found = await collect(args.url, pattern, args.version_constraint, args.wait, args.listen)
    except (errors.MmateError, OSError) as exc:
        report(NAME, exc)
        return EXIT_USAGE if isinstance(exc, errors.InvalidURLError) else EXIT_FAILED
    if command == "list":
        _list(found, args, out)
    elif command == "show":
        if not found:
            report(NAME, f"no endpoint {pattern!r} announced within {args.wait:g} s (more time: --wait; "
                         "all endpoints: mmate contracts list)")
            return EXIT_FAILED
        _show(found, args, out)
    else:
        _export(found, args, out)
    return EXIT_OK


async def collect(url: str, pattern: str = "", version: str = "", wait: float = DEFAULT_WAIT,
                  listen: bool = False) -> list[EndpointContract]:
    """The contracts matching ``pattern``/``version`` known on the broker at ``url`` (see the module
    docstring)."""
    opts = DiscoveryOptions(announce=False, respond=False, listen=True, interval=max(wait, 1.0), window=wait)
    # no topology: nothing of this short-lived client stays on the broker
    async with Client(url, service_name="mmate-cli", declare_topology=False, discovery=opts) as client:
        disc = client.discovery
        return await disc.discover(pattern, version, remote=True, window=wait, expect=None if listen else 1)


def contract_json(c: EndpointContract) -> dict[str, Any]:
    """A contract as Go writes it (Go's keys, sorted; RFC 3339 times)."""
    out: dict[str, Any] = json.loads(_env.encode_json(to_payload(c)))
    return out


def _public_url(url: str) -> str:
    """``url`` without user and password."""
    parts = urlsplit(url)
    if parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _table(title: str, columns: list[str], rows: list[list[str]], out: TextIO) -> None:
    """A rich table when rich is installed, else aligned plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich comes with the cli extra
        out.write(title + "\n")
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
        for r in rows:
            out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
        return
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*r)
    Console(file=out, width=_width(out), soft_wrap=False).print(table)


def _width(out: TextIO) -> int:
    """The terminal's width; wide enough for any row when the output is not a terminal (a file, a pipe:
    nothing folded for grep)."""
    try:
        if out.isatty():
            return max(80, shutil.get_terminal_size((140, 24)).columns)
    except (OSError, ValueError):
        pass
    return 1000


def _list(found: list[EndpointContract], args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        out.write(json.dumps({"contracts": [contract_json(c) for c in found]}) + "\n")
        return
    if not found:
        out.write(f"no contracts announced within {args.wait:g} s\n")
        return
    rows = [[c.service_name, c.endpoint_id, c.version, c.input_type, c.output_type, c.queue,
             c.timeout or "-", str(c.max_retries)] for c in found]
    columns = ["SERVICE", "ENDPOINT", "VERSION", "INPUT", "OUTPUT", "QUEUE", "TIMEOUT", "RETRIES"]
    _table(f"{len(found)} endpoint contract(s)", columns, rows, out)


def _show(found: list[EndpointContract], args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        docs = [contract_json(c) for c in found]
        out.write(json.dumps(docs[0] if len(docs) == 1 else {"contracts": docs}) + "\n")
        return
    for c in found:
        d = contract_json(c)
        rows = [[k, str(v)] for k, v in d.items() if not k.endswith("Schema")]
        _table(c.endpoint_id, ["FIELD", "VALUE"], rows, out)
        for k in ("inputSchema", "outputSchema"):
            if k in d:
                out.write(f"{k}:\n{json.dumps(d[k], indent=2)}\n")


def _export(found: list[EndpointContract], args: argparse.Namespace, out: TextIO) -> None:
    if args.format == "json":
        doc: dict[str, Any] = {"contracts": [contract_json(c) for c in found]}
    else:
        doc = asyncapi_document(found, title=args.title, server_url=_public_url(args.url),
                                description=f"{len(found)} endpoint contract(s) announced on the broker")
    text = json.dumps(doc, indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        if not args.json:
            out.write(f"wrote {args.output} ({len(found)} contract(s))\n")
    else:
        out.write(text)


__all__ = ["DEFAULT_URL", "add_parser", "collect", "contract_json", "run", "run_command"]
