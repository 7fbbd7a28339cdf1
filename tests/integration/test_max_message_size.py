"""max_message_size against the real RabbitMQ: the broker accepts a 2 MiB message (its own limit is
128 MiB); a client limited to 1 MiB gets it marked ``oversized`` with its body dropped as it came,
counted, and goes on with the next message on the same connection."""
from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from mmate_fast.amqp import BasicProperties, connect

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
MiB = 1 << 20
NOTE = f"body of {2 * MiB} bytes exceeds max_message_size {MiB}"


async def _fill(queue: str) -> None:
    """Declare ``queue`` and put a 2 MiB message, then a small one, in it (confirmed)."""
    async with await connect(URL, timeout=10) as pub:
        ch = await pub.channel(publisher_confirms=True)
        await ch.queue_declare(queue)
        await ch.publish(b"x" * (2 * MiB), "", queue, BasicProperties(message_id="big", type="T"))
        await ch.publish(b"small", "", queue, BasicProperties(message_id="small"))


async def _delete(queue: str) -> None:
    async with await connect(URL, timeout=10) as admin:
        ch = await admin.channel()
        await ch.queue_delete(queue)


async def test_a_consumer_gets_the_oversized_message_marked_and_the_next_one_normal() -> None:
    queue = f"test.maxsize.{uuid.uuid4().hex[:10]}"
    await _fill(queue)
    try:
        conn = await connect(URL + "?max_message_size=1048576", timeout=10)
        try:
            ch = await conn.channel()
            got: list[Any] = []
            two = asyncio.Event()

            def on_message(d: Any) -> None:
                got.append(d)
                if d.oversized:  # what the subscriber does: dead-letter it, never requeue
                    ch.basic_reject(d.delivery_tag, requeue=False)
                else:
                    ch.basic_ack(d.delivery_tag)
                if len(got) == 2:
                    two.set()

            await ch.basic_consume(queue, on_message)
            await asyncio.wait_for(two.wait(), 20)
            big, small = got
            assert (big.body, big.oversized, big.undecodable) == (b"", 2 * MiB, NOTE)
            assert (big.properties.message_id, big.properties.type) == ("big", "T")
            assert (small.body, small.oversized, small.undecodable) == (b"small", 0, None)
            assert conn.oversized_messages == 1 and not conn.is_closed and ch.is_open
            assert conn._reader.pending() == 0
            ok = await ch.queue_declare(queue, passive=True)
            assert ok.message_count == 0
        finally:
            await conn.close()
    finally:
        await _delete(queue)


async def test_basic_get_of_an_oversized_message_is_marked_too() -> None:
    queue = f"test.maxsize.{uuid.uuid4().hex[:10]}"
    await _fill(queue)
    try:
        conn = await connect(URL, timeout=10, max_message_size=MiB)
        try:
            ch = await conn.channel()
            big = None
            for _ in range(50):
                big = await ch.basic_get(queue, no_ack=True)
                if big is not None:
                    break
                await asyncio.sleep(0.02)
            assert big is not None and big.oversized == 2 * MiB and big.body == b""
            small = await ch.basic_get(queue, no_ack=True)
            assert small is not None and small.body == b"small" and small.oversized == 0
            assert conn.oversized_messages == 1
        finally:
            await conn.close()
    finally:
        await _delete(queue)
