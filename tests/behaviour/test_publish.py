"""Publishing: confirms, mandatory returns, basic_get counts, purge/delete counts."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast.errors import PublishReturnedError
from mmate_fast.transports import Connection
from mmate_fast.transports.base import BasicProperties


async def test_confirms_resolve_true(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    assert ch.publisher_confirms
    q = names.queue()
    await ch.queue_declare(q)
    futs = [ch.publish_nowait(f"m{i}".encode(), "", q) for i in range(20)]
    assert all(f is not None for f in futs)
    assert await asyncio.wait_for(asyncio.gather(*futs), 3) == [True] * 20  # type: ignore[arg-type]
    await ch.publish(b"last", "", q)
    await ch.wait_for_confirms(timeout=3)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.message_count == 21


async def test_confirm_select_turns_confirms_on(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    assert ch.publish_nowait(b"a", "", q) is None
    await ch.confirm_select()
    fut = ch.publish_nowait(b"b", "", q)
    assert fut is not None and await asyncio.wait_for(fut, 3) is True


async def test_mandatory_unroutable_is_returned(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    x = names.exchange()
    await ch.exchange_declare(x, "direct")
    returned: list[Any] = []
    ch.on_return = returned.append
    with pytest.raises(PublishReturnedError):
        await ch.publish(b"nowhere", x, "no-route", BasicProperties(message_id="m1"), mandatory=True,
                         timeout=3)
    assert len(returned) == 1
    r = returned[0]
    assert r.kind == r.KIND_RETURN
    assert (r.reply_code, r.reply_text) == (312, "NO_ROUTE")
    assert (r.exchange, r.routing_key, r.body) == (x, "no-route", b"nowhere")
    assert r.properties.message_id == "m1"
    assert ch.is_open
    await ch.publish(b"not mandatory", x, "no-route", timeout=3)  # silently dropped, acked


async def test_basic_get_message_count(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = names.queue()
    await ch.queue_declare(q)
    for i in range(3):
        await ch.publish(f"m{i}".encode(), "", q)
    await asyncio.sleep(0.05)
    d = await ch.basic_get(q)
    assert d is not None
    assert (d.kind, d.body, d.message_count, d.redelivered) == (d.KIND_GET_OK, b"m0", 2, False)
    assert d.delivery_tag == 1
    ch.basic_ack(d.delivery_tag)
    d2 = await ch.basic_get(q, no_ack=True)
    assert d2 is not None and (d2.body, d2.message_count, d2.delivery_tag) == (b"m1", 1, 2)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.message_count == 1
    assert await ch.basic_get(q, no_ack=True) is not None
    assert await ch.basic_get(q) is None


async def test_purge_and_delete_counts(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    q = names.queue()
    await ch.queue_declare(q)
    for _ in range(4):
        await ch.publish(b"x", "", q)
    await asyncio.sleep(0.05)
    assert await ch.queue_purge(q) == 4
    for _ in range(3):
        await ch.publish(b"y", "", q)
    await asyncio.sleep(0.05)
    assert await ch.queue_delete(q) == 3
    assert await ch.queue_delete(q) == 0  # deleting a missing queue is fine (RabbitMQ 3.10)
