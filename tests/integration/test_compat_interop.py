"""Interop: messages published with real aio-pika are consumed through the facade and the other way
round, with every property and header intact (what the consumer sees equals what the same consumer
sees from its own library's publish)."""
from __future__ import annotations

import asyncio
import datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import IMPLS, URL, info_shape, unique

pytestmark = pytest.mark.integration

HEADERS = {"str": "text ünïcode", "int": 7, "i64": -(2 ** 40), "bool": False, "float": 0.25, "f32": 0.1,
           "u16": 40000, "u32": 3_000_000_000, "i32": -70000,
           "none": None, "list": [1, "a", [True]], "table": {"k": {"deep": "v"}},
           "decimal": Decimal("-3.14"), "ts": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)}
PROPS = dict(headers=HEADERS, content_type="text/plain", content_encoding="gzip", delivery_mode=2,
             priority=9, correlation_id="c-42", reply_to="reply-queue", expiration=30,
             message_id="m-42", timestamp=datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC),
             type="interop", user_id="guest", app_id="compat-interop")


async def _publish(ap: ModuleType, queue: str, count: int) -> None:
    async with await ap.connect(URL) as conn:
        ch = await conn.channel()
        for i in range(count):
            await ch.default_exchange.publish(ap.Message(b"body-%d" % i, **PROPS), queue)


async def _consume(ap: ModuleType, queue: str, count: int) -> list[Any]:
    async with await ap.connect(URL) as conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, passive=True)
        seen: list[Any] = []
        done = asyncio.Event()

        async def on_message(m: Any) -> None:
            async with m.process():
                seen.append((m.body, info_shape(m, drop=("consumer_tag", "delivery_tag", "routing_key"))))
                if len(seen) == count:
                    done.set()

        await q.consume(on_message)
        await asyncio.wait_for(done.wait(), 10)
        return seen


@pytest.mark.parametrize(("publisher", "consumer"), [("aio_pika", "facade"), ("facade", "aio_pika")])
async def test_every_property_and_header_crosses_over(publisher: str, consumer: str) -> None:
    results = {}
    for pub in (publisher, consumer):  # the cross run, then the consumer's own library as reference
        async with await IMPLS["aio_pika"].connect(URL) as admin:
            ch = await admin.channel()
            queue = (await ch.declare_queue(unique("interop"), auto_delete=False)).name
            try:
                await _publish(IMPLS[pub], queue, 3)
                results[pub] = await _consume(IMPLS[consumer], queue, 3)
            finally:
                await ch.queue_delete(queue)
    assert results[publisher] == results[consumer]
    body, info = results[publisher][0]
    assert body == b"body-0" and info["expiration"] == 30.0
    assert info["headers"] == {**HEADERS, "f32": pytest.approx(0.1)}  # sent as a 32-bit float, as pamqp does
    assert info["message_id"] == "m-42" and info["priority"] == 9 and info["delivery_mode"] == 2
