"""Confirmed publishing through the Client on the real broker when the broker closes the channel or
the link drops: only the publishes the broker refused fail, the next publish works, and the
unconfirmed ones are sent again after a reconnect (every awaited publish ends stored)."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from mmate_fast import errors
from mmate_fast.amqp import connect
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.client import Client
from mmate_fast.contracts import Event
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

URL = "amqp://guest:guest@127.0.0.1:5672/"
FAST = RecoveryPolicy(initial_delay=0.02, max_delay=0.5, wait_timeout=30.0)


@dataclass
class CfTick(Event):
    n: int = 0


def _name(what: str) -> str:
    return f"test.wt3-confirms.{what}.{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    q = _name("q")
    conn = await connect(URL)
    ch = await conn.channel()
    await ch.queue_declare(q)
    yield q
    ch = await conn.channel()
    await ch.queue_delete(q)
    await conn.close()


async def _message_ids(q: str) -> list[str]:
    conn = await connect(URL)
    ch = await conn.channel()
    ids = []
    while (d := await ch.basic_get(q, no_ack=True)) is not None:
        ids.append(d.properties.message_id)
    await conn.close()
    return ids


async def test_refused_publish_among_pending_ones_fails_alone(queue: str) -> None:
    missing = _name("missing-x")
    async with Client(URL, service_name=_name("svc"), declare_topology=False, recovery=FAST) as client:
        before = [client.publish_event(CfTick(n=i), exchange="", routing_key=queue) for i in range(50)]
        refused = client.publish_event(CfTick(n=-1), exchange=missing, routing_key="k")
        after = [client.publish_event(CfTick(n=i), exchange="", routing_key=queue) for i in range(50, 100)]
        outcomes = await asyncio.wait_for(asyncio.gather(*before, refused, *after, return_exceptions=True), 30)
        assert isinstance(outcomes[50], errors.NotFoundError) and missing in str(outcomes[50])
        ids = [o for i, o in enumerate(outcomes) if i != 50]
        assert all(type(o) is str for o in ids)  # the channel was reopened and they were re-sent
        last = await client.publish_event(CfTick(n=100), exchange="", routing_key=queue)
    stored = await _message_ids(queue)
    assert set(stored) == {*ids, last}  # at least once: a re-sent one may be stored twice


async def test_without_recovery_the_pending_fail_and_the_next_publish_works(queue: str) -> None:
    missing = _name("missing-x")
    async with Client(URL, service_name=_name("svc"), declare_topology=False, recovery=False) as client:
        refused = client.publish_event(CfTick(n=-1), exchange=missing, routing_key="k")
        pending = [client.publish_event(CfTick(n=i), exchange="", routing_key=queue) for i in range(20)]
        outcomes = await asyncio.wait_for(asyncio.gather(refused, *pending, return_exceptions=True), 30)
        assert isinstance(outcomes[0], errors.NotFoundError)
        # sent behind the refused publish on the closed channel: failed with the channel (the broker
        # discarded them), none hangs, none is reported stored that was not
        failed = [o for o in outcomes[1:] if not isinstance(o, str)]
        assert all(isinstance(o, errors.ChannelError) for o in failed)
        confirmed = [o for o in outcomes[1:] if isinstance(o, str)]
        last = await client.publish_event(CfTick(n=99), exchange="", routing_key=queue)  # pool reopened
    stored = await _message_ids(queue)
    assert set(confirmed) | {last} <= set(stored)


async def test_link_cut_mid_gather_resends_the_unconfirmed(queue: str) -> None:
    async with TcpProxy() as proxy:
        client = Client(proxy.url(heartbeat=5), service_name=_name("svc"), declare_topology=False,
                        recovery=FAST)
        async with client:
            ids: list[str] = []
            for window in range(6):
                futs = [client.publish_event(CfTick(n=window * 500 + i), exchange="", routing_key=queue)
                        for i in range(500)]
                if window == 2:
                    assert proxy.cut() == 1  # the window just sent is (partly) unconfirmed
                ids += await asyncio.wait_for(asyncio.gather(*futs), 60)
            assert client.connection.stats.reconnects >= 1
    stored = await _message_ids(queue)
    assert len(ids) == 3000 and set(stored) == set(ids)
