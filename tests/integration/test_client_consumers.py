"""A Client's consumers through the broker's cancels and a reconnect, on the real RabbitMQ
(issue 7 item 5): a service queue deleted under a running Client is back, bound and consumed, and
stays so after the next reconnect (it used to be gone for good: 0 consumers, messages piling up)."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
FAST = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=20.0)


@dataclass
class CcEvt(Event):
    n: int = 0


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _consumers(queue: str) -> int:
    conn = await connect(URL)
    try:
        ch = await conn.channel()
        return (await ch.queue_declare(queue, passive=True)).consumer_count
    finally:
        await conn.close()


async def test_deleted_service_queue_is_back_and_survives_a_reconnect() -> None:
    service = f"cc-{uuid.uuid4().hex[:8]}"
    got: list[int] = []
    admin = await connect(URL)
    ch = await admin.channel()
    try:
        async with TcpProxy() as proxy, \
                Client(proxy.url(heartbeat=5), service_name=service, recovery=FAST) as client:
            client.add_handler(CcEvt, lambda e: got.append(e.n))
            sub = await client.start_consuming()
            await ch.queue_delete(client.service_queue)
            await _until(lambda: sub.stats.consumer_restarts == 1)
            await client.publish_event(CcEvt(n=1, aggregate_id="a"))
            await _until(lambda: got == [1])

            reconnects = client.connection.stats.reconnects
            assert proxy.cut() >= 1
            await _until(lambda: client.connection.stats.reconnects == reconnects + 1)
            await client.publish_event(CcEvt(n=2, aggregate_id="a"))
            await _until(lambda: got[-1:] == [2])
            assert await _consumers(client.service_queue) == 1

            # deleted again while the link is down: back after the reconnect, still consumed
            proxy.refusing = True
            proxy.cut()
            await ch.queue_delete(client.service_queue)
            proxy.refusing = False
            await _until(lambda: client.connection.stats.reconnects == reconnects + 2)
            await _until(lambda: client.connection.is_connected)
            await client.publish_event(CcEvt(n=3, aggregate_id="a"))
            await _until(lambda: got[-1:] == [3])
            assert await _consumers(client.service_queue) == 1
    finally:
        await ch.queue_delete(f"{service}-queue")
        await ch.queue_delete(f"dlq.{service}-queue")
        await admin.close()


async def test_an_ack_dropped_as_stale_after_a_reconnect_is_counted_apart() -> None:
    """An async handler still running across a reconnect: its ack is stale (the broker redelivers
    the message), so it is counted in ``stale_settles``, and only the redelivery in ``acked``."""
    service = f"cc-{uuid.uuid4().hex[:8]}"
    calls: list[int] = []
    started, release = asyncio.Event(), asyncio.Event()
    try:
        async with TcpProxy() as proxy, \
                Client(proxy.url(heartbeat=5), service_name=service, recovery=FAST, prefetch=1) as client:

            @client.handler(CcEvt)
            async def slow(e: CcEvt) -> None:
                calls.append(e.n)
                if len(calls) == 1:
                    started.set()
                    await release.wait()

            sub = await client.start_consuming()
            await client.publish_event(CcEvt(n=1, aggregate_id="a"))
            await asyncio.wait_for(started.wait(), 5)
            reconnects = client.connection.stats.reconnects
            proxy.cut()
            await _until(lambda: client.connection.stats.reconnects == reconnects + 1)
            release.set()
            await _until(lambda: sub.stats.stale_settles == 1 and sub.stats.acked == 1, timeout=5)
            assert calls == [1, 1]
    finally:
        admin = await connect(URL)
        ch = await admin.channel()
        await ch.queue_delete(f"{service}-queue")
        await admin.close()
