"""``run.py fleet --workers 1,2,4``: consumed messages/s of a worker fleet as workers are added.

For each handler (``light``: nothing but decoding; ``cpu1ms``: 1 ms of CPU per message) and each
worker count W, three fleets run one after another on the same queue shape (see _fleet_bench.py):
``raw`` (W zero-cost consumers: the broker's ceiling), ``mmate_fast`` (``mmate run --workers W``:
our supervisor, W spawned workers, each a Client with a plain handler) and ``aio_pika`` (W processes
with an aio-pika consumer written by hand, decoding the same envelope). Rates are medians over
``--repeat``; ratios are medians of per-repetition ratios (same repetition). ``scaling`` is rate(W) /
rate(first W) per row. The JSON (last stdout line) holds ``rates``, ``vs_raw``, ``vs_aio_pika``,
``scaling``, ``cpu_us_per_msg`` (client: all workers), ``broker_us_per_msg``, ``extensions``.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

from _common import ROOT, extensions_line, run_child_process

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ("raw", "mmate_fast", "aio_pika")
HANDLERS = ("light", "cpu1ms")
#: messages per run: enough for a few seconds at the rates seen on 2 cores
DEFAULT_N = {"light": 30_000, "cpu1ms": 2_000}
#: aio-pika consumes ~1-2k msg/s here: it gets fewer messages on the light handler
AIO_PIKA_MAX_N = 10_000


def n_for(row: str, handler: str, n: int | None) -> int:
    base = DEFAULT_N[handler] if n is None else n
    return min(base, AIO_PIKA_MAX_N) if row == "aio_pika" and handler == "light" else base


def run_one(row: str, handler: str, workers: int, n: int,
            timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env["BENCH_BODY"] = "mmate"
    argv = [sys.executable, os.path.join(HERE, "_fleet_bench.py"), row, handler, str(workers), str(n)]
    res, err = run_child_process(argv, env, timeout, n)
    if res is not None and err is None and res.get("exit_codes"):
        err = f"a worker or the supervisor did not exit cleanly on SIGTERM: exit codes {res['exit_codes']}"
    return res, err


def _med(vals: list[Any]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


Key = tuple[str, int, str]  # handler, workers, row


def summarize(workers: list[int], handlers: list[str], order: list[str],
              runs: dict[Key, list[dict[str, Any] | None]], errors: dict[str, list[str]]) -> dict[str, Any]:
    reps = max((len(v) for v in runs.values()), default=0)

    def per_msg(r: dict[str, Any], key: str) -> float | None:
        v = r.get(key)
        return None if v is None or not r.get("count") else v / r["count"] * 1e6

    def ratio(a: Key, b: Key) -> float | None:
        pairs = zip(runs.get(a, []), runs.get(b, []), strict=False)
        return _med([ra["rate"] / rb["rate"] for ra, rb in pairs if ra and rb])

    rates: dict[str, dict[str, dict[str, float | None]]] = {}
    cpu: dict[str, dict[str, dict[str, float | None]]] = {}
    brk: dict[str, dict[str, dict[str, float | None]]] = {}
    vs_raw: dict[str, dict[str, float | None]] = {}
    vs_aio: dict[str, dict[str, float | None]] = {}
    scaling: dict[str, dict[str, dict[str, float | None]]] = {}
    head = ["handler", "workers", "client", "msg/s (median)", "min..max", "x first W", "client CPU µs/msg",
            "broker CPU µs/msg", "startup s", "ok runs"]
    rows = []
    for h in handlers:
        rates[h], cpu[h], brk[h], vs_raw[h], vs_aio[h] = {}, {}, {}, {}, {}
        scaling[h] = {c: {} for c in order}
        for w in workers:
            rates[h][str(w)], cpu[h][str(w)], brk[h][str(w)] = {}, {}, {}
            for c in order:
                ok = [r for r in runs.get((h, w, c), []) if r]
                rate = _med([r["rate"] for r in ok])
                rates[h][str(w)][c] = rate
                cpu[h][str(w)][c] = _med([per_msg(r, "cpu_s") for r in ok])
                brk[h][str(w)][c] = _med([per_msg(r, "broker_cpu_s") for r in ok])
                scale = ratio((h, w, c), (h, workers[0], c))
                scaling[h][c][str(w)] = scale
                rs = [r["rate"] for r in ok]
                spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
                rows.append([h, str(w), c, _fmt(rate), spread, _fmt(scale, ".2f"),
                             _fmt(cpu[h][str(w)][c], ",.1f"), _fmt(brk[h][str(w)][c], ",.1f"),
                             _fmt(_med([r.get("startup_s") for r in ok]), ".1f"),
                             f"{len(ok)}/{reps}" + (" ERR" if any(e.startswith(f"{h} W={w} {c}:") for e in
                                                                  errors.get(c, [])) else "")])
            vs_raw[h][str(w)] = ratio((h, w, "mmate_fast"), (h, w, "raw"))
            vs_aio[h][str(w)] = ratio((h, w, "mmate_fast"), (h, w, "aio_pika"))
    widths = [max(len(x), *(len(r[i]) for r in rows)) for i, x in enumerate(head)] if rows else []
    lines = ["workload fleet (consumed msg/s; W worker processes, one raw publisher bursting N Mmate "
             f"envelopes while they consume; prefetch {os.environ.get('BENCH_FLEET_PREFETCH', '100')} "
             "per worker): " + ", ".join(order)]
    for r in [head, ["-" * x for x in widths], *rows]:
        lines.append("  ".join(v.ljust(x) if i < 3 else v.rjust(x) for i, (v, x) in enumerate(zip(r, widths,
                                                                                               strict=True))))
    for h in handlers:
        lines.append(f"{h}: mmate_fast / raw = " + ", ".join(f"W={w} {_fmt(vs_raw[h][str(w)], '.2f')}"
                                                           for w in workers)
                     + "    mmate_fast / aio_pika = " + ", ".join(f"W={w} {_fmt(vs_aio[h][str(w)], '.2f')}"
                                                             for w in workers))
    flags = [bool((r.get("extensions") or {}).get("compiled")) for (_, _, c), v in runs.items()
             if c == "mmate_fast" for r in v if r]
    ext = {"mmate_fast": all(flags) if flags else None}
    lines.append(extensions_line(ext))
    for c, errs in errors.items():
        for e in errs:
            lines.append(f"error {c}: {e}")
    obj: dict[str, Any] = {"workload": "fleet", "workers": workers, "handlers": handlers,
                           "rates": rates, "vs_raw": vs_raw, "vs_aio_pika": vs_aio, "scaling": scaling,
                           "cpu_us_per_msg": cpu, "broker_us_per_msg": brk, "extensions": ext}
    if errors:
        obj["errors"] = errors
    return {"table": "\n".join(lines), "json": obj}


def main(workers: list[int], repeat: int, only: list[str], handlers: list[str], n: int | None,
         timeout: float) -> int:
    order = [c for c in ORDER if c in only]
    runs: dict[Key, list[dict[str, Any] | None]] = {}
    errors: dict[str, list[str]] = {}
    for rep in range(1, repeat + 1):
        for h in handlers:
            for w in workers:
                for c in order:
                    t0 = time.time()
                    res, err = run_one(c, h, w, n_for(c, h, n), timeout)
                    runs.setdefault((h, w, c), []).append(res if err is None else None)
                    if err:
                        errors.setdefault(c, []).append(f"{h} W={w} {c}: rep {rep}: {err}")
                    status = (f"{res['rate']:>8,.0f} msg/s" if res and res.get("rate") else "") + \
                        (f" ERROR {err}" if err else "")
                    print(f"[rep {rep}/{repeat}] fleet {h:<6} W={w} {c:<10} {status}  "
                          f"({time.time() - t0:.1f}s)", file=sys.stderr, flush=True)
    s = summarize(workers, handlers, order, runs, errors)
    print(s["table"])
    print(json.dumps(s["json"]), flush=True)
    return 1 if errors else 0
