"""Real poison messages on RabbitMQ (issue 7 item 1, the subscriber's part): every kind of
undecodable property or routing key, interleaved with good messages on a Client's service queue,
ends in ``dlq.{queue}`` with reason ``bad-properties`` and its raw property bytes; the good ones are
handled in order and the consumer goes on. Needs the frame reader that marks such deliveries
(``tests/poison.py`` comes with it)."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.amqp import connect
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import topology

poison = pytest.importorskip("tests.poison", reason="tests/poison.py comes with the frame reader of issue 7")

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass
class PzEvt(Event):
    n: int = 0


async def test_every_poison_kind_is_dead_lettered_and_the_consumer_goes_on() -> None:
    service = f"pz-{uuid.uuid4().hex[:8]}"
    routing_key = f"evt.{service}"
    got: list[int] = []
    raw_conn = await connect(URL)
    try:
        async with Client(URL, service_name=service) as client:
            client.add_handler(PzEvt, lambda e: got.append(e.n), bind=False)
            await client.bind(topology.EVENTS, routing_key)
            await client.bind(topology.EVENTS, routing_key + ".*")  # the routing-key kind adds ".\xff\xfe"
            sub = await client.start_consuming()
            exchange, _, out = client._require_publisher().prepare(PzEvt(n=0, aggregate_id="a"))
            for n, kind in enumerate(poison.POISON_KINDS, start=1):
                await client.publish_event(PzEvt(n=n, aggregate_id="a"), routing_key=routing_key)
                await poison.publish_poison(raw_conn, kind, exchange, routing_key, out.body)
            await client.publish_event(PzEvt(n=99, aggregate_id="a"), routing_key=routing_key)
            kinds = len(poison.POISON_KINDS)
            end = time.monotonic() + 10
            while not (len(got) == kinds + 1 and sub.stats.dead_lettered == kinds):
                assert time.monotonic() < end, (got, sub.stats)
                await asyncio.sleep(0.02)
            assert got == [*range(1, kinds + 1), 99]
            assert sub.stats.reasons == {"bad-properties": kinds}
            ch = await raw_conn.channel()
            dead: list[Any] = []
            while (d := await ch.basic_get(f"dlq.{client.service_queue}", no_ack=True)) is not None:
                dead.append(d)
        assert len(dead) == kinds
        # the moves to the DLQ run concurrently: compare the raw property bytes as a set, not in order
        raw_kinds = [k for k in poison.POISON_KINDS if k != "routing-key-not-utf8"]
        assert sorted(d.properties.headers.get("x-mmate-raw-properties", b"") for d in dead) == sorted(
            [b"", *(poison.poison_properties(k) for k in raw_kinds)])
        for d in dead:
            assert d.properties.headers["x-mmate-reason"] == "bad-properties"
            assert d.body == out.body
    finally:
        ch = await raw_conn.channel()
        await ch.queue_delete(f"{service}-queue")
        await ch.queue_delete(f"dlq.{service}-queue")
        await raw_conn.close()
