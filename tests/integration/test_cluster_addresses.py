"""Several broker addresses and quorum queues on the shared broker (issue 12 items 1-2).

The "nodes" are loopback TCP proxies (``TcpProxy``) in front of the one broker: a proxy that refuses
plays a node that is down, so failover, the order nodes are tried in and the recovery of topology,
consumers and unconfirmed publishes across "nodes" are tested without a cluster (the real 3-node
failover is ``test_cluster.py``). Quorum queues work on a single node too.
"""
from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass

import pytest

from mmate_fast import Client, errors
from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy, connect_robust
from mmate_fast.contracts import Event
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

FAST = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=30.0)
BROKER = "amqp://guest:guest@127.0.0.1:5672/"


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"amqp://guest:guest@127.0.0.1:{s.getsockname()[1]}/"


def _name(what: str) -> str:
    return f"wt6-cluster-{what}-{uuid.uuid4().hex[:8]}"


@dataclass
class ClusterPing(Event):
    n: int = 0


async def _delete(*queues: str) -> None:
    conn = await connect(BROKER)
    try:
        ch = await conn.channel()
        for q in queues:
            await ch.queue_delete(q)
    finally:
        await conn.close()


async def test_first_connect_skips_nodes_that_are_down() -> None:
    dead = _dead_url()
    robust = await connect_robust([dead, BROKER], policy=FAST, timeout=5)
    try:
        assert robust.params.port == 5672 and robust.is_connected
    finally:
        await robust.close()
    async with TcpProxy() as down:
        down.refusing = True  # accepts TCP, closes at once: a node that is not serving
        conn = await connect(f"amqp://guest:guest@127.0.0.1:{down.port},127.0.0.1:5672/", timeout=5)
        try:
            assert conn.params.port == 5672
        finally:
            await conn.close()


async def test_failover_to_the_next_node_restores_topology_consumers_and_unconfirmed_publishes() -> None:
    queue = _name("failover")
    async with TcpProxy() as a, TcpProxy() as b:
        url = f"amqp://guest:guest@127.0.0.1:{a.port},127.0.0.1:{b.port}/?name={queue}"
        robust = await connect_robust(url, policy=FAST, timeout=5)
        try:
            assert robust.params.port == a.port
            ch = await robust.channel(publisher_confirms=True)
            # auto-delete: it goes with the lost connection's consumer, so only the restore brings it back
            await ch.queue_declare(queue, auto_delete=True)
            got: list[bytes] = []
            arrived = asyncio.Event()

            def on_message(delivery: object) -> None:
                got.append(delivery.body)  # type: ignore[attr-defined]
                ch.basic_ack(delivery.delivery_tag)  # type: ignore[attr-defined]
                if len(set(got)) == 200:
                    arrived.set()

            await ch.basic_consume(queue, on_message)
            await ch.publish(b"0", "", queue)
            a.refusing = True  # node A goes down and stays down
            a.cut()
            # published while the link is gone: buffered, or sent and unconfirmed (re-sent): all arrive
            futures = [ch.publish_nowait(str(i).encode(), "", queue) for i in range(1, 200)]
            await asyncio.gather(*[f for f in futures if f is not None])
            await asyncio.wait_for(arrived.wait(), 30)
            assert {int(x) for x in got} == set(range(200))
            assert robust.params.port == b.port
            assert robust.stats.failovers == 1 and robust.stats.reconnects == 1
            assert "of 2 nodes" in repr(robust)
        finally:
            await robust.close()


async def test_client_with_a_list_of_urls_fails_over_and_keeps_consuming() -> None:
    service = _name("svc")
    async with TcpProxy() as a, TcpProxy() as b:
        got: list[int] = []
        done = asyncio.Event()
        client = Client([a.url(), b.url()], service_name=service, recovery=FAST)

        @client.handler(ClusterPing)
        def on_ping(msg: ClusterPing) -> None:
            got.append(msg.n)
            if msg.n == 1:
                done.set()

        async with client:
            await client.start_consuming()
            await client.publish_event(ClusterPing(n=0))
            a.refusing = True
            a.cut()
            await client.publish_event(ClusterPing(n=1))  # waits for the failover, then confirmed
            await asyncio.wait_for(done.wait(), 30)
            assert client.connection.params.port == b.port
            assert 0 in got and 1 in got
    await _delete(f"{service}-queue")


