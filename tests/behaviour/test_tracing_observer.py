"""TracingObserver (head-sampled tracing on the client's tracer hook) on both transports: spans and
parent/child links along publish -> consume -> publish -> consume, the sampling ratio, the sampled
flag of an incoming traceparent both ways, a handler error, and interop with TracingInterceptor."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import wait_until

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mmate_fast.interceptors import TracingInterceptor
from mmate_fast.observability import TracingObserver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@dataclass
class TrA(Event):
    n: int = 0


@dataclass
class TrB(Event):
    n: int = 0


@pytest.fixture
async def service(url: str) -> AsyncIterator[str]:
    name = f"trobs-{uuid.uuid4().hex[:8]}"
    yield name
    conn = await connect(url)
    try:
        ch = await conn.channel()
        await ch.queue_delete(topology.service_queue(name))
        await ch.queue_delete(topology.dead_letter_queue(topology.service_queue(name)))
    finally:
        await conn.close()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _producer(url: str, service: str) -> Client:
    return Client(url, service_name=f"{service}-pub", declare_topology=False)


def _by(exporter: InMemorySpanExporter, kind: SpanKind, name: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind == kind and s.name == name]


async def test_chain_publish_consume_publish_consume(url: str, service: str, spans: Any) -> None:
    provider, exporter = spans
    got: list[int] = []
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        TracingObserver(consumer, tracer_provider=provider, sample=0.0)  # follows the incoming decision
        TracingObserver(producer, tracer_provider=provider, sample=1.0)

        async def on_a(e: TrA) -> None:  # async handler: the Task path
            await consumer.publish_event(TrB(n=e.n + 1, aggregate_id="b"))

        consumer.add_handler(TrA, on_a)
        consumer.add_handler(TrB, lambda e: got.append(e.n))  # plain handler: the inline path
        await consumer.start_consuming()
        await producer.publish_event(TrA(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [2] and len(exporter.get_finished_spans()) == 4)
    (p_a,) = _by(exporter, SpanKind.PRODUCER, "publish TrA")
    (c_a,) = _by(exporter, SpanKind.CONSUMER, "process TrA")
    (p_b,) = _by(exporter, SpanKind.PRODUCER, "publish TrB")
    (c_b,) = _by(exporter, SpanKind.CONSUMER, "process TrB")
    assert p_a.parent is None
    assert c_a.parent.span_id == p_a.context.span_id
    assert p_b.parent.span_id == c_a.context.span_id
    assert c_b.parent.span_id == p_b.context.span_id
    assert len({s.context.trace_id for s in (p_a, c_a, p_b, c_b)}) == 1
    assert p_a.attributes["messaging.destination.name"] == topology.EVENTS
    assert p_a.attributes["messaging.rabbitmq.destination.routing_key"] == "evt.a.TrA"
    assert p_a.attributes["messaging.message.id"] == c_a.attributes["messaging.message.id"]
    assert c_a.attributes["mmate.queue"] == topology.service_queue(service)
    assert c_b.status.status_code == StatusCode.UNSET


async def test_sampling_ratio_is_honoured_downstream(url: str, service: str, spans: Any) -> None:
    provider, exporter = spans
    got: list[int] = []
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        c_obs = TracingObserver(consumer, tracer_provider=provider, sample=0.0)
        p_obs = TracingObserver(producer, tracer_provider=provider, sample=0.1)
        consumer.add_handler(TrA, lambda e: got.append(e.n))
        await consumer.start_consuming()
        for n in range(50):
            await producer.publish_event(TrA(n=n, aggregate_id="a"))
        await wait_until(lambda: len(got) == 50 and len(exporter.get_finished_spans()) == 10)
    producers = _by(exporter, SpanKind.PRODUCER, "publish TrA")
    consumers = _by(exporter, SpanKind.CONSUMER, "process TrA")
    assert len(producers) == 5 and len(consumers) == 5  # exactly 1 in 10 roots, every 10th
    assert (p_obs.sampled, p_obs.unsampled) == (5, 45)
    assert (c_obs.sampled, c_obs.unsampled) == (5, 45)
    assert {c.parent.span_id for c in consumers} == {p.context.span_id for p in producers}


@pytest.mark.parametrize("flag", ["01", "00"])
async def test_incoming_sampled_flag_decides(url: str, service: str, spans: Any, flag: str) -> None:
    provider, exporter = spans
    seen: list[tuple[str, str]] = []
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-{flag}"
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        # the opposite root ratio: only the incoming flag can explain what happens
        TracingObserver(consumer, tracer_provider=provider, sample=0.0 if flag == "01" else 1.0)

        async def on_a(e: TrA) -> None:
            await consumer.publish_event(TrB(n=e.n, aggregate_id="b"))

        consumer.add_handler(TrA, on_a)
        consumer.add_handler(TrB, lambda e, ctx: seen.append((str(ctx.headers.get("traceparent")),
                                                              str(ctx.headers.get("tracestate")))))
        await consumer.start_consuming()
        await producer.publish_event(TrA(n=1, aggregate_id="a"),
                                     headers={"traceparent": traceparent, "tracestate": "k=v"})
        await wait_until(lambda: len(seen) == 1)
        if flag == "01":
            await wait_until(lambda: len(exporter.get_finished_spans()) == 3)
    finished = exporter.get_finished_spans()
    if flag == "00":  # not traced anywhere, and the context passed on unchanged
        assert finished == ()
        assert seen == [(traceparent, "k=v")]
        return
    (c_a,) = _by(exporter, SpanKind.CONSUMER, "process TrA")
    (p_b,) = _by(exporter, SpanKind.PRODUCER, "publish TrB")
    assert f"{c_a.context.trace_id:032x}" == TRACE_ID
    assert f"{c_a.parent.span_id:016x}" == PARENT_ID and c_a.parent.is_remote
    assert p_b.parent.span_id == c_a.context.span_id
    assert seen[0][0] == f"00-{TRACE_ID}-{p_b.context.span_id:016x}-01"
    assert seen[0][1] == "k=v"


async def test_handler_error_is_recorded(url: str, service: str, spans: Any) -> None:
    provider, exporter = spans
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        TracingObserver(consumer, tracer_provider=provider, sample=1.0)

        def boom(e: TrA) -> None:
            raise ValueError("no good")

        consumer.add_handler(TrA, boom)
        sub = await consumer.start_consuming()
        await producer.publish_event(TrA(n=1, aggregate_id="a"))
        await wait_until(lambda: sub.stats.dead_lettered == 1 and len(exporter.get_finished_spans()) == 1)
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.CONSUMER
    assert span.status.status_code == StatusCode.ERROR and "ValueError" in (span.status.description or "")
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.message"] == "no good"


@pytest.mark.parametrize("producer_side", ["interceptor", "observer"])
async def test_interop_with_tracing_interceptor(url: str, service: str, spans: Any, producer_side: str) -> None:
    provider, exporter = spans
    got: list[int] = []
    interceptor = [TracingInterceptor(provider)]
    async with Client(url, service_name=service,
                      interceptors=interceptor if producer_side == "observer" else []) as consumer, \
            Client(url, service_name=f"{service}-pub", declare_topology=False,
                   interceptors=interceptor if producer_side == "interceptor" else []) as producer:
        TracingObserver(consumer if producer_side == "interceptor" else producer,
                        tracer_provider=provider, sample=0.0 if producer_side == "interceptor" else 1.0)
        consumer.add_handler(TrA, lambda e: got.append(e.n))
        await consumer.start_consuming()
        await producer.publish_event(TrA(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1] and len(exporter.get_finished_spans()) == 2)
    (p_a,) = _by(exporter, SpanKind.PRODUCER, "publish TrA")
    (c_a,) = _by(exporter, SpanKind.CONSUMER, "process TrA")
    assert c_a.parent.span_id == p_a.context.span_id
    assert c_a.context.trace_id == p_a.context.trace_id


async def test_unsampled_root_sends_no_trace_headers_and_close_stops(url: str, service: str, spans: Any) -> None:
    provider, exporter = spans
    seen: list[Any] = []
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        obs = TracingObserver(producer, tracer_provider=provider, sample=0.0)
        consumer.add_handler(TrA, lambda e, ctx: seen.append(ctx.headers.get("traceparent")))
        await consumer.start_consuming()
        await producer.publish_event(TrA(n=1, aggregate_id="a"))
        obs.close()
        assert producer.tracer is None
        await producer.publish_event(TrA(n=2, aggregate_id="a"))
        await wait_until(lambda: len(seen) == 2)
    assert seen == [None, None] and exporter.get_finished_spans() == ()
    assert (obs.sampled, obs.unsampled) == (0, 1)


async def test_publish_batch_is_traced_per_message(url: str, service: str, spans: Any) -> None:
    provider, exporter = spans
    got: list[int] = []
    async with Client(url, service_name=service) as consumer, _producer(url, service) as producer:
        TracingObserver(consumer, tracer_provider=provider, sample=0.0)
        TracingObserver(producer, tracer_provider=provider, sample=0.5)  # every other root
        consumer.add_handler(TrA, lambda e: got.append(e.n))
        await consumer.start_consuming()
        ids = await producer.publish_batch([TrA(n=n, aggregate_id="a") for n in range(4)], window=3)
        await wait_until(lambda: len(got) == 4 and len(exporter.get_finished_spans()) == 4)
    producers = _by(exporter, SpanKind.PRODUCER, "publish TrA")
    consumers = _by(exporter, SpanKind.CONSUMER, "process TrA")
    assert sorted(p.attributes["messaging.message.id"] for p in producers) == sorted([ids[0], ids[2]])
    assert {c.parent.span_id for c in consumers} == {p.context.span_id for p in producers}
