"""A delivery over the consumer's ``max_message_size`` through the Client on the real RabbitMQ: the
DLQ gets a record (properties, reason ``too-large``, empty body, ``x-mmate-original-size``), the
original is rejected without requeue so the queue's own dead-letter exchange keeps the whole body,
the failure handler is skipped, and the consumer goes on with the next message."""
from __future__ import annotations

import logging
import uuid

import pytest

from mmate_fast.amqp import BasicProperties, connect
from mmate_fast.client import Client
from mmate_fast.contracts import GenericMessage
from mmate_fast.messaging import topology
from mmate_fast.messaging.subscriber import Failure
from mmate_fast.reliability.dead_lettering import ORIGINAL_SIZE_HEADER, REASON_HEADER
from tests.behaviour.behaviour_helpers import drain_queue, wait_until

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
MiB = 1 << 20


async def test_an_oversized_delivery_is_recorded_in_the_dlq_and_rejected(
        caplog: pytest.LogCaptureFixture) -> None:
    tag = uuid.uuid4().hex[:10]
    queue, parking = f"test.toolarge.{tag}", f"test.toolarge.{tag}.parking"
    dlq = topology.dead_letter_queue(queue)
    admin = await connect(URL, timeout=10)
    try:
        ch = await admin.channel(publisher_confirms=True)
        await ch.queue_declare(parking)
        # the broker-side dead-letter policy of the queue: a rejected original lands in ``parking``
        await ch.queue_declare(queue, durable=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": parking})
        big = b'{"id":"big","type":"Blob","timestamp":"2025-01-02T03:04:05Z","payload":{"x":"' \
            + b"x" * (2 * MiB) + b'"}}'
        await ch.publish(big, "", queue, BasicProperties(message_id="big", type="Blob",
                                                         headers={"app": "h"}))
        small = b'{"id":"small","type":"Blob","timestamp":"2025-01-02T03:04:05Z","payload":{"x":"y"}}'
        await ch.publish(small, "", queue, BasicProperties(message_id="small"))
        got: list[str] = []
        handed: list[Failure] = []

        async def failure_handler(failure: Failure) -> None:  # must not see the oversized one
            handed.append(failure)
            await failure.subscription.give_up(failure)

        with caplog.at_level(logging.WARNING):
            async with Client(f"{URL}?max_message_size={MiB}", service_name=f"toolarge-{tag}",
                              declare_topology=False) as client:
                client.add_handler("Blob", lambda m: got.append(m.payload["x"]
                                                                if isinstance(m, GenericMessage) else "?"))
                sub = await client.subscribe(queue, declare=False, failure_handler=failure_handler)
                await wait_until(lambda: got == ["y"] and sub.stats.dead_lettered == 1, timeout=20)
                assert sub.stats.reasons["too-large"] == 1 and sub.stats.reasons["bad-properties"] == 0
                assert (sub.stats.rejected, sub.stats.acked, handed) == (0, 1, [])
                assert client.connection.oversized_messages == 1
        # one warning line for the message (the connection's), none from the subscriber
        lines = [r for r in caplog.records if "2097" in r.getMessage() or "too-large" in r.getMessage()]
        assert [r.name for r in lines] == ["mmate_fast.amqp"], [r.getMessage() for r in lines]
        [record] = await drain_queue(ch, dlq, expect=1, timeout=10)
        h = record.properties.headers
        assert record.body == b"" and record.properties.message_id == "big"
        assert record.properties.type == "Blob" and h["app"] == "h"
        assert h[REASON_HEADER] == "too-large" and h[ORIGINAL_SIZE_HEADER] == len(big)
        [kept] = await drain_queue(ch, parking, expect=1, timeout=10)
        assert kept.body == big and kept.properties.message_id == "big"
        assert (await ch.queue_declare(queue, passive=True)).message_count == 0
    finally:
        ch = await admin.channel()
        for q in (queue, parking, dlq):
            await ch.queue_delete(q)
        await admin.close()
