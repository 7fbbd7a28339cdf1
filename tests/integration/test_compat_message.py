"""Message / IncomingMessage of the aio-pika facade, side by side with real aio-pika on RabbitMQ:
every property, the expiration/timestamp/delivery-mode conversions, ack/nack/reject, process() and
its options, and the errors of a message handled twice."""
from __future__ import annotations

import asyncio
import datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import URL, exc_shape, info_shape, same, unique

pytestmark = pytest.mark.integration

HEADERS = {"s": "text", "i": 7, "big": 2 ** 40, "neg": -300, "b": True, "f": 1.5, "n": None,
           "l": [1, "two", [3]], "d": {"k": "v", "nested": {"x": 1}}, "dec": Decimal("1.25"),
           "t": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)}
PROPS = dict(headers=HEADERS, content_type="application/json", content_encoding="utf-8",
             priority=7, correlation_id="corr-1", reply_to="reply-q", expiration=60,
             message_id="msg-1", timestamp=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
             type="order.created", user_id="guest", app_id="compat-test")


async def _roundtrip(ap: ModuleType, **props: Any) -> tuple[dict[str, Any], Any]:
    async with await ap.connect(URL) as conn:
        ch = await conn.channel()
        q = await ch.declare_queue(unique("msg"), exclusive=True)
        await ch.default_exchange.publish(ap.Message(b"body", **props), q.name)
        m = await q.get(timeout=5)
        await m.ack()
        drop = ("consumer_tag", "routing_key") + (() if "message_id" in props else ("message_id",))
        return info_shape(m, drop=drop), (m.body, m.body_size, m.message_count)


async def test_every_property_survives_the_round_trip() -> None:
    info, body = await same(lambda ap: _roundtrip(ap, delivery_mode=2, **PROPS))
    assert info["headers"]["l"] == [1, "two", [3]] and info["expiration"] == 60.0
    assert body == (b"body", 4, 0)


async def test_defaults_and_conversions() -> None:
    # no properties: aio-pika sends delivery_mode 1, priority 0, empty headers and a random message_id
    info, _ = await same(lambda ap: _roundtrip(ap))
    assert info["delivery_mode"] == 1 and info["priority"] == 0 and info["headers"] == {}

    async def message_id_is_random_hex(ap: ModuleType) -> tuple[int, bool]:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(unique("mid"), exclusive=True)
            await ch.default_exchange.publish(ap.Message(b"x"), q.name)
            m = await q.get()
            return len(m.message_id), all(c in "0123456789abcdef" for c in m.message_id)

    assert await same(message_id_is_random_hex) == (32, True)
    # expiration as timedelta / float seconds; timestamp from POSIX seconds
    await same(lambda ap: _roundtrip(ap, expiration=datetime.timedelta(seconds=90), timestamp=1700000000))
    await same(lambda ap: _roundtrip(ap, expiration=0.5, delivery_mode=ap.DeliveryMode.PERSISTENT))


async def test_outgoing_message_object() -> None:
    async def shape(ap: ModuleType) -> Any:
        m = ap.Message(bytearray(b"abc"), correlation_id="", priority=None, timestamp=0.0, expiration=5)
        out = [info_shape(m, drop=()), list(m), m.locked, type(m.delivery_mode).__name__]
        m.lock()
        try:
            m.priority = 3
        except ValueError as e:
            out.append(exc_shape(e))
        props = m.properties
        out.append((props.expiration, props.priority, props.delivery_mode, props.message_type))
        return out

    await same(shape)


async def _consume_one(ap: ModuleType, handler: Any, *, redelivered_first: bool = False,
                       body: bytes = b"x") -> Any:
    """Publish one message, consume it with ``handler(message)``; return what happened to it."""
    async with await ap.connect(URL) as conn:
        ch = await conn.channel()
        q = await ch.declare_queue(unique("proc"), exclusive=True)
        await ch.default_exchange.publish(ap.Message(body), q.name)
        if redelivered_first:
            m = await q.get()
            await m.nack(requeue=True)
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def on_message(message: Any) -> None:
            try:
                result = await handler(message)
            except Exception as e:
                result = exc_shape(e)
            if not got.done():
                got.set_result((result, message.redelivered, message.processed, message.locked))

        tag = await q.consume(on_message)
        outcome = await asyncio.wait_for(got, 5)
        await q.cancel(tag)
        await asyncio.sleep(0.05)
        left = await q.get(fail=False)
        if left is not None:
            await left.ack()
        return outcome, None if left is None else (left.body, left.redelivered)


async def test_process_acks_on_success_and_rejects_on_error() -> None:
    async def ok(m: Any) -> str:
        async with m.process():
            return "done"

    assert (await same(lambda ap: _consume_one(ap, ok)))[1] is None

    async def fails(m: Any) -> None:
        async with m.process():
            raise KeyError("boom")

    outcome, left = await same(lambda ap: _consume_one(ap, fails))
    assert outcome[0] == ("KeyError", ("boom",)) and left is None  # rejected without requeue

    async def fails_requeue(m: Any) -> None:
        async with m.process(requeue=True):
            raise KeyError("boom")

    _, left = await same(lambda ap: _consume_one(ap, fails_requeue))
    assert left == (b"x", True)

    async def fails_redelivered(m: Any) -> None:
        async with m.process(requeue=True, reject_on_redelivered=True):
            raise KeyError("boom")

    _, left = await same(lambda ap: _consume_one(ap, fails_redelivered, redelivered_first=True))
    assert left is None  # redelivered: rejected for good despite requeue=True


async def test_ignore_processed_and_double_settle() -> None:
    async def manual_inside(m: Any) -> Any:
        async with m.process(ignore_processed=True):
            await m.nack(requeue=True)
        return "ok"

    _, left = await same(lambda ap: _consume_one(ap, manual_inside))
    assert left == (b"x", True)

    async def twice(m: Any) -> Any:
        await m.ack()
        await m.reject()

    outcome, _ = await same(lambda ap: _consume_one(ap, twice))
    assert outcome[0][0] == "MessageProcessError"

    async def inside_without_ignore(m: Any) -> Any:
        async with m.process():
            await m.ack()

    outcome, _ = await same(lambda ap: _consume_one(ap, inside_without_ignore))
    assert outcome[0][0] == "MessageProcessError"


async def test_no_ack_messages_refuse_settling() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(unique("noack"), exclusive=True)
            await ch.default_exchange.publish(ap.Message(b"x"), q.name)
            m = await q.get(no_ack=True)
            out = [m.locked, m.processed]
            for call in (m.ack(), m.nack(), m.reject()):
                try:
                    await call
                except Exception as e:
                    out.append(exc_shape(e))
            out.append(await q.get(fail=False))
            return out

    out = await same(scenario)
    assert [o[0] for o in out[2:5]] == ["TypeError"] * 3
