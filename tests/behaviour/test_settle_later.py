"""Settle-later handlers (``settles_later``): a plain handler returns an awaitable and its delivery is
settled when that is done, from a done-callback: ack on success, the failure path (DLQ with the
reason) when it fails, requeue when it is cancelled; the pending delivery counts against
``concurrency`` (later deliveries wait, in order) and ``stop()`` waits for it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mmate_fast.client import Client
from mmate_fast.contracts import Event
from mmate_fast.errors import StageFailedError
from mmate_fast.messaging.subscriber import settles_later

from .behaviour_helpers import drain_queue, queue_depth, wait_until


@dataclass
class SlEvt(Event):
    n: int = 0


class Pending:
    """A settle-later handler (message only: the compiled per-delivery step runs it itself when a
    handler slot is free) that returns one future per delivery, kept by message number."""

    def __init__(self) -> None:
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self.calls: list[int] = []

    def __call__(self, e: SlEvt) -> asyncio.Future[Any]:
        self.calls.append(e.n)
        fut = self.futures[e.n] = asyncio.get_running_loop().create_future()
        return fut


async def _client(url: str, names: Any, **options: Any) -> Client:
    return Client(url, service_name=names.service(), **options)


async def test_the_delivery_is_acked_when_the_awaitable_is_done(url: str, names: Any) -> None:
    handler = settles_later(Pending())
    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handler)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: 1 in handler.futures)
        await asyncio.sleep(0.1)
        assert sub.stats.acked == 0 and sub.in_flight == 1  # not settled while the future is pending
        handler.futures[1].set_result("not a reply")
        await wait_until(lambda: sub.stats.acked == 1)
        assert sub.in_flight == 0 and sub.stats.handler_errors == 0
        await client.subscriber.unsubscribe(sub)
        assert await queue_depth(client.connection, client.service_queue) == 0  # acked, not requeued


async def test_a_failed_awaitable_is_a_handler_failure(url: str, names: Any) -> None:
    """The future fails: the delivery goes to its DLQ with the error's reason, the consumer goes on."""
    handler = settles_later(Pending())
    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handler)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await client.publish_event(SlEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: len(handler.futures) == 2)
        handler.futures[1].set_exception(RuntimeError("confirm lost"))
        handler.futures[2].set_exception(StageFailedError("stage x failed: no", "x", "no"))
        await wait_until(lambda: sub.stats.dead_lettered == 2, timeout=5)
        assert sub.stats.handler_errors == 2 and sub.stats.acked == 0
        ch = await client.connection.channel()
        dead = await drain_queue(ch, f"dlq.{client.service_queue}", expect=2)
        reasons = sorted(d.properties.headers["x-mmate-reason"] for d in dead)
        assert reasons == ["handler-error", "stage-failed"]
        assert any("confirm lost" in d.properties.headers["x-mmate-error"] for d in dead)
        await ch.close()
        await client.publish_event(SlEvt(n=3, aggregate_id="a"))  # the consumer lives on
        await wait_until(lambda: 3 in handler.futures)
        handler.futures[3].set_result(None)
        await wait_until(lambda: sub.stats.acked == 1)


async def test_a_raising_handler_and_none_settle_at_once(url: str, names: Any) -> None:
    @settles_later
    def handle(e: SlEvt) -> Any:
        if e.n == 1:
            raise RuntimeError("at once")
        return None

    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handle)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await client.publish_event(SlEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked == 1 and sub.stats.dead_lettered == 1, timeout=5)
        assert sub.in_flight == 0 and sub.stats.reasons["handler-error"] == 1


async def test_a_cancelled_awaitable_requeues_the_delivery(url: str, names: Any) -> None:
    seen: list[tuple[int, bool]] = []
    futures: list[asyncio.Future[Any]] = []

    @settles_later
    def handle(e: SlEvt, ctx: Any) -> asyncio.Future[Any]:
        seen.append((e.n, bool(ctx.delivery.redelivered)))
        fut = asyncio.get_running_loop().create_future()
        futures.append(fut)
        return fut

    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handle)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: len(futures) == 1)
        futures[0].cancel()
        await wait_until(lambda: len(futures) == 2, timeout=5)  # requeued and delivered again
        assert seen == [(1, False), (1, True)]
        futures[1].set_result(None)
        await wait_until(lambda: sub.stats.acked == 1)
        assert sub.stats.handler_errors == 0 and sub.stats.dead_lettered == 0


