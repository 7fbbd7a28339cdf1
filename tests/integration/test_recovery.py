"""Automatic recovery against the real broker: links cut by a TCP proxy, connections closed from the
broker side, and a restart of a throw-away broker node of the test's own — during a confirmed
publish of persistent messages to a durable queue consumed with manual acks."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy, RobustConnection, connect_robust
from tests.integration import broker_node
from tests.integration.broker_node import BrokerNode
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
FAST = RecoveryPolicy(initial_delay=0.05, max_delay=1.0, wait_timeout=60.0)


def _name(what: str) -> str:
    return f"test.recovery.{what}.{uuid.uuid4().hex[:8]}"


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _rabbitmqctl(*args: str, timeout: float = 60) -> str:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=True)
    return out.stdout


def close_named_connections(prefix: str) -> int:
    """Close (broker side) every connection whose client-provided name starts with ``prefix``."""
    out = _rabbitmqctl("list_connections", "pid", "client_properties", "-q")
    pids = [line.split("\t", 1)[0] for line in out.splitlines() if f'"{prefix}' in line]
    for pid in pids:
        _rabbitmqctl("close_connection", pid, "test: closed from the broker side")
    return len(pids)


async def test_proxy_cut_recovers_topology_consumers_and_publishes() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(heartbeat=5), policy=FAST)
        events: list[str] = []
        robust.on_disconnected.append(lambda c, exc: events.append("down"))
        robust.on_reconnected.append(lambda c: events.append("up"))
        ch = await robust.channel(publisher_confirms=True)
        q = _name("cut")
        await ch.queue_declare(q, auto_delete=True)  # gone with the connection: must be re-declared
        got: list[bytes] = []

        def on_msg(d: Any) -> None:
            got.append(d.body)
            ch.basic_ack(d.delivery_tag)

        await ch.basic_qos(50)
        await ch.basic_consume(q, on_msg)
        await ch.publish(b"before", "", q)
        await _until(lambda: got == [b"before"], 5, "first message")
        assert proxy.cut() == 1
        await _until(lambda: events == ["down", "up"], 10, "recovery")
        await ch.publish(b"after", "", q)
        await _until(lambda: got == [b"before", b"after"], 5, "message after recovery")
        assert robust.stats.reconnects == 1
        await robust.close()
    assert robust.is_closed


async def test_publishes_while_disconnected_wait_or_fail_fast() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel(publisher_confirms=True)
        q = _name("buffer")
        await ch.queue_declare(q, durable=True)
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not robust.is_connected, 5, "disconnect")
        futs = [ch.publish_nowait(b"%d" % i, "", q) for i in range(100)]  # buffered
        assert all(f is not None and not f.done() for f in futs)
        proxy.refusing = False
        await ch.wait_for_confirms(timeout=20)
        assert all(f is not None and f.result() is True for f in futs)
        assert (await ch.queue_declare(q, passive=True)).message_count == 100
        await ch.queue_delete(q)
        await robust.close()

        failing = await connect_robust(proxy.url(), policy=RecoveryPolicy(
            initial_delay=0.05, on_disconnect="fail"))
        fch = await failing.channel()
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not failing.is_connected, 5, "disconnect")
        with pytest.raises(errors.ConnectionClosedError):
            fch.publish_nowait(b"x", "", q)
        with pytest.raises(errors.ConnectionClosedError):
            await fch.publish(b"x", "", q)
        await failing.close()


async def test_gives_up_after_max_attempts() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=RecoveryPolicy(
            initial_delay=0.01, max_delay=0.02, max_attempts=3))
        ch = await robust.channel(publisher_confirms=True)
        failed: list[BaseException] = []
        robust.on_failed.append(lambda c, exc: failed.append(exc))
        proxy.refusing = True
        proxy.cut()
        fut = ch.publish_nowait(b"x", "", "nowhere")
        await asyncio.wait_for(asyncio.shield(robust.closed), 10)
        assert failed and robust.stats.failed_attempts == 3
        assert fut is not None
        with pytest.raises(errors.ConnectionClosedError):
            await fut


async def test_stale_ack_after_reconnect_is_dropped_not_misapplied() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()
        q = _name("stale")
        await ch.queue_declare(q, durable=True)
        for i in range(5):
            await ch.publish(b"%d" % i, "", q)
        held: list[Any] = []
        await ch.basic_qos(1)
        await ch.basic_consume(q, held.append)
        await _until(lambda: len(held) == 1, 5, "first delivery")
        old = held[0]
        proxy.cut()
        await _until(lambda: robust.stats.reconnects == 1 and len(held) == 2, 10, "redelivery")
        ch.basic_ack(old.delivery_tag)  # tag of the dead connection: must not ack the new delivery
        assert robust.stats.stale_acks_dropped == 1
        new = held[1]
        assert new.redelivered and new.body == old.body
        ch.basic_ack(new.delivery_tag)
        await _until(lambda: len(held) == 3, 5, "next delivery after a valid ack")
        assert held[2].body == b"1"
        await ch.queue_delete(q)
        await robust.close()


async def _publish_consume_through(disrupt: Callable[[RobustConnection], Awaitable[None]], url: str,
                                   n: int = 100_000) -> dict[str, int]:
    """Confirmed publish of ``n`` persistent messages to a durable queue, consumed with manual acks,
    with ``disrupt`` called mid-way. Returns counts; asserts nothing is lost."""
    q = _name("load")
    pub = await connect_robust(url + "?name=" + q + "-pub", policy=FAST)
    sub = await connect_robust(url + "?name=" + q + "-sub", policy=FAST)
    pch = await pub.channel(publisher_confirms=True)
    await pch.queue_declare(q, durable=True)
    sch = await sub.channel()
    await sch.basic_qos(500)
    seen: Counter[int] = Counter()

    def on_msg(d: Any) -> None:
        seen[int(d.body)] += 1
        sch.basic_ack(d.delivery_tag)

    await sch.basic_consume(q, on_msg)
    props = b"\x10\x00\x02"  # delivery_mode=2 (persistent), pre-encoded
    window = 2000
    disruption: asyncio.Task[None] | None = None
    for start in range(0, n, window):
        for i in range(start, min(n, start + window)):
            pch.publish_nowait(b"%d" % i, "", q, props)
        if disruption is None and start >= n // 3:
            # runs while publishing goes on: the outage hits publishes in flight
            disruption = asyncio.ensure_future(disrupt(pub))
        await pch.wait_for_confirms(timeout=120)
    assert disruption is not None
    await disruption
    await _until(lambda: len(seen) == n, 120, f"all {n} messages consumed (have {len(seen)})")
    await _until(lambda: pub.is_connected and sub.is_connected, 60, "both connections recovered")
    missing = [i for i in range(n) if seen[i] == 0]
    assert not missing
    duplicates = sum(c - 1 for c in seen.values())
    result = {"messages": n, "duplicates": duplicates, "republished": pub.stats.republished,
              "publisher_reconnects": pub.stats.reconnects, "consumer_reconnects": sub.stats.reconnects}
    print(f"recovery result: {result}")
    conn = await connect(url)
    await (await conn.channel()).queue_delete(q)
    await conn.close()
    await pub.close()
    await sub.close()
    return result


@pytest.mark.slow
async def test_100k_confirmed_through_proxy_cuts() -> None:
    async with TcpProxy() as proxy:
        async def disrupt(pub: RobustConnection) -> None:
            proxy.cut()

        result = await _publish_consume_through(disrupt, proxy.url().rstrip("/") + "/")
    assert result["publisher_reconnects"] >= 1 and result["consumer_reconnects"] >= 1


@pytest.mark.slow
async def test_100k_confirmed_through_broker_side_close() -> None:
    async def disrupt(pub: RobustConnection) -> None:
        name = pub.params.connection_name or ""
        closed = await asyncio.to_thread(close_named_connections, name.rsplit("-", 1)[0] + "-")
        assert closed == 2

    result = await _publish_consume_through(disrupt, URL)
    assert result["publisher_reconnects"] >= 1 and result["consumer_reconnects"] >= 1


@pytest.fixture
def node() -> Iterator[BrokerNode]:
    """A throw-away node of this test's own (restarting it disturbs nobody)."""
    yield from broker_node.running(broker_node.start)


