"""One worker of a fleet: ``python -m mmate_fast.fleet CONFIG_JSON`` (started by the supervisor).

It imports the target (a fresh interpreter: nothing is inherited from the supervisor but the
environment), makes the Client, connects, starts consuming, serves its health endpoints when given a
port, tells the supervisor it is ready (JSON lines on the status pipe), then serves until SIGTERM /
SIGINT and drains: stop consuming, in-flight handlers finish and ack, publisher confirms are awaited,
the connection closes (``mmate_fast.shutdown.run_until_signal``). A second signal closes at once.
When the supervisor goes away (its end of our stdin closes) the worker drains the same way, so a
killed supervisor leaves no orphans.

Exit codes: 0 drained after a signal; 3 the target cannot be loaded (the supervisor does not
restart it); 1 anything else (the supervisor restarts it with backoff).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from mmate_fast import errors
from mmate_fast.fleet._target import load_target, make_client

log = logging.getLogger("mmate_fast.fleet.worker")

EXIT_OK, EXIT_FAILED, EXIT_TARGET = 0, 1, 3
#: the environment variable telling a worker's code its slot (1..N; a restarted worker keeps its slot)
SLOT_ENV = "MMATE_WORKER_SLOT"


@dataclass
class WorkerConfig:
    """What the supervisor tells a worker (JSON on its command line)."""

    target: str
    slot: int
    factory: bool | None = None
    drain_timeout: float = 10.0
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    status_fd: int | None = None
    stats_interval: float = 1.0
    log_level: str = "info"
    #: put first on sys.path, so ``module`` imports from there (default: the current directory)
    app_dir: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


class StatusPipe:
    """JSON lines to the supervisor (nothing when there is no pipe; a closed pipe is ignored)."""

    def __init__(self, fd: int | None) -> None:
        self._file = os.fdopen(fd, "w", buffering=1, encoding="utf-8") if fd is not None else None

    def send(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps({"event": event, **fields}) + "\n")
        except (OSError, ValueError):  # the supervisor is gone: the stdin watcher stops us
            self._file = None


def _watch_parent() -> None:
    """Drain (SIGTERM to ourselves) once the supervisor's end of our stdin closes."""
    def watch() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        log.warning("the supervisor went away: draining")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="mmate-fleet-parent-watch", daemon=True).start()


def _stats(client: Any) -> dict[str, int]:
    subs = list(getattr(client.subscriber, "subscriptions", ()) or ())
    return {"received": sum(s.stats.received for s in subs), "acked": sum(s.stats.acked for s in subs),
            "rejected": sum(s.stats.rejected for s in subs),
            "in_flight": sum(s.in_flight + s.waiting for s in subs)}


async def _report_stats(client: Any, status: StatusPipe, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        status.send("stats", **_stats(client))


async def serve(cfg: WorkerConfig, status: StatusPipe) -> int:
    """Make the client, connect, consume, report ready, serve until a signal, drain; the exit code."""
    from mmate_fast.shutdown import run_until_signal

    loop = asyncio.get_running_loop()
    early = asyncio.Event()  # a signal while starting: drain right after (run_until_signal takes over)
    for early_sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(early_sig, early.set)
    make = load_target(cfg.target, factory=cfg.factory)
    client = await make_client(make, cfg.target)
    await client.connect()
    await client.start_consuming()
    health = None
    if cfg.health_port is not None:
        obs = await client.serve_observability(cfg.health_port, host=cfg.health_host)
        health = obs.url
    queues = [s.queue for s in client.subscriber.subscriptions] if client.subscriber is not None else []
    status.send("ready", pid=os.getpid(), url=client.url, queues=queues, health=health,
                service=client.service_name)
    log.info("ready: consuming %s%s", ", ".join(queues) or "nothing",
             f"; health on {health}" if health else "")
    if early.is_set():  # checked with no await before run_until_signal installs its handlers
        log.info("stopped while starting: draining")
        await client.close(cfg.drain_timeout)
        return EXIT_OK
    reporter = asyncio.ensure_future(_report_stats(client, status, cfg.stats_interval))
    try:
        sig = await run_until_signal(client, deadline=cfg.drain_timeout)
    finally:
        reporter.cancel()
    status.send("stats", **_stats(client))
    if sig is None:
        log.error("the connection closed for good: exiting (the supervisor starts a new worker)")
        return EXIT_FAILED
    log.info("drained after %s: exiting", signal.Signals(sig).name)
    status.send("drained")
    return EXIT_OK


def run_on_uvloop(coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` on uvloop (the loop mmate_fast is fastest on), or asyncio's where there is none."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process; returns its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    cfg = WorkerConfig.from_json(argv[0])
    os.environ[SLOT_ENV] = str(cfg.slot)
    logging.basicConfig(level=cfg.log_level.upper(),
                        format=f"%(asctime)s [worker {cfg.slot} pid {os.getpid()}] %(levelname)s "
                               "%(name)s: %(message)s")
    app_dir = cfg.app_dir or os.getcwd()
    if app_dir not in sys.path:  # import the app from there (python -m puts only its own cwd first)
        sys.path.insert(0, app_dir)
    status = StatusPipe(cfg.status_fd)
    _watch_parent()
    try:
        return run_on_uvloop(serve(cfg, status))
    except errors.FleetTargetError as exc:
        log.error("%s", exc)
        status.send("target-error", error=str(exc))
        return EXIT_TARGET
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_OK
    except Exception as exc:
        log.exception("worker failed: %s", exc)
        status.send("failed", error=f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
