"""The request/reply bridge never wedges: outages, a deleted reply queue, a closed bridge channel.

Issue 7 items 5 and 7 for the bridge, on the real RabbitMQ (network cuts through TcpProxy):

* a request during an outage fails with a named error after its timeout, leaves no task whose
  exception nobody retrieves (``Bridge._start`` did: "Task exception was never retrieved"), and the
  next request after recovery works;
* when the broker cancels the reply consumer (reply queue deleted) or closes the bridge's channel
  (a request to a missing exchange), the requests in flight fail at once with BridgeClosedError
  instead of hanging to their timeout, the bridge subscribes again by itself, and the next request
  works.
"""
from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import ClassVar

import pytest

from mmate_fast import Client, errors
from mmate_fast.amqp.robust import RecoveryPolicy
from mmate_fast.contracts import Query, Reply
from mmate_fast.transports import connect
from tests.behaviour.behaviour_helpers import wait_until
from tests.integration.conftest import AMQP_URL
from tests.integration.tcp_proxy import TcpProxy

#: reconnect quickly; waits for the link (e.g. opening the bridge's channel) give up after 0.5 s
QUICK = RecoveryPolicy(initial_delay=0.05, max_delay=0.2, wait_timeout=0.5)


#: this run's query type: ``qry.{type}`` on the shared ``mmate.queries`` must not reach another
#: suite's responders running against the same broker
_RUN = uuid.uuid4().hex[:8]


@dataclass
class BoGetOrder(Query):
    __mmate_type__: ClassVar[str] = f"BoGetOrder{_RUN}"
    order_id: str = ""


@dataclass
class BoOrder(Reply):
    order_id: str = ""


def _orphans(caplog: pytest.LogCaptureFixture) -> list[str]:
    gc.collect()
    return [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]


@asynccontextmanager
async def _responder(gate: asyncio.Event | None = None) -> AsyncIterator[Client]:
    """A service answering BoGetOrder on the broker directly (waiting for ``gate`` first)."""
    client = Client(AMQP_URL, service_name=f"bo-responder-{uuid.uuid4().hex[:8]}")
    await client.connect()

    @client.handler(BoGetOrder)
    async def answer(q: BoGetOrder) -> BoOrder:
        if gate is not None:
            await gate.wait()
        return BoOrder(order_id=q.order_id)

    try:
        await client.start_consuming()
        yield client
    finally:
        await _drop_service_queue(client)


async def _drop_service_queue(client: Client) -> None:
    queue = client.service_queue
    await client.close(timeout=2)
    conn = await connect(AMQP_URL)
    try:
        ch = await conn.channel()
        await ch.queue_delete(queue)
    finally:
        await conn.close()


@asynccontextmanager
async def _requester(url: str, **options: object) -> AsyncIterator[Client]:
    client = Client(url, service_name=f"bo-requester-{uuid.uuid4().hex[:8]}", **options)  # type: ignore[arg-type]
    await client.connect()
    try:
        yield client
    finally:
        await _drop_service_queue(client)


async def _go_down(proxy: TcpProxy, client: Client) -> None:
    proxy.refusing = True
    proxy.cut()
    await wait_until(lambda: not client.connection.is_connected, timeout=10)


async def test_first_request_during_a_long_outage_fails_named_then_the_next_one_works(
        caplog: pytest.LogCaptureFixture) -> None:
    async with TcpProxy() as proxy, _responder(), _requester(proxy.url(), recovery=QUICK) as client:
        await _go_down(proxy, client)
        with pytest.raises(errors.RequestTimeout):
            await client.request(BoGetOrder(order_id="lost"), timeout=0.2)
        await asyncio.sleep(0.8)  # the bridge's start outlives the request, then gives up (wait_timeout)
        assert _orphans(caplog) == []
        proxy.refusing = False
        await wait_until(lambda: client.connection.is_connected, timeout=10)
        reply = await client.request(BoGetOrder(order_id="after"), timeout=5)
        assert reply.order_id == "after"


async def test_closing_during_an_outage_leaves_no_orphan(caplog: pytest.LogCaptureFixture) -> None:
    async with TcpProxy() as proxy, _responder():
        client = Client(proxy.url(), service_name=f"bo-requester-{uuid.uuid4().hex[:8]}", recovery=QUICK)
        await client.connect()
        queue = client.service_queue
        await _go_down(proxy, client)
        with pytest.raises(errors.RequestTimeout):
            await client.request(BoGetOrder(order_id="lost"), timeout=0.2)
        await asyncio.sleep(0.8)
        await client.close(timeout=1)
        del client
        assert _orphans(caplog) == []
        conn = await connect(AMQP_URL)
        ch = await conn.channel()
        await ch.queue_delete(queue)
        await conn.close()


