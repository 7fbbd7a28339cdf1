"""Soak: run a fleet for a long time and check that its memory and file descriptors stay flat.

    python benchmarks/soak.py --minutes 60 --transport rabbitmq   # the documented one-hour run
    python benchmarks/soak.py --minutes 60 --transport memory
    python benchmarks/soak.py --minutes 3 --transport memory --sample-every 5   # a quick look

It starts ``mmate run _soak_app:make --workers W`` (each worker publishes ``--rate`` commands/s to its
own service plus one event in ten, and consumes them: the whole publish + consume path, on RabbitMQ
or on each worker's embedded ``memory://`` broker), samples every worker's resident memory (RSS) and
open file descriptors every ``--sample-every`` seconds (psutil), and the messages the fleet acked
(from the supervisor's /health). Not in CI: it takes as long as you ask.

Verdict, per worker, after a warm-up (the first ``--warmup`` fraction of the samples, at least one
minute when the run is long enough, is ignored: caches and pools fill then): memory is flat when the
least-squares slope of RSS over the rest, times its duration, is under max(2 MiB, 3 % of the median
RSS), and file descriptors are flat when they vary by at most 2. A worker that was restarted (its pid
changed) is not flat. Prints a table, ``RESULT: flat`` or ``RESULT: NOT FLAT (why)``, and one JSON
line last; exit code 0 when flat.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
AMQP_URL = os.environ.get("MMATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MIB = 1024 * 1024


def free_port_block(n: int) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65000:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + n + 1):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no block of free ports")


def fleet_acked(port: int) -> int | None:
    """Messages the fleet acked so far (the supervisor's /health ``fleet`` check), None if no answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # an unhealthy fleet answers 503 with the same JSON
        body = exc.read()
    except OSError:
        return None
    try:
        return int(json.loads(body)["checks"]["fleet"]["details"]["acked"])
    except (ValueError, KeyError, TypeError):
        return None


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y)."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (y - my) for t, y in points) / den


