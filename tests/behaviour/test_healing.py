"""A refused call fails alone (issue 7 items 3, 4 and 7), on the embedded broker and on RabbitMQ.

Arguments the broker would refuse are refused before anything is written, with a named error, and
the channel stays open; a publish channel pool reopens a channel the broker closed by itself.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.amqp import ChannelPool
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.errors import ChannelClosedError, InvalidArgumentError, NotFoundError
from mmate_fast.transports import Connection, connect
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import drain_queue

P = BasicProperties


def _noop(_: Any) -> None:
    return None


async def test_bad_names_in_calls_are_refused_before_the_broker(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: ch.queue_declare("q" * 256), "queue"),
        (lambda: ch.queue_declare("é" * 128), "queue"),  # 256 bytes in UTF-8
        (lambda: ch.queue_declare("bad\udc80"), "queue"),  # not encodable as UTF-8
        (lambda: ch.queue_declare("a\nb"), "queue"),  # RabbitMQ would strip it: another name
        (lambda: ch.exchange_declare("x" * 256, "topic"), "exchange"),
        (lambda: ch.queue_bind(q, "amq.topic", "k" * 256), "routing_key"),
        (lambda: ch.queue_bind(q, "x" * 300, "k"), "exchange"),
        (lambda: ch.queue_purge("q" * 256), "queue"),
        (lambda: ch.queue_delete("q" * 256), "queue"),
        (lambda: ch.basic_get("q" * 256), "queue"),
        (lambda: ch.basic_consume(q, _noop, consumer_tag="t" * 256), "consumer_tag"),
        (lambda: ch.exchange_bind("x" * 256, "amq.topic", "k"), "destination"),
    ]
    for make, argument in cases:
        with pytest.raises(InvalidArgumentError) as info:
            await make()
        assert info.value.argument == argument, (argument, str(info.value))
        assert ch.is_open, argument
    assert (await ch.queue_declare(q, passive=True)).queue == q  # the next call works


async def test_names_rabbitmq_accepts_are_accepted(conn: Connection, names: Any) -> None:
    """Any Unicode text up to 255 bytes is a name to RabbitMQ (pamqp's narrower rules are not ours):
    signs, non-ASCII, exchange names longer than 127 characters."""
    ch = await conn.channel()
    tag = names.queue()
    queue = f"{tag} café(*)ö+[1]"
    exchange = f"{tag}-" + "x" * (200 - len(tag))
    try:
        await ch.exchange_declare(exchange, "topic", auto_delete=True)
        assert (await ch.queue_declare(queue, auto_delete=True)).queue == queue
        await ch.queue_bind(queue, exchange, "é.*")
        ch.publish_nowait(b"m", exchange, "é.1")
        [d] = await drain_queue(ch, queue, expect=1)
        assert d.body == b"m" and d.routing_key == "é.1" and d.exchange == exchange
    finally:
        await ch.queue_delete(queue)
        await ch.exchange_delete(exchange)


@pytest.mark.parametrize("confirms", [False, True], ids=["plain", "confirms"])
async def test_bad_publish_arguments_are_refused_before_the_broker(conn: Connection, names: Any,
                                                                   confirms: bool) -> None:
    ch = await conn.channel(publisher_confirms=confirms)
    q = names.queue()
    await ch.queue_declare(q)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"exchange": "x" * 256}, "exchange"),
        ({"routing_key": "é" * 128}, "routing_key"),
        ({"routing_key": "bad\udc80"}, "routing_key"),
        ({"properties": P(priority=256)}, "priority"),
        ({"properties": P(priority=-1)}, "priority"),
        ({"properties": P(expiration="-1")}, "expiration"),
        ({"properties": P(expiration="soon")}, "expiration"),
        ({"properties": P(expiration=-1)}, "expiration"),
        ({"properties": P(expiration="")}, "expiration"),
        ({"properties": P(delivery_mode=3)}, "delivery_mode"),
        ({"properties": P(message_id="m" * 256)}, "message_id"),
        ({"properties": P(correlation_id="bad\udc80")}, "correlation_id"),
        ({"properties": P(headers={"x": object()})}, "headers"),
    ]
    for case, argument in cases:
        kwargs = {"exchange": "", "routing_key": q, **case}
        with pytest.raises(InvalidArgumentError) as info:
            ch.publish_nowait(b"refused", kwargs["exchange"], kwargs["routing_key"], kwargs.get("properties"))
        assert info.value.argument == argument, (argument, str(info.value))
        with pytest.raises(InvalidArgumentError):
            await ch.publish(b"refused", kwargs["exchange"], kwargs["routing_key"], kwargs.get("properties"))
        assert ch.is_open, argument
    await ch.publish(b"ok", "", q, P(expiration="60000", delivery_mode=2, priority=0))
    got = await drain_queue(ch, q, expect=1)
    assert [d.body for d in got] == [b"ok"]
    assert ch.is_open


async def test_pool_reopens_a_channel_closed_by_a_refused_publish(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    pool = await ChannelPool(conn, 1, publisher_confirms=True).open()
    with pytest.raises(NotFoundError) as info:
        await pool.publish(b"refused", names.exchange("missing"), "k")
    assert info.value.reply_code == 404
    await pool.publish(b"after", "", q)  # waits for the repair
    fut = pool.publish_nowait(b"nowait", "", q)
    assert fut is not None and await asyncio.wait_for(fut, 5) is True
    await pool.wait_for_confirms(timeout=5)
    assert [d.body for d in await drain_queue(ch, q, expect=2)] == [b"after", b"nowait"]
    await pool.close()


async def test_pool_buffers_publish_nowait_while_it_reopens(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    pool = await ChannelPool(conn, 1).open()
    first = pool.channel()
    assert pool.publish_nowait(b"refused", names.exchange("missing"), "k") is None
    for _ in range(100):  # the broker closes the channel (one round trip)
        if not first.is_open:
            break
        await asyncio.sleep(0.02)
    assert not first.is_open
    for i in range(5):
        assert pool.publish_nowait(b"buffered-%d" % i, "", q) is None  # while the pool reopens
    await pool.publish(b"awaited", "", q)
    got = await drain_queue(ch, q, expect=6)
    assert [d.body for d in got] == [b"buffered-%d" % i for i in range(5)] + [b"awaited"]
    assert pool.channel().is_open and pool.channel() is not first
    await pool.close()


async def test_pool_drain_and_channel_wait_or_name_the_repair(conn: Connection, names: Any) -> None:
    pool = await ChannelPool(conn, 1, publisher_confirms=True).open()
    first = pool.channel()
    with pytest.raises(NotFoundError):
        await pool.publish(b"refused", names.exchange("missing"), "k")
    assert not first.is_open
    with pytest.raises(ChannelClosedError, match="reopen"):
        pool.channel()  # no open channel yet: says a repair is under way
    await pool.drain(timeout=5)  # waits for it
    assert pool.channel().is_open
    await pool.close()


@dataclass
class HealPing(Event):
    n: int = 0


async def test_client_publishes_after_a_refused_publish(url: str) -> None:
    service = f"heal-{uuid.uuid4().hex[:8]}"
    async with Client(url, service_name=service) as client:
        assert client.publisher is not None
        with pytest.raises(NotFoundError):
            await client.publisher.publish(HealPing(n=1), exchange=f"missing-{service}", routing_key="k")
        await client.publish_event(HealPing(n=2))  # the pool reopened its channel
        await client.publish_event(HealPing(n=3))
    cleaner = await connect(url)
    await (await cleaner.channel()).queue_delete(client.service_queue)
    await cleaner.close()
