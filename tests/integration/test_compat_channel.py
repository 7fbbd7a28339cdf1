"""Channel of the aio-pika facade side by side with real aio-pika: opening forms, QoS, declares and
their broker errors (the channel closes, later calls raise ChannelInvalidStateError), get_exchange /
get_queue, close callbacks and states, publisher-confirm modes."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from tests.integration._compat import URL, exc_shape, same, unique

pytestmark = pytest.mark.integration


async def test_open_forms_states_and_qos() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = conn.channel(publisher_confirms=False)
            out = [ch.is_initialized, ch.is_closed]
            await ch
            out += [ch.is_initialized, ch.is_closed, type(await ch.set_qos(prefetch_count=10)).__name__]
            out.append(type(await ch.set_qos(prefetch_count=5, global_=True)).__name__)
            closed: list[Any] = []
            ch.close_callbacks.add(lambda sender, exc: closed.append((sender is ch, repr(exc))))
            await ch.close()
            async with asyncio.timeout(5):
                while not closed:  # aio-pika calls close callbacks from a task
                    await asyncio.sleep(0.01)
            out += [ch.is_closed, closed]
            await asyncio.wait_for(ch.closed(), 1)
            try:
                await ch.declare_queue(unique("late"))
            except Exception as e:
                out.append(exc_shape(e)[0])
            try:
                conn.channel(publisher_confirms=False, on_return_raises=True)
            except RuntimeError as e:
                out.append(exc_shape(e))
            return out

    await same(scenario)


async def test_a_refused_declare_closes_the_channel() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            ch.close_callbacks.add(lambda _, exc: closed.done() or closed.set_result(exc))
            out = []
            for call in (lambda: ch.declare_queue(unique("missing"), passive=True),
                         lambda: ch.get_exchange(unique("missing")),
                         lambda: ch.default_exchange.publish(ap.Message(b"x"), "q")):
                try:
                    await call()
                    out.append("ok")
                except Exception as e:
                    name, args = exc_shape(e)
                    out.append((name, [a.split(" in vhost")[0].rsplit("'", 2)[0] if isinstance(a, str) else a
                                       for a in args]))
            exc = await asyncio.wait_for(closed, 2)
            out += [ch.is_closed, type(exc).__name__]
            ch2 = await conn.channel()
            q = await ch2.get_queue(unique("unchecked"), ensure=False)
            ex = await ch2.get_exchange("amq.topic", ensure=False)
            ex2 = await ch2.get_exchange("amq.topic")
            out += [type(q).__name__, q.passive, ex.name, ex2.name, ex2.passive]
            try:
                await ch2.declare_exchange("amq.compat-test", type="fanout")
            except Exception as e:
                out.append(exc_shape(e)[0])
            return out

    out = await same(scenario)
    assert out[0][0] == "ChannelNotFoundEntity" and out[1][0] == "ChannelInvalidStateError"


async def test_precondition_failed_and_queue_delete() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel()
            name = unique("pre")
            await ch.declare_queue(name, auto_delete=True)
            out = []
            try:
                await ch.declare_queue(name, durable=True)
            except Exception as e:
                out.append(exc_shape(e)[0])
            ch = await conn.channel()
            q = await ch.declare_queue(name, passive=True)
            out.append((q.declaration_result.message_count, q.declaration_result.consumer_count))
            await ch.default_exchange.publish(ap.Message(b"x"), name)
            res = await ch.queue_delete(name)
            out.append((type(res).__name__, res.message_count))
            res = await ch.exchange_delete(unique("no-exchange"))
            out.append(type(res).__name__)
            return out

    assert (await same(scenario))[0] == "ChannelPreconditionFailed"


async def test_confirm_modes_and_returns() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            out = []
            ch = await conn.channel(publisher_confirms=False)
            out.append(await ch.default_exchange.publish(ap.Message(b"x"), unique("nowhere")))
            ch = await conn.channel()
            returned: list[Any] = []
            ch.return_callbacks.add(lambda _, m: returned.append((m.body, m.routing_key[:12])))
            r = await ch.default_exchange.publish(ap.Message(b"r"), "compat-test-nowhere")
            out.append((type(r).__name__ in ("ReturnedMessage", "DeliveredMessage"), r.body))
            r = await ch.default_exchange.publish(ap.Message(b"n"), "compat-test-nowhere", mandatory=False)
            out.append(type(r).__name__)
            await asyncio.sleep(0.05)
            out.append(returned)
            ch = await conn.channel(on_return_raises=True)
            try:
                await ch.default_exchange.publish(ap.Message(b"r"), "compat-test-nowhere")
            except ap.exceptions.DeliveryError as e:
                out.append((type(e).__name__, e.args, str(e)))
            return out

    out = await same(scenario)
    assert out[0] is None and out[2] == "Ack"


async def test_transactions_and_flow() -> None:
    async def scenario(ap: ModuleType) -> Any:
        async with await ap.connect(URL) as conn:
            ch = await conn.channel(publisher_confirms=False)
            q = await ch.declare_queue(unique("tx"), exclusive=True)
            tx = ch.transaction()
            out: list[Any] = [repr(tx), type(await tx.select()).__name__, str(tx)]
            await ch.default_exchange.publish(ap.Message(b"rolled back"), q.name)
            out += [type(await tx.rollback()).__name__, str(tx)]
            await ch.default_exchange.publish(ap.Message(b"committed"), q.name)
            out += [type(await tx.commit()).__name__, str(tx)]
            try:
                async with ch.transaction():
                    await ch.default_exchange.publish(ap.Message(b"in a failed block"), q.name)
                    raise KeyError("undo")
            except KeyError:
                pass
            m = await q.get(no_ack=True)
            out += [m.body, await q.get(fail=False), type(await ch.flow(True)).__name__]
            try:
                (await conn.channel()).transaction()
            except RuntimeError as e:
                out.append(exc_shape(e))
            try:
                await ch.flow(False)  # RabbitMQ closes the connection: 540 NOT_IMPLEMENTED
            except Exception as e:
                out.append(exc_shape(e))
            await asyncio.sleep(0.05)
            try:
                await conn.channel()
            except RuntimeError as e:
                out.append(exc_shape(e)[0])
            return out

    out = await same(scenario)
    assert out[7:9] == [b"committed", None]
