"""Stopping a consumer lets the failure handling already under way finish: a failed delivery whose
dead-letter copy (or retry) is still being written when ``stop()`` runs ends where its handler sends
it, not back in its queue to be handled a second time."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.messaging.subscriber import Failure

from .behaviour_helpers import drain_queue


@dataclass
class SdEvt(Event):
    n: int = 0


async def test_stop_waits_for_a_slow_failure_handler(url: str, names: Any) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow_dead_letterer(failure: Failure) -> None:
        started.set()
        await asyncio.sleep(2.0)  # longer than the old fixed share (timeout / 10 = 1 s) of stop()
        await failure.subscription.give_up(failure)
        finished.append(failure.reason)

    def fail(_: SdEvt) -> None:
        raise RuntimeError("boom")

    async with Client(url, service_name=names.service(), failure_handler=slow_dead_letterer) as client:
        client.add_handler(SdEvt, fail)
        sub = await client.start_consuming()
        await client.publish_event(SdEvt(n=1, aggregate_id="a"))
        await asyncio.wait_for(started.wait(), 5)
        await client.subscriber.unsubscribe(sub, timeout=10)  # while the failure is being handled
        assert finished == ["handler-error"]
        assert sub.stats.dead_lettered == 1
        ch = await client.connection.channel()
        [dead] = await drain_queue(ch, f"dlq.{client.service_queue}", expect=1)
        assert b'"n":1' in dead.body
        ok = await ch.queue_declare(client.service_queue, passive=True)
        assert ok.message_count == 0  # not requeued: it is not handled a second time
        await ch.close()


async def test_stop_still_bounds_a_failure_handler_that_never_ends(url: str, names: Any) -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck(failure: Failure) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with Client(url, service_name=names.service(), failure_handler=stuck) as client:
        client.add_handler(SdEvt, lambda _: 1 / 0)
        sub = await client.start_consuming()
        await client.publish_event(SdEvt(n=2, aggregate_id="a"))
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(client.subscriber.unsubscribe(sub, timeout=0.5), 5)
        assert cancelled == [True]
