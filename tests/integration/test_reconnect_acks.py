"""Acks after a reconnect (issue 7 item 2), on the real broker: a consumer with a backlog keeps
acking through many reconnects, whatever its handler kind and prefetch, and a settle the robust
channel drops as stale says so (``basic_ack`` returns False)."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy, RobustConnection, connect_robust
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_recovery import close_named_connections

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
FAST = RecoveryPolicy(initial_delay=0.02, max_delay=0.5, wait_timeout=60.0)


def _name(what: str) -> str:
    return f"test.reconnect-acks.{what}.{uuid.uuid4().hex[:8]}"


async def _until(cond: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.01)


async def _fill(q: str, n: int) -> None:
    conn = await connect(URL)
    ch = await conn.channel(publisher_confirms=True)
    await ch.queue_declare(q, durable=True)
    for i in range(n):
        ch.publish_nowait(b"%d" % i, "", q)
    await ch.wait_for_confirms(timeout=30)
    await conn.close()


async def _queue_depth(q: str, *, delete: bool = False) -> int:
    conn = await connect(URL)
    ch = await conn.channel()
    count = (await ch.queue_declare(q, passive=True)).message_count
    if delete:
        await ch.queue_delete(q)
    await conn.close()
    return count


async def _delete(q: str) -> None:
    conn = await connect(URL)
    await (await conn.channel()).queue_delete(q)
    await conn.close()


async def _consume_through_reconnects(robust: RobustConnection, q: str, n: int, prefetch: int,
                                      handler_kind: str, reconnects: int,
                                      disconnect: Callable[[], None]) -> None:
    """Consume a backlog of ``n``, acking each delivery as it arrives, and drop the link
    ``reconnects`` times, each time after the consumer handled another ``n // (reconnects + 1)``
    messages (a consumer that stalls after a reconnect never reaches the next drop). Deliveries that
    still arrive on the doomed link are held and acked after the reconnect, as a slow handler would:
    those acks are stale (False; the broker redelivers the messages). At the end every message must
    be acked: the queue is empty once our connection is closed."""
    ch = await robust.channel()
    await ch.basic_qos(prefetch)
    step = n // (reconnects + 1)
    seen: set[bytes] = set()
    held: list[Any] = []
    state = {"handled": 0, "next_drop": step, "dropping": False, "stale": 0, "held": 0}

    def ack(d: Any) -> None:
        if ch.basic_ack(d.delivery_tag) is False:
            state["stale"] += 1
        else:
            seen.add(d.body)

    def on_delivery(d: Any) -> None:
        if state["dropping"]:  # the old link, about to drop
            held.append(d)
            state["held"] += 1
            return
        state["handled"] += 1
        ack(d)  # on a new link this runs in the same read as consume-ok
        if state["handled"] >= state["next_drop"] and robust.stats.disconnects < reconnects:
            state["next_drop"] += step
            state["dropping"] = True
            disconnect()

    def disconnected(*_: Any) -> None:
        state["dropping"] = False

    def reconnected(_: Any) -> None:
        while held:
            ack(held.pop(0))

    robust.on_disconnected.append(disconnected)
    robust.on_reconnected.append(reconnected)
    if handler_kind == "sync":
        callback: Any = on_delivery
    else:
        async def callback(d: Any) -> None:
            await asyncio.sleep(0)
            on_delivery(d)

    await ch.basic_consume(q, callback)
    await _until(lambda: robust.stats.reconnects == reconnects, 30,
                 lambda: f"{reconnects} reconnects (prefetch {prefetch}, {handler_kind} handler): "
                         f"{robust.stats.reconnects} so far, {len(seen)}/{n} acked")
    await _until(lambda: len(seen) == n, 30, lambda: f"all {n} acked ({len(seen)} so far)")
    await asyncio.sleep(0.2)  # the last acks leave with the next write
    await robust.close()
    assert await _queue_depth(q) == 0, "acks were lost: messages went back to the queue"
    assert state["stale"] == state["held"]


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
@pytest.mark.parametrize("prefetch", [1, 10])
async def test_backlog_is_acked_through_proxy_cuts(handler_kind: str, prefetch: int) -> None:
    q = _name(f"cut-{handler_kind}-{prefetch}")
    n = 600
    await _fill(q, n)
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)

        try:
            await _consume_through_reconnects(robust, q, n, prefetch, handler_kind, 12, proxy.cut)
        finally:
            await robust.close()
            await _delete(q)


@pytest.mark.parametrize("handler_kind", ["sync", "async"])
async def test_backlog_is_acked_through_broker_side_closes(handler_kind: str) -> None:
    q = _name(f"close-{handler_kind}")
    n = 300
    await _fill(q, n)
    conn_name = q + "-consumer"
    robust = await connect_robust(URL + "?name=" + conn_name, policy=FAST)

    tasks: list[asyncio.Future[int]] = []

    def close_ours() -> None:
        tasks.append(asyncio.ensure_future(asyncio.to_thread(close_named_connections, conn_name)))

    try:
        await _consume_through_reconnects(robust, q, n, 10, handler_kind, 5, close_ours)
        assert [t.result() for t in tasks] == [1] * 5
    finally:
        await robust.close()
        await _delete(q)


async def test_stale_settles_return_false_and_live_ones_none() -> None:
    q = _name("contract")
    await _fill(q, 3)
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()
        held: list[Any] = []
        await ch.basic_qos(3)
        await ch.basic_consume(q, held.append)
        await _until(lambda: len(held) == 3, 5, "three deliveries")
        assert ch.basic_ack(held[0].delivery_tag) is None  # generation 1: straight to the channel
        await asyncio.sleep(0.1)  # the ack leaves before the cut
        old = held[1:]
        proxy.cut()
        await _until(lambda: robust.stats.reconnects == 1 and len(held) == 5, 10, "redelivery")
        dropped = robust.stats.stale_acks_dropped
        assert ch.basic_ack(old[0].delivery_tag) is False
        assert ch.basic_reject(old[1].delivery_tag, False) is False
        assert ch.basic_nack(old[1].delivery_tag, False, False) is False
        assert robust.stats.stale_acks_dropped == dropped + 3
        assert ch.basic_ack(held[3].delivery_tag) is None
        assert ch.basic_nack(held[4].delivery_tag, False, False) is None
        await asyncio.sleep(0.1)
        await robust.close()
    assert await _queue_depth(q, delete=True) == 0


class _StepLike:
    """A consumer callback with a ``channel_hook`` (as the subscription's compiled step): the hook
    acks with the ``ack`` it is given, or nacks through the robust channel when told to."""

    def __init__(self, ch: Any) -> None:
        self.ch = ch
        self.seen: list[tuple[str, int, bytes]] = []
        self.nack_bodies: set[bytes] = set()
        self.settles: list[bool | None] = []

    def _settle(self, d: Any, ack: Callable[[int], Any]) -> None:
        if d.body in self.nack_bodies:
            self.settles.append(self.ch.basic_nack(d.delivery_tag, False, False))
        else:
            self.settles.append(ack(d.delivery_tag))

    def __call__(self, d: Any) -> None:
        self.seen.append(("call", d.delivery_tag, d.body))
        self._settle(d, self.ch.basic_ack)

    def channel_hook(self, ack: Callable[[int], Any]) -> Callable[[Any], None]:
        def hook(d: Any) -> None:
            self.seen.append(("hook", d.delivery_tag, d.body))
            self._settle(d, ack)
        return hook


async def test_a_hooked_consumer_stays_hooked_after_a_reconnect() -> None:
    """Generation 2 shifts delivery tags (RobustChannel._wrap): a consumer with a channel_hook is
    still fed by the frame reader (tags shifted there, acks unshifted on the live channel), and a
    settle through the robust channel with a tag it saw is live, not stale."""
    q = _name("hooked")
    await _fill(q, 0)
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        try:
            ch = await robust.channel()
            await ch.basic_qos(10)
            cb = _StepLike(ch)
            await ch.basic_consume(q, cb)
            await _fill(q, 2)  # after consume-ok: not in its read (that read's deliveries are items)
            await _until(lambda: len(cb.seen) == 2, 10, "two deliveries")
            assert [(k, t) for k, t, _ in cb.seen] == [("hook", 1), ("hook", 2)]
            await asyncio.sleep(0.1)  # the acks leave before the cut
            proxy.cut()
            await _until(lambda: robust.stats.reconnects == 1, 10, "a reconnect")
            await asyncio.sleep(0.1)  # the consumer is back (its consume-ok read)
            cb.nack_bodies.add(b"1")
            await _fill(q, 2)  # bodies b"0", b"1"
            await _until(lambda: len(cb.seen) == 4, 10, lambda: f"two more deliveries: {cb.seen}")
            base = 1 << 40
            assert [(k, t, b) for k, t, b in cb.seen[2:]] == [("hook", base + 1, b"0"), ("hook", base + 2, b"1")]
            assert cb.settles == [None, None, None, None]
            await asyncio.sleep(0.2)
        finally:
            await robust.close()
    assert await _queue_depth(q, delete=True) == 0


class _NoAckStepLike:
    """A no-ack consumer callback with a ``no_ack_hook`` (as the bridge's compiled reply step): the
    hook settles each tag with the ``settle`` it is given, then records the delivery."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bytes]] = []

    def __call__(self, d: Any) -> None:
        self.seen.append(("call", d.delivery_tag, d.body))

    def no_ack_hook(self, settle: Callable[[int, bool], Any]) -> Callable[[Any], None]:
        def hook(d: Any) -> None:
            settle(d.delivery_tag, False)
            self.seen.append(("hook", d.delivery_tag, d.body))
        return hook


async def test_a_no_ack_hooked_consumer_stays_hooked_after_a_reconnect() -> None:
    """Generation 2 wraps callbacks (RobustChannel._wrap): a no-ack consumer with a no_ack_hook (the
    bridge's reply step) is still fed by the frame reader, settling the live channel's own tags."""
    q = _name("no-ack-hooked")
    await _fill(q, 0)
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        try:
            ch = await robust.channel()
            cb = _NoAckStepLike()
            await ch.basic_consume(q, cb, no_ack=True)
            await _fill(q, 2)  # after consume-ok: not in its read (that read's deliveries are items)
            await _until(lambda: len(cb.seen) == 2, 10, "two deliveries")
            assert [(k, t) for k, t, _ in cb.seen] == [("hook", 1), ("hook", 2)]
            proxy.cut()
            await _until(lambda: robust.stats.reconnects == 1, 10, "a reconnect")
            await asyncio.sleep(0.1)  # the consumer is back (its consume-ok read)
            await _fill(q, 2)
            await _until(lambda: len(cb.seen) == 4, 10, lambda: f"two more deliveries: {cb.seen}")
            assert [(k, t, b) for k, t, b in cb.seen[2:]] == [("hook", 1, b"0"), ("hook", 2, b"1")]
            assert ch.channel._acks.settled_upto == 2  # settled on the live channel, nothing owed
        finally:
            await robust.close()
    assert await _queue_depth(q, delete=True) == 0
