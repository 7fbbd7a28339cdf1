"""connect_robust() of the aio-pika facade side by side with real aio-pika: after the link is cut
(a TCP proxy drops it) the close callbacks see the error, the reconnect callbacks run, and the
channel, its exchange, queue, binding and consumer work again without the user doing anything."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

import mmate_fast.compat.aio_pika as facade
from tests.integration._compat import URL, same, unique
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


async def test_reconnect_restores_topology_and_consumers() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with TcpProxy() as proxy:
            conn = await ap.connect_robust(proxy.url(reconnect_interval=0.2))
            events: list[str] = []
            reconnected = asyncio.Event()
            conn.close_callbacks.add(lambda _, exc: events.append(f"closed:{type(exc).__name__}"))
            conn.reconnect_callbacks.add(lambda _: (events.append("reconnected"), reconnected.set()))
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=10)
            ex = await ch.declare_exchange(unique("rex"), ap.ExchangeType.DIRECT, auto_delete=True)
            q = await ch.declare_queue(unique("rq"), auto_delete=True)
            await q.bind(ex, "k")
            got: list[bytes] = []
            arrived = asyncio.Event()

            async def on_message(m: Any) -> None:
                async with m.process():
                    got.append(m.body)
                    arrived.set()

            await q.consume(on_message)
            await ex.publish(ap.Message(b"before"), "k")
            await asyncio.wait_for(arrived.wait(), 5)
            arrived.clear()
            proxy.cut()
            await asyncio.wait_for(reconnected.wait(), 10)
            await asyncio.sleep(0.2)
            await ex.publish(ap.Message(b"after"), "k")
            await asyncio.wait_for(arrived.wait(), 5)
            out = [got, events[-1], conn.is_closed, ch.is_closed, isinstance(conn, ap.abc.AbstractRobustConnection),
                   type(ch).__name__, type(q).__name__, type(ex).__name__]
            await conn.close()
            out.append(conn.is_closed)
            return out, events[0].startswith("closed:")

    out, closed_first = await same(scenario)
    assert out[0] == [b"before", b"after"] and out[1] == "reconnected" and closed_first


async def test_fail_fast_first_connect() -> None:
    async def scenario(ap: ModuleType) -> Any:
        try:
            await ap.connect_robust("amqp://guest:guest@127.0.0.1:1/")
        except Exception as e:
            return type(e).__name__

    assert await same(scenario) == "AMQPConnectionError"


async def test_refused_call_on_a_robust_channel() -> None:
    """The refused call raises what aio-pika raises; then (documented difference) the facade's
    channel is usable at once, where aio-pika's is closed for a moment."""
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect_robust(URL) as conn:
            ch = await conn.channel()
            try:
                await ch.declare_queue(unique("missing"), passive=True)
            except Exception as e:
                return type(e).__name__, e.args[0].split(" - ")[0]

    assert await same(scenario) == ("ChannelNotFoundEntity", "NOT_FOUND")
    async with await facade.connect_robust(URL) as conn:
        ch = await conn.channel()
        with pytest.raises(facade.exceptions.ChannelNotFoundEntity):
            await ch.declare_queue(unique("missing"), passive=True)
        assert not ch.is_closed
        q = await ch.declare_queue(exclusive=True)
        await ch.default_exchange.publish(facade.Message(b"after"), q.name)
        assert (await q.get()).body == b"after"


async def test_queue_iterator_survives_a_reconnect() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with TcpProxy() as proxy:
            conn = await ap.connect_robust(proxy.url(reconnect_interval=0.2))
            reconnected = asyncio.Event()
            conn.reconnect_callbacks.add(lambda _: reconnected.set())
            ch = await conn.channel()
            q = await ch.declare_queue(unique("it"), auto_delete=True)
            got: list[bytes] = []
            async with q.iterator() as it:
                await ch.default_exchange.publish(ap.Message(b"one"), q.name)
                async for m in it:
                    async with m.process():
                        got.append(m.body)
                    if len(got) == 1:
                        proxy.cut()
                        await asyncio.wait_for(reconnected.wait(), 10)
                        await asyncio.sleep(0.2)
                        await ch.default_exchange.publish(ap.Message(b"two"), q.name)
                    else:
                        break
            await conn.close()
            return got

    assert await same(scenario) == [b"one", b"two"]
