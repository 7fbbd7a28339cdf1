"""One run of the fleet benchmark: ``BENCH_BODY=mmate python benchmarks/_fleet_bench.py ROW HANDLER
WORKERS N`` prints one JSON line (started by _fleet_runner.py).

ROW: ``mmate_fast`` (``mmate run _fleet_mmate:make --workers W``: our supervisor and W spawned
workers), ``aio_pika`` (W processes of _fleet_aiopika.py, the fleet written by hand) or ``raw`` (W
processes of _fleet_raw.py). HANDLER: light | cpu1ms (_fleet_common).

The queue is declared (durable, as the Client's service queue), the fleet started, and once the
broker reports W consumers on it the N messages (one real Mmate envelope, the mmate-level bytes of
the other benchmarks) are published as fast as a raw socket can (one process, 1000-message chunks)
while the fleet consumes. Rate = N / (the last message handled by any worker - the publish start);
the workers' tallies (_fleet_common.Tally) say when every message was handled. Then the fleet gets
SIGTERM (and must exit by itself), and the queue must be empty.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from _common import BATCH, BODY, ROOT, TIME_CAP, RawAMQP, broker_cpu_s, publish_frames
from _fleet_common import DEFAULT_PREFETCH
from pamqp import commands as C

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ("raw", "mmate_fast", "aio_pika")


def queue_state(admin: RawAMQP, q: str) -> tuple[int, int]:
    ok = admin.rpc(C.Queue.Declare(queue=q, passive=True), C.Queue.DeclareOk)
    return int(ok.message_count), int(ok.consumer_count)


def start_fleet(row: str, q: str, service: str, workers: int,
                env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    if row == "mmate_fast":
        argv = [sys.executable, "-m", "mmate_fast.cli", "run", "_fleet_mmate:make", "--workers", str(workers),
                "--app-dir", HERE, "--log-level", "warning", "--drain-timeout", "5"]
        return [subprocess.Popen(argv, cwd=ROOT, env=env)]
    script = {"aio_pika": "_fleet_aiopika.py", "raw": "_fleet_raw.py"}[row]
    # each in its own session, as `mmate run` starts its workers: with the kernel's autogroup
    # scheduling (on here) a session is a CPU share of its own, so on a loaded machine the rows would
    # otherwise get different shares of the 2 cores
    return [subprocess.Popen([sys.executable, os.path.join(HERE, script), q], cwd=ROOT, env=env,
                             start_new_session=True) for _ in range(workers)]


def read_tallies(directory: str) -> list[dict[str, Any]]:
    out = []
    for path in glob.glob(os.path.join(directory, "*.json")):
        try:
            with open(path) as f:
                out.append(json.load(f))
        except (OSError, ValueError):  # being replaced right now: next poll
            continue
    return out


def run(row: str, handler: str, workers: int, n: int) -> dict[str, Any]:
    service = f"bench-fleet-{row.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    q = f"{service}-queue"
    tally_dir = tempfile.mkdtemp(prefix="bench-fleet-")
    admin = RawAMQP()
    admin.rpc(C.Queue.Declare(queue=q, durable=True), C.Queue.DeclareOk)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, HERE, env.get("PYTHONPATH", "")) if p)
    env.update(BENCH_FLEET_DIR=tally_dir, BENCH_FLEET_HANDLER=handler, BENCH_FLEET_SERVICE=service,
               BENCH_FLEET_PREFETCH=os.environ.get("BENCH_FLEET_PREFETCH", str(DEFAULT_PREFETCH)))
    procs = start_fleet(row, q, service, workers, env)
    res: dict[str, Any] = {"client": row, "handler": handler, "workers": workers, "n": n}
    try:
        t_spawn = time.perf_counter()
        dl = t_spawn + 60
        while queue_state(admin, q)[1] < workers:
            if time.perf_counter() > dl or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the fleet did not start {workers} consumer(s) within 60 s")
            time.sleep(0.01)
        res["startup_s"] = time.perf_counter() - t_spawn
        b0 = broker_cpu_s()
        t_start = time.time()
        frames = publish_frames(q, BODY)
        full, rest = divmod(n, BATCH)
        admin.send_chunks(frames * BATCH, full, time.perf_counter() + TIME_CAP)
        if rest:
            admin.sock.sendall(frames * rest)
        dl = time.perf_counter() + TIME_CAP
        tallies = read_tallies(tally_dir)
        while sum(t["count"] for t in tallies) < n and time.perf_counter() < dl:
            time.sleep(0.02)
            tallies = read_tallies(tally_dir)
        b1 = broker_cpu_s()
        count = sum(t["count"] for t in tallies)
        last = max((t["last"] for t in tallies if t["count"]), default=t_start)
        res.update(count=count, capped=count < n, elapsed_s=last - t_start,
                   rate=count / (last - t_start) if last > t_start else None,
                   cpu_s=sum(t["cpu_s"] for t in tallies),
                   per_worker=sorted(t["count"] for t in tallies),
                   broker_cpu_s=None if b0 is None or b1 is None else b1 - b0)
        ext = [t["extensions"] for t in tallies if t.get("extensions")]
        if ext:
            res["extensions"] = {"compiled": all(e["compiled"] for e in ext), "modules": ext[0]["modules"]}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                rc = p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            if rc != 0:
                res.setdefault("exit_codes", []).append(rc)
        left = queue_state(admin, q)[0]
        res["left_in_queue"] = left
        admin.rpc(C.Queue.Delete(queue=q), C.Queue.DeleteOk)
        admin.close()
        shutil.rmtree(tally_dir, ignore_errors=True)
    return res


def main() -> None:
    row, handler, workers, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    res = run(row, handler, workers, n)
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
