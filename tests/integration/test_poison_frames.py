"""Poison messages on the real RabbitMQ fail one message, not the connection (issue 7 item 1).

RabbitMQ forwards every kind in ``tests.poison``; before the fix the frame reader raised FrameError
502 on the first one, the connection closed, and the same message came back forever.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mmate_fast.amqp import BasicProperties, connect
from tests.poison import POISON_KINDS, poison_properties, poison_routing_key, publish_poison

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
TIMEOUT = 15.0


async def test_poison_and_good_messages_interleaved_keep_the_connection(
        unique_name: Callable[[str], str]) -> None:
    exchange, queue = unique_name("poison-x"), unique_name("poison-q")
    conn = await connect(URL, timeout=TIMEOUT)
    try:
        admin = await conn.channel(publisher_confirms=True)
        await admin.exchange_declare(exchange, "topic", auto_delete=True)
        await admin.queue_declare(queue, arguments={"x-expires": 60_000})
        for pattern in ("rk", "rk.*"):
            await admin.queue_bind(queue, exchange, pattern)
        sent: list[tuple[str | None, bytes]] = []  # (poison kind or None, body), in publish order
        for i, kind in enumerate(POISON_KINDS):
            good = f"good-{i}".encode()
            await admin.publish(good, exchange, "rk", BasicProperties(message_id=f"m{i}", type="Good"))
            sent.append((None, good))
            await publish_poison(conn, kind, exchange, "rk", f"poison-{kind}".encode())
            sent.append((kind, f"poison-{kind}".encode()))
        sent.append((None, b"good-last"))
        await admin.publish(b"good-last", exchange, "rk", BasicProperties(message_id="last", type="Good"))

        consumer = await conn.channel()
        await consumer.basic_qos(prefetch_count=3)
        got: list[Any] = []
        done = asyncio.get_running_loop().create_future()

        def on_message(delivery: Any) -> None:
            got.append(delivery)
            consumer.basic_ack(delivery.delivery_tag)
            if len(got) == len(sent) and not done.done():
                done.set_result(None)

        await consumer.basic_consume(queue, on_message)
        await asyncio.wait_for(done, TIMEOUT)

        assert not conn.is_closed and consumer.is_open
        assert [d.body for d in got] == [body for _, body in sent]
        for (kind, _), d in zip(sent, got, strict=True):
            if kind is None:
                assert d.undecodable is None and d.raw_properties is None
                assert d.properties.type == "Good" and d.routing_key == "rk"
                continue
            assert d.undecodable, kind
            assert d.routing_key.encode("utf-8", "surrogateescape") == poison_routing_key(kind, "rk")
            if kind == "routing-key-not-utf8":
                assert d.undecodable == "routing key is not UTF-8" and d.raw_properties is None
            else:
                assert d.raw_properties == poison_properties(kind), kind
                assert d.properties == BasicProperties()

        # the same connection still publishes and delivers
        await admin.publish(b"after", exchange, "rk", BasicProperties(type="Good"))
        msg = None
        for _ in range(100):
            if len(got) > len(sent):
                msg = got[-1]
                break
            await asyncio.sleep(0.02)
        assert msg is not None and msg.body == b"after" and msg.undecodable is None
        await consumer.close()
        await admin.queue_delete(queue)
        await admin.exchange_delete(exchange)
    finally:
        await conn.close()


async def test_publish_poison_refuses_an_unknown_kind(unique_name: Callable[[str], str]) -> None:
    conn = await connect(URL, timeout=TIMEOUT)
    try:
        with pytest.raises(ValueError, match="unknown poison kind"):
            await publish_poison(conn, "no-such-kind", "", unique_name("q"), b"x")
        assert not conn.is_closed
    finally:
        await conn.close()
