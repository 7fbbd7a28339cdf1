"""Confirmed publishing through the Client (publisher confirms on, the default), on the embedded
broker and on RabbitMQ: an awaited publish is stored, concurrent publishes share the broker's
confirms, a nack fails exactly the nacked publishes, and a publish refused before the broker fails
where it is awaited."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.transports import Connection

#: a queue that holds 3 messages and nacks every publish beyond them
_FULL_AT_3 = {"x-max-length": 3, "x-overflow": "reject-publish"}


@dataclass
class CfPing(Event):
    n: int = 0


def _client(url: str) -> Client:
    return Client(url, service_name=f"cf-{uuid.uuid4().hex[:8]}", declare_topology=False)


async def _depth(conn: Connection, q: str) -> int:
    ch = await conn.channel()
    try:
        return (await ch.queue_declare(q, passive=True)).message_count
    finally:
        await ch.close()


async def test_awaited_publishes_are_stored_and_give_their_ids(url: str, conn: Connection, names: Any) -> None:
    q = names.queue()
    await (await conn.channel()).queue_declare(q)
    async with _client(url) as client:
        first = client.publish_event(CfPing(n=0), exchange="", routing_key=q)
        assert asyncio.isfuture(first)  # sent already; a gather over many runs no Task per publish
        first_id = await first
        ids = await asyncio.wait_for(asyncio.gather(*[
            client.publish_event(CfPing(n=i), exchange="", routing_key=q) for i in range(1, 300)]), 30)
        more = [await client.publish(CfPing(n=i), exchange="", routing_key=q) for i in range(300, 310)]
    every = [first_id, *ids, *more]
    assert all(type(i) is str and i for i in every) and len(set(every)) == 310
    assert await _depth(conn, q) == 310  # confirmed means stored
    d = await (await conn.channel()).basic_get(q, no_ack=True)
    assert d is not None and d.properties.message_id == first_id


async def test_many_publishers_awaiting_one_publish_each(url: str, conn: Connection, names: Any) -> None:
    q = names.queue()
    await (await conn.channel()).queue_declare(q)
    async with _client(url) as client:
        async def publisher(k: int) -> list[str]:
            return [await client.publish_event(CfPing(n=k * 100 + i), exchange="", routing_key=q)
                    for i in range(20)]

        got = await asyncio.wait_for(asyncio.gather(*[publisher(k) for k in range(16)]), 30)
    assert sum(len(g) for g in got) == 320 and len({i for g in got for i in g}) == 320
    assert await _depth(conn, q) == 320


async def test_nack_fails_exactly_the_nacked_publishes(url: str, conn: Connection, names: Any) -> None:
    q = names.queue()
    ch = await conn.channel()
    await ch.queue_declare(q, arguments=_FULL_AT_3)
    async with _client(url) as client:
        outcomes = await asyncio.wait_for(asyncio.gather(*[
            client.publish_event(CfPing(n=i), exchange="", routing_key=q) for i in range(6)],
            return_exceptions=True), 30)
        assert [type(o) for o in outcomes[:3]] == [str] * 3
        assert [type(o) for o in outcomes[3:]] == [errors.PublishNackedError] * 3
        with pytest.raises(errors.PublishNackedError):
            await client.publish_batch([CfPing(n=7), CfPing(n=8)], exchange="", routing_key=q)
        assert await _depth(conn, q) == 3
        await ch.queue_purge(q)
        assert type(await client.publish_event(CfPing(n=9), exchange="", routing_key=q)) is str
    assert await _depth(conn, q) == 1


async def test_publish_refused_before_the_broker_fails_where_awaited(url: str, conn: Connection,
                                                                     names: Any) -> None:
    q = names.queue()
    await (await conn.channel()).queue_declare(q)
    async with _client(url) as client:
        refused = client.publish_event(CfPing(n=1), exchange="", routing_key="r" * 256)  # does not raise
        ok = client.publish_event(CfPing(n=2), exchange="", routing_key=q)
        with pytest.raises(errors.InvalidArgumentError, match="routing"):
            await refused
        assert type(await ok) is str
    assert await _depth(conn, q) == 1  # nothing of the refused one was sent


async def test_publish_batch_pipelines_and_returns_ids_in_order(url: str, conn: Connection,
                                                                 names: Any) -> None:
    q = names.queue()
    ch = await conn.channel()
    await ch.queue_declare(q)
    async with _client(url) as client:
        ids = await client.publish_batch((CfPing(n=i) for i in range(25)), window=4, exchange="",
                                         routing_key=q)
        assert len(ids) == 25 and len(set(ids)) == 25
        assert await _depth(conn, q) == 25
        got = [(await ch.basic_get(q, no_ack=True)) for _ in range(25)]
        assert [d.properties.message_id for d in got if d is not None] == ids
        batch = [CfPing(n=0), CfPing(n=1), CfPing(n=object()), CfPing(n=3)]  # type: ignore[arg-type]
        with pytest.raises(errors.PayloadEncodeError) as info:
            await client.publish_batch(batch, window=4, exchange="", routing_key=q)
        # chunks of 2: the first was sent and confirmed, nothing of the refused one's chunk was
        assert "2 messages of this batch were sent" in "".join(getattr(info.value, "__notes__", []))
    assert await _depth(conn, q) == 2
