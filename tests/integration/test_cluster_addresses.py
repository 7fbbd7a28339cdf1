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


async def _management_type(queue: str) -> str:
    """The queue's type as the management API (on the shared broker, port 15672) reports it."""
    import base64
    import json
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:15672/api/queues/%2F/{urllib.parse.quote(queue, safe='')}",
        headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})

    def fetch() -> str:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["type"])

    return await asyncio.to_thread(fetch)


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


async def test_ttl_retry_of_a_quorum_client_retries_through_a_quorum_delay_queue() -> None:
    from mmate_fast.reliability import FixedDelay, TtlRetry
    from mmate_fast.reliability.ttl_retry import delay_queue_name

    service = _name("retry")
    retry = TtlRetry(FixedDelay(0.2, max_retries=3))
    client = Client(BROKER, service_name=service, queue_type="quorum", failure_handler=retry, recovery=FAST)
    retry_queue = delay_queue_name(f"{service}-queue", retry.delay_ms(1) or 0)
    calls: list[int] = []
    done = asyncio.Event()

    @client.handler(ClusterPing)
    def flaky(msg: ClusterPing) -> None:
        calls.append(msg.n)
        if len(calls) == 1:
            raise RuntimeError("first time fails")
        done.set()

    try:
        async with client:
            await client.start_consuming()
            await client.publish_event(ClusterPing(n=7))
            await asyncio.wait_for(done.wait(), 30)
            assert calls == [7, 7] and retry.retried == 1
            assert await _management_type(retry_queue) == "quorum"
    finally:
        await _delete(f"{service}-queue", retry_queue)


async def test_stageflow_queues_of_a_quorum_client_are_quorum_queues_with_gos_arguments() -> None:
    from mmate_fast.stageflow import _queues

    service = _name("flow")
    stage = f"{service}.wf.stage0"
    async with Client(BROKER, service_name=service, queue_type="quorum", recovery=FAST) as client:
        try:
            await _queues.declare_flow_queue(client, stage, _queues.STAGE_TTL_MS)
            assert await _management_type(stage) == "quorum"
            # Go's arguments plus x-queue-type: a redeclare with exactly those is accepted
            conn = await connect(BROKER)
            try:
                args = {**_queues.queue_arguments(stage, _queues.STAGE_TTL_MS), "x-queue-type": "quorum"}
                await (await conn.channel()).queue_declare(stage, durable=True, arguments=args)
            finally:
                await conn.close()
        finally:
            await _delete(f"{service}-queue", stage)


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


async def _full_queue(name: str) -> None:
    """``name`` with room for one message, holding one, refusing more (reject-publish: a nack)."""
    conn = await connect(BROKER)
    try:
        ch = await conn.channel(publisher_confirms=True)
        await ch.queue_declare(name, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        await ch.publish(b"full", "", name)
    finally:
        await conn.close()


@pytest.mark.parametrize("gets_room", [True, False])
async def test_a_nacked_publish_sent_by_a_recovery_is_sent_again_until_wait_timeout(gets_room: bool) -> None:
    queue = _name("resend")
    await _full_queue(queue)
    policy = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=3.0 if not gets_room else 30.0)
    try:
        async with TcpProxy() as proxy:
            robust = await connect_robust(proxy.url(), policy=policy, timeout=5)
            try:
                ch = await robust.channel(publisher_confirms=True)
                proxy.cut()
                fut = ch.publish_nowait(b"sent by the recovery", "", queue)  # buffered: link is down
                assert fut is not None
                if not gets_room:  # the queue stays full: the nacks win after wait_timeout
                    with pytest.raises(errors.PublishNackedError):
                        await asyncio.wait_for(fut, 30)
                    assert robust.stats.nacked_resent >= 1
                    return
                for _ in range(300):
                    if robust.stats.nacked_resent:
                        break
                    await asyncio.sleep(0.05)
                assert robust.stats.nacked_resent >= 1 and not fut.done()
                conn = await connect(BROKER)
                bodies: list[bytes] = []
                try:  # room again (as a quorum queue with a leader again): a re-send is stored
                    reader = await conn.channel()
                    for _ in range(600):
                        if fut.done():
                            break
                        d = await reader.basic_get(queue, no_ack=True)
                        if d is not None:
                            bodies.append(d.body)
                        await asyncio.sleep(0.05)
                finally:
                    await conn.close()
                assert await asyncio.wait_for(fut, 5) is True
                assert bodies[0] == b"full"
                await ch.wait_for_confirms(timeout=5)  # the nacks it went through are not counted
            finally:
                await robust.close()
    finally:
        await _delete(queue)


async def test_shuffle_spreads_clients_over_the_nodes() -> None:
    async with TcpProxy() as a, TcpProxy() as b, TcpProxy() as c:
        url = f"amqp://guest:guest@127.0.0.1:{a.port},127.0.0.1:{b.port},127.0.0.1:{c.port}/?shuffle=true"
        conns = [await connect(url, timeout=5) for _ in range(12)]
        try:
            # in order, all 12 would be on the first node; shuffled, all on one has odds 3 / 3**12
            assert sum(1 for p in (a, b, c) if p.accepted) >= 2
            assert sum(p.accepted for p in (a, b, c)) == 12
        finally:
            for conn in conns:
                await conn.close()
