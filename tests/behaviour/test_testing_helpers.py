"""mmate_fast.testing in this suite's own style: the plugin's client fixtures (memory:// and the real
RabbitMQ), ``record_published`` and ``feed`` on an order service with a command handler, a request
handler and a failing handler (dead-lettered, its error raised by ``feed``)."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Command, Event, Query, Reply
from mmate_fast.messaging import MessageContext
from mmate_fast.testing import feed, record_published

from .behaviour_helpers import queue_depth


@dataclass
class TstPlaceOrder(Command):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class TstOrderPlaced(Event):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class TstGetTotal(Query):
    order_id: str = ""


@dataclass
class TstTotal(Reply):
    total: float = 0.0


def _rabbit_param() -> Any:
    marks = [pytest.mark.integration]
    if os.environ.get("MMATE_SKIP_BROKER") == "1":
        marks.append(pytest.mark.skip(reason="MMATE_SKIP_BROKER=1"))
    return pytest.param("mmate_rabbit_client", id="amqp", marks=marks)


@pytest.fixture(params=[pytest.param("mmate_memory_client", id="memory"), _rabbit_param()])
def service(request: pytest.FixtureRequest) -> Client:
    """The order service on the plugin's client fixture of each transport."""
    client: Client = request.getfixturevalue(request.param)
    totals: dict[str, float] = {}

    @client.handler(TstPlaceOrder)
    async def place(cmd: TstPlaceOrder, ctx: MessageContext) -> None:
        if cmd.amount <= 0:
            raise ValueError(f"order {cmd.order_id}: amount must be positive")
        totals[cmd.order_id] = cmd.amount
        await client.publish_event(TstOrderPlaced(order_id=cmd.order_id, amount=cmd.amount,
                                                  aggregate_id=client.service_name),
                                   correlation_id=ctx.message_id)

    @client.handler(TstGetTotal)
    def total(query: TstGetTotal) -> TstTotal:
        return TstTotal(total=totals.get(query.order_id, 0.0))

    return client


async def test_feed_waits_for_the_handler_and_capture_sees_what_it_published(service: Client) -> None:
    published = record_published(service)
    await feed(service, TstPlaceOrder(order_id="o-1", amount=12.5))
    # feed returned after the handler ran: its publish is there already, the fed command is not
    [placed] = published.of(TstOrderPlaced)
    assert (placed.order_id, placed.amount) == ("o-1", 12.5)
    assert [p.type for p in published.published] == ["TstOrderPlaced"]
    record = published.published[0]
    assert record.exchange == "mmate.events" and record.routing_key == f"evt.{service.service_name}.TstOrderPlaced"
    assert await published.wait_for("TstOrderPlaced", count=1, timeout=1) == [placed]
    # a request handler's result comes back from feed
    reply = await feed(service, TstGetTotal(order_id="o-1"))
    assert isinstance(reply, TstTotal) and reply.total == 12.5
    published.close()
    await feed(service, TstPlaceOrder(order_id="o-2", amount=1.0))
    assert len(published.of(TstOrderPlaced)) == 1  # closed: no longer captured


async def test_a_failing_handler_raises_from_feed_and_the_message_is_dead_lettered(service: Client) -> None:
    published = record_published(service)
    with pytest.raises(ValueError, match="amount must be positive"):
        await feed(service, TstPlaceOrder(order_id="bad", amount=0))
    assert published.published == []
    dlq = f"dlq.{service.service_queue}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (depth := await queue_depth(service.connection, dlq)) != 1 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert depth == 1
    # the consumer goes on: the next order is handled
    await feed(service, TstPlaceOrder(order_id="good", amount=3.0))
    assert [e.order_id for e in await published.wait_for(TstOrderPlaced, timeout=5)] == ["good"]


async def test_timeouts_and_missing_handlers_say_what_happened(service: Client) -> None:
    published = record_published(service)
    with pytest.raises(errors.ObservationTimeout, match=r"expected 2 published TstOrderPlaced, saw 0 .*nothing"):
        await published.wait_for(TstOrderPlaced, count=2, timeout=0.05)
    with pytest.raises(AssertionError):  # an ObservationTimeout is a failed expectation for pytest
        await published.wait_for(TstOrderPlaced, timeout=0.01)

    @dataclass
    class TstUnhandled(Event):
        n: int = 0

    with pytest.raises(errors.UnknownMessageTypeError, match="has no handler for TstUnhandled"):
        await feed(service, TstUnhandled())
