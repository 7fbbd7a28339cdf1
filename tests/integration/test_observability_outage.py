"""Health follows the broker connection (issue 10 item 3): on a throw-away RabbitMQ node whose app is
stopped under a serving client, ``/health`` turns unhealthy (503, ``not ready``) while the connection
recovers, and healthy again once it is back; the reconnect shows in ``/metrics``."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from tests.integration import broker_node
from tests.integration.broker_node import BrokerNode

pytestmark = pytest.mark.integration
FAST = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=60.0)


@dataclass
class OutagePing(Event):
    n: int = 0


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    yield from broker_node.running(broker_node.start)


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, timeout=aiohttp.ClientTimeout(total=20)) as r:
        return r.status, await r.text()


async def _until_status(url: str, want: int, timeout: float = 60.0) -> str:
    end = time.monotonic() + timeout
    while True:
        status, body = await _get(url)
        if status == want:
            return body
        if time.monotonic() > end:
            raise AssertionError(f"{url} still answers {status} after {timeout} s: {body}")
        await asyncio.sleep(0.1)


async def test_health_goes_unhealthy_while_the_broker_is_away_and_back(node: BrokerNode) -> None:
    svc = f"obs-outage-{uuid.uuid4().hex[:8]}"
    async with Client(node.url_with(name=svc), service_name=svc, recovery=FAST) as c:
        got: list[int] = []
        c.add_handler(OutagePing, lambda e: got.append(e.n))
        await c.start_consuming()
        obs = await c.serve_observability(port=0, check_timeout=2.0)
        await _until_status(f"{obs.url}/health", 200)
        await asyncio.to_thread(node.stop_app)
        try:
            report = json.loads(await _until_status(f"{obs.url}/health", 503))
            assert report["status"] == "unhealthy"
            assert report["checks"]["connection"]["status"] == "unhealthy"
            assert report["checks"]["connection"]["message"] in ("connection lost; reconnecting",
                                                                  "connection closed")
            assert await _get(f"{obs.url}/health/ready") == (503, "not ready")
            assert await _get(f"{obs.url}/health/live") == (200, "alive")  # the process still serves
            metrics = (await _get(f"{obs.url}/metrics"))[1]
            assert "mmate_connection_up 0.0" in metrics
        finally:
            await asyncio.to_thread(node.start_app)
        report = json.loads(await _until_status(f"{obs.url}/health", 200))
        assert report["status"] == "healthy", report
        assert report["checks"]["connection"]["details"]["reconnects"] == 1
        assert await _get(f"{obs.url}/health/ready") == (200, "ready")
        samples = {s.name: s.value for fam in text_string_to_metric_families((await _get(f"{obs.url}/metrics"))[1])
                   for s in fam.samples if not s.labels}
        assert samples["mmate_connection_reconnects_total"] == 1
        assert samples["mmate_connection_disconnects_total"] == 1
        assert samples["mmate_connection_up"] == 1
        await c.publish_event(OutagePing(n=7, aggregate_id="a"))  # and it works again end to end
        end = time.monotonic() + 30
        while got != [7] and time.monotonic() < end:
            await asyncio.sleep(0.05)
        assert got == [7]


async def test_health_says_degraded_while_the_broker_blocks_publishing(node: BrokerNode) -> None:
    """A memory alarm (watermark 0) makes the broker block publishing connections: the connection
    check turns degraded ("blocked", HTTP 200), healthy again once the alarm clears."""
    svc = f"obs-blocked-{uuid.uuid4().hex[:8]}"
    async with Client(node.url_with(name=svc), service_name=svc, recovery=FAST,
                      publisher_confirms=False) as c:
        obs = await c.serve_observability(port=0, check_timeout=2.0)
        await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0")
        try:
            # the broker tells a connection it is blocked when it publishes
            publishing = asyncio.ensure_future(c.publish_event(OutagePing(n=1, aggregate_id="a")))
            end = time.monotonic() + 30
            while not getattr(c.connection, "blocked", False) and time.monotonic() < end:
                await asyncio.sleep(0.05)
            status, body = await _get(f"{obs.url}/health")
            report = json.loads(body)
            conn = report["checks"]["connection"]
            assert conn["status"] == "degraded", conn
            assert status == 200 and report["status"] == "degraded", report
            # the broker reads nothing from a blocked connection: the queue checks say so at once
            queues = report["checks"]["queues"]
            assert queues["status"] == "degraded", queues
            assert queues["message"] == "not inspected: the broker blocks this connection (low on memory)"
            assert conn["message"].startswith("the broker blocked publishing") and conn["details"]["blocked"]
            assert "mmate_connection_blocked 1.0" in (await _get(f"{obs.url}/metrics"))[1]
        finally:
            await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
        await asyncio.wait_for(publishing, 30)  # the publish goes out once unblocked
        body = await _until_status(f"{obs.url}/health", 200)
        end = time.monotonic() + 30
        while json.loads(body)["checks"]["connection"]["status"] != "healthy" and time.monotonic() < end:
            await asyncio.sleep(0.1)
            body = (await _get(f"{obs.url}/health"))[1]
        assert json.loads(body)["checks"]["connection"]["status"] == "healthy"
