"""Shared pieces of the rpc workload (request/reply round trips, responder in a second process).

Each client module (_rpc_raw.py, _rpc_aiopika.py, _rpc_mmate.py) is run as

    python _rpc_X.py requester --messages N --concurrency C [--loop L]   # prints one JSON line
    python _rpc_X.py responder --queue Q [--loop L]                      # started by the requester

The requester declares what it needs, starts its responder (READY on stdout), runs a short warm-up
and then C concurrent loops, each strictly request -> reply -> next, until N round trips are done
(or the wall-clock cap). The responder serves until its stdin closes and then prints its CPU time,
so the result holds requester and responder CPU µs per round trip. Latency is per round trip
(publish to reply in hand). ``BENCH_PROFILE=DIR`` writes cProfile stats of both processes to
``DIR/{client}-c{C}-{role}.prof`` (the requester's timed section only); with ``BENCH_PROFILE_CPU=1``
the profiles count CPU time (``time.process_time``) instead of wall time, so time the process spent
preempted on a busy machine does not land on whatever function was running.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from _common import RawAMQP, broker_cpu_s, extensions_in_use, latency_fields, our_client

#: round trips before the timed section (reply queues declared, consumers and caches warm)
WARMUP = 200
#: responder prefetch (the anchors' RPC servers use 256)
SERVER_PREFETCH = 256


def _profiler() -> cProfile.Profile:
    if os.environ.get("BENCH_PROFILE_CPU"):
        return cProfile.Profile(time.process_time)
    return cProfile.Profile()


class Timed:
    """Wall, CPU and broker CPU over the timed section, plus the per-round-trip latencies."""

    def __init__(self, profile_path: str | None = None) -> None:
        self.lat: list[float] = []
        self.count = 0
        self._prof = _profiler() if profile_path else None
        self._path = profile_path

    def start(self) -> None:
        self.b0 = broker_cpu_s()
        self.c0 = time.process_time()
        self.t0 = time.perf_counter()
        if self._prof is not None:
            self._prof.enable()

    def stop(self) -> None:
        if self._prof is not None:
            self._prof.disable()
            self._prof.dump_stats(str(self._path))
        self.t1 = time.perf_counter()
        self.c1 = time.process_time()
        self.b1 = broker_cpu_s()

    def fields(self) -> dict[str, Any]:
        d: dict[str, Any] = {"count": self.count, "elapsed_s": self.t1 - self.t0, "cpu_s": self.c1 - self.c0,
                             **latency_fields(self.lat)}
        if self.b0 is not None and self.b1 is not None:
            d["broker_cpu_s"] = self.b1 - self.b0
        return d


def profile_path(client: str, conc: int, role: str) -> str | None:
    d = os.environ.get("BENCH_PROFILE")
    if not d:
        return None
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{client}-c{conc}-{role}.prof")


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the body into ``path`` (nothing when None)."""
    if not path:
        yield
        return
    prof = _profiler()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(path)


def spawn_responder(script: str, queue: str, loop: str, conc: int, *extra: str) -> subprocess.Popen[str]:
    """Start the responder half of ``script`` and wait for its READY line."""
    p = subprocess.Popen([sys.executable, script, "responder", "--queue", queue, "--loop", loop,
                          "--concurrency", str(conc), *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "READY":
        stop_responder(p)
        raise RuntimeError(f"rpc responder did not start: {line!r}")
    return p


def stop_responder(p: subprocess.Popen[str]) -> dict[str, Any]:
    """Close the responder's stdin (its signal to stop) and return its JSON line ({} if none)."""
    if p.stdin is not None and not p.stdin.closed:
        p.stdin.close()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()  # our own child only
        p.wait()
        return {}
    out = p.stdout.read() if p.stdout is not None else ""
    lines = (out or "").strip().splitlines()
    try:
        return dict(json.loads(lines[-1])) if lines else {}
    except json.JSONDecodeError:
        return {}


async def stdin_closed() -> None:
    """Resolve when the parent closes our stdin (a thread blocks on it, the loop stays free)."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def respond_until_stdin_closes(serve: Callable[[], Any], loop_name: str) -> None:
    """Responder main: run ``serve()`` (a coroutine factory that prints READY and returns when the
    stdin closes), then print {"cpu_s": ...} of the serving time."""
    from _common import run_loop

    c0 = time.process_time()
    run_loop(serve, loop_name)
    res = {"cpu_s": time.process_time() - c0, "extensions": extensions_in_use()}
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


def respond_blocking(client: str, conc: int, serve: Callable[[], Any]) -> None:
    """Responder main of a blocking-socket (raw) client: run ``serve()`` under the profiler when
    asked, then print {"cpu_s": ...} of the serving time."""
    c0 = time.process_time()
    with profiled(profile_path(client, conc, "responder")):
        serve()
    sys.stdout.write(json.dumps({"cpu_s": time.process_time() - c0}) + "\n")
    sys.stdout.flush()


def merge(req: dict[str, Any], srv: dict[str, Any], n: int) -> dict[str, Any]:
    """The requester's figures + the responder's CPU; rate = round trips / elapsed."""
    res = dict(req)
    if srv.get("cpu_s") is not None:
        res["responder_cpu_s"] = srv["cpu_s"]
    if srv.get("extensions") is not None:
        res["responder_extensions"] = srv["extensions"]
    res["capped"] = res["count"] < n
    if res.get("elapsed_s"):
        res["rate"] = res["count"] / res["elapsed_s"]
    return res


def finish(req: dict[str, Any], srv: subprocess.Popen[str], admin: RawAMQP, queue: str,
           n: int) -> dict[str, Any]:
    """Stop the responder, merge its figures, and count the requests left in ``queue`` (the run
    fails when any is: every request must have been answered and settled)."""
    res = merge(req, stop_responder(srv), n)
    res["left_in_queue"] = admin.count(queue)
    return res


def rpc_cli(client: str, requester: Callable[[argparse.Namespace], dict[str, Any]],
            responder: Callable[[argparse.Namespace], None]) -> None:
    """CLI of an rpc client module; the requester prints one JSON line (its last line)."""
    ap = argparse.ArgumentParser(description=f"{client} rpc benchmark child")
    ap.add_argument("role", choices=["requester", "responder"])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--queue", default=None)
    a = ap.parse_args()
    if a.role == "responder":
        responder(a)
        return
    res = requester(a)
    res.update(client=client, workload="rpc", n=a.messages, concurrency=a.concurrency)
    if our_client(client):
        res["extensions"] = extensions_in_use()
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


async def run_workers(conc: int, n: int, one: Callable[[int], Any], timed: Timed, dl: float) -> None:
    """Warm up, then ``conc`` loops each awaiting ``one(i)`` (one round trip) until n are done."""
    perf = time.perf_counter
    issued = [0]
    lat = timed.lat

    async def warm() -> None:
        while issued[0] < WARMUP:
            issued[0] += 1
            await one(issued[0])

    await asyncio.gather(*(warm() for _ in range(min(conc, WARMUP))))
    issued[0] = 0

    async def worker() -> None:
        while issued[0] < n and perf() < dl:
            i = issued[0] = issued[0] + 1
            t = perf()
            await one(i)
            lat.append(perf() - t)

    timed.start()
    await asyncio.gather(*(worker() for _ in range(conc)))
    timed.stop()
    timed.count = len(lat)
