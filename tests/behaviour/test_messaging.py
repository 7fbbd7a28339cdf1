"""Mmate messaging through the Client, on the embedded broker and on RabbitMQ (same suite)."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.client import Client
from mmate_fast.contracts import Command, Event, GenericMessage
from mmate_fast.messaging import MessageContext, topology
from mmate_fast.transports import connect

from .behaviour_helpers import queue_depth


@dataclass
class BhvOrderPlaced(Event):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class BhvShipOrder(Command):
    order_id: str = ""


@dataclass
class BhvRefund(Event):
    order_id: str = ""


def _service() -> str:
    return f"bhv-{uuid.uuid4().hex[:8]}"


async def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _bind_own_events(client: Client) -> None:
    """Bind the service queue to this test's events only (aggregate id = the service name): other
    runs of this suite on the shared broker publish the same event types."""
    await client.bind(topology.EVENTS, f"evt.{client.service_name}.#")


@pytest.fixture
async def cleanup(url: str) -> AsyncIterator[list[str]]:
    queues: list[str] = []
    yield queues
    conn = await connect(url)
    ch = await conn.channel()
    for q in queues:
        await ch.queue_delete(q)
    await conn.close()


async def test_publish_subscribe_event_typed(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.extend([topology.service_queue(service)])
    got: list[BhvOrderPlaced] = []
    contexts: list[MessageContext] = []
    async with Client(url, service_name=service) as client:

        @client.handler(BhvOrderPlaced, bind=False)
        def on_order(evt: BhvOrderPlaced, ctx: MessageContext) -> None:
            got.append(evt)
            contexts.append(ctx)

        await _bind_own_events(client)
        sub = await client.start_consuming()
        evt = BhvOrderPlaced(order_id="O-1", amount=12.5, aggregate_id=service, sequence=3)
        msg_id = await client.publish_event(evt, correlation_id="corr-1")
        await _wait_for(lambda: len(got) == 1)
        assert got[0].order_id == "O-1" and got[0].amount == 12.5
        assert got[0].aggregate_id == service and got[0].sequence == 3
        assert got[0].id == msg_id
        ctx = contexts[0]
        assert ctx.correlation_id == "corr-1"
        assert ctx.delivery.exchange == "mmate.events"
        assert ctx.delivery.routing_key == f"evt.{service}.BhvOrderPlaced"
        assert ctx.headers["x-message-kind"] == "event" and ctx.headers["x-sequence"] == "3"
        await _wait_for(lambda: sub.stats.acked == 1)


async def test_commands_competing_consumers(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.append(topology.service_queue(service))
    seen: dict[str, list[str]] = {"a": [], "b": []}
    async with Client(url, service_name=service, prefetch=1) as a, \
            Client(url, service_name=service, prefetch=1) as b:
        a.add_handler(BhvShipOrder, lambda cmd: seen["a"].append(cmd.order_id))
        b.add_handler(BhvShipOrder, lambda cmd: seen["b"].append(cmd.order_id))
        await a.start_consuming()
        await b.start_consuming()
        ids = [f"O-{i}" for i in range(40)]
        await a.publish_batch([BhvShipOrder(order_id=i, target_service=service) for i in ids])
        await _wait_for(lambda: len(seen["a"]) + len(seen["b"]) == 40)
        assert sorted(seen["a"] + seen["b"]) == sorted(ids)
        assert seen["a"] and seen["b"]  # both consumers got work


async def test_command_for_other_service_is_not_delivered(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.append(topology.service_queue(service))
    got: list[str] = []
    async with Client(url, service_name=service) as client:
        client.add_handler(BhvShipOrder, lambda cmd: got.append(cmd.order_id))
        await client.start_consuming()
        await client.publish_command(BhvShipOrder(order_id="other", target_service=service + "-x"))
        await client.publish_command(BhvShipOrder(order_id="mine", target_service=service))
        await _wait_for(lambda: got == ["mine"])
        await asyncio.sleep(0.1)
        assert got == ["mine"]


async def test_topic_wildcard_binding_and_generic_handler(url: str, cleanup: list[str]) -> None:
    service = _service()
    queue = f"{service}-audit"
    cleanup.extend([topology.service_queue(service), queue])
    got: list[Any] = []
    async with Client(url, service_name=service) as client:
        client.add_handler("*", got.append)
        await client.subscribe(queue, bindings=[(topology.EVENTS, f"evt.{service}-7.#")], durable=False)
        await client.publish_event(BhvOrderPlaced(order_id="A", aggregate_id=f"{service}-7"))
        await client.publish_event(BhvRefund(order_id="B", aggregate_id=f"{service}-7"))
        await client.publish_event(BhvOrderPlaced(order_id="C", aggregate_id=f"{service}-8"))
        await _wait_for(lambda: len(got) == 2)
        await asyncio.sleep(0.1)
        assert sorted(m.order_id for m in got) == ["A", "B"]


async def test_unknown_type_malformed_body_and_failing_handler_go_to_dlq(
        url: str, cleanup: list[str]) -> None:
    service = _service()
    sq = topology.service_queue(service)
    dlq = topology.dead_letter_queue(sq)
    cleanup.extend([sq, dlq])
    handled: list[str] = []
    async with Client(url, service_name=service, dead_letter=True) as client:

        @client.handler(BhvOrderPlaced, bind=False)
        async def on_order(evt: BhvOrderPlaced) -> None:
            if evt.order_id == "boom":
                raise RuntimeError("payment service down")
            handled.append(evt.order_id)

        await _bind_own_events(client)
        sub = await client.start_consuming()
        raw = await client.connection.channel()
        await raw.publish(b"this is not json", "", sq)
        await raw.publish(b'{"id":"x","type":"NobodyKnowsMe","timestamp":"2025-01-01T00:00:00Z",'
                          b'"payload":{}}', "", sq)
        await client.publish_event(BhvOrderPlaced(order_id="boom", aggregate_id=service))
        await client.publish_event(BhvOrderPlaced(order_id="fine", aggregate_id=service))
        await _wait_for(lambda: sub.stats.dead_lettered == 3 and handled == ["fine"])
        assert sub.stats.reasons == {"not-json": 1, "unknown-type": 1, "handler-error": 1}
        reasons = {}
        for _ in range(3):
            d = None
            for _ in range(100):
                d = await raw.basic_get(dlq, no_ack=True)
                if d is not None:
                    break
                await asyncio.sleep(0.02)
            assert d is not None
            h = d.properties.headers
            reasons[h["x-mmate-reason"]] = (d.body, h["x-mmate-error"], h["x-mmate-original-queue"])
        assert reasons["not-json"][0] == b"this is not json"
        assert "NobodyKnowsMe" in reasons["unknown-type"][1]
        assert "payment service down" in reasons["handler-error"][1]
        assert reasons["handler-error"][2] == sq
        await _wait_for(lambda: sub.stats.acked == 1)


async def test_failure_without_dlq_rejects_and_consumer_goes_on(url: str, cleanup: list[str]) -> None:
    service = _service()
    sq = topology.service_queue(service)
    cleanup.append(sq)
    handled: list[str] = []
    async with Client(url, service_name=service, dead_letter=False) as client:

        @client.handler(BhvOrderPlaced, bind=False)
        def on_order(evt: BhvOrderPlaced) -> None:
            if evt.order_id == "bad":
                raise ValueError("nope")
            handled.append(evt.order_id)

        await _bind_own_events(client)
        sub = await client.start_consuming()
        for oid in ("a", "bad", "b"):
            await client.publish_event(BhvOrderPlaced(order_id=oid, aggregate_id=service))
        await _wait_for(lambda: handled == ["a", "b"] and sub.stats.rejected == 1)
        assert sub.stats.handler_errors == 1
        assert await queue_depth(client.connection, sq) == 0
        assert await queue_depth(client.connection, topology.dead_letter_queue(sq)) is None


async def test_graceful_close_drains_in_flight_handlers(url: str, cleanup: list[str]) -> None:
    service = _service()
    sq = topology.service_queue(service)
    cleanup.append(sq)
    started = asyncio.Event()
    finished: list[str] = []
    client = Client(url, service_name=service)
    await client.connect()

    @client.handler(BhvOrderPlaced, bind=False)
    async def slow(evt: BhvOrderPlaced) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(evt.order_id)

    await _bind_own_events(client)
    sub = await client.start_consuming()
    await client.publish_event(BhvOrderPlaced(order_id="slow", aggregate_id=service))
    await asyncio.wait_for(started.wait(), 5)
    await client.close(timeout=5)
    assert finished == ["slow"] and sub.stats.acked == 1
    conn = await connect(url)
    ch = await conn.channel()
    assert (await ch.queue_declare(sq, passive=True)).message_count == 0
    await conn.close()


async def test_generic_message_for_unregistered_type(url: str, cleanup: list[str]) -> None:
    service = _service()
    queue = f"{service}-generic"
    cleanup.extend([topology.service_queue(service), queue])
    got: list[Any] = []
    async with Client(url, service_name=service) as client:
        client.add_handler("Unregistered*", got.append)
        await client.subscribe(queue, durable=False)
        ch = await client.connection.channel()
        await ch.publish(b'{"id":"i-1","type":"UnregisteredThing","timestamp":"2025-01-02T03:04:05.5+01:00",'
                         b'"correlationId":"c-9","payload":{"a":1,"nested":{"b":[1,2]}}}', "", queue)
        await _wait_for(lambda: len(got) == 1)
    msg = got[0]
    assert isinstance(msg, GenericMessage)
    assert (msg.type, msg.id, msg.correlation_id) == ("UnregisteredThing", "i-1", "c-9")
    assert msg.payload == {"a": 1, "nested": {"b": [1, 2]}}


async def test_publish_command_without_target_is_contract_error(url: str, cleanup: list[str]) -> None:
    service = _service()
    cleanup.append(topology.service_queue(service))
    async with Client(url, service_name=service) as client:
        with pytest.raises(errors.ContractError):
            await client.publish_command(BhvShipOrder(order_id="x"))
