"""``mmate health URL``: ask a service's health endpoint and say what it answered.

URL is the service's observability address (``http://host:9090``, ``host:9090``) or its health path
(``.../health``; ``/health`` is added when the URL has no path). The report (mmate-go's JSON shape,
from ``client.serve_observability()`` or a Go ``monitor.Handler``) is printed as a table of the
checks, or as it came with ``--json``.

Exit codes, for scripts: 0 healthy, 3 degraded, 1 unhealthy, unreachable or not a health report
(one line on stderr), 2 bad use.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from mmate_fast.cli._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_float, report

NAME = "health"
EXIT_DEGRADED = 3
EXIT_BY_STATUS = {"healthy": EXIT_OK, "degraded": EXIT_DEGRADED, "unhealthy": EXIT_FAILED}
DEFAULT_TIMEOUT = 10.0
_STYLE = {"healthy": "green", "degraded": "yellow", "unhealthy": "bold red"}


class HealthQueryError(Exception):
    """The endpoint did not answer with a health report (the message says why)."""


def add_parser(sub: Any) -> None:
    """Add ``health`` to the ``mmate`` subparsers."""
    p = sub.add_parser(NAME, help="query a service's /health endpoint",
                       description="GET a service's health endpoint and print its checks. Exit codes: "
                                   "0 healthy, 3 degraded, 1 unhealthy or unreachable, 2 bad use.")
    p.add_argument("url", help="the service's observability address (http://host:9090, host:9090) or its "
                               "/health URL")
    p.add_argument("--json", action="store_true", help="print the report as the service sent it")
    p.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT,
                   help=f"seconds to wait for the answer (default {DEFAULT_TIMEOUT:g})")
    p.set_defaults(run=run)


def health_url(text: str) -> str:
    """``host:port`` -> ``http://host:port/health``; a URL without a path gets ``/health``."""
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) address: {text!r} (e.g. http://localhost:9090)")
    path = parts.path if parts.path not in ("", "/") else "/health"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def fetch(url: str, timeout: float) -> tuple[int, str]:
    """GET ``url``: (HTTP status, body). 503 is an answer (unhealthy), not an error."""
    request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                   "User-Agent": "mmate-health"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HealthQueryError(f"cannot reach {url}: {reason}") from None


def parse_report(status: int, body: str, url: str) -> dict[str, Any]:
    """The report in ``body``, checked for the fields a health report has."""
    if status not in (200, 503):
        raise HealthQueryError(f"{url} answered HTTP {status}, not a health report")
    try:
        obj = json.loads(body)
    except ValueError:
        raise HealthQueryError(f"{url} answered HTTP {status} with something that is not JSON") from None
    if not isinstance(obj, dict) or obj.get("status") not in EXIT_BY_STATUS or \
            not isinstance(obj.get("checks", {}), dict):
        raise HealthQueryError(f"{url} answered JSON that is not a health report (no valid 'status')")
    return obj


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run a parsed ``mmate health``; returns the exit code."""
    out = out or sys.stdout
    try:
        url = health_url(args.url)
    except ValueError as exc:
        report(NAME, exc)
        return EXIT_USAGE
    try:
        status, body = fetch(url, args.timeout)
        obj = parse_report(status, body, url)
    except HealthQueryError as exc:
        report(NAME, exc)
        return EXIT_FAILED
    if args.json:
        out.write(body if body.endswith("\n") else body + "\n")
    else:
        try:
            render(obj, url, out)
        except ImportError:
            report(NAME, "the table needs rich (a dependency of mmate-fast: reinstall it), or use --json")
            return EXIT_FAILED
    return EXIT_BY_STATUS[obj["status"]]


def _ms(ns: Any) -> str:
    return f"{ns / 1e6:.1f} ms" if isinstance(ns, int | float) else "-"


def render(obj: dict[str, Any], url: str, out: TextIO) -> None:
    """The report as a table (rich) of check, status, message and duration."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    meta = obj.get("metadata") or {}
    service = meta.get("service_name") or meta.get("service") or url
    status = obj["status"]
    console = Console(file=out, width=max(100, Console(file=out).width), soft_wrap=False)
    table = Table(title=Text.assemble(f"{service}: ", (status, _STYLE[status]),
                                      f" ({_ms(obj.get('duration'))})"), title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("message", overflow="fold")
    table.add_column("duration", justify="right")
    for name, check in (obj.get("checks") or {}).items():
        check = check if isinstance(check, dict) else {}
        st = str(check.get("status", "?"))
        message = str(check.get("message", ""))
        if check.get("error") and check["error"] not in message:
            message = f"{message} ({check['error']})" if message else str(check["error"])
        table.add_row(str(check.get("name", name)), Text(st, _STYLE.get(st, "")), message,
                      _ms(check.get("duration")))
    console.print(table)


__all__ = ["EXIT_BY_STATUS", "EXIT_DEGRADED", "HealthQueryError", "add_parser", "fetch", "health_url",
           "parse_report", "render", "run"]
