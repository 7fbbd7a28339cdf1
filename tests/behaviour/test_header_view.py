"""Handlers see all headers (issue 7 item 9): ``ctx.headers`` is every AMQP header of the delivery
plus the envelope headers (the AMQP value wins on a conflict), and an interceptor's
``ConsumeContext.headers`` is the very same view. Memory and RabbitMQ."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import ConsumeContext, Interceptor, MessageContext
from mmate_fast.reliability import ATTEMPT_HEADER, FixedDelay, TtlRetry
from mmate_fast.reliability.ttl_retry import delay_queue_name

from .behaviour_helpers import wait_until

BasicProperties = load("frames").BasicProperties


@dataclass
class HdrJob(Event):
    job: str = ""


async def test_ttl_retry_handler_reads_the_attempt_from_ctx_headers(url: str, names: Any) -> None:
    """As the TtlRetry docstring says: the attempt header is absent, then 1, 2, ... — read through
    ``ctx.headers`` (it used to be hidden behind the envelope headers, so every message went to the
    DLQ after the first retry)."""
    service = names.service()
    queue = f"{service}-queue"
    names.queues.append(delay_queue_name(queue, 50))
    seen: list[Any] = []
    async with Client(url, service_name=service,
                      failure_handler=TtlRetry(FixedDelay(0.05, max_retries=3))) as client:

        @client.handler(HdrJob)
        def on_job(msg: HdrJob, ctx: MessageContext) -> None:
            attempt = ctx.headers.get(ATTEMPT_HEADER)
            seen.append(attempt)
            if attempt is None or attempt < 2:  # succeed on the second retry
                raise RuntimeError("not yet")

        sub = await client.start_consuming()
        await client.publish_event(HdrJob(job="j", aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked >= 3, timeout=10)
        assert seen == [None, 1, 2]
        assert sub.stats.dead_lettered == 0


class _Spy(Interceptor):
    def __init__(self) -> None:
        self.views: list[tuple[dict[str, Any], dict[str, Any], bool]] = []

    async def before_consume(self, ctx: ConsumeContext) -> bool | None:
        self.views.append((ctx.headers, dict(ctx.amqp_headers), ctx.headers is ctx.message_context.headers))
        return None


async def test_one_view_for_handlers_and_interceptors_amqp_wins(url: str, names: Any) -> None:
    service = names.service()
    spy = _Spy()
    got: list[dict[str, Any]] = []
    async with Client(url, service_name=service, interceptors=[spy]) as client:

        @client.handler(HdrJob)
        async def on_job(msg: HdrJob, ctx: MessageContext) -> None:
            got.append(ctx.headers)

        sub = await client.start_consuming()
        # the envelope says "from-envelope"; a republisher changed the AMQP copy and added one
        exchange, routing_key, out = client._require_publisher().prepare(
            HdrJob(job="j", aggregate_id="a"), headers={"x-tenant": "from-envelope", "x-env-only": "e"})
        amqp = dict(out.headers or {})
        amqp.update({"x-tenant": "from-amqp", "x-mmate-attempt": 4})
        del amqp["x-env-only"]
        props = BasicProperties(headers=amqp, content_type="application/json", delivery_mode=2)
        ch = await client.connection.channel()
        await ch.publish(out.body, exchange, routing_key, props)
        await ch.close()
        await wait_until(lambda: sub.stats.acked == 1, timeout=5)
    [view] = got
    assert view["x-tenant"] == "from-amqp"          # AMQP wins on a conflict
    assert view["x-mmate-attempt"] == 4             # AMQP-only headers are visible
    assert view["x-env-only"] == "e"                # envelope-only headers too
    assert view["x-message-type"] == "HdrJob"
    [(ic_view, ic_amqp, same_object)] = spy.views
    assert ic_view == view and same_object          # one view, built once per delivery
    assert "x-env-only" not in ic_amqp and ic_amqp["x-tenant"] == "from-amqp"


async def test_headers_without_envelope_headers_are_the_amqp_ones(url: str, names: Any) -> None:
    service = names.service()
    got: list[dict[str, Any]] = []
    async with Client(url, service_name=service) as client:
        client.add_handler("Bare*", lambda m, ctx: got.append(ctx.headers))
        await client.start_consuming()
        ch = await client.connection.channel()
        props = BasicProperties(headers={"x-k": "v"})
        await ch.publish(b'{"id":"1","type":"BareThing","timestamp":"2025-01-01T00:00:00Z","payload":{}}',
                         "", client.service_queue, props)
        await ch.close()
        await wait_until(lambda: len(got) == 1, timeout=5)
    assert got == [{"x-k": "v"}]
