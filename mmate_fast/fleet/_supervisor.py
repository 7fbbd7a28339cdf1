"""The fleet supervisor: starts N worker processes of a service and keeps them running.

- **Workers are spawned, not forked**: each is a fresh ``python -m mmate_fast.fleet`` worker that
  imports the service itself (see ``_worker.py``). The supervisor never imports the user's code, so a
  broken module cannot take it down, ``--reload`` gets new code in every new worker, and nothing
  fork-unsafe (an event loop, uvloop, threads, open sockets) is ever copied into a child.
- **Slots**: worker ``i`` (1..N) runs in slot ``i``; a restarted worker keeps its slot (its health port
  is ``health_port + i``; its code sees ``MMATE_WORKER_SLOT``).
- **Restarts**: a worker that exits without being asked to is started again after a backoff
  (``RestartPolicy``: 0.5 s doubling to 10 s). One that dies within ``min_uptime`` of starting
  ``crash_limit`` times in a row is a crash loop: the supervisor gives up loudly (logs CRITICAL, drains
  the other workers, exits 1). A target that cannot be loaded is given up at once (exit code 3 from
  the worker). With ``reload`` both wait for the next code change instead.
- **Drain**: SIGTERM or SIGINT to the supervisor sends SIGTERM to every worker: each stops consuming,
  lets its in-flight handlers finish and ack, and exits; after ``drain_timeout`` + 5 s a worker still
  running is killed (its unacked messages go back to the queue). A second signal is passed on (the
  workers then close at once). SIGHUP restarts every worker gracefully (new code, same slots).
  Workers run in their own sessions, so a Ctrl-C in the terminal reaches the supervisor only and each
  worker gets exactly one SIGTERM from it; a worker whose supervisor died drains by itself.
- **Autoscale**: see ``_scaler.py``; the queue depth comes from a passive declare of the queues the
  workers reported consuming, on a connection of the supervisor's own to the workers' broker.
- **Health**: each worker serves its own endpoints on ``health_port + slot``; the supervisor serves
  the fleet's on ``health_port`` (``/health``: one check per worker, its status the worker's own
  report, plus ``fleet``: how many of the wanted workers are ready).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from mmate_fast import errors
from mmate_fast._backoff import Backoff
from mmate_fast.fleet._scaler import Sample, ScalePolicy, Scaler
from mmate_fast.fleet._worker import EXIT_TARGET, WorkerConfig

log = logging.getLogger("mmate_fast.fleet")

#: seconds, beyond the drain timeout, before a worker that has not exited is killed
KILL_GRACE = 5.0
#: seconds over which the autoscaler measures the fleet's acked rate
RATE_WINDOW = 3.0


@dataclass(frozen=True)
class RestartPolicy:
    """How crashed workers are restarted: backoff ``initial`` doubling to ``maximum`` between the
    crashes of one slot; ``crash_limit`` crashes in a row, each within ``min_uptime`` seconds of
    starting, is a crash loop (give up)."""

    initial: float = 0.5
    maximum: float = 10.0
    min_uptime: float = 10.0
    crash_limit: int = 5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.min_uptime < 0 or self.crash_limit < 1:
            raise errors.ConfigurationError("restart policy: 0 <= initial <= maximum, min_uptime >= 0, "
                                            "crash_limit >= 1")


@dataclass
class FleetOptions:
    """What ``mmate run`` was asked (see ``mmate run --help``)."""

    target: str
    workers: int = 1
    factory: bool | None = None
    app_dir: str = "."
    drain_timeout: float = 10.0
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    autoscale: ScalePolicy | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stats_interval: float = 1.0
    log_level: str = "info"
    python: str = sys.executable

    def __post_init__(self) -> None:
        if type(self.workers) is not int or self.workers < 1:
            raise errors.ConfigurationError(f"workers must be a whole number >= 1, got {self.workers!r}")
        if not self.drain_timeout > 0:
            raise errors.ConfigurationError(f"drain_timeout must be > 0 seconds, got {self.drain_timeout!r}")
        if self.health_port is not None and not 0 < self.health_port < 65535 - 64:
            raise errors.ConfigurationError(f"health_port must be a TCP port (the workers take the next "
                                            f"ones), got {self.health_port!r}")


@dataclass
class WorkerHandle:
    """One worker process (a slot's current one)."""

    slot: int
    proc: Any
    started: float
    ready: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    acked: int = 0
    in_flight: int = 0
    error: str = ""
    #: why the supervisor stopped it: "" (it was not), "retire", "replace", "stop"
    stopping: str = ""
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


class Supervisor:
    """Runs a fleet until a signal (or :meth:`stop`); :meth:`run` returns the exit code."""

    def __init__(self, options: FleetOptions) -> None:
        self.options = options
        self.exit_code = 0
        self.workers: dict[int, WorkerHandle] = {}
        self.restarts: dict[int, int] = {}
        #: messages acked by every worker so far (sum of the deltas they report)
        self.acked_total = 0
        self.broker_url: str | None = None
        self.queues: list[str] = []
        self.wanted = options.autoscale.minimum if options.autoscale else options.workers
        self._slots: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._code_changed = asyncio.Event()
        self._signals = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._health: Any = None
        self._http: Any = None
        self._checker: Any = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        """Start the fleet, keep it running until stopped, drain it; the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        o = self.options
        log.info("starting %d worker(s) of %s%s%s (pid %d)", self.wanted, o.target,
                 f", autoscale {o.autoscale.minimum}..{o.autoscale.maximum}" if o.autoscale else "",
                 ", reload on code change" if o.reload else "", os.getpid())
        try:
            if o.health_port is not None:
                await self._start_health()
            for slot in range(1, self.wanted + 1):
                self._start_slot(slot)
            if o.autoscale is not None:
                self._tasks.append(asyncio.ensure_future(self._autoscale(o.autoscale)))
            if o.reload:
                self._tasks.append(asyncio.ensure_future(self._watch_code()))
            await self._stop_event.wait()
            await self._drain()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._close_health()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("fleet stopped (exit code %d)", self.exit_code)
        return self.exit_code

    def stop(self, reason: str = "") -> None:
        """Drain every worker and end :meth:`run` (idempotent)."""
        if not self._stopping:
            self._stopping = True
            log.info("draining %d worker(s)%s", len(self.workers), f" ({reason})" if reason else "")
            for h in self.workers.values():
                self._terminate(h, "stop")
            self._stop_event.set()

    def fail(self, error: errors.MmateError) -> None:
        """Give up loudly: log ``error``, drain the other workers, exit 1."""
        log.critical("giving up: %s", error)
        self.exit_code = 1
        self.stop("giving up")

    def _on_signal(self, sig: int) -> None:
        self._signals += 1
        name = signal.Signals(sig).name
        if self._signals == 1:
            self.stop(f"{name} received")
        else:
            log.warning("%s received again: telling the workers to close now", name)
            for h in self.workers.values():
                self._signal(h, signal.SIGTERM)

    def _on_hup(self) -> None:
        log.info("SIGHUP received: restarting every worker")
        self.restart_all()

    def restart_all(self) -> None:
        """Replace every worker by a new one (each drains first); slots waiting for a code change
        start again."""
        if self._stopping:
            return
        for h in self.workers.values():
            self._terminate(h, "replace")
        changed, self._code_changed = self._code_changed, asyncio.Event()
        changed.set()

    async def _drain(self) -> None:
        tasks = list(self._slots.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.options.drain_timeout + KILL_GRACE)
        for h in list(self.workers.values()):
            if h.proc.returncode is None:
                log.error("worker %d (pid %d) did not drain within %.0f s: killing it (its unacked "
                          "messages go back to the queue)", h.slot, h.pid,
                          self.options.drain_timeout + KILL_GRACE)
                self._signal(h, signal.SIGKILL)
        if late:
            await asyncio.wait(late, timeout=5.0)
        for task in late:
            task.cancel()

    # ------------------------------------------------------------------ slots
    def _start_slot(self, slot: int) -> None:
        self._slots[slot] = asyncio.ensure_future(self._run_slot(slot))
        if self._checker is not None:
            self._checker.add(f"worker-{slot}", self._worker_check(slot), timeout=4.0)

    def _retire_slot(self, slot: int) -> None:
        h = self.workers.get(slot)
        if h is not None:
            self._terminate(h, "retire")
        else:  # waiting to be restarted: nothing to drain
            task = self._slots.get(slot)
            if task is not None:
                task.cancel()

    def _slot_done(self, slot: int) -> None:
        self._slots.pop(slot, None)
        if self._checker is not None and f"worker-{slot}" in self._checker:
            self._checker.remove(f"worker-{slot}")

    async def _run_slot(self, slot: int) -> None:
        """Keep a worker running in ``slot`` until it is retired or the fleet stops."""
        policy = self.options.restart
        backoff = Backoff(policy.initial, policy.maximum, jitter=0.1)
        quick = 0
        try:
            while not self._stopping:
                try:
                    h = await self._spawn(slot)
                except OSError as exc:
                    self.fail(errors.FleetCrashLoopError(f"cannot start worker {slot}: {exc}"))
                    return
                code = await h.proc.wait()
                if h.reader is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(h.reader, 2.0)
                self.workers.pop(slot, None)
                uptime = time.monotonic() - h.started
                if h.stopping:
                    log.info("worker %d (pid %d) %s (exit code %s)", slot, h.pid,
                             "replaced" if h.stopping == "replace" else "stopped", code)
                    if h.stopping == "replace":
                        quick = 0
                        continue
                    return
                if self._stopping:
                    return
                self.restarts[slot] = self.restarts.get(slot, 0) + 1
                quick = quick + 1 if uptime < policy.min_uptime else 1
                if code == EXIT_TARGET:
                    error: errors.MmateError = errors.FleetTargetError(
                        f"worker {slot} cannot load {self.options.target}: {h.error or 'see its log above'}")
                elif quick >= policy.crash_limit and uptime < policy.min_uptime:
                    error = errors.FleetCrashLoopError(
                        f"worker {slot} exited {quick} times in a row within {policy.min_uptime:g} s of "
                        f"starting (last exit code {code}{': ' + h.error if h.error else ''})")
                else:
                    delay = backoff.delay(quick)
                    log.warning("worker %d (pid %d) exited with code %s after %.1f s: restarting it in "
                                "%.1f s (%d quick crash(es) in a row, limit %d)", slot, h.pid, code, uptime,
                                delay, quick if uptime < policy.min_uptime else 0, policy.crash_limit)
                    await self._sleep(delay)
                    continue
                if not self.options.reload:
                    self.fail(error)
                    return
                log.error("%s; waiting for a code change (--reload)", error)
                await self._wait_code_change()
                quick = 0
        finally:
            self._slot_done(slot)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short when the fleet stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    async def _wait_code_change(self) -> None:
        changed = asyncio.ensure_future(self._code_changed.wait())
        stopped = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({changed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            stopped.cancel()

    async def _spawn(self, slot: int) -> WorkerHandle:
        o = self.options
        stats_interval = o.stats_interval if o.autoscale is None else \
            min(o.stats_interval, o.autoscale.interval)
        read_fd, write_fd = os.pipe()
        cfg = WorkerConfig(target=o.target, slot=slot, factory=o.factory, drain_timeout=o.drain_timeout,
                           health_port=None if o.health_port is None else o.health_port + slot,
                           health_host=o.health_host, status_fd=write_fd, stats_interval=stats_interval,
                           log_level=o.log_level, app_dir=os.path.abspath(o.app_dir))
        try:
            proc = await asyncio.create_subprocess_exec(
                o.python, "-m", "mmate_fast.fleet", cfg.to_json(), stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,), start_new_session=True)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        h = WorkerHandle(slot=slot, proc=proc, started=time.monotonic())
        self.workers[slot] = h
        h.reader = asyncio.ensure_future(self._read_status(h, read_fd))
        log.info("worker %d started (pid %d)", slot, h.pid)
        if self._stopping:  # stopped while it started
            self._terminate(h, "stop")
        return h

    async def _read_status(self, h: WorkerHandle, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(fd, "rb", 0))
        try:
            async for line in reader:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                self._on_status(h, msg)
        finally:
            transport.close()

    def _on_status(self, h: WorkerHandle, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if event == "ready":
            h.ready = True
            h.info = msg
            log.info("worker %d (pid %d) ready in %.1f s: consuming %s%s", h.slot, h.pid,
                     time.monotonic() - h.started, ", ".join(msg.get("queues") or ()) or "nothing",
                     f", health {msg['health']}" if msg.get("health") else "")
            if self.broker_url is None:
                self.broker_url = msg.get("url")
            for q in msg.get("queues") or ():
                if q not in self.queues:
                    self.queues.append(q)
        elif event == "stats":
            acked = int(msg.get("acked", 0))
            self.acked_total += max(0, acked - h.acked)
            h.acked = acked
            h.in_flight = int(msg.get("in_flight", 0))
        elif event in ("target-error", "failed"):
            h.error = str(msg.get("error", ""))

    def _terminate(self, h: WorkerHandle, why: str) -> None:
        if not h.stopping or why == "stop":
            h.stopping = h.stopping or why
            self._signal(h, signal.SIGTERM)

    @staticmethod
    def _signal(h: WorkerHandle, sig: int) -> None:
        if h.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                h.proc.send_signal(sig)

    # ------------------------------------------------------------------ autoscale
    def running(self) -> int:
        """Workers that run or are being restarted, not counting those being retired."""
        return sum(1 for slot in self._slots
                   if (h := self.workers.get(slot)) is None or h.stopping != "retire")

    async def _autoscale(self, policy: ScalePolicy) -> None:
        from mmate_fast.transports import connect

        scaler = Scaler(policy)
        conn: Any = None
        # the acked rate over the last RATE_WINDOW seconds (the workers report every stats_interval)
        history: collections.deque[tuple[float, int]] = collections.deque()
        history.append((time.monotonic(), self.acked_total))
        try:
            while not self._stopping:
                await self._sleep(policy.interval)
                if self._stopping or self.broker_url is None or not self.queues:
                    continue
                if not self.broker_url.lower().startswith("amqp"):
                    log.error("--autoscale needs RabbitMQ (the workers use %s): keeping %d worker(s)",
                              self.broker_url.split(":", 1)[0] + "://", self.wanted)
                    return
                try:
                    if conn is None or conn.is_closed:
                        conn = await connect(self.broker_url, timeout=5.0)
                    ready = await _ready_messages(conn, self.queues)
                except (errors.MmateError, OSError) as exc:
                    log.warning("autoscale: cannot read the queue depth: %s", exc)
                    conn = None
                    continue
                now = time.monotonic()
                history.append((now, self.acked_total))
                while len(history) > 2 and now - history[1][0] >= RATE_WINDOW:
                    history.popleft()
                rate = (history[-1][1] - history[0][1]) / max(1e-3, now - history[0][0])
                running = self.running()
                want = scaler.decide(Sample(ready, rate, running), now)
                if want != running:
                    log.info("autoscale: %d -> %d worker(s): %s", running, want, scaler.reason)
                    self._scale_to(want)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _scale_to(self, want: int) -> None:
        self.wanted = want
        live = sorted(s for s in self._slots if (h := self.workers.get(s)) is None or h.stopping != "retire")
        while len(live) < want:
            slot = next(i for i in range(1, len(self._slots) + 2) if i not in self._slots)
            self._start_slot(slot)
            live.append(slot)
        while len(live) > want:
            self._retire_slot(live.pop())

    # ------------------------------------------------------------------ reload
    async def _watch_code(self) -> None:
        try:
            import watchfiles
        except ImportError:
            log.error("--reload needs watchfiles (pip install watchfiles): not watching the code")
            return
        dirs = [os.path.abspath(d) for d in (self.options.reload_dirs or (self.options.app_dir,))]
        log.info("watching %s for changes of *.py", ", ".join(dirs))
        async for changes in watchfiles.awatch(*dirs, watch_filter=watchfiles.PythonFilter(),
                                               stop_event=self._stop_event):
            names = sorted({os.path.relpath(path) for _, path in changes})
            log.info("changed: %s; restarting the workers", ", ".join(names[:5]) +
                     (f" and {len(names) - 5} more" if len(names) > 5 else ""))
            self.restart_all()

    # ------------------------------------------------------------------ health
    async def _start_health(self) -> None:
        from mmate_fast.observability._health import HealthChecker
        from mmate_fast.observability._http import ObservabilityServer

        self._checker = HealthChecker()
        self._checker.add("fleet", self._fleet_check)
        assert self.options.health_port is not None
        self._health = ObservabilityServer(self._checker, None, host=self.options.health_host,
                                           port=self.options.health_port)
        await self._health.start()
        log.info("fleet health on %s/health (workers on ports %d..)", self._health.url,
                 self.options.health_port + 1)

    async def _close_health(self) -> None:
        if self._health is not None:
            await self._health.close()
        if self._http is not None:
            await self._http.close()

    def _fleet_check(self) -> Any:
        from mmate_fast.observability._health import CheckResult, HealthStatus

        ready = sum(1 for h in self.workers.values() if h.ready and not h.stopping)
        status = (HealthStatus.HEALTHY if ready >= self.wanted else
                  HealthStatus.DEGRADED if ready else HealthStatus.UNHEALTHY)
        return CheckResult("fleet", status, f"{ready} of {self.wanted} worker(s) ready",
                           details={"ready": ready, "wanted": self.wanted, "acked": self.acked_total,
                                    "restarts": sum(self.restarts.values()), "supervisor_pid": os.getpid()})

    def _worker_check(self, slot: int) -> Any:
        async def check() -> Any:
            from mmate_fast.observability._health import CheckResult, HealthStatus

            name = f"worker-{slot}"
            h = self.workers.get(slot)
            details: dict[str, Any] = {"restarts": self.restarts.get(slot, 0)}
            if h is None or not h.ready:
                return CheckResult(name, HealthStatus.UNHEALTHY, "starting" if h else "restarting",
                                   details=details)
            details.update(pid=h.pid, uptime_seconds=round(time.monotonic() - h.started, 1), acked=h.acked,
                           in_flight=h.in_flight)
            url = h.info.get("health")
            if not url:
                return CheckResult(name, HealthStatus.HEALTHY, "ready", details=details)
            details["health"] = url
            status, text = await self._fetch_health(url + "/health")
            return CheckResult(name, status, text, details=details)

        return check

    async def _fetch_health(self, url: str) -> tuple[Any, str]:
        import aiohttp

        from mmate_fast.observability._health import HealthStatus

        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3.0))
        try:
            async with self._http.get(url) as resp:
                report = await resp.json(content_type=None)
            status = HealthStatus(report["status"])
            bad = [n for n, c in report.get("checks", {}).items() if c.get("status") != "healthy"]
            return status, f"{status.value}" + (f" ({', '.join(bad)})" if bad else "")
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            return HealthStatus.UNHEALTHY, f"its health endpoint did not answer: {exc or type(exc).__name__}"


async def _ready_messages(conn: Any, queues: list[str]) -> int:
    """Messages ready in ``queues`` (a queue that does not exist counts 0)."""
    total = 0
    ch = await conn.channel()
    try:
        for q in queues:
            try:
                ok = await ch.queue_declare(q, passive=True)
            except errors.ChannelClosedError:  # gone (404) or exclusive to a worker (405): not counted
                ch = await conn.channel()
                continue
            total += int(ok.message_count)
    finally:
        with contextlib.suppress(Exception):
            await ch.close()
    return total


def run_fleet(options: FleetOptions) -> int:
    """Run a fleet in this process until a signal; the exit code (0 drained, 1 gave up)."""
    return asyncio.run(Supervisor(options).run())


__all__ = ["FleetOptions", "RestartPolicy", "Supervisor", "WorkerHandle", "run_fleet"]
