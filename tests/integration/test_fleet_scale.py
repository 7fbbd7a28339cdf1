"""``mmate run --autoscale`` on the real broker (a backlog grows the fleet, an idle queue shrinks it),
``--reload`` (a code change restarts the workers on the new code), and giving up loudly (a crash
loop, a target that cannot be loaded)."""
from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from mmate_fast.client import Client
from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from tests.integration.fleet_app import FleetJob
from tests.integration.fleet_proc import READY, TARGET, FleetProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HERE = Path(__file__).resolve().parent



async def test_autoscale_grows_on_a_backlog_and_shrinks_when_idle(
        rabbitmq_url: str, service: str, fleets: list[FleetProcess]) -> None:
    # one worker clears ~40 jobs/s (prefetch 2, 50 ms each): 400 jobs are a backlog of ~10 s
    env = {"FLEET_URL": rabbitmq_url, "FLEET_SERVICE": service, "FLEET_SECONDS": "0.05", "FLEET_PREFETCH": "2"}
    fleet = FleetProcess(TARGET, "--autoscale", "1,3", "--scale-interval", "0.3", "--scale-up-backlog", "20",
                         "--scale-up-lag", "0.5", "--scale-down-samples", "3", "--scale-cooldown", "0.6",
                         env=env)
    fleets.append(fleet)
    fleet.wait_for(READY)
    time.sleep(1.0)
    assert not fleet.matching("autoscale:"), "an idle fleet at its minimum changed size"
    async with Client(rabbitmq_url, service_name=f"{service}-pub") as pub:
        await pub.publish_batch([FleetJob(job=f"j{i}", target_service=service) for i in range(400)])
    fleet.wait_for(r"autoscale: 1 -> 2 worker\(s\): \d+ ready, lag")
    fleet.wait_for(r"autoscale: 2 -> 3 worker\(s\)")
    fleet.wait_for(READY, count=3)
    fleet.wait_for(r"autoscale: 3 -> 2 worker\(s\): 0 ready", timeout=40)
    fleet.wait_for(r"autoscale: 2 -> 1 worker\(s\): 0 ready", timeout=20)
    fleet.wait_for(r"worker 3 \(pid \d+\) stopped \(exit code 0\)")
    fleet.wait_for(r"worker 2 \(pid \d+\) stopped \(exit code 0\)")
    assert not fleet.matching(r"autoscale: 3 -> 4"), "grew past MAX"
    assert len(fleet.worker_pids()) == 1
    assert fleet.stop() == 0, fleet.log
    conn = await connect(rabbitmq_url)
    ok = await (await conn.channel()).queue_declare(topology.service_queue(service), passive=True)
    await conn.close()
    assert ok.message_count == 0  # everything consumed; retired workers drained what they had


def test_reload_restarts_the_workers_on_the_new_code(tmp_path: Path, fleets: list[FleetProcess]) -> None:
    app = tmp_path / "reload_app.py"
    shutil.copy(HERE / "fleet_app.py", app)
    fleet = FleetProcess("reload_app:make", "--workers", "2", "--reload", "--app-dir", str(tmp_path),
                         env={"FLEET_URL": "memory://", "FLEET_SERVICE": "wt7-reload-v1"})
    fleets.append(fleet)
    fleet.wait_for(READY, count=2)
    fleet.wait_for(r"watching .* for changes")
    app.write_text(app.read_text().replace('"FLEET_SERVICE", "wt7-fleet-app"', '"FLEET_SERVICE_V2", "wt7-v2"'))
    fleet.wait_for(r"changed: .*reload_app\.py; restarting the workers")
    fleet.wait_for(r"worker \d \(pid \d+\) replaced \(exit code 0\)", count=2)
    fleet.wait_for(r"ready .*: consuming wt7-v2-queue", count=2)  # the new code runs
    # a syntax error: the workers cannot load it, the supervisor waits for the fix (no crash loop)
    good = app.read_text()
    app.write_text(good + "\nthis is not python\n")
    fleet.wait_for(r"cannot load reload_app:make.*waiting for a code change", count=2)
    app.write_text(good.replace('"wt7-v2"', '"wt7-v3"'))
    fleet.wait_for(r"ready .*: consuming wt7-v3-queue", count=2)
    assert fleet.stop() == 0, fleet.log


def test_a_crash_loop_gives_up_loudly(fleets: list[FleetProcess]) -> None:
    fleet = FleetProcess("tests.integration.fleet_app:crashing", "--workers", "2", "--restart-delay", "0.05",
                         "--crash-limit", "3")
    fleets.append(fleet)
    assert fleet.wait(60) == 1
    assert fleet.matching(r"CRITICAL giving up: worker \d exited 3 times in a row within 10 s of starting "
                          r"\(last exit code 1: RuntimeError: this factory always fails")
    assert len(fleet.matching(r"restarting it in")) >= 2
    assert fleet.matching(r"fleet stopped \(exit code 1\)")


@pytest.mark.parametrize(("target", "says"), [
    ("tests.integration.fleet_app:nope", "has no attribute 'nope'"),
    ("tests.integration.fleet_app:not_a_client", "returned object, not a mmate_fast Client"),
    ("tests.integration.no_such_module:make", "no such module"),
])
def test_a_target_that_cannot_be_loaded_is_not_restarted(target: str, says: str,
                                                         fleets: list[FleetProcess]) -> None:
    fleet = FleetProcess(target, "--workers", "1")
    fleets.append(fleet)
    assert fleet.wait(60) == 1
    assert fleet.matching(r"CRITICAL giving up: worker \d cannot load " + target.replace(".", r"\.") + ".*" + says)
    assert not fleet.matching("restarting it in")


def test_a_taken_health_port_is_one_clear_line_and_exit_1(fleets: list[FleetProcess]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        fleet = FleetProcess(TARGET, "--health-port", str(taken.getsockname()[1]))
        fleets.append(fleet)
        assert fleet.wait(60) == 1
    assert fleet.matching(r"^mmate run: cannot serve the observability endpoints on 127\.0\.0\.1:\d+"), fleet.log
    assert not fleet.matching("Traceback") and not fleet.matching("worker 1 started")