async def test_request_in_flight_during_an_outage_times_out_then_the_next_one_works() -> None:
    async with TcpProxy() as proxy, _responder(), _requester(proxy.url(), recovery=QUICK) as client:
        assert (await client.request(BoGetOrder(order_id="before"), timeout=5)).order_id == "before"
        await _go_down(proxy, client)
        with pytest.raises(errors.RequestTimeout):
            await client.request(BoGetOrder(order_id="during"), timeout=0.5)
        proxy.refusing = False
        await wait_until(lambda: client.connection.is_connected, timeout=10)
        reply = await client.request(BoGetOrder(order_id="after"), timeout=5)
        assert reply.order_id == "after"


@pytest.mark.parametrize("recovery", [True, False], ids=["robust", "plain"])
async def test_deleted_reply_queue_fails_in_flight_requests_and_the_bridge_resubscribes(recovery: bool) -> None:
    gate = asyncio.Event()
    async with _responder(gate), _requester(AMQP_URL, recovery=recovery) as client:
        bridge = client.bridge
        await bridge.start()
        waiting = asyncio.ensure_future(client.request(BoGetOrder(order_id="in-flight"), timeout=30))
        await wait_until(lambda: bridge.pending == 1, timeout=10)
        ch = await client.connection.channel()
        await ch.queue_delete(bridge.reply_queue)
        await ch.close()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(errors.BridgeClosedError, match="cancelled"):
            await waiting
        assert loop.time() - started < 5  # failed at once, not at its 30 s timeout
        await wait_until(lambda: bridge.stats.resubscribes == 1, timeout=10)  # by itself, before any new request
        assert bridge.stats.cancellations == 1
        gate.set()
        reply = await client.request(BoGetOrder(order_id="next"), timeout=5)
        assert reply.order_id == "next"


@pytest.mark.parametrize("recovery", [True, False], ids=["robust", "plain"])
async def test_a_request_that_closes_the_bridge_channel_fails_alone(recovery: bool) -> None:
    async with _responder(), _requester(AMQP_URL, recovery=recovery) as client:
        bridge = client.bridge
        assert (await client.request(BoGetOrder(order_id="before"), timeout=5)).order_id == "before"
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(errors.BridgeClosedError, match="channel was closed"):
            await client.request(BoGetOrder(order_id="nowhere"), timeout=30,
                                 exchange=f"bo-missing-{uuid.uuid4().hex}")  # 404 closes the channel
        assert loop.time() - started < 5
        reply = await client.request(BoGetOrder(order_id="next"), timeout=5)
        assert reply.order_id == "next"
        assert bridge.channel.is_open


async def test_the_reply_step_stays_hooked_after_a_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a network cut the bridge's reply channel is a later generation of its RobustChannel: its
    compiled reply step is still fed by the frame reader (``no_ack_hook``), so no reply reaches
    ``Channel._on_frame`` as a delivery item, before or after the cut, and the replies still match."""
    from mmate_fast.amqp.channel import Channel

    items: list[tuple[int, str]] = []  # (reconnects so far, routing key) of deliveries to _on_frame
    on_frame = Channel._on_frame

    async with TcpProxy() as proxy, _responder(), _requester(proxy.url(), recovery=QUICK) as client:
        bridge = client.bridge
        if getattr(type(bridge._reply_callback), "no_ack_hook", None) is None:
            pytest.skip("the reply step is compiled only (MMATE_NO_EXTENSIONS=1: the callback path)")

        def spy(self: Channel, item: object) -> None:
            if getattr(item, "routing_key", None) == bridge.reply_queue:
                items.append((client.connection.stats.reconnects, bridge.reply_queue))
            on_frame(self, item)

        monkeypatch.setattr(Channel, "_on_frame", spy)
        assert (await client.request(BoGetOrder(order_id="warm"), timeout=5)).order_id == "warm"
        for i in range(3):
            assert (await client.request(BoGetOrder(order_id=f"before-{i}"), timeout=5)).order_id == f"before-{i}"
        proxy.cut()
        await wait_until(lambda: client.connection.stats.reconnects == 1 and client.connection.is_connected,
                         timeout=10)
        for i in range(5):
            for _ in range(50):  # the reply channel comes back with the connection; retried until then
                try:
                    reply = await client.request(BoGetOrder(order_id=f"after-{i}"), timeout=5)
                    break
                except errors.MmateError:
                    await asyncio.sleep(0.1)
            assert reply.order_id == f"after-{i}"
        assert bridge.stats.replied >= 9
        assert [n for n, _ in items if n >= 1] == []  # after the cut: every reply through the hook