@pytest.mark.slow
async def test_100k_confirmed_through_broker_restart(node: BrokerNode) -> None:
    async def disrupt(pub: RobustConnection) -> None:
        await asyncio.to_thread(node.stop_app)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(node.start_app)

    result = await _publish_consume_through(disrupt, node.url)
    assert result["publisher_reconnects"] >= 1 and result["consumer_reconnects"] >= 1


async def test_unconfirmed_channel_buffers_while_disconnected_and_sends_after() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()  # no confirms: publish_nowait goes straight to the live channel
        q = _name("plain")
        await ch.queue_declare(q, durable=True)
        assert ch.publish_nowait(b"before", "", q) is None
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not robust.is_connected, 5, "disconnect")
        for i in range(10):
            assert ch.publish_nowait(b"during-%d" % i, "", q) is None  # buffered, no error
        proxy.refusing = False
        await _until(lambda: robust.is_connected, 10, "reconnect")
        await robust.wait_connected()
        bodies = []
        for _ in range(200):
            d = await ch.basic_get(q, no_ack=True)
            if d is None:
                if len(bodies) >= 11:
                    break
                await asyncio.sleep(0.02)
                continue
            bodies.append(d.body)
        assert [b for b in bodies if b.startswith(b"during")] == [b"during-%d" % i for i in range(10)]
        assert robust.stats.buffered_sent == 10
        await ch.queue_delete(q)
        await robust.close()


async def test_failed_restore_is_retried_until_it_succeeds() -> None:
    async with TcpProxy() as proxy:
        robust = await connect_robust(proxy.url(), policy=FAST)
        ch = await robust.channel()
        q = _name("exclusive")
        await ch.queue_declare(q, exclusive=True, auto_delete=True)
        proxy.refusing = True
        proxy.cut()
        await _until(lambda: not robust.is_connected, 5, "disconnect")
        other = await connect(URL)
        och = await other.channel()
        for _ in range(100):  # the broker drops our old exclusive queue once it sees the cut
            try:
                await och.queue_declare(q, exclusive=True)
                break
            except errors.ResourceLockedError:
                och = await other.channel()
                await asyncio.sleep(0.05)
        proxy.refusing = False
        # restoring our exclusive queue now fails (405, someone else holds the name): retried
        await _until(lambda: robust.stats.failed_attempts >= 2, 10, "failed restore attempts")
        assert not robust.is_connected
        await other.close()  # the name is free again
        await _until(lambda: robust.is_connected, 15, "recovery after the name was released")
        assert (await ch.queue_declare(q, passive=True)).queue == q
        await robust.close()
