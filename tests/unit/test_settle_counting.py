"""The subscriber counts settles the transport dropped as stale apart (issue 7 item 7 of the brief):
``RobustChannel.basic_ack/nack/reject`` return False for a delivery from before a reconnect (the
broker redelivers it); those are ``stats.stale_settles``, not ``acked``/``rejected``/``dead_lettered``.

The transport is the embedded broker behind a thin wrapper that answers False for chosen delivery
tags, as a RobustChannel does for stale ones (the real reconnect case is covered with RabbitMQ by
the transport's own tests)."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.transports.memory import MemoryConnection


@dataclass
class StEvt(Event):
    n: int = 0


class _StaleChannel:
    """A memory channel whose settles of ``stale`` tags are dropped and answered False."""

    def __init__(self, ch: Any, stale: set[int]) -> None:
        self._ch = ch
        self._stale = stale

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ch, name)

    def _settle(self, name: str, tag: int, *args: Any) -> bool | None:
        if tag in self._stale:
            return False
        getattr(self._ch, name)(tag, *args)
        return None

    def basic_ack(self, tag: int, multiple: bool = False) -> bool | None:
        return self._settle("basic_ack", tag, multiple)

    def basic_reject(self, tag: int, requeue: bool = True) -> bool | None:
        return self._settle("basic_reject", tag, requeue)

    def basic_nack(self, tag: int, multiple: bool = False, requeue: bool = True) -> bool | None:
        return self._settle("basic_nack", tag, multiple, requeue)


async def _run(handler: Any, dead_letter: bool, stale: set[int]) -> Any:
    service = f"st-{uuid.uuid4().hex[:8]}"
    async with Client(f"memory://{service}", service_name=service, dead_letter=dead_letter) as client:
        conn: MemoryConnection = client.connection
        real_channel = conn.channel

        async def channel(**kw: Any) -> Any:
            return _StaleChannel(await real_channel(**kw), stale)

        conn.channel = channel  # type: ignore[method-assign]
        client.add_handler(StEvt, handler)
        sub = await client.start_consuming()
        for n in range(4):
            await client.publish_event(StEvt(n=n, aggregate_id="a"))
        for _ in range(300):
            s = sub.stats
            if s.acked + s.rejected + s.dead_lettered + s.stale_settles == 4:
                break
            await asyncio.sleep(0.01)
        return sub.stats


async def test_stale_acks_are_counted_apart_sync_and_async() -> None:
    def sync_handler(e: StEvt) -> None:
        pass

    async def async_handler(e: StEvt) -> None:
        pass

    for handler in (sync_handler, async_handler):
        stats = await _run(handler, dead_letter=False, stale={2, 3})
        assert (stats.acked, stats.stale_settles) == (2, 2)


async def test_stale_rejects_and_dead_letter_acks_are_counted_apart() -> None:
    def failing(e: StEvt) -> None:
        raise ValueError("no")

    stats = await _run(failing, dead_letter=False, stale={1})
    assert (stats.rejected, stats.stale_settles) == (3, 1)
    stats = await _run(failing, dead_letter=True, stale={4})
    assert (stats.dead_lettered, stats.stale_settles) == (3, 1)


async def test_a_failure_handler_acks_through_the_subscription() -> None:
    """``subscription.ack(failure)`` (what a retry handler calls once its copy is stored) counts a
    stale settle apart too, and says whether the delivery was acked."""
    outcomes: list[bool] = []

    async def handled_elsewhere(failure: Any) -> None:
        outcomes.append(failure.subscription.ack(failure))

    service = f"st-{uuid.uuid4().hex[:8]}"
    async with Client(f"memory://{service}", service_name=service, failure_handler=handled_elsewhere) as client:
        conn: MemoryConnection = client.connection
        real_channel = conn.channel

        async def channel(**kw: Any) -> Any:
            return _StaleChannel(await real_channel(**kw), {2})

        conn.channel = channel  # type: ignore[method-assign]

        def failing(e: StEvt) -> None:
            raise ValueError("no")

        client.add_handler(StEvt, failing)
        sub = await client.start_consuming()
        for n in range(3):
            await client.publish_event(StEvt(n=n, aggregate_id="a"))
        for _ in range(300):
            if len(outcomes) == 3:
                break
            await asyncio.sleep(0.01)
    assert outcomes == [True, False, True]
    assert (sub.stats.acked, sub.stats.stale_settles) == (2, 1)
