"""Reliability on both transports: TTL retry through delay queues, DLQ with reasons, scheduled
publish without the plugin, the circuit breaker on the handler path, and the DLQ tools (their command
line, ``mmate dlq``, is tested in test_cli_dlq.py)."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import MessageContext, topology
from mmate_fast.reliability import (
    ATTEMPT_HEADER,
    CircuitBreaker,
    FixedDelay,
    HandlerCircuitBreakerInterceptor,
    TtlRetry,
    schedule,
)
from mmate_fast.reliability import dlq as dlq_tools
from mmate_fast.reliability.scheduling import delay_name
from mmate_fast.reliability.ttl_retry import delay_queue_name
from mmate_fast.transports import connect

from .behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class RelJob(Event):
    job: str = ""


class Boom(Exception):
    pass


@pytest.fixture
async def cleanup(url: str) -> AsyncIterator[list[str]]:
    """Queues (and exchanges named like them) deleted after the test."""
    names: list[str] = []
    yield names
    conn = await connect(url)
    try:
        for n in names:
            ch = await conn.channel()
            await ch.queue_delete(n)
            if n.startswith("mmate.delay."):
                await ch.exchange_delete(n)
            await ch.close()
    finally:
        await conn.close()


def _svc() -> str:
    return f"rel-{uuid.uuid4().hex[:8]}"


async def _consume_with_retry(client: Client, queue: str, retry: TtlRetry) -> Any:
    """Declare ``queue`` bound for this test's RelJob events (aggregate id = the service name: other
    test runs share the broker) and consume it with TTL retry and a DLQ."""
    admin = await client.connection.channel()
    await admin.queue_declare(queue, durable=True)
    await admin.queue_bind(queue, topology.EVENTS, f"evt.{client.service_name}.RelJob")
    await admin.close()
    assert client.subscriber is not None
    return await client.subscriber.subscribe(queue, dead_letter=True, failure_handler=retry)


async def test_ttl_retry_fails_twice_then_succeeds(url: str, cleanup: list[str]) -> None:
    svc = _svc()
    queue = f"{svc}-work"
    seen: list[Any] = []
    retry = TtlRetry(FixedDelay(0.1, max_retries=3))
    cleanup.extend([topology.service_queue(svc), queue, f"dlq.{queue}", delay_queue_name(queue, 100)])
    async with Client(url, service_name=svc) as client:

        @client.handler(RelJob, bind=False)
        def on_job(msg: RelJob, ctx: MessageContext) -> None:
            seen.append((ctx.delivery.properties.headers or {}).get(ATTEMPT_HEADER))
            if len(seen) < 3:
                raise Boom(f"fail {len(seen)}")

        sub = await _consume_with_retry(client, queue, retry)
        await client.publish_event(RelJob(job="j1", aggregate_id=svc))
        await wait_until(lambda: len(seen) >= 3, timeout=5)
        await asyncio.sleep(0.3)
        assert seen == [None, 1, 2]          # attempt header: absent, then retries done so far
        assert retry.retried == 2 and retry.gave_up == 0
        await wait_until(lambda: sub.stats.acked == 3)
        assert await queue_depth(client.connection, f"dlq.{queue}") is None  # never needed: not declared
        assert await queue_depth(client.connection, queue) == 0


async def test_ttl_retry_gives_up_into_dlq_with_identical_body(url: str, cleanup: list[str]) -> None:
    svc = _svc()
    queue = f"{svc}-work"
    calls: list[Any] = []
    retry = TtlRetry(FixedDelay(0.05, max_retries=2))
    cleanup.extend([topology.service_queue(svc), queue, f"dlq.{queue}", delay_queue_name(queue, 50)])
    async with Client(url, service_name=svc) as client:

        @client.handler(RelJob, bind=False)
        def on_job(msg: RelJob, ctx: MessageContext) -> None:
            calls.append((ctx.delivery.properties.headers or {}).get(ATTEMPT_HEADER))
            raise Boom("always")

        sub = await _consume_with_retry(client, queue, retry)
        # capture the exact published bytes through a second queue bound the same way
        spy = f"{svc}-spy"
        cleanup.append(spy)
        ch = await client.connection.channel()
        await ch.queue_declare(spy, durable=True)
        await ch.queue_bind(spy, topology.EVENTS, f"evt.{svc}.RelJob")
        await client.publish_event(RelJob(job="j2", aggregate_id=svc))
        await wait_until(lambda: sub.stats.dead_lettered == 1, timeout=5)  # the DLQ exists from now on
        dead = await drain_queue(ch, f"dlq.{queue}", timeout=5, expect=1)
        assert len(dead) == 1
        original = (await drain_queue(ch, spy, expect=1))[0]
        assert calls == [None, 1, 2]
        h = dead[0].properties.headers
        assert dead[0].body == original.body
        assert h["x-mmate-reason"] == "handler-error"
        assert h[ATTEMPT_HEADER] == 2
        assert h["x-mmate-original-queue"] == queue
        assert "Boom: always" in h["x-mmate-error"]
        assert h["x-message-type"] == "RelJob"     # the original headers travel along
        assert retry.retried == 2 and retry.gave_up == 1
        await ch.close()


async def test_malformed_body_is_not_retried(url: str, cleanup: list[str]) -> None:
    svc = _svc()
    queue = f"{svc}-work"
    retry = TtlRetry(FixedDelay(0.05, max_retries=3))
    cleanup.extend([topology.service_queue(svc), queue, f"dlq.{queue}"])
    async with Client(url, service_name=svc) as client:
        client.add_handler(RelJob, lambda m: None, bind=False)
        sub = await _consume_with_retry(client, queue, retry)
        ch = await client.connection.channel()
        await ch.publish(b"not json", "", queue)
        await wait_until(lambda: sub.stats.dead_lettered == 1, timeout=5)
        dead = await drain_queue(ch, f"dlq.{queue}", timeout=5, expect=1)
        assert len(dead) == 1 and dead[0].body == b"not json"
        assert dead[0].properties.headers["x-mmate-reason"] == "not-json"
        assert ATTEMPT_HEADER not in dead[0].properties.headers
        assert retry.retried == 0 and retry.gave_up == 1
        await ch.close()


async def test_open_handler_circuit_fails_with_reason_circuit_open(url: str, cleanup: list[str]) -> None:
    svc = _svc()
    cleanup.extend([topology.service_queue(svc), f"dlq.{topology.service_queue(svc)}"])
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    calls: list[str] = []
    async with Client(url, service_name=svc, dead_letter=True,
                      interceptors=[HandlerCircuitBreakerInterceptor(breaker)]) as client:

        @client.handler(RelJob, bind=False)
        def on_job(msg: RelJob) -> None:
            calls.append(msg.job)
            raise Boom("down")

        await client.bind(topology.EVENTS, f"evt.{svc}.RelJob")  # only this test's events
        sub = await client.start_consuming()
        await client.publish_event(RelJob(job="first", aggregate_id=svc))
        await wait_until(lambda: sub.stats.dead_lettered == 1, timeout=5)
        ch = await client.connection.channel()
        first = await drain_queue(ch, f"dlq.{client.service_queue}", timeout=5, expect=1)
        await client.publish_event(RelJob(job="second", aggregate_id=svc))
        second = await drain_queue(ch, f"dlq.{client.service_queue}", timeout=5, expect=1)
        assert calls == ["first"]            # the open circuit kept the handler from running
        assert first[0].properties.headers["x-mmate-reason"] == "handler-error"
        assert second[0].properties.headers["x-mmate-reason"] == "circuit-open"
        assert breaker.state.value == "open"
        await ch.close()


async def test_scheduled_publish_arrives_no_earlier_than_delay(url: str, cleanup: list[str]) -> None:
    svc = _svc()
    cleanup.extend([topology.service_queue(svc), delay_name(topology.EVENTS, 300)])
    arrived: list[tuple[float, Any]] = []
    async with Client(url, service_name=svc) as client:
        loop = asyncio.get_running_loop()

        @client.handler(RelJob, bind=False)
        def on_job(msg: RelJob, ctx: MessageContext) -> None:
            arrived.append((loop.time(), ctx.delivery))

        await client.bind(topology.EVENTS, f"evt.{svc}.RelJob")  # only this test's events
        await client.start_consuming()
        start = loop.time()
        msg_id = await schedule(client, RelJob(job="later", aggregate_id=svc), delay=0.3)
        await client.publish_event(RelJob(job="now", aggregate_id=svc))
        await wait_until(lambda: len(arrived) == 2, timeout=5)
        late_at, delivery = arrived[1]
        assert late_at - start >= 0.3 - 0.001  # uvloop's clock ticks in whole ms: 0.3 can read 0.29999...
        assert delivery.routing_key == f"evt.{svc}.RelJob"    # its own routing key survived
        assert delivery.exchange == topology.EVENTS
        h = delivery.properties.headers
        assert h["x-message-id"] == msg_id
        assert 250 <= h["x-delay"] <= 300                      # Go's header, int64 ms
        assert arrived[0][1].properties.headers["x-message-id"] != msg_id


async def test_dlq_replay_to_missing_queue_keeps_the_message(url: str, cleanup: list[str]) -> None:
    dq = f"dlq.rel-gone-{uuid.uuid4().hex[:8]}"
    cleanup.append(dq)
    conn = await connect(url)
    ch = await conn.channel(publisher_confirms=True)
    await ch.queue_declare(dq, durable=True)
    await ch.publish(b"x", "", dq)
    from mmate_fast import errors

    with pytest.raises(errors.NotFoundError):
        await dlq_tools.replay(conn, dq)
    await asyncio.sleep(0.05)
    assert (await ch.queue_declare(dq, passive=True)).message_count == 1
    await conn.close()


async def test_in_process_retry_interceptor_acks_once(url: str, cleanup: list[str]) -> None:
    from mmate_fast.reliability import RetryInterceptor

    svc = _svc()
    cleanup.append(topology.service_queue(svc))
    runs: list[str] = []
    async with Client(url, service_name=svc, interceptors=[RetryInterceptor(FixedDelay(0.01, 3))]) as client:

        @client.handler(RelJob, bind=False)
        async def on_job(msg: RelJob) -> None:
            runs.append(msg.job)
            if len(runs) < 3:
                raise Boom("again")

        await client.bind(topology.EVENTS, f"evt.{svc}.RelJob")  # only this test's events
        sub = await client.start_consuming()
        await client.publish_event(RelJob(job="r", aggregate_id=svc))
        await wait_until(lambda: sub.stats.acked == 1)
        assert runs == ["r", "r", "r"] and sub.stats.handler_errors == 0
