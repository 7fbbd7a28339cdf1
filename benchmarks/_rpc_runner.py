"""``run.py rpc``: round trips/s of raw, mmate_fast and aio-pika at each concurrency, each client
(requester + its responder) in fresh processes, one after another per repetition.

Rows: ``raw`` is a zero-cost client doing the exchange ours does (requests through ``mmate.queries``
into an acked service queue, replies to a reply queue; minimal properties: the target's reference),
``raw_direct`` the broker's absolute ceiling (default exchange, direct reply-to, no acks),
``raw_gowire`` the ``raw`` exchange carrying our Client's exact properties (Go's header table): the
ceiling of the Go wire; ``raw_direct`` and ``raw_pamqp`` (the raw row of sessions 1-4: pamqp per
message, direct reply-to, to compare with figures measured against it) run only when named in
``--only``; see _rpc_raw.py.
``mmate_fast`` is client.request with the library's defaults (requests and replies
persistent, Go's delivery mode 2: written to disk by the broker); ``mmate_fast_transient`` the same
with ``persistent=False`` (request and reply transient, like the raw and aio-pika rows: the
like-for-like row); ``mmate_fast_lean`` the transient row with ``Client(wire_profile="lean")`` on
both sides (no AMQP header table: what the broker saves on the Mmate headers). Each row must measure
something the default row does not (the row
``mmate_fast_noconfirm``, a requester Client without publisher confirms, was removed: the bridge
publishes requests unconfirmed on its own channel whatever the Client's confirm setting).

Ratios are medians of per-repetition ratios (same repetition and concurrency). The JSON (last
stdout line) holds ``rates``/``latency_ms``/``cpu_us_per_rt`` keyed by ``c{C}`` then client,
``vs_aio_pika``/``vs_raw``/``vs_mmate_fast`` keyed by ``c{C}`` (``rows_vs_raw``: each row but aio_pika /
raw; ``vs_raw_gowire``: each of our rows / raw_gowire, the client's share on the same bytes), and
``extensions`` (whether our rows ran the compiled extensions). A run that leaves requests in its
queue fails (exit 1).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

from _common import extensions_line, extensions_summary, run_child_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIENTS = {"raw": "_rpc_raw.py", "raw_direct": "_rpc_raw.py", "raw_gowire": "_rpc_raw.py",
           "raw_gowire_split": "_rpc_raw.py",
           "raw_pamqp": "_rpc_raw_pamqp.py",
           "mmate_fast": "_rpc_mmate.py", "mmate_fast_transient": "_rpc_mmate.py",
           "mmate_fast_lean": "_rpc_mmate.py", "aio_pika": "_rpc_aiopika.py"}
#: rows of _rpc_mmate.py that differ from the default row: client -> environment variable it sets
VARIANT_ENV = {"mmate_fast_transient": "BENCH_RPC_TRANSIENT", "mmate_fast_lean": "BENCH_RPC_LEAN"}
#: rows of _rpc_raw.py: client -> its BENCH_RPC_RAW shape (see _rpc_raw.py)
RAW_SHAPE = {"raw": "mmate", "raw_direct": "direct", "raw_gowire": "gowire",
             "raw_gowire_split": "gowire"}
#: raw rows whose responder publishes its replies on a channel of their own (channel 2) instead of
#: the one it consumes on (our Client's reply publisher's layout): what that layout costs the broker
RAW_REPLY_CHANNEL = {"raw_gowire_split": "2"}
ORDER = ("raw", "raw_direct", "raw_gowire", "raw_gowire_split", "raw_pamqp", "mmate_fast",
         "mmate_fast_transient", "mmate_fast_lean", "aio_pika")
DEFAULT_ONLY = ("raw", "raw_gowire", "mmate_fast", "mmate_fast_transient", "mmate_fast_lean", "aio_pika")
DEFAULT_N = 10_000
#: aio-pika runs at most this many round trips per run (~0.6k/s at concurrency 1)
AIO_PIKA_MAX_N = 5_000


def _n(client: str, n: int) -> int:
    return min(n, AIO_PIKA_MAX_N) if client == "aio_pika" else n


def run_one(client: str, n: int, conc: int, loop: str,
            timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """One requester process (it starts its responder); see _common.run_child_process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env.pop("BENCH_BODY", None)
    for var in VARIANT_ENV.values():
        env.pop(var, None)
    if client in VARIANT_ENV:
        env[VARIANT_ENV[client]] = "1"
    env.pop("BENCH_RPC_RAW", None)
    env.pop("BENCH_RPC_RAW_REPLY_CHANNEL", None)
    if client in RAW_SHAPE:
        env["BENCH_RPC_RAW"] = RAW_SHAPE[client]
    if client in RAW_REPLY_CHANNEL:
        env["BENCH_RPC_RAW_REPLY_CHANNEL"] = RAW_REPLY_CHANNEL[client]
    argv = [sys.executable, os.path.join(HERE, CLIENTS[client]), "requester", "--messages", str(n),
            "--concurrency", str(conc), "--loop", loop]
    return run_child_process(argv, env, timeout, n)


