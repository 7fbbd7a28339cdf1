"""``run.py stageflow``: completed 3-stage flows per second, each row's starter and its two workers
in fresh processes, rows one after another per repetition (same broker, same run).

Rows: ``raw`` (pre-encoded frames, the broker's ceiling for this message pattern; _flow_raw.py),
``raw_gowire`` (the same zero-cost client sending our engine's exact messages: Go's hops and the
completed event, _flow_gowire.py; the ceiling of the engine on Go's wire),
``mmate_fast`` (FlowEngine with its defaults: a memory store per worker, the terminal lifecycle
events; _flow_mmate.py), ``mmate_fast_sqlite`` (the same with one SQLite file store shared by the
three processes), ``mmate_fast_all_events`` (memory store, ``FlowEngine(events=True)``: all four of
Go's lifecycle events, a StageCompletedEvent per stage too) and ``aio_pika`` (the flow written by
hand; _flow_aiopika.py). Ratios are medians of per-repetition ratios; ``sqlite_cost`` is
1 - mmate_fast_sqlite / mmate_fast. The JSON (last stdout line) holds ``rates``, ``vs_raw``,
``vs_aio_pika``, ``sqlite_cost``, ``cpu_us_per_flow`` (client total: starter + both workers, and
the split), ``broker_us_per_flow``, ``extensions``, and two CPU ratios that a loaded machine
disturbs less than rates: ``cpu_aio_pika_vs_mmate_fast`` and ``cpu_sqlite_vs_memory`` (client CPU
per flow, medians of per-repetition ratios). A run that leaves messages in its queues
fails (exit 1).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from _common import extensions_line, extensions_summary, run_child_process
from _flow_common import DEFAULT_FLOWS, FLOW_PREFETCH, INFLIGHT

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: row -> (script, BENCH_FLOW_STORE for the mmate rows)
CLIENTS: dict[str, tuple[str, str | None]] = {
    "raw": ("_flow_raw.py", None),
    "raw_gowire": ("_flow_raw.py", None),
    "mmate_fast": ("_flow_mmate.py", "memory"),
    "mmate_fast_sqlite": ("_flow_mmate.py", "sqlite"),
    "mmate_fast_all_events": ("_flow_mmate.py", "memory"),
    "aio_pika": ("_flow_aiopika.py", None),
}
#: row -> BENCH_FLOW_EVENTS (FlowEngine(events=...)) for the rows that do not use the engine's default
EVENTS = {"mmate_fast_all_events": "all"}
#: row -> BENCH_FLOW_RAW (the raw client's mode, _flow_raw.py)
RAW_MODES = {"raw_gowire": "gowire"}
#: raw first: the limit of the repetition
ORDER = ("raw", "raw_gowire", "mmate_fast", "mmate_fast_sqlite", "mmate_fast_all_events", "aio_pika")
#: aio-pika runs at most this many flows (it does ~1k flows/s here; rates stay comparable)
AIO_PIKA_MAX_FLOWS = 5_000


def engine_present() -> bool:
    """Whether this checkout has the StageFlow engine (the mmate rows need it)."""
    try:
        from mmate_fast import stageflow
    except ImportError:
        return False
    return hasattr(stageflow, "FlowEngine")


def default_only() -> list[str]:
    """Every row this checkout can run: raw and aio_pika, and the mmate rows once the engine is there."""
    return [c for c in ORDER if engine_present() or not (c.startswith("mmate_fast") or c == "raw_gowire")]


def flows_for(client: str, n: int) -> int:
    return min(n, AIO_PIKA_MAX_FLOWS) if client == "aio_pika" else n


def run_one(client: str, n: int, loop: str, timeout: float, prefetch: int,
            inflight: int) -> tuple[dict[str, Any] | None, str | None]:
    """One row: its starter process (which starts its two workers); see _common.run_child_process."""
    script, store = CLIENTS[client]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env.pop("BENCH_BODY", None)
    env["BENCH_FLOW_PREFETCH"] = str(prefetch)
    env["BENCH_FLOW_INFLIGHT"] = str(inflight)
    env.pop("BENCH_FLOW_STORE", None)
    if store is not None:
        env["BENCH_FLOW_STORE"] = store
    env.pop("BENCH_FLOW_RAW", None)
    if client in RAW_MODES:
        env["BENCH_FLOW_RAW"] = RAW_MODES[client]
    env.pop("BENCH_FLOW_EVENTS", None)
    if client in EVENTS:
        env["BENCH_FLOW_EVENTS"] = EVENTS[client]
    env["BENCH_FLOW_ID"] = flow_id = f"bench-{client.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, os.path.join(HERE, script), "stageflow", "--messages", str(n), "--loop", loop]
    res, err = run_child_process(argv, env, timeout, n)
    if err is not None and res is None:  # a run that failed or was killed may have left its queues
        cleanup(flow_id)
    return res, err


def cleanup(flow_id: str) -> None:
    """Delete the queues of run ``flow_id`` (its workers, if any are left, stop when their starter's
    pipe closes)."""
    from _common import RawAMQP
    from _flow_common import FlowNames, delete_flow_queues

    try:
        admin = RawAMQP()
    except OSError:
        return
    try:
        delete_flow_queues(admin, FlowNames("", flow_id))
    finally:
        admin.close()


def _med(vals: list[Any]) -> float | None:
    v = [x for x in vals if x is not None]
    return statistics.median(v) if v else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def _per_flow(r: dict[str, Any], key: str) -> float | None:
    v = r.get(key)
    return None if v is None else v / r["count"] * 1e6


def summarize(n: int, runs: dict[str, list[dict[str, Any] | None]], errors: dict[str, list[str]],
              order: list[str], prefetch: int = FLOW_PREFETCH, inflight: int = INFLIGHT) -> dict[str, Any]:
    """Medians per row, per-repetition ratios, the printed table and the final JSON object."""
    reps = max((len(v) for v in runs.values()), default=0)
    rates: dict[str, float | None] = {}
    cpu: dict[str, dict[str, float | None]] = {}
    broker: dict[str, float | None] = {}
    rows = []
    for c in order:
        ok = [r for r in runs.get(c, []) if r]
        rates[c] = _med([r["rate"] for r in ok])
        cpu[c] = {k: _med([_per_flow(r, f) for r in ok]) for k, f in
                  (("total", "cpu_s"), ("starter", "starter_cpu_s"), ("workers", "workers_cpu_s"))}
        broker[c] = _med([_per_flow(r, "broker_cpu_s") for r in ok])
        rs = [r["rate"] for r in ok]
        spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
        rows.append([c, _fmt(ok[0]["n"] if ok else flows_for(c, n), ",d"), _fmt(rates[c]), spread,
                     _fmt(cpu[c]["total"], ",.1f"), _fmt(cpu[c]["starter"], ",.1f"),
                     _fmt(cpu[c]["workers"], ",.1f"), _fmt(broker[c], ",.1f"),
                     f"{len(ok)}/{reps}" + (" ERR" if errors.get(c) else "")])

    def ratio(a: str, b: str) -> float | None:
        """Median over the repetitions of rate(a) / rate(b) (same repetition)."""
        pairs = zip(runs.get(a, []), runs.get(b, []), strict=False)
        return _med([ra["rate"] / rb["rate"] for ra, rb in pairs if ra and rb])

    def cpu_ratio(a: str, b: str) -> float | None:
        """Median over the repetitions of client CPU per flow of a / of b (robust to a loaded box)."""
        pairs = zip(runs.get(a, []), runs.get(b, []), strict=False)
        return _med([(ra["cpu_s"] / ra["count"]) / (rb["cpu_s"] / rb["count"])
                     for ra, rb in pairs if ra and rb])

    ours = [c for c in order if c.startswith("mmate_fast")]
    vs_aio = {c: ratio(c, "aio_pika") for c in ours}
    vs_raw = {c: ratio(c, "raw") for c in ours}
    keep = ratio("mmate_fast_sqlite", "mmate_fast")
    sqlite_cost = None if keep is None else 1.0 - keep
    aio_vs_raw = ratio("aio_pika", "raw")
    gowire_vs_aio = ratio("raw_gowire", "aio_pika")
    vs_gowire = {c: ratio(c, "raw_gowire") for c in ours}
    cpu_aio = cpu_ratio("aio_pika", "mmate_fast")
    cpu_sqlite = cpu_ratio("mmate_fast_sqlite", "mmate_fast")
    head = ["client", "flows", "flows/s (median)", "min..max", "client CPU µs/flow", "starter µs/flow",
            "workers µs/flow", "broker µs/flow", "ok runs"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else []
    lines = [f"workload stageflow (3-stage flows, 2 worker processes + a starter, prefetch {prefetch} per "
             f"stage consumer, {inflight} flows in flight): " + ", ".join(order)]
    for r in [head, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths, strict=True))))
    for c in ours:
        lines.append(f"{c} / aio_pika = {_fmt(vs_aio[c], '.2f')}    {c} / raw = {_fmt(vs_raw[c], '.3f')}")
    lines.append(f"aio_pika / raw = {_fmt(aio_vs_raw, '.3f')}")
    if "raw_gowire" in order:
        lines.append(f"raw_gowire / aio_pika = {_fmt(gowire_vs_aio, '.2f')} (the ceiling on Go's wire)    "
                     + "    ".join(f"{c} / raw_gowire = {_fmt(vs_gowire[c], '.3f')}" for c in ours))
    if "mmate_fast_sqlite" in order and "mmate_fast" in order:
        lines.append(f"sqlite_cost = 1 - mmate_fast_sqlite / mmate_fast = {_fmt(sqlite_cost, '.3f')}    "
                     f"client CPU per flow mmate_fast_sqlite / mmate_fast = {_fmt(cpu_sqlite, '.2f')}")
    if "aio_pika" in order and "mmate_fast" in order:
        lines.append(f"client CPU per flow aio_pika / mmate_fast = {_fmt(cpu_aio, '.2f')}")
    ext = extensions_summary({c: runs.get(c, []) for c in order})
    if ext:
        lines.append(extensions_line(ext))
    for c, errs in errors.items():
        for e in errs:
            lines.append(f"error {c}: {e}")
    obj: dict[str, Any] = {
        "workload": "stageflow", "flows": n, "prefetch": prefetch, "inflight": inflight,
        "rates": rates, "vs_raw": vs_raw.get("mmate_fast"), "vs_aio_pika": vs_aio.get("mmate_fast"),
        "sqlite_cost": sqlite_cost, "aio_pika_vs_raw": aio_vs_raw,
        "cpu_aio_pika_vs_mmate_fast": cpu_aio, "cpu_sqlite_vs_memory": cpu_sqlite,
        "vs_raw_by_row": vs_raw, "vs_aio_pika_by_row": vs_aio,
        "raw_gowire_vs_aio_pika": gowire_vs_aio, "vs_raw_gowire_by_row": vs_gowire,
        "cpu_us_per_flow": cpu, "broker_us_per_flow": broker, "extensions": ext}
    if errors:
        obj["errors"] = errors
    return {"table": "\n".join(lines), "json": obj}


def main(n: int | None, repeat: int, only: list[str], loop: str, timeout: float,
         prefetch: int = FLOW_PREFETCH, inflight: int = INFLIGHT) -> int:
    n = DEFAULT_FLOWS if n is None else n
    order = [c for c in ORDER if c in only]
    runs: dict[str, list[dict[str, Any] | None]] = {c: [] for c in order}
    errors: dict[str, list[str]] = {}
    for rep in range(1, repeat + 1):
        for c in order:
            t0 = time.time()
            res, err = run_one(c, flows_for(c, n), loop, timeout, prefetch, inflight)
            runs[c].append(res)
            if err:
                errors.setdefault(c, []).append(f"rep {rep}: {err}")
            status = (f"{res['rate']:>8,.0f} flows/s" if res else "") + (f" ERROR {err}" if err else "")
            print(f"[rep {rep}/{repeat}] stageflow {c:<18} {status}  ({time.time() - t0:.1f}s)",
                  file=sys.stderr, flush=True)
    s = summarize(n, runs, errors, order, prefetch, inflight)
    print(s["table"])
    print(json.dumps(s["json"]), flush=True)
    return 1 if errors else 0
