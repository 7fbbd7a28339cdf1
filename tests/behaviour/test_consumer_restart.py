"""A consumer the broker cancels comes back (issue 7 item 5): the subscription re-declares its queue
(as whoever created it declared it), re-applies its bindings and consumes again, with backoff, on a
new channel when its channel was closed; it says so in the log and in ``stats.consumer_restarts``,
and stops trying once closed. Memory and RabbitMQ."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging import topology
from mmate_fast.transports import connect

from .behaviour_helpers import wait_until

#: quick backoff for the tests (the default starts at 0.25 s)
FAST = RecoveryPolicy(initial_delay=0.02, max_delay=0.2, wait_timeout=10.0)


@dataclass
class RsEvt(Event):
    n: int = 0


@pytest.fixture
async def other(url: str) -> AsyncIterator[Any]:
    """A second connection: someone else deleting queues under the client."""
    conn = await connect(url)
    yield conn
    await conn.close()


async def _consumers(conn: Any, queue: str) -> int:
    ch = await conn.channel()
    try:
        return (await ch.queue_declare(queue, passive=True)).consumer_count
    finally:
        await ch.close()


async def _delete(conn: Any, queue: str) -> None:
    ch = await conn.channel()
    await ch.queue_delete(queue)
    await ch.close()


async def test_deleted_service_queue_comes_back_bound_and_consumed(
        url: str, names: Any, other: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "mmate_fast.subscriber")
    got: list[int] = []
    async with Client(url, service_name=names.service(), recovery=FAST, fifo=True) as client:
        client.add_handler(RsEvt, lambda e: got.append(e.n))
        sub = await client.start_consuming()
        await client.publish_event(RsEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: got == [1], timeout=5)
        await _delete(other, client.service_queue)
        await wait_until(lambda: sub.stats.consumer_restarts == 1, timeout=5)
        assert await _consumers(other, client.service_queue) == 1
        # re-declared as the Client declares it (fifo: single active consumer), so no 406 here
        ch = await other.channel()
        await topology.declare_service_queue(ch, client.service_name, fifo=True)
        await ch.close()
        await client.publish_event(RsEvt(n=2, aggregate_id="a"))  # bound again
        await wait_until(lambda: got == [1, 2], timeout=5)
    assert "restarted" in caplog.text and client.service_queue in caplog.text


async def test_deleted_subscribed_queue_comes_back_with_its_bindings(url: str, names: Any, other: Any) -> None:
    queue = names.queue("sub")
    got: list[int] = []
    async with Client(url, service_name=names.service(), recovery=FAST) as client:
        client.add_handler(RsEvt, lambda e: got.append(e.n), bind=False)
        sub = await client.subscribe(queue, bindings=[(topology.EVENTS, "evt.rs.#")], durable=False)
        await _delete(other, queue)
        await wait_until(lambda: sub.stats.consumer_restarts == 1, timeout=5)
        await client.publish_event(RsEvt(n=7, aggregate_id="rs"))
        await wait_until(lambda: got == [7], timeout=5)
        assert await _consumers(other, queue) == 1


async def test_user_owned_queue_is_consumed_again_once_it_exists(url: str, names: Any, other: Any) -> None:
    """``declare=False``: the queue is the user's; the subscription retries (with backoff) until it is
    back, and stops trying once the client is closed."""
    queue = names.queue("own")
    ch = await other.channel()
    await ch.queue_declare(queue)
    got: list[int] = []
    client = Client(url, service_name=names.service(), recovery=FAST)
    await client.connect()
    try:
        client.add_handler(RsEvt, lambda e: got.append(e.n), bind=False)
        sub = await client.subscribe(queue, declare=False)
        await ch.queue_delete(queue)
        await asyncio.sleep(0.3)  # several failed attempts
        assert sub.stats.consumer_restarts == 0
        await ch.queue_declare(queue)
        await wait_until(lambda: sub.stats.consumer_restarts == 1, timeout=5)
        await ch.queue_delete(queue)
        await asyncio.sleep(0.1)
    finally:
        await client.close()
    assert sub._restarting is None or sub._restarting.done()  # stopped trying
    await ch.queue_declare(queue)
    await asyncio.sleep(0.3)
    assert await _consumers(other, queue) == 0 and sub.stats.consumer_restarts == 1
    await ch.close()


@pytest.mark.parametrize("recovery", [False, True], ids=["plain", "robust"])
async def test_consumer_whose_channel_is_closed_comes_back(
        url: str, names: Any, other: Any, recovery: bool) -> None:
    """Without recovery the subscription consumes again on a new channel. With recovery (the default
    on RabbitMQ) the robust channel heals its own channel-level close, consumer included; either way
    messages published afterwards are handled by one consumer."""
    memory = url.startswith("memory://")
    got: list[int] = []
    async with Client(url, service_name=names.service(), recovery=FAST if recovery else False,
                      prefetch=3) as client:
        client.add_handler(RsEvt, lambda e: got.append(e.n))
        sub = await client.start_consuming()
        old = sub.channel
        old.basic_ack(10**6)  # unknown delivery tag: the broker closes that channel (406)
        if recovery:
            await asyncio.sleep(0.2)
        else:
            await wait_until(lambda: sub.stats.consumer_restarts == 1, timeout=1 if memory else 5)
            assert sub.channel is not old and sub.channel.is_open and not old.is_open
        for n in range(5):
            await client.publish_event(RsEvt(n=n, aggregate_id="a"))
        await wait_until(lambda: sorted(got) == list(range(5)), timeout=1 if memory else 5)
        assert await _consumers(other, client.service_queue) == 1
