"""Quorum queues as a Client declares them (issue 12 item 2), on the in-memory broker and RabbitMQ:
``x-delivery-limit`` is the poison-message guard: a message given back more often than the limit
(a consumer that crashes on it, nacks it, or whose channel dies with it) goes to ``dlq.{queue}``."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mmate_fast import Client, errors
from mmate_fast.transports import Connection
from tests.behaviour.behaviour_helpers import drain_queue


async def _get(ch: Any, queue: str) -> Any:
    for _ in range(200):
        d = await ch.basic_get(queue)
        if d is not None:
            return d
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing arrived in {queue}")


async def test_delivery_limit_dead_letters_a_poison_message_to_the_dlq(
        url: str, conn: Connection, names: Any) -> None:
    service = names.service("poison")
    queue, dlq = f"{service}-queue", f"dlq.{service}-queue"
    async with Client(url, service_name=service, queue_type="quorum", delivery_limit=2):
        ch = await conn.channel()
        await ch.publish(b"poison", "", queue)
        await ch.publish(b"fine", "", queue)
        for _ in range(2):  # given back twice: still within the limit, delivered again
            d = await _get(ch, queue)
            assert d.body == b"poison"
            ch.basic_nack(d.delivery_tag, requeue=True)
        d = await _get(ch, queue)
        assert d.body == b"poison" and d.redelivered
        await ch.close()  # the third time it goes back (with its channel): over the limit
        ch = await conn.channel()
        [dead] = await drain_queue(ch, dlq, expect=1)
        assert dead.body == b"poison"
        [death] = dead.properties.headers["x-death"]
        assert (death["reason"], death["queue"]) == ("delivery_limit", queue)
        ok = await _get(ch, queue)
        assert ok.body == b"fine" and await ch.basic_get(queue) is None
        ch.basic_ack(ok.delivery_tag)


async def test_without_a_limit_a_quorum_queue_gives_a_message_back_every_time(
        url: str, conn: Connection, names: Any) -> None:
    service = names.service("nolimit")
    queue = f"{service}-queue"
    async with Client(url, service_name=service, queue_type="quorum"):
        ch = await conn.channel()
        await ch.publish(b"again", "", queue)
        for _ in range(5):
            d = await _get(ch, queue)
            ch.basic_nack(d.delivery_tag, requeue=True)
        d = await _get(ch, queue)
        assert d.body == b"again"
        ch.basic_ack(d.delivery_tag)


@pytest.mark.parametrize(("flags", "arguments", "says"), [
    ({"durable": False}, {"x-queue-type": "quorum"}, "invalid property 'non-durable'"),
    ({"durable": True, "exclusive": True}, {"x-queue-type": "quorum"}, "invalid property 'exclusive-owner'"),
    ({"durable": True, "auto_delete": True}, {"x-queue-type": "quorum"}, "invalid property 'auto-delete'"),
    ({"durable": True}, {"x-queue-type": "quorum", "x-max-priority": 5}, "invalid arg 'x-max-priority'"),
    ({"durable": True}, {"x-queue-type": "bogus"}, "unsupported queue type 'bogus'"),
])
async def test_quorum_queues_refuse_what_rabbitmq_refuses(conn: Connection, names: Any, flags: dict[str, bool],
                                                         arguments: dict[str, Any], says: str) -> None:
    ch = await conn.channel()
    with pytest.raises(errors.PreconditionFailedError, match=says):
        await ch.queue_declare(names.queue("qq"), arguments=arguments, **flags)