async def test_a_nacked_publish_fails_alone_and_the_channel_is_replaced() -> None:
    queue = _name("nack")
    robust = await connect_robust(BROKER, policy=FAST, timeout=5)
    try:
        ch = await robust.channel(publisher_confirms=True)
        await ch.queue_declare(queue, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        await ch.publish(b"kept", "", queue)
        with pytest.raises(errors.PublishNackedError):
            await ch.publish(b"refused: the queue is full", "", queue)
        first = ch.channel
        await ch.queue_purge(queue)  # waits for the replacement channel
        await ch.publish(b"fits again", "", queue)
        assert ch.channel is not first and robust.stats.nack_replacements == 1
        assert (await ch.queue_declare(queue, arguments={"x-max-length": 1,
                                                         "x-overflow": "reject-publish"})).message_count == 1
    finally:
        await _delete(queue)
        await robust.close()


# ---------------------------------------------------------------------- quorum queues
async def _queue_type_is(queue: str, expected: str, durable: bool = True) -> None:
    """A redeclare with the other type is refused (406): the queue has ``expected`` type."""
    other = {"x-queue-type": "classic" if expected == "quorum" else "quorum"}
    conn = await connect(BROKER)
    try:
        ch = await conn.channel()
        with pytest.raises(errors.PreconditionFailedError, match="x-queue-type"):
            await ch.queue_declare(queue, durable=durable, arguments=other)
    finally:
        await conn.close()


async def test_quorum_client_declares_quorum_queues_and_transient_ones_classic() -> None:
    service = _name("qq")
    extra, transient = _name("extra"), _name("transient")
    client = Client(BROKER, service_name=service, queue_type="quorum", recovery=FAST)
    try:
        async with client:
            await client.declare_queue(extra)
            await client.declare_queue(transient, durable=False)
            with pytest.raises(errors.InvalidArgumentError, match="durable"):
                await client.declare_queue(_name("bad"), durable=False, queue_type="quorum")
            await _queue_type_is(f"{service}-queue", "quorum")
            await _queue_type_is(extra, "quorum")
            await _queue_type_is(transient, "classic", durable=False)
            # a Go peer that declares the queue without x-queue-type gets a 406 (what the note warns of)
            conn = await connect(BROKER)
            try:
                with pytest.raises(errors.PreconditionFailedError):
                    await (await conn.channel()).queue_declare(extra, durable=True)
            finally:
                await conn.close()
    finally:
        await _delete(f"{service}-queue", extra, transient)


async def test_delivery_limit_moves_a_poison_message_to_the_dlq() -> None:
    service = _name("poison")
    queue, dlq = f"{service}-queue", f"dlq.{service}-queue"
    client = Client(BROKER, service_name=service, queue_type="quorum", delivery_limit=2, recovery=FAST)
    try:
        async with client:
            await _queue_type_is(dlq, "quorum")  # declared at connect: the broker dead-letters there
            conn = await connect(BROKER)
            try:
                ch = await conn.channel(publisher_confirms=True)
                await ch.publish(b"poison", "", queue)
                # a consumer that dies on it every time: the broker requeues it, counting deliveries
                for _ in range(3):
                    delivery = None
                    for _ in range(100):
                        delivery = await ch.basic_get(queue)
                        if delivery is not None:
                            break
                        await asyncio.sleep(0.05)
                    assert delivery is not None
                    ch.basic_nack(delivery.delivery_tag, requeue=True)
                dead = None
                for _ in range(100):
                    dead = await ch.basic_get(dlq, no_ack=True)
                    if dead is not None:
                        break
                    await asyncio.sleep(0.05)
                assert dead is not None and dead.body == b"poison"
                assert await ch.basic_get(queue) is None
            finally:
                await conn.close()
    finally:
        await _delete(queue, dlq)
