"""``mmate run`` on the real broker: N worker processes that drain on SIGTERM, restart when killed,
and report their health.

The service is tests/integration/fleet_app.py; every handler call is journalled (``started`` /
``done`` + the job and the worker's pid) to a file, so the test sees what each worker did.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from mmate_fast.client import Client
from tests.integration.fleet_app import FleetJob
from tests.integration.fleet_proc import READY, TARGET, FleetProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]




def journal(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    return [(w, j, int(p)) for w, j, p in (line.split() for line in path.read_text().splitlines())]


async def publish_jobs(url: str, service: str, jobs: list[str]) -> None:
    async with Client(url, service_name=f"{service}-pub") as pub:
        for job in jobs:
            await pub.publish_command(FleetJob(job=job, target_service=service))


def free_port_block(n: int) -> int:
    """A port P with P..P+n free now (best effort: bound and released)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65000:
            continue
        try:
            socks = []
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


async def test_sigterm_drains_in_flight_handlers_each_message_acked_once(
        rabbitmq_url: str, service: str, tmp_path: Path, fleets: list[FleetProcess]) -> None:
    log1, log2 = tmp_path / "phase1", tmp_path / "phase2"
    env = {"FLEET_URL": rabbitmq_url, "FLEET_SERVICE": service, "FLEET_SECONDS": "0.4", "FLEET_PREFETCH": "5",
           "FLEET_JOURNAL": str(log1)}
    fleet = FleetProcess(TARGET, "--workers", "2", "--drain-timeout", "10", env=env)
    fleets.append(fleet)
    fleet.wait_for(READY, count=2)
    jobs = [f"job-{i:03d}" for i in range(60)]
    await publish_jobs(rabbitmq_url, service, jobs)
    while sum(1 for w, _, _ in journal(log1) if w == "done") < 10:  # both workers busy now
        time.sleep(0.02)
    at_signal = journal(log1)
    assert fleet.stop(signal.SIGTERM) == 0, fleet.log
    fleet.wait_for(r"fleet stopped \(exit code 0\)")
    assert len(fleet.matching(r"worker \d+ \(pid \d+\) stopped \(exit code 0\)")) == 2, fleet.log
    phase1 = journal(log1)
    started = Counter(j for w, j, _ in phase1 if w == "started")
    done = Counter(j for w, j, _ in phase1 if w == "done")
    in_flight_at_signal = {j for w, j, _ in at_signal if w == "started"} - {j for w, j, _ in at_signal
                                                                            if w == "done"}
    assert in_flight_at_signal, "no handler was running when SIGTERM was sent"
    assert started == done, "a handler was cut off by the drain"  # every started handler finished
    assert max(done.values()) == 1, "a job was handled twice by the draining fleet"
    assert len({pid for _, _, pid in phase1}) == 2, "both workers consumed"

    # what the first fleet did not take is still queued, and what it finished is not (acked once)
    env["FLEET_JOURNAL"], env["FLEET_SECONDS"] = str(log2), "0"
    second = FleetProcess(TARGET, "--workers", "1", env=env)
    fleets.append(second)
    second.wait_for(READY)
    deadline = time.monotonic() + 30
    while len(done) + sum(1 for w, _, _ in journal(log2) if w == "done") < len(jobs):
        assert time.monotonic() < deadline, \
            f"lost: {sorted(set(jobs) - set(done) - {j for _, j, _ in journal(log2)})}"
        time.sleep(0.05)
    time.sleep(0.3)  # a duplicate would come now
    assert second.stop() == 0, second.log
    done2 = Counter(j for w, j, _ in journal(log2) if w == "done")
    assert not set(done) & set(done2), "a job the draining fleet finished was delivered again (not acked)"
    assert sorted(set(done) | set(done2)) == jobs and max(done2.values()) == 1


async def test_a_killed_worker_is_restarted_and_health_is_served_per_worker_and_for_the_fleet(
        rabbitmq_url: str, service: str, fleets: list[FleetProcess]) -> None:
    port = free_port_block(2)
    env = {"FLEET_URL": rabbitmq_url, "FLEET_SERVICE": service}
    fleet = FleetProcess(TARGET, "--workers", "2", "--health-port", str(port), "--restart-delay", "0.1",
                         env=env)
    fleets.append(fleet)
    fleet.wait_for(READY, count=2)

    def get(url: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, report = get(f"http://127.0.0.1:{port}/health")
    assert status == 200 and report["status"] == "healthy", report
    assert set(report["checks"]) == {"fleet", "worker-1", "worker-2"}
    pids = {report["checks"][f"worker-{i}"]["details"]["pid"] for i in (1, 2)}
    assert pids == set(fleet.worker_pids())
    for i in (1, 2):  # each worker answers on its own port with its own checks
        status, own = get(f"http://127.0.0.1:{port + i}/health")
        assert status == 200 and "connection" in own["checks"], own

    victim = report["checks"]["worker-2"]["details"]["pid"]
    os.kill(victim, signal.SIGKILL)
    fleet.wait_for(rf"worker 2 \(pid {victim}\) exited with code -9 .*restarting it in")
    fleet.wait_for(READY, count=3)
    status, report = get(f"http://127.0.0.1:{port}/health")
    assert status == 200 and report["status"] == "healthy", report
    assert report["checks"]["worker-2"]["details"]["restarts"] == 1
    assert report["checks"]["worker-2"]["details"]["pid"] != victim
    assert len(fleet.worker_pids()) == 2
    assert fleet.stop() == 0, fleet.log


def test_workers_whose_supervisor_is_killed_drain_by_themselves(fleets: list[FleetProcess]) -> None:
    import psutil

    fleet = FleetProcess(TARGET, "--workers", "2", env={"FLEET_URL": "memory://", "FLEET_SERVICE": "wt7-orphans"})
    fleets.append(fleet)
    fleet.wait_for(READY, count=2)
    workers = [psutil.Process(pid) for pid in fleet.worker_pids()]
    assert len(workers) == 2
    fleet.proc.kill()  # SIGKILL: the supervisor cannot tell anyone
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, "workers outlived their supervisor"
    assert fleet.wait_for(r"the supervisor went away: draining", count=2)
    assert fleet.wait_for(r"drained after SIGTERM: exiting", count=2)
