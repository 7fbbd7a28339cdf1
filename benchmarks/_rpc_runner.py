"""``run.py rpc``: round trips/s of raw, mmate_fast and aio-pika at each concurrency, each client
(requester + its responder) in fresh processes, one after another per repetition.

Ratios are medians of per-repetition ratios (same repetition and concurrency). The JSON (last
stdout line) holds ``rates``/``latency_ms``/``cpu_us_per_rt`` keyed by ``c{C}`` then client, and
``vs_aio_pika``/``vs_raw`` keyed by ``c{C}``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLIENTS = {"raw": "_rpc_raw.py", "mmate_fast": "_rpc_mmate.py", "aio_pika": "_rpc_aiopika.py",
           "mmate_fast_transient": "_rpc_mmate.py", "mmate_fast_noconfirm": "_rpc_mmate.py"}
#: opt-in rows (``--only``) showing what the defaults cost: requests published with
#: persistent=False, or a requester Client with publisher_confirms=False
VARIANT_ENV = {"mmate_fast_transient": "BENCH_RPC_TRANSIENT", "mmate_fast_noconfirm": "BENCH_RPC_NOCONFIRM"}
ORDER = ("raw", "mmate_fast", "mmate_fast_transient", "mmate_fast_noconfirm", "aio_pika")
DEFAULT_ONLY = ("raw", "mmate_fast", "aio_pika")
DEFAULT_N = 10_000
#: aio-pika runs at most this many round trips per run (~0.6k/s at concurrency 1)
AIO_PIKA_MAX_N = 5_000


def _n(client: str, n: int) -> int:
    return min(n, AIO_PIKA_MAX_N) if client == "aio_pika" else n


def run_one(client: str, n: int, conc: int, loop: str,
            timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """One requester process (it starts its responder); (result, None) or (None, error)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env.pop("BENCH_BODY", None)
    for var in VARIANT_ENV.values():
        env.pop(var, None)
    if client in VARIANT_ENV:
        env[VARIANT_ENV[client]] = "1"
    argv = [sys.executable, os.path.join(HERE, CLIENTS[client]), "requester", "--messages", str(n),
            "--concurrency", str(conc), "--loop", loop]
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()  # our own child only
        out, err = p.communicate()
        return None, f"timeout after {timeout:.0f}s; stderr: {err.strip()[-400:]}"
    lines = out.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = err.strip().splitlines()[-1:] or [f"rc={p.returncode}"]
        return None, f"rc={p.returncode}: {tail[0][:300]}"
    try:
        res = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None, f"bad output: {lines[-1][:200]!r}"
    if not res.get("rate") or res.get("capped"):
        return None, f"incomplete run: count={res.get('count')} of {n}"
    return res, None


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
                status = f"{res['rate']:>8,.0f} rt/s" if res else f"ERROR {err}"
                print(f"[rep {rep}/{repeat}] rpc c{k:<3} {c:<20} {status}  ({time.time() - t0:.1f}s)",
                      file=sys.stderr, flush=True)
    rates: dict[str, dict[str, float | None]] = {}
    lat: dict[str, dict[str, dict[str, float | None]]] = {}
    cpu: dict[str, dict[str, dict[str, float | None]]] = {}
    vs_aio: dict[str, float | None] = {}
    vs_raw: dict[str, float | None] = {}
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
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f"workload rpc (request/reply round trips, responder in a second process, loop {loop})")
    for r in [head, ["-" * w for w in widths], *rows]:
        cells = zip(r, widths, strict=True)
        print("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(cells)))
    for ck in runs:
        print(f"{ck}: mmate_fast / aio_pika = {_fmt(vs_aio[ck], '.2f')}    "
              f"mmate_fast / raw = {_fmt(vs_raw[ck], '.3f')}")
    for c, errs in errors.items():
        for e in errs:
            print(f"error {c}: {e}")
    obj: dict[str, Any] = {"workload": "rpc", "messages": n, "rates": rates, "vs_aio_pika": vs_aio,
                           "vs_raw": vs_raw, "latency_ms": lat, "cpu_us_per_rt": cpu}
    if errors:
        obj["errors"] = errors
    print(json.dumps(obj), flush=True)
    return 1 if errors else 0
