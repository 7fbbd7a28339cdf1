"""A refused call fails alone on a RobustChannel (issue 7 items 3 and 4), on the real broker.

The broker closes a channel for a 404 or 406; the robust channel reopens it on the same connection,
restores confirm mode, QoS and consumers, re-sends unconfirmed publishes except the refused ones,
and every later call works. And at a reconnect, a consumer whose queue is gone is dropped (its
on_cancel is called) instead of failing the whole recovery.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.amqp import BasicProperties, connect
from mmate_fast.amqp.robust import RecoveryPolicy, RobustConnection, connect_robust
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
FAST = RecoveryPolicy(initial_delay=0.02, max_delay=0.5, wait_timeout=20.0)
#: pre-encoded properties with expiration "-1": the broker closes the channel (406) for it; bytes are
#: not checked by the channel (the layer that encodes them is)
BAD_EXPIRATION = b"\x01\x00\x02-1"


def _name(what: str) -> str:
    return f"test.healing.{what}.{uuid.uuid4().hex[:8]}"


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _refused_attempts(robust: RobustConnection) -> list[str]:
    """Reconnect attempts that failed because the broker refused a restore (not the proxy refusing
    connections, which the tests do on purpose)."""
    return [h for h in robust.stats.history if "failed" in h and ("NOT_FOUND" in h or "PRECONDITION" in h)]


@pytest.fixture
async def robust() -> AsyncIterator[RobustConnection]:
    conn = await connect_robust(URL, policy=FAST)
    yield conn
    await conn.close()


@pytest.fixture
async def queues() -> AsyncIterator[list[str]]:
    names: list[str] = []
    yield names
    conn = await connect(URL)
    for q in names:
        await (await conn.channel()).queue_delete(q)
    await conn.close()


async def _declared(robust: RobustConnection, queues: list[str], what: str) -> str:
    q = _name(what)
    queues.append(q)
    ch = await robust.channel()
    await ch.queue_declare(q, durable=True)
    await ch.close()
    return q


async def _bodies(q: str, expect: int, timeout: float = 5.0) -> list[bytes]:
    conn = await connect(URL)
    ch = await conn.channel()
    out: list[bytes] = []
    end = time.monotonic() + timeout
    while len(out) < expect and time.monotonic() < end:
        d = await ch.basic_get(q, no_ack=True)
        if d is None:
            await asyncio.sleep(0.02)
            continue
        out.append(d.body)
    await asyncio.sleep(0.1)
    while (d := await ch.basic_get(q, no_ack=True)) is not None:
        out.append(d.body)
    await conn.close()
    return out


async def test_refused_publish_fails_alone_and_the_channel_heals(robust: RobustConnection,
                                                                  queues: list[str]) -> None:
    q = await _declared(robust, queues, "publish")
    ch = await robust.channel(publisher_confirms=True)
    missing = _name("missing-x")
    with pytest.raises(errors.NotFoundError) as info:
        await ch.publish(b"refused", missing, "k")
    assert info.value.reply_code == 404 and missing in str(info.value)
    assert ch.is_open
    await ch.publish(b"after", "", q)  # no old 404, no "pool is closed"
    with pytest.raises(errors.PublishNackedError, match="1 publish"):
        await ch.wait_for_confirms(timeout=5)  # counts every failed publish since the last call
    await ch.wait_for_confirms(timeout=5)
    assert robust.stats.channel_reopens == 1
    assert await _bodies(q, 1) == [b"after"]


async def test_refused_publish_among_unconfirmed_ones_fails_only_them(robust: RobustConnection,
                                                                       queues: list[str]) -> None:
    q = await _declared(robust, queues, "batch")
    ch = await robust.channel(publisher_confirms=True)
    missing = _name("missing-x")
    futs = [ch.publish_nowait(b"a%d" % i, "", q) for i in range(50)]
    refused = [ch.publish_nowait(b"refused%d" % i, missing, "k") for i in range(2)]
    futs += [ch.publish_nowait(b"b%d" % i, "", q) for i in range(50)]
    for fut in refused:
        assert fut is not None
        with pytest.raises(errors.NotFoundError):
            await asyncio.wait_for(fut, 5)
    assert await asyncio.wait_for(asyncio.gather(*futs), 10) == [True] * 100  # type: ignore[arg-type]
    with pytest.raises(errors.PublishNackedError, match="2 publish"):
        await ch.wait_for_confirms(timeout=5)  # counts the two that failed
    got = await _bodies(q, 100)
    assert set(got) == {b"a%d" % i for i in range(50)} | {b"b%d" % i for i in range(50)}


async def test_unknown_culprit_fails_every_unconfirmed_publish_saying_so(robust: RobustConnection,
                                                                         queues: list[str]) -> None:
    q = await _declared(robust, queues, "unknown")
    ch = await robust.channel(publisher_confirms=True)
    futs = [ch.publish_nowait(b"x%d" % i, "", q, BAD_EXPIRATION if i == 3 else None) for i in range(6)]
    outcomes = await asyncio.gather(*[asyncio.wait_for(f, 5) for f in futs if f is not None],
                                    return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert failed, "the refused publish must fail"
    assert all(isinstance(o, errors.PreconditionFailedError) for o in failed)
    assert any("may or may not" in str(o) for o in failed)  # the innocent ones: fate unknown
    await ch.publish(b"after", "", q)
    assert ch.is_open and robust.stats.channel_reopens == 1


async def test_refused_declare_fails_alone_and_admin_calls_go_on(robust: RobustConnection,
                                                                 queues: list[str]) -> None:
    q = await _declared(robust, queues, "declare")
    other = _name("other")
    queues.append(other)
    ch = await robust.channel()
    with pytest.raises(errors.PreconditionFailedError) as info:
        await ch.queue_declare(q, durable=False)
    assert info.value.reply_code == 406
    await ch.queue_declare(other, durable=True)  # not the old 406
    await ch.queue_bind(other, "amq.topic", "k")
    # pipelined: the refused call fails, the one behind it (never processed) is sent again
    bad, good = await asyncio.gather(ch.queue_declare(q, durable=False), ch.queue_declare(other, durable=True),
                                     return_exceptions=True)
    assert isinstance(bad, errors.PreconditionFailedError)
    assert not isinstance(good, BaseException) and good.queue == other
    assert robust.stats.channel_reopens == 2
    assert ch.is_open


async def test_consumers_qos_and_waiting_calls_survive_a_heal(robust: RobustConnection,
                                                              queues: list[str]) -> None:
    q = await _declared(robust, queues, "consume")
    ch = await robust.channel()
    await ch.basic_qos(1)
    got: list[Any] = []
    tag = await ch.basic_consume(q, got.append)
    pub = await robust.channel(publisher_confirms=True)
    for i in range(3):
        await pub.publish(b"m%d" % i, "", q)
    await _until(lambda: len(got) == 1, 5, "first delivery (prefetch 1)")
    first = got[0]
    ch.publish_nowait(b"refused", _name("missing-x"), "k")  # no confirms: the close comes later
    waiting = asyncio.ensure_future(ch.queue_declare(q, passive=True))  # waits for the heal
    assert (await asyncio.wait_for(waiting, 5)).queue == q
    assert robust.stats.channel_reopens == 1
    buffered = ch.publish_nowait(b"m3", "", q)  # live again: straight out
    assert buffered is None
    await _until(lambda: len(got) == 2, 5, "redelivery on the reopened channel")
    assert got[1].redelivered and got[1].body == first.body
    assert ch.basic_ack(first.delivery_tag) is False  # from the closed channel: stale
    for _ in range(4):
        n = len(got)
        ch.basic_ack(got[-1].delivery_tag)
        if n == 5:
            break
        await _until(lambda n=n: len(got) == n + 1, 5, "next delivery (QoS 1 restored)")
    assert [d.body for d in got[1:]] == [b"m0", b"m1", b"m2", b"m3"]
    assert all(d.consumer_tag == tag for d in got)


async def test_publish_nowait_during_a_heal_is_buffered(robust: RobustConnection,
                                                        queues: list[str]) -> None:
    q = await _declared(robust, queues, "buffer")
    ch = await robust.channel(publisher_confirms=True)
    refused = ch.publish_nowait(b"refused", _name("missing-x"), "k")
    assert refused is not None
    with pytest.raises(errors.NotFoundError):
        await asyncio.wait_for(refused, 5)
    futs = [ch.publish_nowait(b"during-%d" % i, "", q) for i in range(20)]  # healing right now
    assert await asyncio.wait_for(asyncio.gather(*futs), 5) == [True] * 20  # type: ignore[arg-type]
    assert await _bodies(q, 20) == [b"during-%d" % i for i in range(20)]


async def test_calls_wait_for_a_heal_no_longer_than_wait_timeout(queues: list[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    robust = await connect_robust(URL, policy=RecoveryPolicy(initial_delay=0.02, wait_timeout=0.3))
    try:
        ch = await robust.channel()
        q = await _declared(robust, queues, "slow")

        async def never(*args: Any, **kwargs: Any) -> None:
            await asyncio.sleep(3600)

        monkeypatch.setattr(ch, "_restore", never)  # a reopen that never finishes
        ch.publish_nowait(b"refused", _name("missing-x"), "k")
        await _until(lambda: not ch.channel.is_open, 5, "the broker closing the channel")
        with pytest.raises(errors.OperationTimeout, match="reopen"):
            await ch.queue_declare(q, passive=True)
        assert ch.is_open
    finally:
        await robust.close()


async def test_consumer_of_a_deleted_queue_is_dropped_at_reconnect(queues: list[str]) -> None:
    gone, kept = _name("gone"), _name("kept")
    queues += [gone, kept]
    admin = await connect(URL)
    ach = await admin.channel()
    for q in (gone, kept):
        await ach.queue_declare(q, durable=True)  # not declared through the robust channel
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()
        cancelled: list[tuple[str, bool]] = []
        got: list[bytes] = []

        def on_cancel(tag: str) -> None:
            cancelled.append((tag, ch.is_open and robust.is_connected))

        gone_tag = await ch.basic_consume(gone, lambda d: None, on_cancel=on_cancel, no_ack=True)
        await ch.basic_consume(kept, lambda d: got.append(d.body), no_ack=True)
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not robust.is_connected, 5, "disconnect")
        for _ in range(100):  # the broker drops our old consumer once it sees the cut
            if (await ach.queue_declare(gone, passive=True)).consumer_count == 0:
                break
            await asyncio.sleep(0.05)
        await ach.queue_delete(gone)
        proxy.refusing = False
        await _until(lambda: robust.is_connected, 10, "recovery despite the missing queue")
        assert not _refused_attempts(robust)
        await _until(lambda: bool(cancelled), 5, "on_cancel of the dropped consumer")
        assert cancelled == [(gone_tag, True)]  # once, and the channel was live by then
        await ach.publish(b"still consumed", "", kept)
        await _until(lambda: got == [b"still consumed"], 5, "the other consumer restored")
        await robust.close()
    await admin.close()


async def test_bad_arguments_never_reach_the_broker(robust: RobustConnection, queues: list[str]) -> None:
    q = await _declared(robust, queues, "props")
    ch = await robust.channel(publisher_confirms=True)
    with pytest.raises(errors.InvalidArgumentError) as info:
        await ch.publish(b"x", "", q, BasicProperties(expiration="-1"))
    assert info.value.argument == "expiration"
    with pytest.raises(errors.InvalidArgumentError):
        ch.publish_nowait(b"x", "", "k" * 256)
    assert robust.stats.channel_reopens == 0  # refused before the broker saw it
    await ch.publish(b"ok", "", q)


async def test_stale_topology_does_not_block_recovery(queues: list[str]) -> None:
    """A binding to an exchange deleted while we were away (404) and a queue re-declared by someone
    else with other arguments (406) are dropped from what a reconnect restores (logged, counted);
    the rest is restored and recovery completes instead of failing every attempt."""
    x, bound, changed, plain = _name("gone-x"), _name("bound"), _name("changed"), _name("plain")
    queues += [bound, changed, plain]
    admin = await connect(URL)
    ach = await admin.channel()
    await ach.exchange_declare(x, "topic", auto_delete=False)  # not declared through the robust channel
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()
        for q in (bound, changed, plain):
            await ch.queue_declare(q, durable=True)
        await ch.queue_bind(bound, x, "k")
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not robust.is_connected, 5, "disconnect")
        await ach.exchange_delete(x)
        await ach.queue_delete(changed)
        await ach.queue_declare(changed, durable=False, auto_delete=False)
        proxy.refusing = False
        await _until(lambda: robust.is_connected, 10, "recovery despite the stale topology")
        assert not _refused_attempts(robust)
        assert robust.stats.topology_dropped == 2
        got: list[bytes] = []
        await ch.basic_consume(plain, lambda d: got.append(d.body), no_ack=True)
        await ach.publish(b"restored", "", plain)
        await _until(lambda: got == [b"restored"], 5, "the channel works")
        proxy.cut()  # the dropped records are not tried again
        await _until(lambda: robust.stats.reconnects == 2 and robust.is_connected, 10, "second recovery")
        assert not _refused_attempts(robust) and robust.stats.topology_dropped == 2
        await robust.close()
    await admin.close()


async def test_a_double_ack_does_not_kill_the_consumer(robust: RobustConnection, queues: list[str]) -> None:
    """The broker closes the channel for an ack of an unknown tag (406); the consumer comes back."""
    q = await _declared(robust, queues, "double-ack")
    ch = await robust.channel()
    await ch.basic_qos(1)
    got: list[Any] = []
    await ch.basic_consume(q, got.append)
    pub = await robust.channel(publisher_confirms=True)
    await pub.publish(b"one", "", q)
    await pub.publish(b"two", "", q)
    await _until(lambda: len(got) == 1, 5, "first delivery")
    ch.basic_ack(got[0].delivery_tag)
    ch.basic_ack(got[0].delivery_tag, multiple=True)  # again: 406 unknown delivery tag
    await _until(lambda: robust.stats.channel_reopens == 1, 5, "the channel reopened")
    await _until(lambda: any(d.body == b"two" for d in got), 5, "the consumer goes on")
    ch.basic_ack(got[-1].delivery_tag)
    await asyncio.sleep(0.1)
    assert [d.body for d in got if d.body == b"one"] == [b"one"]  # acked before the 406: not redelivered
