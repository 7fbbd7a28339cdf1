"""Memory benchmark: a consumer's resident memory with a large backlog stays bounded by prefetch.

    python benchmarks/memory_backlog.py [--messages 1000000] [--consume N] [--loop uvloop|asyncio]
                                        [--only mmate_fast,aio_pika] [--interval 0.5]

For each client in turn: declare a fresh queue (unique name), pre-fill it with ``--messages``
300-byte messages using mmate_fast.amqp (publish_nowait, drain every 1000, no confirms), then start
the client's consumer in a fresh process (prefetch 1000, one manual ack per delivery) and sample the
child's RSS with psutil every ``--interval`` s from this process while it consumes ``--consume``
messages (default: all). Only one backlog lives in the broker at a time (~300 MB per million).
The child parks after the last message so the "end" sample is taken with its connection still open.

Progress goes to stderr; stdout holds a small table and, as its last line, one JSON object
``{"workload": "memory-backlog", "messages": N, "rss_mb": {client: {"start", "peak", "end"}}, "rates": ...}``.
RSS figures are MiB (2**20 bytes). Queues are deleted at the end, also on error.

Internal: ``--child CLIENT --queue Q`` runs one consumer (prints READY, waits for GO on stdin,
prints ``DONE <json>`` after --consume messages, waits for EXIT on stdin).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from anywhere: import the checkout's mmate_fast
    sys.path.append(ROOT)

URL = "amqp://guest:guest@127.0.0.1:5672/"  # loopback only
BODY_SIZE = 300
BODY = b"x" * BODY_SIZE
PREFETCH = 1000
BATCH = 1000
CLIENTS = ("mmate_fast", "aio_pika")
MIB = float(1 << 20)
#: keep this much disk free beyond the backlog (the broker may page messages to disk)
DISK_MARGIN = 2 << 30


def _run(factory: Callable[[], Coroutine[Any, Any, Any]], loop_name: str) -> Any:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(factory())
    return asyncio.run(factory())


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- broker admin
async def _prefill(q: str, n: int) -> dict[str, Any]:
    """Declare q and fill it with n copies of BODY; returns the rate at which the broker took them."""
    from mmate_fast.amqp import connect
    from mmate_fast.errors import OperationTimeout

    conn = await connect(URL, timeout=10)
    try:
        ch = await conn.channel()
        await ch.queue_declare(q)
        pub = ch.publish_nowait
        t0 = time.perf_counter()
        done = 0
        while done < n:
            k = min(BATCH, n - done)
            for _ in range(k):
                pub(BODY, "", q, None)
            done += k
            # publish_nowait only schedules the write (call_soon) and drain() returns at once while
            # nothing was written yet, so yield first: the flush runs and can pause us at 4 MiB.
            await asyncio.sleep(0)
            await ch.drain()
        t_sent = time.perf_counter()
        _log(f"  {n:,} written in {t_sent - t0:.1f} s; waiting for the queue to hold them ...")
        # poll on another channel: this one's RPCs queue up behind the publishes in the broker
        poll = await conn.channel()
        depth, limit = 0, t_sent + 600
        while depth < n and time.perf_counter() < limit:
            with contextlib.suppress(OperationTimeout):
                depth = (await poll.queue_declare(q, passive=True, timeout=120)).message_count
            if depth < n:
                await asyncio.sleep(0.05)
        t1 = time.perf_counter()
    finally:
        await conn.close()
    if depth < n:
        raise RuntimeError(f"prefill of {q}: only {depth} of {n} messages arrived")
    return {"prefill_msg_s": n / (t1 - t0), "prefill_s": t1 - t0, "depth": depth}


async def _delete_queues(names: list[str]) -> None:
    from mmate_fast.amqp import connect

    conn = await connect(URL, timeout=10)
    try:
        ch = await conn.channel()
        for q in names:
            try:
                await ch.queue_delete(q)
            except Exception as e:  # keep deleting the others; the channel may need reopening
                _log(f"delete {q}: {e!r}")
                with contextlib.suppress(Exception):
                    ch = await conn.channel()
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------- children
async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def _child_mmate(q: str, n: int, cap: float) -> dict[str, Any]:
    from mmate_fast.amqp import connect

    conn = await connect(URL, timeout=10)
    ch = await conn.channel()
    await ch.basic_qos(prefetch_count=PREFETCH)
    ack = ch.basic_ack
    done = asyncio.Event()
    cnt = [0]

    def on_msg(d: Any) -> None:
        c = cnt[0]
        if c >= n:  # past the target: leave it unacked (the broker stops at prefetch)
            return
        ack(d.delivery_tag)
        cnt[0] = c + 1
        if c + 1 >= n:
            done.set()

    print("READY", flush=True)
    await _stdin_line()
    c0, t0 = time.process_time(), time.perf_counter()
    await ch.basic_consume(q, on_msg)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), cap)
    res = {"count": cnt[0], "elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    print("DONE " + json.dumps(res), flush=True)
    await _stdin_line()
    await conn.close()
    return res


async def _child_aio_pika(q: str, n: int, cap: float) -> dict[str, Any]:
    import aio_pika

    conn = await aio_pika.connect(URL)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=PREFETCH)
    queue_ = await ch.get_queue(q, ensure=False)
    done = asyncio.Event()
    cnt = [0]

    async def on_msg(m: Any) -> None:
        if cnt[0] >= n:
            return
        cnt[0] += 1
        await m.ack()
        if cnt[0] >= n:
            done.set()

    print("READY", flush=True)
    await _stdin_line()
    c0, t0 = time.process_time(), time.perf_counter()
    await queue_.consume(on_msg)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), cap)
    res = {"count": cnt[0], "elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    print("DONE " + json.dumps(res), flush=True)
    await _stdin_line()
    await conn.close()
    return res


def child_main(a: argparse.Namespace) -> None:
    fn = _child_mmate if a.child == "mmate_fast" else _child_aio_pika
    _run(lambda: fn(a.queue, a.consume, a.time_cap), a.loop)


# ---------------------------------------------------------------------------------- parent
def _reader(stream: Any, out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)


def measure(client: str, q: str, n: int, a: argparse.Namespace) -> dict[str, Any]:
    """Run one consumer child on q and sample its RSS; returns start/peak/end (MiB) and its result."""
    import psutil

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    argv = [sys.executable, os.path.abspath(__file__), "--child", client, "--queue", q,
            "--consume", str(n), "--loop", a.loop, "--time-cap", str(a.time_cap)]
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdin is not None and p.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(p.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=60)
        if first != "READY":
            raise RuntimeError(f"{client} child did not start: {first!r}")
        proc = psutil.Process(p.pid)

        def rss() -> float:
            return float(proc.memory_info().rss) / MIB

        samples = [rss()]
        start = samples[0]
        p.stdin.write("GO\n")
        p.stdin.flush()
        limit = time.monotonic() + a.time_cap + 60
        nxt = time.monotonic() + a.interval
        result: dict[str, Any] | None = None
        while result is None:
            now = time.monotonic()
            if now > limit:
                raise RuntimeError(f"{client} child did not finish within {a.time_cap:.0f}s")
            try:
                line = lines.get(timeout=max(0.0, nxt - now))
            except queue.Empty:
                samples.append(rss())
                nxt += a.interval
                continue
            if line is None:
                raise RuntimeError(f"{client} child exited early (rc={p.wait()})")
            if line.startswith("DONE "):
                result = json.loads(line[5:])
        end = rss()
        samples.append(end)
        p.stdin.write("EXIT\n")
        p.stdin.flush()
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()  # our own child only
            p.wait()
    count = int(result["count"])
    return {"start": start, "peak": max(samples), "end": end, "samples": len(samples), "count": count,
            "consume_msg_s": count / result["elapsed_s"] if result["elapsed_s"] else None,
            "elapsed_s": result["elapsed_s"], "cpu_s": result["cpu_s"], "complete": count >= n}


def _check_disk(n: int) -> None:
    need = n * BODY_SIZE * 2 + DISK_MARGIN
    free = shutil.disk_usage("/").free
    if free < need:
        raise SystemExit(f"only {free / 2**30:.1f} GiB free on /; need ~{need / 2**30:.1f} GiB for a "
                         f"{n}-message backlog. Lower --messages or free some space.")


def main_parent(a: argparse.Namespace) -> None:
    n = a.messages
    consume_n = n if a.consume is None else min(a.consume, n)
    order = [c.strip() for c in a.only.split(",") if c.strip()]
    for c in order:
        if c not in CLIENTS:
            raise SystemExit(f"unknown client {c!r}; choose from {', '.join(CLIENTS)}")
    _check_disk(n)
    created: list[str] = []
    rss: dict[str, dict[str, float]] = {}
    rates: dict[str, dict[str, Any]] = {}
    info: dict[str, dict[str, Any]] = {}
    try:
        for client in order:
            q = f"bench.memory.{client}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            created.append(q)
            _log(f"[{client}] pre-filling {q} with {n:,} x {BODY_SIZE} B ...")
            fill = _run(functools.partial(_prefill, q, n), a.loop)
            _log(f"[{client}] prefill {fill['prefill_msg_s']:,.0f} msg/s ({fill['prefill_s']:.1f} s); "
                 f"consuming {consume_n:,} ...")
            m = measure(client, q, consume_n, a)
            _log(f"[{client}] {m['count']:,} consumed at {m['consume_msg_s']:,.0f} msg/s; RSS MiB "
                 f"start {m['start']:.1f} peak {m['peak']:.1f} end {m['end']:.1f} ({m['samples']} samples)")
            rss[client] = {k: round(m[k], 2) for k in ("start", "peak", "end")}
            rates[client] = {"consume_msg_s": round(m["consume_msg_s"] or 0.0),
                             "prefill_msg_s": round(fill["prefill_msg_s"])}
            info[client] = m
            _run(functools.partial(_delete_queues, [q]), a.loop)
            created.remove(q)  # free the broker before the next backlog
    finally:
        if created:
            _run(lambda: _delete_queues(created), a.loop)
    print(f"memory-backlog: {n:,} x {BODY_SIZE} B backlog, prefetch {PREFETCH}, consume {consume_n:,} "
          f"({a.loop}); RSS in MiB, sampled every {a.interval} s")
    print(f"{'client':<12}{'start':>9}{'peak':>9}{'end':>9}{'growth':>9}{'consumed':>11}{'msg/s':>10}"
          f"{'cpu s':>8}")
    for c in order:
        m = info[c]
        print(f"{c:<12}{m['start']:>9.1f}{m['peak']:>9.1f}{m['end']:>9.1f}{m['peak'] - m['start']:>9.1f}"
              f"{m['count']:>11,}{m['consume_msg_s'] or 0:>10,.0f}{m['cpu_s']:>8.1f}")
    incomplete = [c for c in order if not info[c]["complete"]]
    print(json.dumps({"workload": "memory-backlog", "messages": n, "consume": consume_n, "prefetch": PREFETCH,
                      "rss_mb": rss, "rates": rates, "incomplete": incomplete}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--messages", type=int, default=1_000_000, help="backlog size per client")
    ap.add_argument("--consume", type=int, default=None, help="messages to consume per client (default all)")
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--only", default=",".join(CLIENTS), help="comma-separated clients, run in this order")
    ap.add_argument("--interval", type=float, default=0.5, help="RSS sampling interval (s)")
    ap.add_argument("--time-cap", type=float, default=1800.0, help="max seconds a consumer may take")
    ap.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--queue", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.messages < 1 or (a.consume is not None and a.consume < 1):
        raise SystemExit("--messages and --consume must be >= 1")
    if a.child:
        child_main(a)
    else:
        main_parent(a)


if __name__ == "__main__":
    main()
