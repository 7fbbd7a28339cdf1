"""``mmate flows list|show``: the StageFlow instances in a state store, for people and scripts.

``--store URL`` picks the store (default ``$MMATE_FLOW_STORE``, else ``sqlite:///mmate-flows.db``):
``sqlite:///path.db``, ``postgresql://user@host:port/db`` (``?schema=`` too), ``memory://``. A SQLite
file that does not exist is an error (the command never creates an empty store). People get tables
(rich when it is installed, aligned text otherwise); ``--json`` prints one JSON object for scripts.
Exit codes: 0 done, 1 not found or failed (one line on stderr), 2 bad use (bad option or URL).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from mmate_fast import errors
from mmate_fast.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_int, report, run_async
from mmate_fast.stageflow.store import MAX_LIMIT, FlowRecord, FlowStore, open_store
from mmate_fast.stageflow.store._url import redact

NAME = "flows"
ENV = "MMATE_FLOW_STORE"
DEFAULT_STORE = "sqlite:///mmate-flows.db"
#: longest error text a table cell shows (``show`` and ``--json`` print it whole)
_CELL = 60


def add_parser(sub: Any) -> None:
    """Add ``flows`` (with list/show) to the ``mmate`` subparsers."""
    p = sub.add_parser(NAME, help="list and show StageFlow workflow instances in a state store",
                       description="List and show the StageFlow workflow instances kept in a state store.")
    _add_store_option(p, after_command=False)
    cmds = p.add_subparsers(dest="flows_command", metavar="{list,show}")
    cmds.required = True
    ls = cmds.add_parser("list", help="instances, newest first",
                         description="List workflow instances, most recently updated first.")
    ls.add_argument("--status", default=None, help="only this status (running, completed, failed, ...)")
    ls.add_argument("--workflow", default=None, metavar="ID", help="only this workflow id")
    ls.add_argument("--limit", type=_limit, default=50, help=f"at most N (default 50, up to {MAX_LIMIT})")
    ls.add_argument("--offset", type=_offset, default=0, help="skip the first N (paging; default 0)")
    ls.add_argument("--json", action="store_true",
                    help='print one JSON object: {"store", "flows": [{"instance_id", ...}]}')
    show = cmds.add_parser("show", help="one instance with its decoded state",
                           description="Show one workflow instance: its record and its decoded state "
                                       "(status, current stage, error, stage results, globalData).")
    show.add_argument("instance_id", metavar="ID")
    show.add_argument("--json", action="store_true",
                      help='print one JSON object: {"store", "record", "state"}')
    for sp in (ls, show):
        _add_store_option(sp, after_command=True)
    p.set_defaults(run=run)


def _limit(text: str) -> int:
    value = positive_int(text)
    if value > MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"at most {MAX_LIMIT}, got {value}")
    return value


def _offset(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def _add_store_option(p: argparse.ArgumentParser, *, after_command: bool) -> None:
    """``--store``, before or after list/show (after it: SUPPRESS, so it does not reset one given
    before)."""
    p.add_argument("--store", default=argparse.SUPPRESS if after_command else None, metavar="URL",
                   help=f"state store URL (default ${ENV}, else {DEFAULT_STORE})")


def store_url(given: str | None) -> str:
    """``--store``, else ``$MMATE_FLOW_STORE``, else the default SQLite file."""
    return given or os.environ.get(ENV) or DEFAULT_STORE


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate flows ...``; returns the exit code."""
    return run_async(run_command(args))


async def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Like :func:`run` inside a running event loop (tests, embedding); output goes to ``out``."""
    url = store_url(args.store)
    try:
        _refuse_missing_file(url)
        store = open_store(url)
        try:
            await _COMMANDS[args.flows_command](args, store, url, out or sys.stdout)
        finally:
            await store.close()
    except (errors.MmateError, ValueError, OSError) as exc:
        report(NAME, exc)
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILED
    return EXIT_OK


def _refuse_missing_file(url: str) -> None:
    """A SQLite URL must name a file that exists: opening it would create an empty store."""
    if not url.lower().startswith("sqlite:///"):
        return
    path = url[len("sqlite:///"):].partition("?")[0]
    if path and path != ":memory:" and not Path(path).is_file():
        raise errors.FlowStoreUnavailableError(
            f"no flow store at {path!r} ({url}): give --store URL or set ${ENV}", url=url)


# ---------------------------------------------------------------------------- formatting
def format_ns(ns: int | None) -> str:
    """Nanoseconds since the epoch as UTC ISO-8601 with milliseconds (``-`` for none or 0)."""
    if not ns:
        return "-"
    dt = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000 // 1_000_000:03d}Z"


def format_duration(ns: Any) -> str:
    """Go's integer-nanosecond duration for people (``850µs``, ``12.3ms``, ``4.20s``)."""
    if not isinstance(ns, int) or isinstance(ns, bool):
        return "-" if ns is None else str(ns)
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.0f}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f}ms"
    return f"{ns / 1_000_000_000:.2f}s"


