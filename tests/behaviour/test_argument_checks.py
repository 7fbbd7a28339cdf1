"""Arguments the broker would refuse are refused by the Client first, and the next publish works.

Issue 7 item 3: on RabbitMQ a ``ttl=-1`` publish made the broker close the Client's publishing
channel (406 invalid expiration), and a name longer than 255 bytes could not even be framed. Now
each such call fails alone with a named error, nothing reaches the broker, and the Client keeps
publishing. Runs on the in-memory broker and on RabbitMQ.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import Client, errors
from mmate_fast.contracts import Event, Query, Reply
from mmate_fast.messaging import topology
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import drain_queue


@dataclass
class AcOrderPlaced(Event):
    order_id: str = ""
    data: Any = None


@dataclass
class AcGetOrder(Query):
    order_id: str = ""


@dataclass
class AcOrder(Reply):
    order_id: str = ""


def _cycle() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["d"] = d
    return d


BAD: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"ttl": -1}, errors.InvalidArgumentError),
    ({"priority": 300}, errors.InvalidArgumentError),
    ({"routing_key": "r" * 256}, errors.InvalidArgumentError),
    ({"exchange": "x" * 256}, errors.InvalidArgumentError),
    ({"correlation_id": "c" * 256}, errors.InvalidArgumentError),
    ({"headers": {"h" * 256: "v"}}, errors.InvalidArgumentError),
    ({"headers": {"big": 2**70}}, errors.InvalidArgumentError),
    ({"delay": -1}, errors.SchedulingError),
    ({"data": _cycle()}, errors.PayloadEncodeError),
    ({"data": float("nan")}, errors.PayloadEncodeError),
]


@pytest.fixture
async def catcher(url: str) -> AsyncIterator[tuple[str, Any]]:
    """A queue bound to every AcOrderPlaced event, and a channel to read it."""
    queue = f"ac-{uuid.uuid4().hex[:8]}"
    conn = await connect(url)
    ch = await conn.channel()
    await topology.declare_exchanges(ch)
    await ch.queue_declare(queue)
    await ch.queue_bind(queue, topology.EVENTS, "evt.#.AcOrderPlaced")
    try:
        yield queue, ch
    finally:
        if ch.is_open:
            await ch.queue_delete(queue)
        await conn.close()


@pytest.mark.parametrize("confirms", [True, False], ids=["confirms", "no-confirms"])
async def test_refused_publishes_send_nothing_and_the_next_one_works(
        url: str, catcher: tuple[str, Any], confirms: bool) -> None:
    queue, ch = catcher
    service = f"ac-{uuid.uuid4().hex[:8]}"
    async with Client(url, service_name=service, publisher_confirms=confirms) as client:
        try:
            for options, error in BAD:
                fields = {k: options.pop(k) for k in ("data",) if k in options}
                event = AcOrderPlaced(order_id="bad", aggregate_id="a-1", **fields)
                with pytest.raises(error):
                    await client.publish_event(event, **options)
                with pytest.raises(error):
                    await client.publish_batch([AcOrderPlaced(order_id="ok-in-batch"), event], **options)
                options.update(fields)
            await client.publish_event(AcOrderPlaced(order_id="good", aggregate_id="a-1"), ttl=60, priority=5)
            if not confirms:
                await client.publisher._target.drain(5)  # type: ignore[union-attr]
            got = await drain_queue(ch, queue, timeout=5, expect=1)
            await asyncio.sleep(0.1)
            got += await drain_queue(ch, queue)
            assert [b'"orderId":"good"' in d.body for d in got] == [True], [d.body[:80] for d in got]
        finally:
            admin = await client.connection.channel()
            await admin.queue_delete(client.service_queue)
            await admin.close()


async def test_a_bad_request_fails_alone(url: str) -> None:
    service = f"ac-{uuid.uuid4().hex[:8]}"
    async with Client(url, service_name=service) as client:
        try:
            @client.handler(AcGetOrder)
            async def answer(q: AcGetOrder) -> AcOrder:
                return AcOrder(order_id=q.order_id)

            await client.start_consuming()
            with pytest.raises(errors.InvalidArgumentError):
                await client.request(AcGetOrder(order_id="1"), timeout=5, ttl=-5)
            with pytest.raises(errors.InvalidArgumentError):
                await client.request(AcGetOrder(order_id="1"), timeout=5, priority=999)
            reply = await client.request(AcGetOrder(order_id="2"), timeout=5)
            assert reply.order_id == "2"
        finally:
            admin = await client.connection.channel()
            await admin.queue_delete(client.service_queue)
            await admin.close()


@pytest.mark.parametrize("service", ["amq.reserved", "s" * 250, "line\nbreak"],
                         ids=["reserved-prefix", "too-long", "line-break"])
async def test_a_service_name_rabbitmq_refuses_is_refused_at_connect(url: str, service: str) -> None:
    client = Client(url, service_name=service)
    with pytest.raises(errors.InvalidArgumentError) as info:
        await client.connect()
    assert info.value.argument == "service_name"
    assert client.connection is None