def _med(vals: list[Any]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def main(n: int | None, concs: list[int], repeat: int, only: list[str], loop: str, timeout: float) -> int:
    n = DEFAULT_N if n is None else n
    order = [c for c in ORDER if c in only]
    runs: dict[str, dict[str, list[dict[str, Any] | None]]] = {f"c{k}": {c: [] for c in order} for k in concs}
    errors: dict[str, list[str]] = {}
    for rep in range(1, repeat + 1):
        for k in concs:
            for c in order:
                t0 = time.time()
                res, err = run_one(c, _n(c, n), k, loop, timeout)
                runs[f"c{k}"][c].append(res)
                if err:
                    errors.setdefault(c, []).append(f"rep {rep} c{k}: {err}")
                status = (f"{res['rate']:>8,.0f} rt/s" if res else "") + (f" ERROR {err}" if err else "")
                print(f"[rep {rep}/{repeat}] rpc c{k:<3} {c:<20} {status}  ({time.time() - t0:.1f}s)",
                      file=sys.stderr, flush=True)
    rates: dict[str, dict[str, float | None]] = {}
    lat: dict[str, dict[str, dict[str, float | None]]] = {}
    cpu: dict[str, dict[str, dict[str, float | None]]] = {}
    vs_aio: dict[str, float | None] = {}
    vs_raw: dict[str, float | None] = {}
    vs_ours: dict[str, dict[str, float | None]] = {}
    rows_vs_raw: dict[str, dict[str, float | None]] = {}  # every row / raw
    vs_gowire: dict[str, dict[str, float | None]] = {}  # our rows / raw_gowire (same bytes on the wire)
    head = ["conc", "client", "N", "rt/s (median)", "min..max", "requester µs/rt", "responder µs/rt",
            "broker µs/rt", "p50 ms", "p99 ms", "ok"]
    rows = []
    for ck, per in runs.items():
        rates[ck], lat[ck], cpu[ck] = {}, {}, {}
        for c in order:
            ok = [r for r in per[c] if r]
            rate = rates[ck][c] = _med([r["rate"] for r in ok])
            p50, p99 = _med([r["p50_ms"] for r in ok]), _med([r["p99_ms"] for r in ok])
            lat[ck][c] = {"p50": p50, "p99": p99}
            us = {k: _med([r[f] / r["count"] * 1e6 for r in ok if r.get(f) is not None])
                  for k, f in (("requester", "cpu_s"), ("responder", "responder_cpu_s"),
                               ("broker", "broker_cpu_s"))}
            cpu[ck][c] = us
            rs = [r["rate"] for r in ok]
            spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
            rows.append([ck, c, _fmt(_n(c, n), ",d"), _fmt(rate), spread, _fmt(us["requester"], ",.1f"),
                         _fmt(us["responder"], ",.1f"),
                         _fmt(us["broker"], ",.1f"), _fmt(p50, ",.2f"), _fmt(p99, ",.2f"),
                         f"{len(ok)}/{repeat}"])

        def ratio(a: str, b: str, per: dict[str, list[dict[str, Any] | None]] = per) -> float | None:
            if a not in per or b not in per:
                return None
            return _med([ra["rate"] / rb["rate"] for ra, rb in zip(per[a], per[b], strict=True) if ra and rb])

        vs_aio[ck], vs_raw[ck] = ratio("mmate_fast", "aio_pika"), ratio("mmate_fast", "raw")
        vs_ours[ck] = {c: ratio(c, "mmate_fast") for c in order if c in VARIANT_ENV}
        rows_vs_raw[ck] = {c: ratio(c, "raw") for c in order if c != "raw" and c != "aio_pika"}
        vs_gowire[ck] = {c: ratio(c, "raw_gowire") for c in order if c.startswith("mmate_fast")}
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f"workload rpc (request/reply round trips, responder in a second process, loop {loop})")
    for r in [head, ["-" * w for w in widths], *rows]:
        cells = zip(r, widths, strict=True)
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(cells)))
    for ck in runs:
        print(f"{ck}: mmate_fast / aio_pika = {_fmt(vs_aio[ck], '.2f')}    "
              f"mmate_fast / raw = {_fmt(vs_raw[ck], '.3f')}"
              + "".join(f"    {c} / mmate_fast = {_fmt(v, '.3f')}" for c, v in vs_ours[ck].items()))
        print(f"{ck} vs raw: " + ", ".join(f"{c} {_fmt(v, '.3f')}" for c, v in rows_vs_raw[ck].items()))
        if "raw_gowire" in order:
            print(f"{ck} vs raw_gowire (same bytes): "
                  + ", ".join(f"{c} {_fmt(v, '.3f')}" for c, v in vs_gowire[ck].items()))
    ext = extensions_summary({c: [r for per in runs.values() for r in per[c]] for c in order})
    print(extensions_line(ext))
    for c, errs in errors.items():
        for e in errs:
            print(f"error {c}: {e}")
    obj: dict[str, Any] = {"workload": "rpc", "messages": n, "rates": rates, "vs_aio_pika": vs_aio,
                           "vs_raw": vs_raw, "vs_mmate_fast": vs_ours, "rows_vs_raw": rows_vs_raw,
                           "vs_raw_gowire": vs_gowire,
                           "latency_ms": lat,
                           "cpu_us_per_rt": cpu, "extensions": ext}
    if errors:
        obj["errors"] = errors
    print(json.dumps(obj), flush=True)
    return 1 if errors else 0