def verdict(samples: list[tuple[float, int, int]], warmup: float) -> dict[str, Any]:
    """samples: (t, rss, fds) of one worker -> its figures and whether they are flat."""
    skip = max(1, int(len(samples) * warmup))
    if samples and samples[-1][0] - samples[0][0] > 300:  # long run: at least a minute of warm-up
        skip = max(skip, next((i for i, s in enumerate(samples) if s[0] - samples[0][0] >= 60), skip))
    rest = samples[skip:] if len(samples) - skip >= 3 else samples
    rss = [r for _, r, _ in rest]
    fds = [f for _, _, f in rest]
    duration = rest[-1][0] - rest[0][0] if len(rest) > 1 else 0.0
    slope = slope_per_s([(t, r) for t, r, _ in rest])
    growth = slope * duration
    allowed = max(2 * MIB, 0.03 * statistics.median(rss)) if rss else 0
    mem_flat = growth < allowed
    fds_flat = (max(fds) - min(fds) <= 2) if fds else True
    return {"rss_first_mib": samples[0][1] / MIB, "rss_after_warmup_mib": rss[0] / MIB,
            "rss_last_mib": rss[-1] / MIB, "rss_max_mib": max(rss) / MIB,
            "rss_slope_kib_per_min": slope * 60 / 1024, "rss_growth_mib": growth / MIB,
            "allowed_mib": allowed / MIB, "fds_min": min(fds), "fds_max": max(fds), "samples": len(samples),
            "judged_samples": len(rest), "memory_flat": mem_flat, "fds_flat": fds_flat}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    ap.add_argument("--transport", choices=["rabbitmq", "memory"], default="rabbitmq")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--rate", type=float, default=200.0,
                    help="commands/s each worker publishes (default 200)")
    ap.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples (default 10)")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the samples ignored first (0.2)")
    a = ap.parse_args(argv)
    service = f"soak-{a.transport}-{uuid.uuid4().hex[:6]}"
    port = free_port_block(a.workers)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, HERE, env.get("PYTHONPATH", "")) if p)
    env.update(SOAK_URL=AMQP_URL if a.transport == "rabbitmq" else "memory://", SOAK_SERVICE=service,
               SOAK_RATE=str(a.rate))
    argv_run = [sys.executable, "-m", "mmate_fast.cli", "run", "_soak_app:make", "--workers", str(a.workers),
                "--app-dir", HERE, "--health-port", str(port), "--log-level", "warning"]
    print(f"soak: {a.minutes:g} min, {a.workers} worker(s) on {a.transport}, {a.rate:g} commands/s each, "
          f"sampling every {a.sample_every:g} s; fleet health on http://127.0.0.1:{port}/health",
          file=sys.stderr, flush=True)
    # SIGTERM (and SIGINT, even when started in the background with it ignored) end the soak early:
    # the fleet is drained and the samples so far judged
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sup = subprocess.Popen(argv_run, cwd=ROOT, env=env)
    samples: dict[int, list[tuple[float, int, int]]] = {}
    pids_seen: dict[int, set[int]] = {}
    acked: list[tuple[float, int]] = []
    t0 = time.monotonic()
    end = t0 + a.minutes * 60
    try:
        supervisor = psutil.Process(sup.pid)
        time.sleep(min(5.0, a.sample_every))
        while time.monotonic() < end and sup.poll() is None:
            now = time.monotonic() - t0
            children = supervisor.children()
            for i, child in enumerate(sorted(children, key=lambda c: c.create_time())):
                try:
                    slot = _slot_of(child) or i + 1
                    samples.setdefault(slot, []).append((now, child.memory_info().rss, child.num_fds()))
                    pids_seen.setdefault(slot, set()).add(child.pid)
                except psutil.NoSuchProcess:
                    continue
            n = fleet_acked(port)
            if n is not None:
                acked.append((now, n))
            last = {s: v[-1] for s, v in samples.items()}
            print(f"[{now / 60:5.1f} min] " + "  ".join(f"w{s}: {r / MIB:6.1f} MiB {f:3d} fds"
                                                        for s, (_, r, f) in sorted(last.items()))
                  + (f"  acked {n:,}" if n is not None else ""), file=sys.stderr, flush=True)
            time.sleep(max(0.0, min(a.sample_every, end - time.monotonic())))
    except KeyboardInterrupt:
        print("soak: stopped early: judging the samples so far", file=sys.stderr, flush=True)
    finally:
        crashed = sup.poll()
        if crashed is None:
            sup.send_signal(signal.SIGTERM)
            try:
                code = sup.wait(60)
            except subprocess.TimeoutExpired:
                sup.kill()
                code = sup.wait()
        else:
            code = crashed
        if a.transport == "rabbitmq":
            _delete_queues(service)
    results = {slot: verdict(v, a.warmup) for slot, v in sorted(samples.items()) if v}
    restarted = sorted(s for s, pids in pids_seen.items() if len(pids) > 1)
    rate = (acked[-1][1] - acked[0][1]) / (acked[-1][0] - acked[0][0]) if len(acked) > 1 and \
        acked[-1][0] > acked[0][0] else None
    head = ["worker", "RSS first", "after warm-up", "last", "max MiB", "slope KiB/min", "growth MiB",
            "allowed", "fds", "memory", "fds"]
    rows = [[str(s), f"{r['rss_first_mib']:.1f}", f"{r['rss_after_warmup_mib']:.1f}",
             f"{r['rss_last_mib']:.1f}", f"{r['rss_max_mib']:.1f}", f"{r['rss_slope_kib_per_min']:+.1f}",
             f"{r['rss_growth_mib']:+.2f}", f"{r['allowed_mib']:.1f}", f"{r['fds_min']}..{r['fds_max']}",
             "flat" if r["memory_flat"] else "GROWS", "flat" if r["fds_flat"] else "GROWS"]
            for s, r in results.items()]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else []
    print(f"soak {a.transport}: {a.minutes:g} min, {a.workers} worker(s), {a.rate:g} commands/s each; "
          f"fleet acked {acked[-1][1] if acked else 0:,} messages ({rate or 0:,.0f} msg/s); "
          f"supervisor exit {code}")
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))
    why = [f"worker {s} grows {results[s]['rss_growth_mib']:+.2f} MiB" for s in results
           if not results[s]["memory_flat"]]
    why += [f"worker {s} fds {results[s]['fds_min']}..{results[s]['fds_max']}" for s in results
            if not results[s]["fds_flat"]]
    why += [f"worker {s} was restarted" for s in restarted]
    if code != 0:
        why.append(f"the fleet exited with code {code}")
    expected = a.workers * a.rate * 1.1  # commands + one event in ten
    if rate is None or rate < 0.5 * expected:
        why.append(f"the fleet acked {rate or 0:,.0f} msg/s, under half the {expected:,.0f} msg/s produced")
    if not results:
        why.append("no samples")
    flat = not why
    print("RESULT: flat" if flat else f"RESULT: NOT FLAT ({'; '.join(why)})")
    print(json.dumps({"soak": a.transport, "minutes": a.minutes, "workers": a.workers, "rate": a.rate,
                      "acked": acked[-1][1] if acked else 0, "acked_per_s": rate, "flat": flat, "why": why,
                      "per_worker": results}))
    return 0 if flat else 1


def _slot_of(proc: psutil.Process) -> int | None:
    """The worker's slot from its command line (the JSON config mmate run passes)."""
    try:
        cfg = json.loads(proc.cmdline()[-1])
        return int(cfg["slot"])
    except (ValueError, KeyError, IndexError, TypeError, psutil.Error):
        return None


def _delete_queues(service: str) -> None:
    import asyncio

    from mmate_fast.transports import connect

    async def run() -> None:
        conn = await connect(AMQP_URL)
        ch = await conn.channel()
        for q in (f"{service}-queue", f"dlq.{service}-queue"):
            await ch.queue_delete(q)
        await conn.close()

    try:
        asyncio.run(run())
    except Exception as exc:
        print(f"soak: could not delete the queues of {service}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
