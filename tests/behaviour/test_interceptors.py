"""Built-in interceptors through the Client on both transports: signing end to end (tampered and
unsigned raw publishes are rejected, the consumer goes on), deduplication, handler timeout,
validation, filtering, metrics and OpenTelemetry trace continuation across two services."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.interceptors import (
    DeduplicationInterceptor,
    FilterInterceptor,
    MetricsInterceptor,
    SigningInterceptor,
    TimeoutInterceptor,
    ValidationInterceptor,
    sign_message,
)
from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import wait_until

SECRET = b"behaviour-secret-0123456789abcdef"


@dataclass
class IcEvt(Event):
    n: int = 0

    def validate(self) -> bool:
        return self.n >= 0


@pytest.fixture
async def service(url: str) -> AsyncIterator[str]:
    name = f"icpt-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(url)
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(name))
        await ch.queue_delete(topology.dead_letter_queue(topology.service_queue(name)))
    finally:
        await conn.close()


async def test_signing_end_to_end_rejects_tampered_and_unsigned(url: str, service: str) -> None:
    got: list[int] = []
    signer = SigningInterceptor(SECRET, key_id="k1")
    async with Client(url, service_name=service, interceptors=[signer]) as c:
        c.add_handler(IcEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        await c.publish_event(IcEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1])

        # capture a genuine signed delivery, then replay it with a modified body
        seen: list[Any] = []
        probe = await c.connection.channel()
        await probe.queue_declare(f"{service}-probe", exclusive=True, auto_delete=True)
        await probe.queue_bind(f"{service}-probe", topology.EVENTS, "evt.a.IcEvt")
        await c.publish_event(IcEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: got == [1, 2])
        d = await probe.basic_get(f"{service}-probe", no_ack=True)
        assert d is not None
        seen.append(d)
        headers = dict(d.properties.headers)
        assert headers["x-signature"] == sign_message(SECRET, d.properties, d.body, "k1")
        assert headers["x-signature-key"] == "k1"
        tampered = d.body.replace(b'"n":2', b'"n":666')
        assert tampered != d.body
        raw = await c.connection.channel()
        await raw.publish(tampered, "", c.service_queue, d.properties)
        await raw.publish(d.body, "", c.service_queue, BasicProperties(headers={}))  # unsigned
        await wait_until(lambda: sub.stats.reasons["bad-signature"] == 2)
        await c.publish_event(IcEvt(n=3, aggregate_id="a"))  # the consumer goes on
        await wait_until(lambda: got == [1, 2, 3])
        await wait_until(lambda: sub.stats.dead_lettered == 2)  # the moves to the DLQ are confirmed first
        assert 666 not in got  # kept in the DLQ with the reason
        await probe.close()
        await raw.close()


async def test_dedup_same_message_id_twice_runs_handler_once(url: str, service: str) -> None:
    runs: list[str] = []
    async with Client(url, service_name=service, interceptors=[DeduplicationInterceptor()]) as c:

        @c.handler(IcEvt)
        async def handle(e: IcEvt, ctx: Any) -> None:
            runs.append(ctx.message_id)

        sub = await c.start_consuming()
        evt = IcEvt(n=1, aggregate_id="a")
        ids = [await c.publish_event(evt), await c.publish_event(evt)]
        other = await c.publish_event(IcEvt(n=2, aggregate_id="a"))
        assert ids[0] == ids[1] == evt.id
        await wait_until(lambda: sub.stats.acked == 3)
        assert runs == [evt.id, other]


async def test_handler_timeout_rejects_with_reason(url: str, service: str) -> None:
    done: list[int] = []
    async with Client(url, service_name=service,
                      interceptors=[TimeoutInterceptor(5, per_type={IcEvt: 0.05})]) as c:

        @c.handler(IcEvt)
        async def handle(e: IcEvt) -> None:
            if e.n == 1:
                await asyncio.sleep(10)
            done.append(e.n)

        sub = await c.start_consuming()
        await c.publish_event(IcEvt(n=1, aggregate_id="a"))
        await c.publish_event(IcEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: sub.stats.reasons["handler-timeout"] == 1 and done == [2])
        await wait_until(lambda: sub.stats.dead_lettered == 1)


async def test_validation_on_publish_and_on_consume(url: str, service: str) -> None:
    got: list[int] = []
    async with Client(url, service_name=service,
                      interceptors=[ValidationInterceptor(on_publish=False)]) as consumer, \
            Client(url, service_name=f"{service}-pub", declare_topology=False) as unchecked:
        consumer.add_handler(IcEvt, lambda e: got.append(e.n))
        sub = await consumer.start_consuming()
        await unchecked.publish_event(IcEvt(n=-1, aggregate_id="a"))  # nobody checks on this side
        await unchecked.publish_event(IcEvt(n=4, aggregate_id="a"))
        await wait_until(lambda: got == [4] and sub.stats.reasons["validation-failed"] == 1)
        consumer.use(ValidationInterceptor(on_consume=False))
        with pytest.raises(errors.ValidationError):
            await consumer.publish_event(IcEvt(n=-2, aggregate_id="a"))


async def test_filter_skips_handler_and_acks(url: str, service: str) -> None:
    got: list[int] = []
    f = FilterInterceptor(lambda ctx: ctx.message.n % 2 == 0, publish_predicate=lambda ctx: ctx.message.n < 100)
    async with Client(url, service_name=service, interceptors=[f]) as c:
        c.add_handler(IcEvt, lambda e: got.append(e.n))
        sub = await c.start_consuming()
        ids = [await c.publish_event(IcEvt(n=n, aggregate_id="a")) for n in (1, 2, 3, 4, 200)]
        assert ids[-1] == "" and all(ids[:-1])
        await wait_until(lambda: sub.stats.acked == 4)
        assert got == [2, 4] and (f.skipped, f.dropped) == (2, 1) and sub.stats.rejected == 0


async def test_metrics_count_publishes_and_handler_calls(url: str, service: str) -> None:
    m = MetricsInterceptor()
    async with Client(url, service_name=service, interceptors=[m]) as c:

        @c.handler(IcEvt)
        def handle(e: IcEvt) -> None:
            if e.n == 3:
                raise ValueError("three")

        sub = await c.start_consuming()
        for n in (1, 2, 3):
            await c.publish_event(IcEvt(n=n, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked + sub.stats.dead_lettered == 3)
        snap = m.snapshot()
        assert snap["published"] == {"IcEvt": 3}
        assert snap["consumed"] == {"IcEvt": 2} and snap["failed"] == {"IcEvt": 1}
        assert snap["handler_seconds"]["IcEvt"]["count"] == 3
        assert 'mmate_messages_published_total{type="IcEvt"} 3.0' in m.render_prometheus()
        assert snap["in_flight"] == 0


async def test_tracing_continues_across_services(url: str, service: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from mmate_fast.interceptors import TracingInterceptor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    got: list[str] = []
    async with Client(url, service_name=service, interceptors=[TracingInterceptor(provider)]) as consumer, \
            Client(url, service_name=f"{service}-pub", declare_topology=False,
                   interceptors=[TracingInterceptor(provider)]) as producer:
        consumer.add_handler(IcEvt, lambda e, ctx: got.append(str(ctx.headers.get("traceparent"))))
        await consumer.start_consuming()
        await producer.publish_event(IcEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: len(got) == 1 and len(exporter.get_finished_spans()) == 2)
    spans = {s.kind: s for s in exporter.get_finished_spans()}
    producer_span, consumer_span = spans[SpanKind.PRODUCER], spans[SpanKind.CONSUMER]
    assert consumer_span.parent is not None
    assert consumer_span.parent.span_id == producer_span.context.span_id
    assert consumer_span.context.trace_id == producer_span.context.trace_id
    assert f"{producer_span.context.trace_id:032x}" in got[0]
