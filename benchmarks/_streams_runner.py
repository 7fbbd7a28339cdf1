"""``run.py streams-publish`` / ``streams-consume``: Mmate envelopes through RabbitMQ Streams, each client
in a fresh process (_streams_clients.py), one after another per repetition, same run.

Rows: raw (a minimal stream-protocol client on pre-encoded frames, _streams_raw.py), mmate_fast (typed
events through the Client) and rbfly (bare rbfly, the same envelopes built per message as its users
would: explicit dicts + orjson). streams-publish: envelopes built, sent and confirmed per second into
a fresh stream per run; streams-consume: records read from the first offset of a stream prefilled
(untimed, by our publisher) with the same envelopes, decoded and handed to a handler. The table shows
medians, client CPU and broker CPU per message; ratios are medians of per-repetition ratios (each
repetition runs the clients in another order). The last
stdout line is one JSON object: ``rates``, ``vs_raw``, ``vs_rbfly`` (mmate_fast / that row),
``cpu_us_per_msg``, ``broker_us_per_msg``, ``extensions`` (``vs_aio_pika`` is null: aio-pika does not
speak the stream protocol).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from _common import extensions_line, extensions_summary, run_child_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORDER = ("raw", "mmate_fast", "rbfly")
DEFAULT_N = 100_000
#: rbfly runs at most this many messages per run (it is an order of magnitude slower)
RBFLY_MAX_N = 30_000
STREAM_ARGS = {"max-length-bytes": 4_000_000_000}


def _n(client: str, n: int) -> int:
    return min(n, RBFLY_MAX_N) if client == "rbfly" else n


async def _admin(action: str, stream: str, n: int = 0) -> None:
    from _mmate_event import new_event

    from mmate_fast.messaging.streams import open_publisher
    from mmate_fast.transports.streams import connect_stream

    conn = await connect_stream()
    try:
        if action == "create":
            await conn.create_stream(stream, STREAM_ARGS)
            if n:
                pub = await open_publisher(conn, stream)
                await pub.publish_many((new_event(i) for i in range(n)), persistent=False)
                await pub.close()
        else:
            await conn.delete_stream(stream)
    finally:
        await conn.close()


def _run_one(client: str, workload: str, stream: str, n: int, loop: str,
             timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env["BENCH_BODY"] = "mmate"
    argv = [sys.executable, os.path.join(HERE, "_streams_clients.py"), client, workload, "--stream", stream,
            "--messages", str(n), "--loop", loop]
    return run_child_process(argv, env, timeout, n)


def _med(vals: list[Any]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def main(workload: str, n: int | None, repeat: int, only: list[str], loop: str, timeout: float) -> int:
    kind = workload.split("-", 1)[1]  # publish | consume
    n = DEFAULT_N if n is None else n
    order = [c for c in ORDER if c in only]
    runs: dict[str, list[dict[str, Any] | None]] = {c: [] for c in order}
    errors: dict[str, list[str]] = {}
    for rep in range(1, repeat + 1):
        shared = f"bench-streams-{uuid.uuid4().hex[:8]}"
        if kind == "consume":
            asyncio.run(_admin("create", shared, n))
        try:
            # each repetition starts with another client, so a load swing does not always hit the same one
            shift = (rep - 1) % len(order)
            for c in order[shift:] + order[:shift]:
                stream = shared if kind == "consume" else f"bench-streams-{c}-{uuid.uuid4().hex[:8]}"
                if kind == "publish":
                    asyncio.run(_admin("create", stream))
                t0 = time.time()
                try:
                    res, err = _run_one(c, kind, stream, _n(c, n), loop, timeout)
                finally:
                    if kind == "publish":
                        asyncio.run(_admin("delete", stream))
                runs[c].append(res)
                if err:
                    errors.setdefault(c, []).append(f"rep {rep}: {err}")
                status = (f"{res['rate']:>10,.0f} msg/s" if res else "") + (f" ERROR {err}" if err else "")
                print(f"[rep {rep}/{repeat}] {workload} {c:<10} {status}  ({time.time() - t0:.1f}s)",
                      file=sys.stderr, flush=True)
        finally:
            if kind == "consume":
                asyncio.run(_admin("delete", shared))
    rates: dict[str, float | None] = {}
    cpu: dict[str, float | None] = {}
    broker: dict[str, float | None] = {}
    head = ["client", "N", "msg/s (median)", "min..max", "client µs/msg", "broker µs/msg", "ok"]
    rows = []
    for c in order:
        ok = [r for r in runs[c] if r]
        rates[c] = _med([r["rate"] for r in ok])
        cpu[c] = _med([r["cpu_s"] / r["count"] * 1e6 for r in ok])
        broker[c] = _med([r["broker_cpu_s"] / r["count"] * 1e6 for r in ok
                          if r.get("broker_cpu_s") is not None])
        rs = [r["rate"] for r in ok]
        spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
        rows.append([c, _fmt(_n(c, n), ",d"), _fmt(rates[c]), spread, _fmt(cpu[c], ",.1f"),
                     _fmt(broker[c], ",.1f"), f"{len(ok)}/{repeat}"])

    def ratio(a: str, b: str) -> float | None:
        if a not in runs or b not in runs:
            return None
        return _med([ra["rate"] / rb["rate"] for ra, rb in zip(runs[a], runs[b], strict=True) if ra and rb])

    vs_raw, vs_rbfly = ratio("mmate_fast", "raw"), ratio("mmate_fast", "rbfly")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    what = ("envelopes built, sent and confirmed" if kind == "publish"
            else "records read from the first offset, decoded and handled")
    print(f"workload {workload} ({what}; Mmate envelope of {_body_bytes(runs)} bytes; loop {loop}; "
          f"load average {os.getloadavg()[0]:.1f})")
    for r in [head, ["-" * w for w in widths], *rows]:
        cells = enumerate(zip(r, widths, strict=True))
        print("  ".join(v.ljust(w) if i < 1 else v.rjust(w) for i, (v, w) in cells))
    print(f"mmate_fast / rbfly = {_fmt(vs_rbfly, '.2f')} (target >= 3)    "
          f"mmate_fast / raw = {_fmt(vs_raw, '.3f')} (target >= 0.5)")
    ext = extensions_summary(runs)
    print(extensions_line(ext))
    for c, errs in errors.items():
        for e in errs:
            print(f"error {c}: {e}")
    obj: dict[str, Any] = {"workload": workload, "messages": n, "rates": rates, "vs_raw": vs_raw,
                           "vs_rbfly": vs_rbfly, "vs_aio_pika": None, "cpu_us_per_msg": cpu,
                           "broker_us_per_msg": broker, "extensions": ext, "load_average": os.getloadavg()[0]}
    if errors:
        obj["errors"] = errors
    print(json.dumps(obj), flush=True)
    return 1 if errors else 0


def _body_bytes(runs: dict[str, list[dict[str, Any] | None]]) -> str:
    for results in runs.values():
        for r in results:
            if r and r.get("body_bytes"):
                return str(r["body_bytes"])
    return "?"
