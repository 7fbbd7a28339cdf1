"""prefetch=0 does not make a subscription's local backlog unbounded (issue 8 item 2)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging.subscriber import UNLIMITED_PREFETCH_FACTOR
from tests.behaviour.behaviour_helpers import queue_depth, wait_until


@dataclass
class BoundEvt(Event):
    n: int = 0


async def test_prefetch_zero_keeps_the_backlog_bounded(url: str, conn: Any, names: Any) -> None:
    """prefetch=0 with async handlers that do not finish: the broker hands over at most
    ``UNLIMITED_PREFETCH_FACTOR * concurrency`` messages; the rest stay in the queue."""
    service = names.service()
    release = asyncio.Event()
    concurrency, total = 2, 100
    bound = UNLIMITED_PREFETCH_FACTOR * concurrency
    async with Client(url, service_name=service, prefetch=0, concurrency=concurrency) as client:

        @client.handler(BoundEvt)
        async def handle(e: BoundEvt) -> None:
            await release.wait()

        sub = await client.start_consuming()
        await client.publish_batch(BoundEvt(n=i, aggregate_id="a") for i in range(total))
        await wait_until(lambda: sub.stats.received == bound, timeout=10)
        depth: list[int | None] = [None]

        async def ready_left() -> bool:
            depth[0] = await queue_depth(client.connection, client.service_queue)
            return depth[0] == total - bound

        for _ in range(300):
            if await ready_left():
                break
            await asyncio.sleep(0.01)
        assert depth[0] == total - bound  # the broker holds the rest back
        assert sub.stats.received == bound and len(sub._backlog) == bound - concurrency
        assert sub.prefetch == bound
        release.set()
        await wait_until(lambda: sub.stats.acked == total, timeout=10)
