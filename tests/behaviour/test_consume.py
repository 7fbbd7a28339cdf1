"""Consumers: prefetch, round-robin, ack/nack/reject, requeue, cancel (ours and the broker's)."""
from __future__ import annotations

import asyncio
from typing import Any

from mmate_fast.transports import Connection
from tests.behaviour.behaviour_helpers import drain_queue, wait_until


async def _fill(ch: Any, q: str, n: int) -> None:
    for i in range(n):
        ch.publish_nowait(f"m{i}".encode(), "", q)
    await ch.queue_declare(q, passive=True)  # a round trip: the publishes are in the queue


async def test_prefetch_limits_in_flight(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await _fill(ch, q, 10)
    await ch.basic_qos(prefetch_count=3)
    got: list[Any] = []
    await ch.basic_consume(q, got.append)
    await wait_until(lambda: len(got) == 3)
    await asyncio.sleep(0.1)
    assert [d.body for d in got] == [b"m0", b"m1", b"m2"]
    ch.basic_ack(got[1].delivery_tag)
    await wait_until(lambda: len(got) == 4)
    await asyncio.sleep(0.1)
    assert len(got) == 4 and got[3].body == b"m3"
    ch.basic_ack(got[3].delivery_tag, multiple=True)  # settles m0, m2, m3
    await wait_until(lambda: len(got) == 7)
    assert [d.body for d in got[4:]] == [b"m4", b"m5", b"m6"]


async def test_competing_consumers_round_robin(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    a: list[bytes] = []
    b: list[bytes] = []
    await ch.basic_consume(q, lambda d: a.append(d.body), no_ack=True)
    await ch.basic_consume(q, lambda d: b.append(d.body), no_ack=True)
    await _fill(ch, q, 10)
    await wait_until(lambda: len(a) + len(b) == 10)
    assert len(a) == 5 and len(b) == 5
    assert sorted(a + b) == sorted(f"m{i}".encode() for i in range(10))
    assert {a[0], b[0]} == {b"m0", b"m1"}


async def test_coroutine_callback_and_delivery_fields(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    got: list[Any] = []

    async def on_message(d: Any) -> None:
        await asyncio.sleep(0)
        got.append(d)
        ch.basic_ack(d.delivery_tag)

    tag = await ch.basic_consume(q, on_message, consumer_tag="my-tag")
    assert tag == "my-tag"
    await _fill(ch, q, 2)
    await wait_until(lambda: len(got) == 2)
    d = got[0]
    assert (d.kind, d.consumer_tag, d.exchange, d.routing_key) == (d.KIND_DELIVER, "my-tag", "", q)
    assert sorted(x.delivery_tag for x in got) == [1, 2]
    assert sorted(x.body for x in got) == [b"m0", b"m1"]


async def test_nack_multiple_requeues_as_redelivered(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await _fill(ch, q, 3)
    got: list[Any] = []
    await ch.basic_consume(q, got.append)
    await wait_until(lambda: len(got) == 3)
    assert all(not d.redelivered for d in got)
    ch.basic_nack(got[1].delivery_tag, multiple=True, requeue=True)  # m0 and m1 back
    await wait_until(lambda: len(got) == 5)
    again = got[3:]
    assert [d.body for d in again] == [b"m0", b"m1"]
    assert all(d.redelivered for d in again)
    assert [d.delivery_tag for d in again] == [4, 5]
    ch.basic_ack(0, multiple=True)
    await asyncio.sleep(0.05)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.message_count == 0


async def test_reject_requeue_goes_back_to_head(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await _fill(ch, q, 3)
    first = await ch.basic_get(q)
    assert first is not None
    ch.basic_reject(first.delivery_tag, requeue=True)
    got = await drain_queue(ch, q, expect=3)
    assert [(d.body, d.redelivered) for d in got] == [(b"m0", True), (b"m1", False), (b"m2", False)]


async def test_unacked_requeued_when_channel_closes(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    await _fill(ch, q, 2)
    got: list[Any] = []
    await ch.basic_consume(q, got.append)
    await wait_until(lambda: len(got) == 2)
    await ch.close()
    assert not ch.is_open
    ch2 = await conn.channel()
    back = await drain_queue(ch2, q, expect=2)
    assert [(d.body, d.redelivered) for d in back] == [(b"m0", True), (b"m1", True)]


async def test_consumer_cancel_stops_deliveries_keeps_unacked(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    got: list[Any] = []
    tag = await ch.basic_consume(q, got.append)
    await _fill(ch, q, 1)
    await wait_until(lambda: len(got) == 1)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.consumer_count == 1
    await ch.basic_cancel(tag)
    ok = await ch.queue_declare(q, passive=True)
    assert ok.consumer_count == 0
    await ch.publish(b"after", "", q)
    await asyncio.sleep(0.1)
    assert len(got) == 1
    ch.basic_ack(got[0].delivery_tag)  # still acknowledgeable after cancel
    d = await ch.basic_get(q, no_ack=True)
    assert d is not None and d.body == b"after"
    assert ch.is_open


async def test_broker_cancels_consumer_when_queue_deleted(conn: Connection, names: Any) -> None:
    ch, admin = await conn.channel(), await conn.channel()
    q = names.queue()
    await ch.queue_declare(q)
    cancelled: list[str] = []
    tag = await ch.basic_consume(q, lambda d: None, on_cancel=cancelled.append)
    await admin.queue_delete(q)
    await wait_until(lambda: cancelled == [tag])
    assert ch.is_open


async def test_auto_delete_queue_goes_with_last_consumer(conn: Connection, names: Any) -> None:
    ch = await conn.channel()
    q = names.queue("ad")
    await ch.queue_declare(q, auto_delete=True)
    tag = await ch.basic_consume(q, lambda d: None, no_ack=True)
    await ch.basic_cancel(tag)
    await asyncio.sleep(0.05)
    probe = await conn.channel()
    from mmate_fast.errors import NotFoundError
    try:
        await probe.queue_declare(q, passive=True)
    except NotFoundError as e:
        assert e.reply_code == 404
    else:
        raise AssertionError("auto-delete queue survived its last consumer")
