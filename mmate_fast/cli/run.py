"""``mmate run module:attr``: run a service as a fleet of worker processes (see mmate_fast.fleet).

``attr`` is a zero-argument factory returning a Client (recommended: the Client is then built in the
worker, on its own event loop, and importing the module has no side effect) or a module-level Client.
Exit codes: 0 drained after SIGTERM/SIGINT; 1 gave up (a crash loop, a target that cannot be loaded);
2 bad use.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from mmate_fast import errors
from mmate_fast.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    PROG,
    non_negative_float,
    positive_float,
    positive_int,
)

NAME = "run"


def _bounds(text: str) -> tuple[int, int]:
    from mmate_fast.fleet._scaler import parse_bounds

    try:
        return parse_bounds(text)
    except errors.ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535 - 64:
        raise argparse.ArgumentTypeError(f"not a port for the fleet (the workers take the next ones): "
                                         f"{value}")
    return value


def add_parser(sub: Any) -> None:
    """Add ``run`` to the ``mmate`` subparsers."""
    p = sub.add_parser(
        NAME, help="run a service as N worker processes (restart, drain, reload, autoscale)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the Client made by MODULE:ATTR in worker processes that each connect and consume.\n"
                    "ATTR: a zero-argument factory returning a Client (recommended; may be async) or a\n"
                    "Client. SIGTERM/SIGINT drain the workers (in-flight handlers finish and ack); a\n"
                    "second one closes at once; SIGHUP restarts every worker. A crashed worker is\n"
                    "restarted with backoff; a crash loop makes the command give up (exit 1).")
    p.add_argument("target", metavar="MODULE:ATTR", help="e.g. myapp.service:make_client")
    p.add_argument("--workers", "-w", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--factory", action="store_true", default=None,
                   help="ATTR must be a factory (default: a Client or a factory, whichever it is)")
    p.add_argument("--app-dir", default=".",
                   help="directory to import MODULE from (default: the current one)")
    p.add_argument("--drain-timeout", type=positive_float, default=10.0,
                   help="seconds in-flight handlers get to finish on SIGTERM (default 10)")
    p.add_argument("--health-port", type=_port, default=None,
                   help="serve the fleet's /health here and each worker's endpoints on the next ports "
                        "(worker i on PORT+i)")
    p.add_argument("--health-host", default="127.0.0.1", help="address for the health endpoints")
    p.add_argument("--reload", action="store_true",
                   help="development: restart the workers when a .py file changes (needs watchfiles)")
    p.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                   help="directory to watch with --reload (repeatable; default --app-dir)")
    p.add_argument("--autoscale", type=_bounds, default=None, metavar="MIN,MAX",
                   help="between MIN and MAX workers from the queue depth and consumer lag "
                        "(RabbitMQ only; replaces --workers)")
    p.add_argument("--scale-interval", type=positive_float, default=1.0,
                   help="autoscale: seconds between samples of the queue depth (default 1)")
    p.add_argument("--scale-up-backlog", type=positive_int, default=100,
                   help="autoscale: grow when more messages than this wait ... (default 100)")
    p.add_argument("--scale-up-lag", type=non_negative_float, default=2.0,
                   help="... and the fleet needs more than this many seconds to clear them (default 2)")
    p.add_argument("--scale-down-samples", type=positive_int, default=10,
                   help="autoscale: shrink after this many idle samples in a row (default 10)")
    p.add_argument("--scale-cooldown", type=non_negative_float, default=5.0,
                   help="autoscale: seconds after a change before the next (default 5)")
    p.add_argument("--restart-delay", type=non_negative_float, default=0.5,
                   help="first delay before restarting a crashed worker, doubling to 10 s (default 0.5)")
    p.add_argument("--crash-limit", type=positive_int, default=5,
                   help="give up after this many crashes in a row, each within 10 s of starting (default 5)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="log level of the supervisor and the workers (default info)")
    p.set_defaults(run=run)


def options_from(args: argparse.Namespace) -> Any:
    """The FleetOptions for parsed arguments (ConfigurationError / FleetTargetError for bad ones)."""
    from mmate_fast.fleet import FleetOptions, RestartPolicy, ScalePolicy, parse_target

    parse_target(args.target)
    scale = None
    if args.autoscale is not None:
        scale = ScalePolicy(args.autoscale[0], args.autoscale[1], interval=args.scale_interval,
                            up_backlog=args.scale_up_backlog, up_lag=args.scale_up_lag,
                            down_samples=args.scale_down_samples, cooldown=args.scale_cooldown)
    restart = RestartPolicy(initial=args.restart_delay, maximum=max(10.0, args.restart_delay),
                            crash_limit=args.crash_limit)
    return FleetOptions(target=args.target, workers=args.workers, factory=args.factory, app_dir=args.app_dir,
                        drain_timeout=args.drain_timeout, health_port=args.health_port,
                        health_host=args.health_host, reload=args.reload, reload_dirs=tuple(args.reload_dir),
                        autoscale=scale, restart=restart, log_level=args.log_level)


def run(args: argparse.Namespace) -> int:
    from mmate_fast.fleet import run_fleet

    try:
        options = options_from(args)
    except errors.MmateError as exc:
        print(f"{PROG} {NAME}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if options.reload:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            print(f"{PROG} {NAME}: --reload needs watchfiles (pip install watchfiles)", file=sys.stderr)
            return EXIT_USAGE
    logging.basicConfig(level=options.log_level.upper(),
                        format="%(asctime)s [mmate run] %(levelname)s %(message)s")
    try:
        code = run_fleet(options)
    except errors.MmateError as exc:  # e.g. the health port is taken
        print(f"{PROG} {NAME}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code if code in (0, EXIT_FAILED) else EXIT_FAILED
