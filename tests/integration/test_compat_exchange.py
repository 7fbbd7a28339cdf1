"""Exchange of the aio-pika facade side by side with real aio-pika: declare (every type), publish
results, exchange-to-exchange bind/unbind routing, internal exchanges, delete, reprs."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import URL, exc_shape, same, unique

pytestmark = pytest.mark.integration


async def test_declare_bind_route_unbind_delete() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            src = await ch.declare_exchange(unique("src"), ap.ExchangeType.TOPIC)
            dst = await ch.declare_exchange(unique("dst"), "fanout", auto_delete=True)
            hdr = await ch.declare_exchange(unique("hdr"), ap.ExchangeType.HEADERS, auto_delete=True,
                                            arguments={"alternate-exchange": "amq.fanout"})
            q = await ch.declare_queue(unique("q"), exclusive=True)
            out = [repr(src).split("(")[0], str(dst) == dst.name, dst.arguments, hdr.arguments]
            out.append(type(await q.bind(dst)).__name__)
            out.append(type(await dst.bind(src, "a.*")).__name__)
            out.append(type(await src.publish(ap.Message(b"routed"), "a.b")).__name__)
            await src.publish(ap.Message(b"not routed"), "b.c")
            m = await q.get()
            out.append((m.body, m.exchange == src.name, m.routing_key))
            await m.ack()
            out.append(await q.get(fail=False))
            out.append(type(await dst.unbind(src, "a.*")).__name__)
            await src.publish(ap.Message(b"after unbind"), "a.b")
            out.append(await q.get(fail=False))
            out.append(type(await hdr.delete()).__name__)
            await src.delete()
            return out

    out = await same(scenario)
    assert out[7][0] == b"routed" and out[8] is None and out[10] is None


async def test_internal_exchange_and_publish_kinds() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            internal = await ch.declare_exchange(unique("int"), internal=True, auto_delete=True)
            out = [internal.internal]
            try:
                await internal.publish(ap.Message(b"x"), "k")
            except ValueError as e:
                out.append(exc_shape(e)[0])
            ack = await ch.default_exchange.publish(ap.Message(b"x"), "amq.rabbitmq.nothing", mandatory=False)
            out.append((type(ack).__name__, ack.multiple))
            ex = await ch.declare_exchange(unique("d"), auto_delete=True, durable=False)
            out.append((ex.durable, ex.auto_delete, ex.passive))
            try:
                await ch.declare_exchange(ex.name, "fanout", auto_delete=True)
            except Exception as e:
                out.append(exc_shape(e)[0])
            ch = await conn.channel()  # never bound, so never auto-deleted: delete them
            await ch.exchange_delete(internal.name)
            await ch.exchange_delete(ex.name)
            return out

    assert (await same(scenario))[1] == "ValueError"


async def test_publish_to_a_missing_exchange() -> None:
    async def scenario(ap: ModuleType) -> Any:
        out = []
        async with await ap.connect(URL) as conn:
            for confirms in (True, False):
                ch = await conn.channel(publisher_confirms=confirms)
                ex = await ch.get_exchange(unique("missing"), ensure=False)
                try:
                    out.append(await ex.publish(ap.Message(b"x"), "k"))
                except Exception as e:
                    out.append(exc_shape(e)[0])
                await asyncio.wait_for(ch.closed(), 5)
                try:
                    await ex.publish(ap.Message(b"x"), "k")
                except Exception as e:
                    out.append((ch.is_closed, exc_shape(e)[0]))
        return out

    assert await same(scenario) == ["ChannelNotFoundEntity", (True, "ChannelInvalidStateError"), None,
                                    (True, "ChannelInvalidStateError")]
