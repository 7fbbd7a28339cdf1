"""Channel-level errors: 403/404/405/406 close only the failing channel."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast.errors import (
    AccessRefusedError,
    ChannelClosedError,
    NotFoundError,
    PreconditionFailedError,
    ResourceLockedError,
)
from mmate_fast.transports import Connection, connect


async def test_redeclare_inequivalent_is_406_and_closes_only_that_channel(conn: Connection,
                                                                          names: Any) -> None:
    ch, other = await conn.channel(), await conn.channel()
    x, q = names.exchange(), names.queue()
    await ch.exchange_declare(x, "direct")
    with pytest.raises(PreconditionFailedError) as info:
        await ch.exchange_declare(x, "fanout")
    assert info.value.reply_code == 406
    assert "PRECONDITION_FAILED" in info.value.reply_text
    assert not ch.is_open
    with pytest.raises(PreconditionFailedError):
        await ch.queue_declare(q)  # a closed channel keeps raising its error
    await other.queue_declare(q)
    with pytest.raises(PreconditionFailedError) as info:
        await other.queue_declare(q, durable=True)
    assert "durable" in info.value.reply_text
    third = await conn.channel()
    with pytest.raises(PreconditionFailedError):
        await third.queue_declare(q, arguments={"x-message-ttl": 1000})
    assert not conn.is_closed


async def test_passive_declare_of_missing_is_404(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    with pytest.raises(NotFoundError) as info:
        await ch.queue_declare(names.queue("missing"), passive=True)
    assert info.value.reply_code == 404
    ch2 = await conn.channel()
    with pytest.raises(NotFoundError):
        await ch2.exchange_declare(names.exchange("missing"), "direct", passive=True)
    assert not ch.is_open and not ch2.is_open
    ch3 = await conn.channel()
    ok = await ch3.queue_declare(names.queue())
    assert ok.message_count == 0


async def test_default_exchange_is_403(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    with pytest.raises(AccessRefusedError) as info:
        await ch.queue_bind(q, "", "k")
    assert info.value.reply_code == 403
    ch = await conn.channel()
    with pytest.raises(AccessRefusedError):
        await ch.exchange_delete("")


async def test_publish_to_missing_exchange_fails_next_call(conn: Connection, names: Any) -> None:
    ch, other = await conn.channel(), await conn.channel()
    q = names.queue()
    await other.queue_declare(q)
    assert ch.publish_nowait(b"lost", names.exchange("missing"), "k") is None
    with pytest.raises(NotFoundError) as info:
        await asyncio.sleep(0.05)
        await ch.queue_declare(q, passive=True)
    assert info.value.reply_code == 404
    assert not ch.is_open
    with pytest.raises(ChannelClosedError):
        ch.publish_nowait(b"x", "", q)
    await other.publish(b"still works", "", q)
    d = await other.basic_get(q, no_ack=True)
    assert d is not None and d.body == b"still works"


async def test_publish_to_missing_exchange_fails_confirm(conn: Connection, names: Any) -> None:
    ch = await conn.channel(publisher_confirms=True)
    fut = ch.publish_nowait(b"lost", names.exchange("missing"), "k")
    assert fut is not None
    with pytest.raises(NotFoundError):
        await asyncio.wait_for(fut, 3)


async def test_exclusive_queue_is_405_for_another_connection(conn: Connection, names: Any,
                                                             url: str) -> None:
    ch = await conn.channel()
    q = names.queue("excl")
    await ch.queue_declare(q, exclusive=True)
    async with await connect(url) as other_conn:
        other = await other_conn.channel()
        with pytest.raises(ResourceLockedError) as info:
            await other.queue_declare(q, passive=True)
        assert info.value.reply_code == 405
        other = await other_conn.channel()
        with pytest.raises(ResourceLockedError):
            await other.basic_consume(q, lambda d: None)
        other = await other_conn.channel()
        await other.publish(b"from other", "", q)  # publishing is allowed
    d = await ch.basic_get(q, no_ack=True)
    assert d is not None and d.body == b"from other"


async def test_exclusive_queue_deleted_with_its_connection(conn: Connection, names: Any,
                                                           url: str) -> None:
    q = names.queue("excl")
    async with await connect(url) as owner:
        och = await owner.channel()
        await och.queue_declare(q, exclusive=True)
    ch = await conn.channel()
    with pytest.raises(NotFoundError):
        await ch.queue_declare(q, passive=True)


async def test_server_named_queue(conn: Connection) -> None:
    ch = await conn.channel(publisher_confirms=True)  # confirmed = counted by the queue
    ok = await ch.queue_declare("", exclusive=True)
    assert ok.queue.startswith("amq.gen-")
    assert len(ok.queue) > len("amq.gen-")
    await ch.publish(b"x", "", ok.queue)
    again = await ch.queue_declare(ok.queue, passive=True)
    assert again.message_count == 1


async def test_unknown_delivery_tag_is_406(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    ch.basic_ack(42)
    with pytest.raises(PreconditionFailedError) as info:
        await asyncio.sleep(0.05)
        await ch.queue_declare(q, passive=True)
    assert "unknown delivery tag 42" in info.value.reply_text
    assert not conn.is_closed


async def test_delete_and_purge_preconditions(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await ch.publish(b"x", "", q)
    with pytest.raises(PreconditionFailedError):
        await ch.queue_delete(q, if_empty=True)
    ch = await conn.channel()
    await ch.basic_consume(q, lambda d: None, no_ack=True)
    other = await conn.channel()
    with pytest.raises(PreconditionFailedError):
        await other.queue_delete(q, if_unused=True)