def _cell(text: str | None, width: int = _CELL) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def record_json(rec: FlowRecord) -> dict[str, Any]:
    """The record's columns (not its state) plus readable times, for ``--json``."""
    return {"instance_id": rec.instance_id, "workflow_id": rec.workflow_id, "status": rec.status,
            "version": rec.version, "current_stage": rec.current_stage, "error": rec.error,
            "started_ns": rec.started_ns, "updated_ns": rec.updated_ns, "started": format_ns(rec.started_ns),
            "updated": format_ns(rec.updated_ns), "worker": rec.worker}


def _table(out: TextIO, headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> None:
    """A table: rich's when it is installed, else columns aligned with spaces."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        if title:
            out.write(f"{title}\n")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        for line in (headers, *rows):
            out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
        return
    table = Table(title=title or None, title_justify="left", show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*r)
    Console(file=out, width=max(100, sum(len(h) for h in headers)), highlight=False,
            soft_wrap=False).print(table)


# ---------------------------------------------------------------------------- list
async def _list(args: argparse.Namespace, store: FlowStore, url: str, out: TextIO) -> None:
    recs = await store.list(status=args.status, workflow=args.workflow, limit=args.limit,
                            offset=args.offset)
    shown = _shown(url)
    if args.json:
        out.write(json.dumps({"store": shown, "flows": [record_json(r) for r in recs]}) + "\n")
        return
    if not recs:
        filters = [f"{k}={v}" for k, v in (("status", args.status), ("workflow", args.workflow)) if v]
        out.write(f"no flows{' with ' + ', '.join(filters) if filters else ''} in {shown}\n")
        return
    _table(out, ("INSTANCE", "WORKFLOW", "STATUS", "STAGE", "VER", "UPDATED", "ERROR"),
           [(r.instance_id, r.workflow_id, r.status, r.current_stage or "-", str(r.version),
             format_ns(r.updated_ns), _cell(r.error)) for r in recs])
    more = " (more with --offset)" if len(recs) == args.limit else ""
    out.write(f"{len(recs)} flow(s) from {shown}{more}\n")


# ---------------------------------------------------------------------------- show
def decode_state(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the serialized WorkflowState as a JSON object, None) or (None, why it cannot be read)."""
    try:
        state = json.loads(text)
    except ValueError as exc:
        return None, f"the stored state is not JSON: {exc}"
    if not isinstance(state, dict):
        return None, f"the stored state is a JSON {type(state).__name__}, not an object"
    return state, None


async def _show(args: argparse.Namespace, store: FlowStore, url: str, out: TextIO) -> None:
    rec = await store.get(args.instance_id)
    if rec is None:
        raise errors.FlowNotFoundError(f"no flow instance {args.instance_id!r} in {_shown(url)}")
    state, problem = decode_state(rec.state_json)
    if args.json:
        body: dict[str, Any] = {"store": _shown(url), "record": record_json(rec), "state": state}
        if problem:
            body["state_error"] = problem
        out.write(json.dumps(body) + "\n")
        return
    lines = [("instance", rec.instance_id), ("workflow", rec.workflow_id), ("status", rec.status),
             ("version", str(rec.version)), ("stage", rec.current_stage or "-"), ("error", rec.error or "-"),
             ("started", format_ns(rec.started_ns)), ("updated", format_ns(rec.updated_ns)),
             ("worker", rec.worker or "-")]
    for key, value in lines:
        out.write(f"{key + ':':<10}{value}\n")
    if state is None:
        out.write(f"state:    cannot be shown: {problem}\n")
        return
    if state.get("endTime"):
        out.write(f"{'ended:':<10}{state['endTime']}\n")
    checks: tuple[tuple[str, str, str | None], ...] = (
        ("status", "state status", rec.status), ("currentStage", "state stage", rec.current_stage),
        ("errorMessage", "state error", rec.error))
    for key, label, column in checks:
        found = state.get(key)
        if found not in (None, "") and found != column:  # the record's columns said it otherwise
            out.write(f"{label + ':':<10}{found}\n")
    results = state.get("stageResults") or []
    if isinstance(results, list) and results:
        rows = []
        for r in results:
            r = r if isinstance(r, dict) else {}
            rows.append((str(r.get("stageId", "?")), str(r.get("status", "?")),
                         format_duration(r.get("duration")), _cell(r.get("error"))))
        out.write("\n")
        _table(out, ("STAGE", "STATUS", "DURATION", "ERROR"), rows, title="stage results")
    else:
        out.write("stage results: none yet\n")
    out.write("\nglobalData:\n")
    out.write(json.dumps(state.get("globalData") or {}, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _shown(url: str) -> str:
    return redact(url)


_COMMANDS: dict[str, Callable[[argparse.Namespace, FlowStore, str, TextIO], Awaitable[None]]] = {
    "list": _list, "show": _show}

__all__ = ["DEFAULT_STORE", "ENV", "add_parser", "decode_state", "format_duration", "format_ns", "run",
           "run_command", "store_url"]
