"""Queue of the aio-pika facade side by side with real aio-pika: declare results, bind/unbind,
consume/cancel (consumer tags, concurrency up to the prefetch), get, purge, delete and its
if_unused/if_empty defaults, the iterator (timeout, close requeues what it holds)."""
from __future__ import annotations

import asyncio
import contextlib
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import URL, exc_shape, same, unique

pytestmark = pytest.mark.integration


async def test_declare_get_purge_delete() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            q = await ch.declare_queue(unique("q"), auto_delete=True, arguments={"x-max-length": 100})
            out = [type(q.declaration_result).__name__, q.declaration_result.message_count, q.arguments]
            server_named = await ch.declare_queue(exclusive=True)
            out.append(server_named.name.startswith("amq.gen-"))
            for i in range(3):
                await ch.default_exchange.publish(ap.Message(b"%d" % i), q.name)
            out.append((await ch.declare_queue(q.name, passive=True)).declaration_result.message_count)
            m = await q.get(no_ack=True)
            out.append((m.body, m.message_count, m.delivery_tag, m.redelivered))
            try:
                await q.delete()  # if_unused=True, if_empty=True by default: refused, 2 messages left
            except Exception as e:
                out.append(exc_shape(e)[0])
            ch = await conn.channel()
            q = await ch.get_queue(q.name)
            purged = await q.purge()
            out.append((type(purged).__name__, purged.message_count))
            try:
                await q.get()
            except Exception as e:
                out.append((exc_shape(e), isinstance(e, asyncio.QueueEmpty)))
            deleted = await q.delete()
            out.append((type(deleted).__name__, deleted.message_count))
            return out

    out = await same(scenario)
    assert out[6] == "ChannelPreconditionFailed" and out[7] == ("PurgeOk", 2)


async def test_consume_cancel_and_concurrency() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=4)
            q = await ch.declare_queue(unique("c"), exclusive=True)
            ex = await ch.declare_exchange(unique("x"), auto_delete=True)
            await q.bind(ex, routing_key="rk")
            running = 0
            peak = 0
            got: list[bytes] = []
            done = asyncio.Event()

            all_in = asyncio.Event()

            async def handler(m: Any) -> None:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                if running == 4:  # the prefetch: 4 handlers run at once, a 5th waits for an ack
                    all_in.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_in.wait(), 5)
                running -= 1
                got.append(m.body)
                await m.ack()
                if len(got) == 8:
                    done.set()

            for i in range(8):  # all queued first: the consumer gets a burst of 4 (the prefetch)
                await ex.publish(ap.Message(b"%d" % i, headers={"i": i}), "rk")
            tag = await q.consume(handler, consumer_tag="compat-test-tag")
            await asyncio.wait_for(done.wait(), 5)
            cancel = await q.cancel(tag)
            await ex.publish(ap.Message(b"late"), "rk")
            await asyncio.sleep(0.05)
            late = await q.get(fail=False)
            await q.unbind(ex, "rk")
            return [tag, type(cancel).__name__, cancel.consumer_tag, sorted(got), peak, late.body if late else None]

    out = await same(scenario)
    assert out[4] == 4 and out[5] == b"late"


async def test_iterator() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=10)
            q = await ch.declare_queue(unique("it"), exclusive=True)
            for i in range(5):
                await ch.default_exchange.publish(ap.Message(b"%d" % i), q.name)
            out = []
            async with q.iterator() as it:
                async for m in it:
                    async with m.process():
                        out.append(m.body)
                    if len(out) == 2:
                        break
            await asyncio.sleep(0.05)
            # the iterator held the rest (prefetch 10): closing it requeued them
            rest = []
            async for m in q.iterator(timeout=5):
                rest.append((m.body, m.redelivered))
                await m.ack()
                if len(rest) == 3:
                    break
            try:
                async with q.iterator(timeout=0.2) as it:
                    async for m in it:
                        out.append(m.body)
            except TimeoutError as e:
                out.append(type(e).__name__)
            return out, sorted(rest)

    out, rest = await same(scenario)
    assert out == [b"0", b"1", "TimeoutError"] and [r[0] for r in rest] == [b"2", b"3", b"4"]


async def test_a_failing_consumer_callback_reaches_the_loop_exception_handler() -> None:
    async def scenario(ap: ModuleType) -> Any:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        previous = loop.get_exception_handler()
        loop.set_exception_handler(lambda _, ctx: seen.append(exc_shape(ctx["exception"])))
        try:
            async with await ap.connect(URL) as conn:
                ch = await conn.channel()
                q = await ch.declare_queue(unique("fail"), exclusive=True)

                async def callback(m: Any) -> None:
                    raise KeyError("handler bug")

                await q.consume(callback)
                await ch.default_exchange.publish(ap.Message(b"x"), q.name)
                async with asyncio.timeout(5):
                    while not seen:
                        await asyncio.sleep(0.01)
                await ch.close()  # the unacked message goes back to the queue
                ch = await conn.channel()
                left = await (await ch.get_queue(q.name)).get()
                return seen, left.body, left.redelivered
        finally:
            loop.set_exception_handler(previous)

    assert await same(scenario) == ([("KeyError", ("handler bug",))], b"x", True)
