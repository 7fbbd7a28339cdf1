"""Benchmark runner: one workload, three clients (mmate_fast, aio-pika, raw), each run in a fresh process.

    python benchmarks/run.py WORKLOAD [--messages N] [--loop uvloop|asyncio] [--repeat R]
                             [--only mmate_fast,aio_pika,raw] [--level transport|mmate]
                             [--confirms] [--no-recovery] [--observability] [--concurrency 1,64]
                             [--persistent]

WORKLOAD: publish | publish-confirm | publish-confirm-each | consume | e2e | rpc. Clients run one after
another (the 2 cores are shared with the broker). With --repeat R each client runs R times; the
table shows medians and the ratios are medians of per-repetition ratios (same repetition, so slow
drift of the machine cancels out, as in the anchors). Progress goes to stderr; stdout holds the
table and, as its very last line, one JSON object with the rates and ratios; it records in
"extensions" whether our rows ran the compiled extensions (the table says so too). A run that leaves
messages in its queue (``left_in_queue`` of a consume, e2e or rpc run) fails: its error is printed
and the exit code is 1, as for a run that failed or did not finish.

--level mmate (publish | publish-confirm | consume | e2e): typed events through the Client, every client
on the same bytes (one real Mmate envelope + its AMQP properties, BENCH_BODY=mmate in the children):
mmate_fast (Client.publish_event per new event object / Client handler; _mmate_level.py),
mmate_fast_transport (the transport level, _mmate.py, on the envelope bytes), aio_pika (the same
envelope bytes built per message as a good aio-pika user would: explicit dicts and orjson, checked
byte for byte against ours at startup; _aiopika_mmate.py) and raw. The JSON adds "vs_transport".
e2e rows show the client CPU per message as producer + consumer (JSON
"cpu_us_per_msg_producer_consumer"), at every level.
Extra rows at the mmate level, to show what confirms and recovery cost ("vs_mmate_fast" in the JSON
= that row / mmate_fast, per repetition): ``--confirms`` (publish only) adds mmate_fast_confirms
(Client(publisher_confirms=True), every publish awaited until confirmed) and
mmate_fast_confirms_batch (the same Client, client.publish_batch in windows of 1000);
``--no-recovery`` adds mmate_fast_norecovery (Client(recovery=False)); ``--observability`` adds
mmate_fast_observed (OpenTelemetry tracing of every message on the SDK, Prometheus metrics per type,
``client.serve_observability()`` with /metrics and /health/ready scraped once per second; the target
is a cost of at most 10 %), mmate_fast_observed_sampled (the same with 1 % of the traces sampled)
and mmate_fast_metrics (the same without tracing), mmate_fast_traced_fast (metrics + TracingObserver,
the fast tracing path, 1 % sampled). ``--publish-options`` (publish, e2e) adds mmate_fast_channels4
(Client(publish_channels=4)) and mmate_fast_lean (Client(wire_profile="lean"): no AMQP header table;
see benchmarks/broker_cost.py for what each part of the wire costs the broker).

publish-confirm adds the row raw_pipelined (the raw client sending the next 1000 while the previous
1000's confirms are on their way: the target row of confirmed publishing, "vs_raw_pipelined" in the
JSON; "rows_vs_raw" gives each of our rows / the windowed raw row); at --level mmate its mmate_fast row
is ``await client.publish_batch(events)`` over the whole stream and it adds mmate_fast_gather
(``asyncio.gather`` over windows of 1000 ``client.publish_event`` calls, aio-pika's idiom; the aio_pika
row does the same) and mmate_fast_concurrent (64 tasks awaiting one publish_event at a time).
``--persistent``: every client declares a durable queue and publishes persistent messages (delivery mode
2: the broker confirms after writing to disk), for every workload but rpc and stageflow.

rpc: request/reply round trips/s at each ``--concurrency`` (default 1,64), p50/p99 latency, for
mmate_fast (client.request against a Client responder, library defaults: requests and replies
persistent, as Go sends them), mmate_fast_transient (the same with persistent=False, transient like
the aio_pika and raw rows), mmate_fast_lean, aio_pika (its RPC pattern), raw (a zero-cost client doing
the same Mmate exchange) and raw_gowire (raw with our exact properties); raw_direct and raw_pamqp on
request (--only); see _rpc_runner.py and the _rpc_*.py clients.

stageflow: completed 3-stage flows/s (``--flows N``, default 5000), two worker processes serving every
stage queue plus a starter process that keeps ``--inflight`` flows running and counts completions; rows
raw, mmate_fast (memory store per worker), mmate_fast_sqlite (a shared SQLite file store) and aio_pika
(the flow written by hand); ``--prefetch`` per stage consumer; see _flow_runner.py and the _flow_*.py
clients. The JSON adds ``sqlite_cost`` (1 - mmate_fast_sqlite / mmate_fast).

streams-publish | streams-consume: Mmate envelopes through RabbitMQ Streams (port 5552): raw (pre-encoded
stream frames), mmate_fast (typed events, Client.publish_batch_to_stream / subscribe_stream) and bare
rbfly (envelopes built per message with dicts + orjson); see _streams_runner.py. The JSON has
``vs_rbfly`` instead of aio-pika (which does not speak the stream protocol).
fleet: consumed msg/s of W worker processes (``--workers 1,2,4``) for a light handler and one spending
1 ms of CPU per message (``--handler light,cpu1ms``): raw, mmate_fast (``mmate run --workers W``) and
aio_pika (W hand-written consumer processes); see _fleet_runner.py and _fleet_bench.py.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from _common import extensions_line, extensions_summary, run_child_process

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = ("publish", "publish-confirm", "publish-confirm-each", "consume", "e2e")
DEFAULT_N = {"publish": 50_000, "publish-confirm": 50_000, "publish-confirm-each": 5_000,
             "consume": 50_000, "e2e": 50_000}
CLIENTS = {"raw": "_raw.py", "mmate_fast": "_mmate.py", "aio_pika": "_aiopika.py"}
ORDER = ("raw", "mmate_fast", "aio_pika")  # raw first: the limit of this repetition
AIO_PIKA_MAX_N = 50_000
LATENCY_WORKLOADS = ("publish-confirm-each", "e2e")
MMATE_WORKLOADS = ("publish", "publish-confirm", "consume", "e2e")
MMATE_CLIENTS = {"raw": "_raw.py", "mmate_fast_transport": "_mmate.py", "mmate_fast": "_mmate_level.py",
                 "aio_pika": "_aiopika_mmate.py"}
MMATE_ORDER = ("raw", "mmate_fast_transport", "mmate_fast", "aio_pika")
#: the --confirms / --no-recovery rows: client name -> BENCH_MMATE_VARIANT of _mmate_level.py
MMATE_VARIANTS = {"mmate_fast_confirms": "confirms", "mmate_fast_confirms_batch": "confirms_batch",
                  "mmate_fast_norecovery": "norecovery", "mmate_fast_observed": "observed",
                  "mmate_fast_observed_sampled": "observed_sampled", "mmate_fast_metrics": "metrics",
                  "mmate_fast_traced_fast": "traced_fast", "mmate_fast_gather": "gather",
                  "mmate_fast_concurrent": "concurrent", "mmate_fast_channels4": "channels4",
                  "mmate_fast_lean": "lean"}
#: rows publish-confirm --level mmate adds by default (the confirmed-publishing idioms besides the batch API)
CONFIRM_ROWS = ["mmate_fast_gather", "mmate_fast_concurrent"]
#: rows that run another row's module with BENCH_VARIANT set: row -> (that row, variant); publish-confirm
#: adds raw_pipelined (the next 1000 sent while the previous 1000's confirms are on their way)
ROW_VARIANTS = {"raw_pipelined": ("raw", "pipelined")}


def client_n(client: str, n: int) -> int:
    """aio-pika is slow; it runs at most 50k messages (rates stay comparable)."""
    return min(n, AIO_PIKA_MAX_N) if client == "aio_pika" else n


def run_child(client: str, workload: str, n: int, loop: str, timeout: float,
              level: str = "transport") -> tuple[dict[str, Any] | None, str | None]:
    """Run one client in a fresh process: (its JSON result, None), or an error text (see
    _common.run_child_process: a run that left messages in its queue keeps its result and fails)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), ROOT) if p)
    env.pop("BENCH_BODY", None)
    env.pop("BENCH_MMATE_VARIANT", None)
    env.pop("BENCH_VARIANT", None)
    if client in ROW_VARIANTS:
        client, env["BENCH_VARIANT"] = ROW_VARIANTS[client]
    if level == "mmate":
        env["BENCH_BODY"] = "mmate"
        if client in MMATE_VARIANTS:
            env["BENCH_MMATE_VARIANT"] = MMATE_VARIANTS[client]
        script = MMATE_CLIENTS.get(client, "_mmate_level.py")
    else:
        script = CLIENTS[client]
    argv = [sys.executable, os.path.join(HERE, script), workload, "--messages", str(n),
            "--loop", loop]
    return run_child_process(argv, env, timeout, n)


