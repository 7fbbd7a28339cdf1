"""The health check registry, report shape and thresholds, and the client metrics registry handling
(no broker: the checks here are plain functions)."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.observability import (
    CheckResult,
    HealthChecker,
    HealthStatus,
    Thresholds,
    check_channels,
    check_connection,
    queue_status,
)

H, D, U = HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY


async def test_what_a_check_returns_becomes_a_result() -> None:
    checker = HealthChecker()

    async def async_degraded() -> CheckResult:
        return CheckResult("ignored", D, "slow disk", {"free_bytes": 10})

    def boom() -> None:
        raise RuntimeError("no database")

    for name, fn in {"none": lambda: None, "true": lambda: True, "false": lambda: False,
                     "text": lambda: "all good", "status": lambda: D, "result": async_degraded,
                     "boom": boom, "odd": lambda: 42}.items():
        checker.add(name, fn)
    report = await checker.run()
    got = {n: (r.status, r.message, r.error) for n, r in report.checks.items()}
    assert got == {
        "none": (H, "", ""), "true": (H, "", ""), "false": (U, "", ""), "text": (H, "all good", ""),
        "status": (D, "", ""), "result": (D, "slow disk", ""),
        "boom": (U, "check failed", "RuntimeError: no database"),
        "odd": (U, "check returned something that is not a result", "unexpected return value of type int"),
    }
    assert report.checks["result"].name == "result"  # the registered name wins
    assert report.status is U and not report.ok


async def test_a_check_past_its_timeout_is_unhealthy_and_others_still_report() -> None:
    checker = HealthChecker(timeout=5)
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cancelled.set()

    checker.add("hangs", hangs, timeout=0.05)
    checker.add("fine", lambda: None)
    report = await checker.run()
    assert report.checks["hangs"].status is U and report.checks["hangs"].error == "timeout"
    assert report.checks["hangs"].message == "check timed out after 0.05 s"
    assert report.checks["fine"].status is H
    assert cancelled.is_set()  # the slow check was cancelled, not left running
    # a run-wide budget caps each check's own timeout (the readiness endpoint's 5 s)
    checker.add("hangs", hangs, timeout=10)
    assert (await checker.run(timeout=0.05)).checks["hangs"].error == "timeout"


async def test_report_json_has_go_shape() -> None:
    checker = HealthChecker(metadata={"service_name": "orders"})
    checker.add("a", lambda: CheckResult("a", D, "Elevated: 1500 messages", {"message_count": 1500}))
    checker.add("b", lambda: None)
    report = await checker.run()
    assert report.status is D and report.ok
    text = report.to_json()
    assert text.startswith('{\n  "status": "degraded",\n  "timestamp": "')
    obj = json.loads(text)
    assert list(obj) == ["status", "timestamp", "duration", "checks", "metadata"]
    assert list(obj["checks"]["a"]) == ["name", "status", "message", "duration", "details", "timestamp"]
    assert list(obj["checks"]["b"]) == ["name", "status", "duration", "timestamp"]  # empty ones left out
    assert obj["checks"]["a"]["details"] == {"message_count": 1500}
    assert isinstance(obj["duration"], int) and obj["duration"] >= obj["checks"]["a"]["duration"] >= 0
    assert obj["metadata"] == {"service_name": "orders"}
    assert "metadata" not in (await HealthChecker().run()).to_dict()
    assert (await HealthChecker().run()).status is H  # no checks: healthy


def test_registry_refuses_bad_registrations() -> None:
    checker = HealthChecker()
    with pytest.raises(errors.InvalidArgumentError, match="non-empty name"):
        checker.add("", lambda: None)
    with pytest.raises(errors.InvalidArgumentError, match="not callable"):
        checker.add("x", 3)  # type: ignore[arg-type]
    for bad in (0, -1, True, "5"):
        with pytest.raises(errors.InvalidArgumentError, match="timeout"):
            checker.add("x", lambda: None, timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="timeout"):
        HealthChecker(timeout=0)
    checker.add("x", lambda: None)
    assert "x" in checker and checker.names == ["x"]
    checker.remove("x")
    checker.remove("x")  # no error
    with pytest.raises(errors.InvalidArgumentError, match="no health check named 'x'"):
        asyncio.run(checker.run_one("x"))


@pytest.mark.parametrize(("messages", "consumers", "status", "text"), [
    (0, 0, H, "0 message(s), 0 consumer(s)"),
    (1, 0, U, "1 message(s) and no consumer"),
    (1000, 1, H, "1000 message(s), 1 consumer(s)"),
    (1001, 1, D, "Elevated: 1001 messages"),
    (10000, 2, D, "Elevated: 10000 messages"),
    (10001, 2, D, "High: 10001 messages"),
])
def test_queue_status_uses_gos_thresholds(messages: int, consumers: int, status: HealthStatus, text: str) -> None:
    assert queue_status(messages, consumers, Thresholds()) == (status, text)


def test_connection_check_states() -> None:
    def client(conn: Any) -> Any:
        return SimpleNamespace(connection=conn)

    assert check_connection(client(None)).status is U
    closed = SimpleNamespace(is_closed=True)
    assert check_connection(client(closed)).message == "connection closed"
    stats = SimpleNamespace(reconnects=2, disconnects=3, failed_attempts=4, last_error="refused")
    lost = SimpleNamespace(is_closed=False, is_connected=False, stats=stats)
    r = check_connection(client(lost))
    assert (r.status, r.message) == (U, "connection lost; reconnecting")
    assert r.details == {"reconnects": 2, "disconnects": 3, "failed_attempts": 4, "last_error": "refused"}
    blocked = SimpleNamespace(is_closed=False, blocked=True, blocked_reason="low on memory")
    r = check_connection(client(blocked))
    assert (r.status, r.message) == (D, "the broker blocked publishing (low on memory)")
    assert check_connection(client(SimpleNamespace(is_closed=False))).status is H


def test_channels_check_states() -> None:
    def client(**states: bool) -> Any:
        return SimpleNamespace(channel_states=lambda: {k.replace("_", "-"): v for k, v in states.items()})

    assert check_channels(client()).status is U
    assert check_channels(client(publish_1=True, reply=True)).status is H
    r = check_channels(client(publish_1=True, publish_2=False, reply=True))
    assert r.status is D and r.details == {"open_channels": 2, "closed_channels": ["publish-2"]}
    assert check_channels(client(publish_1=False, reply=True)).message == "every publishing channel is closed"


def test_client_metrics_registry_handling() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from mmate_fast.observability import ClientMetrics

    class FakeClient:
        subscriber = publisher = connection = None

        def __init__(self) -> None:
            self.observers: list[Any] = []
            self.add_observer = self.observers.append
            self.remove_observer = self.observers.remove

    a, b = FakeClient(), FakeClient()
    ma, mb = ClientMetrics(a), ClientMetrics(b)  # each its own registry: no clash
    assert ma.registry is not mb.registry and a.observers == [ma.messages]
    assert "mmate_connection_up 0.0" in ma.text()
    ma.close()
    ma.close()  # idempotent
    assert a.observers == [] and ma.text() == ""
    # the default registry on request, and out of it again on close
    on_default = ClientMetrics(FakeClient(), registry=prometheus_client.REGISTRY, per_message=False)
    try:
        assert prometheus_client.REGISTRY.get_sample_value("mmate_connection_up") == 0
    finally:
        on_default.close()
    assert prometheus_client.REGISTRY.get_sample_value("mmate_connection_up") is None


def test_message_stats_counts_and_buckets_per_type() -> None:
    from mmate_fast.observability import MessageStats

    stats = MessageStats(buckets=(0.1, 1.0), max_types=2)
    for seconds in (0.05, 0.1, 0.5, 2.0):
        stats.handled("A", seconds, None)
    stats.handled("A", 0.01, RuntimeError("x"))
    stats.handled("B", 0.01, None)
    stats.handled("C", 0.01, None)  # over max_types: counted as "other"
    stats.published(SimpleNamespace(), 0.2, None)  # a plain object: its class name
    a = stats.types["A"]
    assert (a.consumed, a.failed) == (4, 1)
    assert stats.buckets(a.handler) == [("0.1", 3), ("1.0", 4), ("+Inf", 5)]
    assert a.handler_sum == pytest.approx(2.66)
    assert set(stats.types) == {"A", "B", "other"} and stats.types["other"].published == 1
    with pytest.raises(errors.ConfigurationError):
        MessageStats(buckets=(1.0, 0.5))


async def test_queue_inspector_replaces_a_channel_whose_call_was_cut_short() -> None:
    """A passive declare that timed out may still be answered later: its channel is not used again."""
    from mmate_fast.observability import QueueInspector

    opened: list[Any] = []

    class Chan:
        def __init__(self, hang: bool) -> None:
            self.hang, self.is_open, self.closed = hang, True, False

        async def queue_declare(self, queue: str, passive: bool) -> Any:
            if self.hang:
                await asyncio.sleep(30)
            return SimpleNamespace(message_count=len(opened), consumer_count=1)

        async def close(self, timeout: float | None = None) -> None:
            self.closed, self.is_open = True, False

    class Conn:
        is_closed, blocked = False, False

        async def channel(self) -> Chan:
            opened.append(Chan(hang=not opened))
            return opened[-1]

    conn = Conn()
    insp = QueueInspector(lambda: conn)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await insp.inspect("q")
    assert await insp.inspect("q") == (2, 1)  # a new channel, the first one closed
    assert opened[0].closed and not opened[1].closed
    assert await insp.inspect("q") == (2, 1)  # and kept while its calls complete
    conn.blocked = True
    with pytest.raises(errors.ConnectionBlockedError, match="resource alarm"):
        await insp.inspect("q")
    await insp.close()
    assert opened[1].closed
