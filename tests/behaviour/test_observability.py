"""Health checks, metrics and their HTTP endpoints (issue 10 item 3), on the in-memory broker and
RabbitMQ: the endpoints are scraped over real sockets with aiohttp's client."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.observability import HealthStatus, Thresholds
from tests.behaviour.behaviour_helpers import wait_until
from tests.behaviour.conftest import Names

CHECKS = {"connection", "channels", "consumers", "queues", "consumer_lag", "dead_letters"}


@dataclass
class ObsPing(Event):
    n: int = 0


async def _get(url: str, method: str = "GET", **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.request(method, url, headers=headers,
                                                       timeout=aiohttp.ClientTimeout(total=15)) as r:
        return r.status, await r.text(), r.headers.get("Content-Type", "")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


async def test_endpoints_over_http(url: str, names: Names) -> None:
    n = 20
    async with Client(url, service_name=names.service("obs")) as c:
        c.add_handler(ObsPing, lambda e: None)
        sub = await c.start_consuming()
        obs = await c.serve_observability(port=0)
        assert obs.server.port != 0
        for i in range(n):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked == n, 10)

        status, body, ctype = await _get(f"{obs.url}/health")
        assert status == 200 and ctype.startswith("application/json")
        assert body.startswith('{\n  "status": "healthy",')  # Go's json.MarshalIndent(.., "", "  ")
        report = json.loads(body)
        assert list(report) == ["status", "timestamp", "duration", "checks", "metadata"]
        assert set(report["checks"]) == CHECKS
        for name, check in report["checks"].items():
            assert check["name"] == name and check["status"] == "healthy", check
            assert isinstance(check["duration"], int) and check["timestamp"].endswith("Z")
        assert report["metadata"]["service_name"] == c.service_name
        queues = report["checks"]["queues"]["details"]["queues"]
        assert queues == [{"queue_name": c.service_queue, "message_count": 0, "consumer_count": 1,
                           "status": "healthy"}]

        assert await _get(f"{obs.url}/health/live") == (200, "alive", "text/plain; charset=utf-8")
        assert (await _get(f"{obs.url}/health/ready"))[:2] == (200, "ready")
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            assert (await _get(f"{obs.url}/health", method))[0] == 405
            assert (await _get(f"{obs.url}/metrics", method))[0] == 405

        status, text, ctype = await _get(f"{obs.url}/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        got = _samples(text)
        t = (("type", "ObsPing"),)
        q = (("queue", c.service_queue),)
        assert got["mmate_messages_published_total", t] == n
        assert got["mmate_messages_consumed_total", t] == n
        assert got["mmate_handler_seconds_count", t] == n
        assert got["mmate_publish_seconds_count", t] == n
        assert got["mmate_deliveries_received_total", q] == n
        assert got["mmate_deliveries_acked_total", q] == n
        assert got["mmate_deliveries_dead_lettered_total", q] == 0
        assert got["mmate_publisher_sent_total", ()] == n
        assert got["mmate_connection_up", ()] == 1
        # OpenMetrics when the scraper asks for it
        status, text, ctype = await _get(f"{obs.url}/metrics", Accept="application/openmetrics-text")
        assert status == 200 and ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    # closed with the client: nothing answers any more
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(f"{obs.url}/health/live")


async def test_dead_letters_seen_in_health_and_metrics(url: str, names: Names) -> None:
    async with Client(url, service_name=names.service("obsdlq")) as c:

        @c.handler(ObsPing)
        def handle(e: ObsPing) -> None:
            if e.n == 3:
                raise ValueError("three is refused")

        sub = await c.start_consuming()
        obs = await c.serve_observability(port=0)
        for i in range(5):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked + sub.stats.dead_lettered == 5, 10)
        status, body, _ = await _get(f"{obs.url}/health")
        report = json.loads(body)
        assert status == 200 and report["status"] == "degraded"  # degraded still answers 200, as Go
        dl = report["checks"]["dead_letters"]
        assert dl["status"] == "degraded" and "1 dead letter" in dl["message"]
        assert dl["details"]["queues"] == [{"queue_name": f"dlq.{c.service_queue}",
                                            "source_queue": c.service_queue, "message_count": 1}]
        assert (await _get(f"{obs.url}/health/ready"))[:2] == (200, "ready")
        got = _samples((await _get(f"{obs.url}/metrics"))[1])
        q = (("queue", c.service_queue),)
        assert got["mmate_deliveries_dead_lettered_total", q] == 1
        assert got["mmate_delivery_failures_total", (("queue", c.service_queue), ("reason", "handler-error"))] == 1
        assert got["mmate_messages_failed_total", (("type", "ObsPing"),)] == 1
        assert got["mmate_messages_consumed_total", (("type", "ObsPing"),)] == 4


async def test_health_checks_of_a_dlq_not_yet_declared_log_nothing(
        url: str, names: Names, caplog: pytest.LogCaptureFixture) -> None:
    """The dead-letter check looks for ``dlq.{queue}`` with a passive declare; a DLQ nobody needed yet
    is a 404 on the broker, which must not show as a channel error (a warning) at every health check."""
    async with Client(url, service_name=names.service("obsnodlq")) as c:

        @c.handler(ObsPing)
        def handle(e: ObsPing) -> None:
            pass

        await c.start_consuming()
        obs = await c.serve_observability(port=0)
        caplog.clear()
        for _ in range(3):
            status, body, _ = await _get(f"{obs.url}/health")
            assert status == 200
            assert json.loads(body)["checks"]["dead_letters"]["status"] == "healthy"
        assert [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []


async def test_queue_depth_and_consumer_lag(url: str, names: Names) -> None:
    """A slow consumer: the queue fills past the thresholds (degraded Elevated, then High) and the lag
    check sees the deliveries in flight and no progress between two runs."""
    release = asyncio.Event()
    async with Client(url, service_name=names.service("obslag"), prefetch=1) as c:

        async def slow(e: ObsPing) -> None:
            await release.wait()

        c.add_handler(ObsPing, slow)
        sub = await c.start_consuming()
        obs = await c.serve_observability(port=0, thresholds=Thresholds(elevated=2, high=5, lag_seconds=60))
        for i in range(4):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.received == 1, 10)
        await asyncio.sleep(0.2)
        r = await obs.health.run_one("queues")
        assert r.status is HealthStatus.DEGRADED and "Elevated: 3 messages" in r.message, r
        lag = await obs.health.run_one("consumer_lag")
        row = lag.details["subscriptions"][0]
        assert (row["unsettled"], row["in_flight"], row["messages_ready"]) == (1, 1, 3)
        assert lag.status is HealthStatus.HEALTHY  # one sample: no rate yet
        for i in range(4, 8):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: c.publisher is not None and c.publisher.published == 8)
        await asyncio.sleep(0.2)
        r = await obs.health.run_one("queues")
        assert r.status is HealthStatus.DEGRADED and "High: 7 messages" in r.message, r
        lag = await obs.health.run_one("consumer_lag")
        assert lag.status is HealthStatus.DEGRADED and "none consumed since the last check" in lag.message
        assert lag.details["subscriptions"][0]["consume_rate"] == 0
        status, body, _ = await _get(f"{obs.url}/health")
        assert status == 200 and json.loads(body)["status"] == "degraded"
        release.set()
        await wait_until(lambda: sub.stats.acked == 8, 10)
        await obs.health.run_one("consumer_lag")
        assert (await obs.health.run_one("queues")).status is HealthStatus.HEALTHY
        got = _samples((await _get(f"{obs.url}/metrics"))[1])  # async handlers are observed too
        assert got["mmate_handler_seconds_count", (("type", "ObsPing"),)] == 8
        assert got["mmate_messages_consumed_total", (("type", "ObsPing"),)] == 8
        assert got["mmate_subscription_in_flight", (("queue", c.service_queue),)] == 0


async def test_messages_without_a_consumer_are_unhealthy(url: str, names: Names) -> None:
    """Go's QueueInspector: messages in the service queue and nobody consuming it is unhealthy (503,
    ``not ready``); a consumer that starts makes it healthy again."""
    async with Client(url, service_name=names.service("obsidle")) as c:
        obs = await c.serve_observability(port=0)
        await c.publish_event(ObsPing(n=1, aggregate_id="a"), exchange="", routing_key=c.service_queue)
        await c.publish_event(ObsPing(n=2, aggregate_id="a"), exchange="", routing_key=c.service_queue)
        status, body, _ = await _get(f"{obs.url}/health")
        report = json.loads(body)
        assert status == 503 and report["status"] == "unhealthy"
        assert report["checks"]["queues"]["message"] == f"{c.service_queue}: 2 message(s) and no consumer"
        assert report["checks"]["consumers"]["message"] == "no subscriptions"
        assert await _get(f"{obs.url}/health/ready") == (503, "not ready", "text/plain; charset=utf-8")
        c.add_handler(ObsPing, lambda e: None)
        sub = await c.start_consuming()
        await wait_until(lambda: sub.stats.acked == 2, 10)
        assert (await _get(f"{obs.url}/health"))[0] == 200


async def test_own_checks_and_a_slow_one(url: str, names: Names) -> None:
    async with Client(url, service_name=names.service("obsown")) as c:
        obs = await c.serve_observability(port=0, metrics=False)

        @obs.health.check("database", timeout=0.2)
        async def database() -> Any:
            await asyncio.sleep(5)

        obs.health.add("cache", lambda: HealthStatus.DEGRADED)
        status, body, _ = await _get(f"{obs.url}/health")
        report = json.loads(body)
        assert status == 503 and report["status"] == "unhealthy"
        db = report["checks"]["database"]
        assert db["status"] == "unhealthy" and db["error"] == "timeout" and "0.2 s" in db["message"]
        assert report["checks"]["cache"] == {**report["checks"]["cache"], "status": "degraded"}
        assert (await _get(f"{obs.url}/metrics"))[0] == 404  # metrics=False: no /metrics
        obs.health.remove("database")
        assert (await _get(f"{obs.url}/health"))[0] == 200


async def test_opentelemetry_metrics_with_the_sdk_reader(url: str, names: Names) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from mmate_fast.observability import OTelMetrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    async with Client(url, service_name=names.service("obsotel")) as c:
        otel = OTelMetrics(c, meter_provider=provider)
        assert c.observers == (otel,)

        @c.handler(ObsPing)
        def handle(e: ObsPing) -> None:
            if e.n == 0:
                raise ValueError("zero")

        sub = await c.start_consuming()
        for i in range(6):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked + sub.stats.dead_lettered == 6, 10)
        obs = await c.serve_observability(port=0)  # Prometheus too: both observe the same client
        assert set(c.observers) == {otel, obs.metrics.messages}
        await c.publish_event(ObsPing(n=9, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked + sub.stats.dead_lettered == 7, 10)
        data = reader.get_metrics_data()
        prom = _samples(obs.metrics.text())
        assert prom["mmate_messages_published_total", (("type", "ObsPing"),)] == 1  # from its start on
        otel.close()
        assert c.observers == (obs.metrics.messages,)
    points: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points[m.name] = list(m.data.data_points)

    def value(name: str, **attrs: str) -> Any:
        want = {k.replace("_", "."): v for k, v in attrs.items()}
        hits = [p for p in points[name] if dict(p.attributes) == want]
        assert len(hits) == 1, (name, points.get(name))
        return hits[0]

    assert value("mmate.messages.published", messaging_message_type="ObsPing").value == 7
    assert value("mmate.messages.consumed", messaging_message_type="ObsPing").value == 6
    assert value("mmate.messages.failed", messaging_message_type="ObsPing").value == 1
    handler = value("mmate.handler.duration", messaging_message_type="ObsPing")
    assert handler.count == 7 and handler.sum >= 0
    assert value("mmate.publish.duration", messaging_message_type="ObsPing").count == 7
    assert value("mmate.handlers.in_flight", messaging_destination_name=c.service_queue).value == 0
    q = c.service_queue
    assert value("mmate.deliveries.received", messaging_destination_name=q).value == 7
    assert value("mmate.deliveries.acked", messaging_destination_name=q).value == 6
    assert value("mmate.deliveries.dead_lettered", messaging_destination_name=q).value == 1
    assert value("mmate.connection.up").value == 1


async def test_observers_see_every_message_and_one_that_raises_breaks_nothing(
        url: str, names: Names, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str, bool]] = []

    class Recorder:
        def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
            assert seconds >= 0
            seen.append(("published", type(message).__name__, error is None))

        def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
            seen.append(("handled", type_name, error is None))

    class Broken:
        def published(self, message: Any, seconds: float, error: BaseException | None) -> None:
            raise RuntimeError("observer bug")

        def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
            raise RuntimeError("observer bug")

    async with Client(url, service_name=names.service("obsobs")) as c:
        c.add_observer(Broken())
        c.add_observer(recorder := Recorder())

        @c.handler(ObsPing)
        def handle(e: ObsPing) -> None:
            if e.n == 1:
                raise ValueError("one")

        sub = await c.start_consuming()
        for i in range(3):
            await c.publish_event(ObsPing(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked + sub.stats.dead_lettered == 3, 10)
        assert (sub.stats.acked, sub.stats.dead_lettered) == (2, 1)
        assert sorted(seen) == [("handled", "ObsPing", False), ("handled", "ObsPing", True),
                                ("handled", "ObsPing", True)] + [("published", "ObsPing", True)] * 3
        assert "observer" in caplog.text and "observer bug" in caplog.text
        await c.publish_batch([ObsPing(n=i, aggregate_id="a") for i in (2, 3)])  # batches are seen too
        await wait_until(lambda: sub.stats.acked == 4, 10)
        assert seen.count(("published", "ObsPing", True)) == 5 and seen.count(("handled", "ObsPing", True)) == 4
        c.remove_observer(recorder)
        await c.publish_event(ObsPing(n=5, aggregate_id="a"))
        assert len(seen) == 10