def _med(vals: list[float]) -> float | None:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def summarize(workload: str, n: int, runs: dict[str, list[dict[str, Any] | None]],
              errors: dict[str, list[str]], order: list[str], level: str = "transport") -> dict[str, Any]:
    """Medians per client, per-repetition ratios, the printed table and the final JSON object."""
    clients = CLIENTS
    if level == "mmate":
        clients = {**MMATE_CLIENTS, **{c: "" for c in order if c in MMATE_VARIANTS}}
    clients = {**clients, **{c: "" for c in order if c in ROW_VARIANTS}}
    reps = max((len(v) for v in runs.values()), default=0)
    rows = []
    rates: dict[str, float | None] = {}
    latency: dict[str, dict[str, float | None]] = {}
    cpu_us: dict[str, float | None] = {}
    split: dict[str, list[float | None]] = {}
    for c in order:
        ok = [r for r in runs.get(c, []) if r]
        rate = _med([r["rate"] for r in ok])
        rates[c] = rate
        cpu = _med([r["cpu_s"] / r["count"] * 1e6 for r in ok if r.get("cpu_s") is not None])
        brk = _med([r["broker_cpu_s"] / r["count"] * 1e6 for r in ok if r.get("broker_cpu_s") is not None])
        cpu_us[c] = cpu
        if workload == "e2e":  # the producer's and the consumer's share (the issue-11 targets are per side)
            split[c] = [_med([r[k] / r["count"] * 1e6 for r in ok if r.get(k) is not None])
                        for k in ("producer_cpu_s", "consumer_cpu_s")]
            cpu_txt = _fmt(cpu, ",.1f")
            if split[c] != [None, None]:
                cpu_txt += f" ({_fmt(split[c][0], ',.1f')}+{_fmt(split[c][1], ',.1f')})"
        else:
            cpu_txt = _fmt(cpu, ",.1f")
        p50 = _med([r["p50_ms"] for r in ok if r.get("p50_ms") is not None])
        p99 = _med([r["p99_ms"] for r in ok if r.get("p99_ms") is not None])
        if workload in LATENCY_WORKLOADS:
            latency[c] = {"p50": p50, "p99": p99}
        rs = [r["rate"] for r in ok]
        spread = f"{min(rs):,.0f}..{max(rs):,.0f}" if len(rs) > 1 else ""
        n_run = ok[0]["n"] if ok else client_n(c, n)
        rows.append([c, _fmt(n_run, ",d"), _fmt(rate), spread, cpu_txt, _fmt(brk, ",.1f"),
                     _fmt(p50, ",.2f"), _fmt(p99, ",.2f"),
                     f"{len(ok)}/{reps}" + (" ERR" if errors.get(c) else "")])

    def ratio(a: str, b: str) -> float | None:
        per = []
        for i in range(reps):
            ra = runs.get(a, [None] * reps)[i]
            rb = runs.get(b, [None] * reps)[i]
            if ra and rb:
                per.append(ra["rate"] / rb["rate"])
        return _med(per)

    vs_aio, vs_raw = ratio("mmate_fast", "aio_pika"), ratio("mmate_fast", "raw")
    vs_tr = ratio("mmate_fast", "mmate_fast_transport") if level == "mmate" else None
    head = ["client", "N", "msg/s (median)", "min..max",
            "client CPU µs/msg" + (" (pub+con)" if workload == "e2e" else ""), "broker CPU µs/msg",
            "p50 ms", "p99 ms", "ok runs"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    title = f"workload {workload}" + (" (level mmate: typed events, same envelope bytes)" if level == "mmate"
                                      else "")
    lines = [title + ": " + ", ".join(f"{c}" for c in order),
             "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths,
                                                                                          strict=True))),
             "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths,
                                                                                                 strict=True))))
    tail = f"    mmate_fast / mmate_fast_transport = {_fmt(vs_tr, '.3f')}" if level == "mmate" else ""
    lines.append(f"mmate_fast / aio_pika = {_fmt(vs_aio, '.2f')}    mmate_fast / raw = {_fmt(vs_raw, '.3f')}"
                 + tail)
    ext = extensions_summary({c: runs.get(c, []) for c in order})
    lines.append(extensions_line(ext))
    for c, errs in errors.items():
        for e in errs:
            lines.append(f"error {c}: {e}")
    obj: dict[str, Any] = {"workload": workload, "messages": n, "rates": {c: rates.get(c) for c in clients},
                           "vs_aio_pika": vs_aio, "vs_raw": vs_raw,
                           "cpu_us_per_msg": {c: cpu_us.get(c) for c in clients}}
    variants = [c for c in order if c in MMATE_VARIANTS]
    vs_variant = {c: ratio(c, "mmate_fast") for c in variants}
    for c in variants:
        lines.append(f"{c} / mmate_fast = {_fmt(vs_variant[c], '.3f')}")
    if level == "mmate":
        body_bytes = next((r["body_bytes"] for v in runs.values() for r in v if r and r.get("body_bytes")),
                          None)
        obj = {"workload": workload, "level": "mmate", "messages": n, "body_bytes": body_bytes,
               "rates": obj["rates"], "vs_aio_pika": vs_aio, "vs_raw": vs_raw, "vs_transport": vs_tr,
               "cpu_us_per_msg": obj["cpu_us_per_msg"]}
        if variants:
            obj["vs_mmate_fast"] = vs_variant
    if "raw_pipelined" in order:  # the target of confirmed publishing: >= 0.8 of this row
        for base in ("raw_pipelined", "raw"):  # and the windowed raw client (the gather idiom's peer)
            if base in order:
                key = "vs_raw_pipelined" if base == "raw_pipelined" else "rows_vs_raw"  # vs_raw: mmate_fast's
                obj[key] = vs = {c: ratio(c, base) for c in order if c.startswith("mmate_fast")}
                lines.append(f"vs {base}: " + ", ".join(f"{c} {_fmt(v, '.3f')}" for c, v in vs.items()))
    scrapes = {c: [r.get("scrapes") for r in runs.get(c, []) if r] for c in order
               if any(r and "scrapes" in r for r in runs.get(c, []))}
    if scrapes:  # the observed rows: HTTP requests answered during each run (proof the server served)
        obj["scrapes"] = scrapes
    if split:
        obj["cpu_us_per_msg_producer_consumer"] = split
    obj["extensions"] = ext
    if latency:
        obj["latency_ms"] = latency
    if errors:
        obj["errors"] = errors
    return {"table": "\n".join(lines), "json": obj}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=(*WORKLOADS, "rpc", "stageflow", "streams-publish",
                                         "streams-consume", "fleet"))
    ap.add_argument("--messages", "-n", type=int, default=None,
                    help="messages per run (default 50000; 5000 for publish-confirm-each)")
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default=None,
                    help="comma list of mmate_fast,aio_pika,raw (+ mmate_fast_transport at --level mmate, "
                         "and there the rows --confirms/--no-recovery/--observability add, e.g. "
                         "mmate_fast_metrics: naming some keeps only those)")
    ap.add_argument("--level", default="transport", choices=["transport", "mmate", "aiopika-compat"],
                    help="transport: Channel API (default); mmate: typed events through the Client; "
                         "aiopika-compat: the aio-pika client code on aio-pika and on "
                         "mmate_fast.compat.aio_pika (_compat_runner.py)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per client run")
    ap.add_argument("--confirms", action="store_true",
                    help="--level mmate publish: add rows mmate_fast_confirms and mmate_fast_confirms_batch")
    ap.add_argument("--no-recovery", action="store_true",
                    help="--level mmate: add the row mmate_fast_norecovery (Client(recovery=False))")
    ap.add_argument("--observability", action="store_true",
                    help="--level mmate: add the rows mmate_fast_observed (metrics + tracing on, HTTP "
                         "endpoints scraped once per second), mmate_fast_observed_sampled (1 %% of the "
                         "traces sampled), mmate_fast_metrics (without tracing) and "
                         "mmate_fast_traced_fast (metrics + TracingObserver at 1 %%)")
    ap.add_argument("--publish-options", action="store_true",
                    help="--level mmate publish/e2e: add the rows mmate_fast_channels4 "
                         "(publish_channels=4) and mmate_fast_lean (wire_profile='lean')")
    ap.add_argument("--persistent", action="store_true",
                    help="durable queues, persistent messages (stored on disk, confirmed after the fsync); "
                         "every workload but rpc (its own persistent row) and stageflow")
    ap.add_argument("--concurrency", default="1,64", help="rpc: comma list of concurrencies (default 1,64)")
    ap.add_argument("--flows", type=int, default=None, help="stageflow: flows per run (default 5000)")
    ap.add_argument("--prefetch", type=int, default=None,
                    help="stageflow: prefetch per stage consumer in every worker (default 10, Go's)")
    ap.add_argument("--inflight", type=int, default=None,
                    help="stageflow: flows running at once (default 200)")
    ap.add_argument("--workers", default="1,2,4", help="fleet: comma list of worker counts (default 1,2,4)")
    ap.add_argument("--handler", default="light,cpu1ms", help="fleet: comma list of light,cpu1ms")
    a = ap.parse_args(argv)
    if a.persistent:  # read by every child (benchmarks/_common.PERSISTENT)
        os.environ["BENCH_PERSISTENT"] = "1"
    if a.workload == "fleet":
        import _fleet_runner as fl

        fl_only = [c.strip().replace("-", "_") for c in (a.only or ",".join(fl.ORDER)).split(",")
                   if c.strip()]
        fl_handlers = [h.strip() for h in a.handler.split(",") if h.strip()]
        fl_workers = [int(w) for w in a.workers.split(",") if w.strip().isdigit() and int(w) > 0]
        if (not fl_workers or not fl_only or any(c not in fl.ORDER for c in fl_only) or a.repeat < 1
                or not fl_handlers or any(h not in fl.HANDLERS for h in fl_handlers)):
            ap.error(f"fleet: --workers 1,2,4, --only {','.join(fl.ORDER)}, --handler light,cpu1ms, "
                     "--repeat >= 1")
        return fl.main(fl_workers, a.repeat, fl_only, fl_handlers, a.messages, a.timeout)
    if a.workload == "stageflow":
        import _flow_runner as fr
        from _flow_common import FLOW_PREFETCH, INFLIGHT

        flow_only = [c.strip().replace("-", "_") for c in (a.only or ",".join(fr.default_only())).split(",")
                     if c.strip()]
        n = a.flows if a.flows is not None else a.messages
        prefetch = FLOW_PREFETCH if a.prefetch is None else a.prefetch
        inflight = INFLIGHT if a.inflight is None else a.inflight
        if (not flow_only or any(c not in fr.ORDER for c in flow_only) or a.repeat < 1
                or min(prefetch, inflight) < 1 or (n is not None and n < 1)):
            ap.error(f"stageflow: --only {','.join(fr.ORDER)}, --repeat/--flows/--prefetch/--inflight >= 1")
        return fr.main(n, a.repeat, flow_only, a.loop, a.timeout, prefetch, inflight)
    if a.workload.startswith("streams-"):  # RabbitMQ Streams: raw, mmate_fast, rbfly (_streams_runner.py)
        import _streams_runner as sr

        picked = [c.strip().replace("-", "_") for c in (a.only or ",".join(sr.ORDER)).split(",") if c.strip()]
        if not picked or any(c not in sr.ORDER for c in picked) or a.repeat < 1:
            ap.error(f"{a.workload}: --only {','.join(sr.ORDER)}, --repeat >= 1")
        return sr.main(a.workload, a.messages, a.repeat, picked, a.loop, a.timeout)
    if a.level == "aiopika-compat":
        import _compat_runner as cr

        if a.workload not in cr.WORKLOADS:
            ap.error(f"--level aiopika-compat runs {', '.join(cr.WORKLOADS)}")
        return cr.main(a.workload, a.messages, a.repeat, a.loop, a.timeout,
                       [int(x) for x in a.concurrency.split(",") if x.strip()])
    if a.workload == "rpc":
        from _rpc_runner import DEFAULT_ONLY as RPC_DEFAULT
        from _rpc_runner import ORDER as RPC_ORDER
        from _rpc_runner import main as rpc_main

        rpc_only = [c.strip().replace("-", "_") for c in (a.only or ",".join(RPC_DEFAULT)).split(",")
                    if c.strip()]
        try:
            concs = [int(x) for x in a.concurrency.split(",") if x.strip()]
        except ValueError:
            concs = []
        if not concs or min(concs) < 1 or a.repeat < 1 or any(c not in RPC_ORDER for c in rpc_only):
            ap.error("rpc: --concurrency takes positive integers (e.g. 1,64), "
                     f"--only {','.join(RPC_ORDER)}, --repeat >= 1")
        return rpc_main(a.messages, concs, a.repeat, rpc_only, a.loop, a.timeout)
    if (a.confirms or a.no_recovery or a.observability or a.publish_options) and a.level != "mmate":
        ap.error("--confirms / --no-recovery / --observability / --publish-options need --level mmate")
    if a.confirms and a.workload != "publish":
        ap.error("--confirms applies to the publish workload only")
    if a.level == "mmate" and a.workload not in MMATE_WORKLOADS:
        print(f"run.py: --level mmate supports the workloads {', '.join(MMATE_WORKLOADS)} only "
              f"(got {a.workload!r}); use --level transport for it", file=sys.stderr)
        return 2
    clients, default_order = (MMATE_CLIENTS, MMATE_ORDER) if a.level == "mmate" else (CLIENTS, ORDER)
    only = [c.strip().replace("-", "_") for c in (a.only or ",".join(default_order)).split(",") if c.strip()]
    # --level mmate: --only may also pick among the rows --confirms/--no-recovery/--observability add
    picked_variants = [c for c in only if a.level == "mmate" and c in MMATE_VARIANTS]
    picked_rows = [c for c in only if c in ROW_VARIANTS]
    only = [c for c in only if c not in picked_variants and c not in picked_rows]
    bad = [c for c in only if c not in clients]
    if bad or not (only or picked_rows) or a.repeat < 1:
        ap.error(f"--only takes {','.join(clients)}; --repeat >= 1 (got {bad or a.repeat})")
    order = [c for c in default_order if c in only]
    if a.workload == "publish-confirm" and (picked_rows or a.only is None):
        order.insert(1 if "raw" in order else 0, "raw_pipelined")
    if a.level == "mmate":
        if a.workload == "publish-confirm" and (a.only is None or picked_variants):
            order += CONFIRM_ROWS
        if a.confirms:
            order += ["mmate_fast_confirms", "mmate_fast_confirms_batch"]
        if a.no_recovery:
            order.append("mmate_fast_norecovery")
        if a.observability:
            order += ["mmate_fast_observed", "mmate_fast_observed_sampled", "mmate_fast_metrics",
                      "mmate_fast_traced_fast"]
        if a.publish_options:
            order += ["mmate_fast_channels4", "mmate_fast_lean"]
        if picked_variants:
            order = [c for c in order if c not in MMATE_VARIANTS or c in picked_variants]
    n = a.messages if a.messages is not None else DEFAULT_N[a.workload]
    runs: dict[str, list[dict[str, Any] | None]] = {c: [] for c in order}
    errors: dict[str, list[str]] = {}
    for rep in range(1, a.repeat + 1):
        for c in order:
            t0 = time.time()
            res, err = run_child(c, a.workload, client_n(c, n), a.loop, a.timeout, a.level)
            runs[c].append(res)
            if err:
                errors.setdefault(c, []).append(f"rep {rep}: {err}")
            status = (f"{res['rate']:>10,.0f} msg/s" if res else "") + (f" ERROR {err}" if err else "")
            print(f"[rep {rep}/{a.repeat}] {a.workload} {c:<10} {status}  ({time.time() - t0:.1f}s)",
                  file=sys.stderr, flush=True)
    s = summarize(a.workload, n, runs, errors, order, a.level)
    print(s["table"])
    print(json.dumps(s["json"]), flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
