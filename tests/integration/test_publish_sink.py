"""The publisher's one-call path (wire.PublishPlan written through the channel's PublishSink) on the
real broker: what it writes arrives and decodes as the general path's messages do, a channel the
broker closes stops it (nothing is written into a dead channel) and the reopened one takes it up
again, and a link drop does the same through the robust connection."""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest

from mmate_fast import Client, errors
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.contracts import Event
from tests.integration.conftest import AMQP_URL
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

FAST = RecoveryPolicy(initial_delay=0.05, max_delay=0.5, wait_timeout=30.0)


@dataclass
class SinkEvent(Event):
    n: int = 0
    text: str = ""


async def _drain_queue(client: Client, q: str, want: int, timeout: float = 20.0) -> list[SinkEvent]:
    got: list[SinkEvent] = []
    done = asyncio.Event()

    def on_event(evt: SinkEvent) -> None:
        got.append(evt)
        if len(got) >= want:
            done.set()

    client.add_handler(SinkEvent, on_event)
    await client.subscribe(q, prefetch=500, declare=False)
    await asyncio.wait_for(done.wait(), timeout)
    return got


@pytest.mark.asyncio
async def test_sink_path_messages_arrive_and_survive_a_closed_channel() -> None:
    q = f"wt-sink-{uuid.uuid4().hex[:8]}"
    async with Client(AMQP_URL, service_name=f"sink-{uuid.uuid4().hex[:6]}", declare_topology=False,
                      publisher_confirms=False) as client:
        await client.declare_queue(q, durable=False)
        try:
            pub = client.publisher
            ids = [await client.publish_event(SinkEvent(n=i, text="é<&>", aggregate_id=f"a{i}"), exchange="",
                                              routing_key=q) for i in range(300)]
            assert pub._sink is not None and pub._sink.open, "the one-call path was not taken"
            sink = pub._sink
            # a refused publish closes the channel (404, reported in the log without confirms): the
            # sink closes with it and the reopened channel takes the next publishes
            await client.publish_event(SinkEvent(n=-1), exchange=f"no-such-{uuid.uuid4().hex}", routing_key="x")
            for _ in range(100):
                if not sink.open:
                    break
                await asyncio.sleep(0.05)
            assert not sink.open
            await asyncio.sleep(0.3)  # reopened
            ids += [await client.publish_event(SinkEvent(n=i, aggregate_id="b"), exchange="", routing_key=q)
                    for i in range(300, 600)]
            assert pub._sink is not None and pub._sink is not sink and pub._sink.open
            got = await _drain_queue(client, q, 600)
            assert [e.id for e in got] == ids
            assert [e.n for e in got] == list(range(600))
            assert got[0].text == "é<&>" and got[0].aggregate_id == "a0"
        finally:
            admin = await client.connection.channel()
            await admin.queue_delete(q)
            await admin.close()


@pytest.mark.asyncio
async def test_sink_path_through_a_link_drop() -> None:
    q = f"wt-sink-{uuid.uuid4().hex[:8]}"
    async with TcpProxy() as proxy, Client(proxy.url(), service_name=f"sink-{uuid.uuid4().hex[:6]}",
                                           declare_topology=False, publisher_confirms=False,
                                           recovery=FAST) as client:
        await client.declare_queue(q, durable=False)
        try:
            for i in range(200):
                await client.publish_event(SinkEvent(n=i), exchange="", routing_key=q)
            old = client.publisher._sink
            assert old is not None
            await asyncio.sleep(0.2)  # written before the cut
            proxy.cut()
            await asyncio.sleep(0.5)
            assert not old.open
            ids = [await client.publish_event(SinkEvent(n=i), exchange="", routing_key=q)
                   for i in range(1000, 1300)]
            new = client.publisher._sink
            assert new is not None and new is not old and new.open
            got = await _drain_queue(client, q, 500)
            assert [e.id for e in got if e.n >= 1000] == ids  # after the reconnect: every one, in order
        finally:
            admin = await client.connection.channel()
            await admin.queue_delete(q)
            await admin.close()


@pytest.mark.asyncio
async def test_client_publish_event_binding_follows_the_client_state() -> None:
    calls: list[int] = []

    class MyClient(Client):
        def publish_event(self, event, **options):  # type: ignore[no-untyped-def]
            calls.append(1)
            return super().publish_event(event, **options)

    q = f"wt-sink-{uuid.uuid4().hex[:8]}"
    async with MyClient(AMQP_URL, service_name=f"sink-{uuid.uuid4().hex[:6]}", declare_topology=False,
                        publisher_confirms=False) as mine:
        await mine.declare_queue(q, durable=False)
        await mine.publish_event(SinkEvent(n=1), exchange="", routing_key=q)
        assert calls == [1]  # a subclass's override is not shadowed
        admin = await mine.connection.channel()
        await admin.queue_delete(q)
        await admin.close()
    client = Client(AMQP_URL, service_name=f"sink-{uuid.uuid4().hex[:6]}", declare_topology=False)
    async with client:
        assert client.publish_event.__self__ is client.publisher  # type: ignore[attr-defined]
    assert "publish_event" not in client.__dict__
    with pytest.raises(errors.MmateError):
        client.publish_event(SinkEvent(n=2))