async def test_pending_settles_count_against_concurrency_in_order(url: str, names: Any) -> None:
    handler = settles_later(Pending())
    async with await _client(url, names, prefetch=10, concurrency=2) as client:
        client.add_handler(SlEvt, handler)
        sub = await client.start_consuming()
        for i in range(5):
            await client.publish_event(SlEvt(n=i, aggregate_id="a"))
        await wait_until(lambda: sub.stats.received == 5)
        await asyncio.sleep(0.1)
        assert handler.calls == [0, 1] and sub.in_flight == 2 and sub.waiting == 3
        handler.futures[1].set_result(None)
        await wait_until(lambda: handler.calls == [0, 1, 2])
        handler.futures[0].set_result(None)
        await wait_until(lambda: handler.calls == [0, 1, 2, 3])
        for i in (2, 3):
            handler.futures[i].set_result(None)
        await wait_until(lambda: handler.calls == [0, 1, 2, 3, 4])
        handler.futures[4].set_result(None)
        await wait_until(lambda: sub.stats.acked == 5)
        assert sub.in_flight == 0 and sub.waiting == 0


async def test_stop_waits_for_pending_settles(url: str, names: Any) -> None:
    handler = settles_later(Pending())
    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handler)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: 1 in handler.futures)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, handler.futures[1].set_result, None)
        t0 = loop.time()
        await client.subscriber.unsubscribe(sub, timeout=5)
        assert loop.time() - t0 >= 0.25  # it waited for the settle
        assert sub.stats.acked == 1
        assert await queue_depth(client.connection, client.service_queue) == 0


async def test_a_returned_coroutine_is_run_and_settles(url: str, names: Any) -> None:
    done: list[int] = []

    async def work(n: int) -> None:
        await asyncio.sleep(0.05)
        done.append(n)

    @settles_later
    def handle(e: SlEvt) -> Any:
        return work(e.n)

    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handle)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=7, aggregate_id="a"))
        await wait_until(lambda: sub.stats.acked == 1)
        assert done == [7]


async def test_with_an_observer_the_settle_still_waits(url: str, names: Any) -> None:
    """An observer takes the Task path: it awaits what the handler returned, then acks."""
    handled: list[tuple[str, BaseException | None]] = []

    class Observer:
        def handled(self, type_name: str, seconds: float, error: BaseException | None) -> None:
            handled.append((type_name, error))

    handler = settles_later(Pending())
    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handler)
        client.subscriber.observer = Observer()
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await wait_until(lambda: 1 in handler.futures)
        await asyncio.sleep(0.1)
        assert sub.stats.acked == 0 and handled == []
        handler.futures[1].set_result("ignored")
        await wait_until(lambda: sub.stats.acked == 1)
        assert handled == [("SlEvt", None)]


class WithContext:
    """A settle-later handler taking a context, with the context-free entry
    (``__mmate_settle_direct__``) the compiled step calls instead: both record the same."""

    __mmate_settles_later__ = True

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, bool]] = []
        self.futures: dict[int, asyncio.Future[Any]] = {}

    def __call__(self, e: SlEvt, ctx: Any) -> asyncio.Future[Any]:
        return self.__mmate_settle_direct__(e, ctx.delivery, ctx.queue)

    def __mmate_settle_direct__(self, e: SlEvt, delivery: Any, queue: str) -> asyncio.Future[Any]:
        self.seen.append((e.n, queue, bool(delivery.redelivered)))
        fut = self.futures[e.n] = asyncio.get_running_loop().create_future()
        return fut


async def test_a_context_free_entry_settles_like_the_handler(url: str, names: Any) -> None:
    """Compiled, the step calls the entry with the delivery and queue (no MessageContext); either
    way the delivery is settled when the awaitable is done, or goes to its DLQ when it fails."""
    handler = WithContext()
    async with await _client(url, names) as client:
        client.add_handler(SlEvt, handler)
        sub = await client.start_consuming()
        await client.publish_event(SlEvt(n=1, aggregate_id="a"))
        await client.publish_event(SlEvt(n=2, aggregate_id="a"))
        await wait_until(lambda: len(handler.futures) == 2)
        assert handler.seen == [(1, client.service_queue, False), (2, client.service_queue, False)]
        assert sub.stats.acked == 0 and sub.in_flight == 2
        handler.futures[1].set_result(None)
        handler.futures[2].set_exception(StageFailedError("boom", "s", "boom"))
        await wait_until(lambda: sub.stats.acked == 1 and sub.stats.dead_lettered == 1)
        assert sub.in_flight == 0 and sub.stats.handler_errors == 1
        await client.subscriber.unsubscribe(sub)
        assert await queue_depth(client.connection, client.service_queue) == 0
