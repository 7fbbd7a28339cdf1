"""Contract discovery between Clients on both transports: automatic endpoints, announcements at start,
on handler changes and at stop, the live registry (Go's announcements included) with expiry, remote
queries answered by responders, and bad announcements dead-lettered without touching the registry."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast.client import Client
from mmate_fast.contracts import Command, GenericMessage, Query, Reply, register
from mmate_fast.discovery import DiscoveryOptions
from mmate_fast.messaging import topology
from mmate_fast.reliability.dead_lettering import REASON_HEADER
from mmate_fast.transports import connect
from mmate_fast.transports.base import BasicProperties
from tests.behaviour.behaviour_helpers import drain_queue, wait_until
from tests.vectors import VECTORS

FAST = DiscoveryOptions(interval=0.3, expire_intervals=3, window=3.0)
ANNOUNCE_DLQ = "dlq.contract.announce"


@dataclass
class DiscGetStockQuery(Query):
    sku: str = ""


@dataclass
class DiscStockReply(Reply):
    on_hand: int = 0


@dataclass
class DiscReserveCommand(Command):
    sku: str = ""
    qty: int = 0


register(DiscGetStockQuery, reply=DiscStockReply)


@pytest.fixture
async def names(url: str) -> AsyncIterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    pair = (f"disc-stock-{tag}", f"disc-shop-{tag}")
    yield pair
    conn = await connect(url)
    try:
        for name in pair:
            for q in (topology.service_queue(name), topology.dead_letter_queue(topology.service_queue(name))):
                ch = await conn.channel()
                await ch.queue_delete(q)
                await ch.close()
    finally:
        await conn.close()


def ids(contracts: list[Any]) -> list[str]:
    return [c.endpoint_id for c in contracts]


async def test_two_services_discover_each_others_handlers(url: str, names: tuple[str, str]) -> None:
    stock, shop = names
    async with Client(url, service_name=stock, discovery=FAST) as a, \
            Client(url, service_name=shop, discovery=FAST) as b:
        a.add_handler(DiscGetStockQuery, lambda q: DiscStockReply(on_hand=3))
        await a.start_consuming()
        await wait_until(lambda: ids(b.discovery.registry.find(f"{stock}.*")) == [f"{stock}.DiscGetStockQuery"])
        [found] = await b.discover(f"{stock}.*", version="^1.0")
        assert (found.service_name, found.queue, found.input_type, found.output_type) == (
            stock, f"{stock}-queue", "DiscGetStockQuery", "DiscStockReply")
        assert (found.timeout, found.max_retries, found.version) == ("30s", 3, "1.0.0")
        assert found.input_schema is not None and found.input_schema["title"] == "DiscGetStockQuery"
        assert found.output_schema is not None and "onHand" in found.output_schema["properties"]
        assert await b.discover(f"{stock}.*", version="^2", remote=False) == []
        # a handler added later is announced too
        a.add_handler(DiscReserveCommand, lambda c: None)
        await wait_until(lambda: len(b.discovery.registry.find(f"{stock}.*")) == 2)


async def test_stop_announces_unregistered(url: str, names: tuple[str, str]) -> None:
    stock, shop = names
    async with Client(url, service_name=shop, discovery=FAST) as b:
        async with Client(url, service_name=stock, discovery=FAST) as a:
            a.add_handler(DiscReserveCommand, lambda c: None)
            await wait_until(lambda: len(b.discovery.registry.find(f"{stock}.*")) == 1)
        # gone at once (not by expiry: that would take 0.9 s, and the check stops at 0.5 s)
        await wait_until(lambda: b.discovery.registry.find(f"{stock}.*") == [], timeout=0.5)
        assert b.discovery.registry.expired == 0


async def test_a_silent_service_expires(url: str, names: tuple[str, str]) -> None:
    stock, shop = names
    async with Client(url, service_name=stock, discovery=FAST) as a, \
            Client(url, service_name=shop, discovery=FAST) as b:
        a.add_handler(DiscReserveCommand, lambda c: None)
        await wait_until(lambda: len(b.discovery.registry.find(f"{stock}.*")) == 1)
        await wait_until(lambda: b.discovery.registry.services().get(stock, 1) < 0.35)  # re-announced
        await a.discovery.announcer.stop()  # a falls silent without unregistering
        await wait_until(lambda: b.discovery.registry.find(f"{stock}.*") == [], timeout=3)
        assert b.discovery.registry.expired >= 1


async def test_remote_query_is_answered_by_a_responder(url: str, names: tuple[str, str]) -> None:
    stock, shop = names
    async with Client(url, service_name=stock, discovery=FAST) as a, \
            Client(url, service_name=shop, discovery=DiscoveryOptions(listen=False, respond=False,
                                                                     announce=False)) as b:
        await b.discovery.start()
        a.add_handler(DiscGetStockQuery, lambda q: None)
        await wait_until(lambda: len(a.discovery.local()) == 1)
        assert b.discovery.registry.find() == []  # b has no registry: only the broker can answer
        found = await b.discover(f"{stock}.*", expect=1)
        assert ids(found) == [f"{stock}.DiscGetStockQuery"]
        # a Go-style request: reply address only in the "replyTo" header
        reply_q = f"rpl.{uuid.uuid4().hex}"
        ch = await b.connection.channel()
        await ch.queue_declare(reply_q, exclusive=True, auto_delete=True)
        req = GenericMessage(type="ContractDiscoveryRequest", payload={"pattern": f"{stock}.Disc*"})
        rid = await b.publish(req, exchange="", routing_key="contract.discover", headers={"replyTo": reply_q})
        [d] = await drain_queue(ch, reply_q, expect=1)
        body = json.loads(d.body)
        assert body["type"] == "ContractDiscoveryResponse" and body["correlationId"] == rid
        assert [c["endpointId"] for c in body["payload"]["contracts"]] == [f"{stock}.DiscGetStockQuery"]
        await ch.close()


async def test_go_announcements_enter_the_registry(url: str, names: tuple[str, str]) -> None:
    stock, shop = names
    go_service = f"go-{stock}"
    raw = (VECTORS / "11-contract-announcement-ContractAnnouncement.body.json").read_bytes()
    raw = raw.replace(b'"mmate-peer-vectors"', json.dumps(go_service).encode())  # unique on a shared broker
    async with Client(url, service_name=shop, discovery=FAST) as b:
        ch = await b.connection.channel()
        await ch.publish(raw, "mmate.contracts", "contract.announce",
                         BasicProperties(content_type="application/json", delivery_mode=2))
        await wait_until(lambda: b.discovery.registry.services().get(go_service) is not None)
        [c] = await b.discover("mmate-peer.*", "1.x", remote=False)  # 1.x: Go's own wildcard form
        assert (c.service_name, c.input_type, c.output_type) == (go_service, "GetOrderQuery", "OrderReply")
        await ch.close()


async def test_bad_announcements_are_dead_lettered_and_the_registry_is_kept(url: str,
                                                                            names: tuple[str, str]) -> None:
    stock, shop = names
    marker = uuid.uuid4().hex
    async with Client(url, service_name=stock, discovery=FAST) as a, \
            Client(url, service_name=shop, discovery=FAST) as b:
        a.add_handler(DiscReserveCommand, lambda c: None)
        await wait_until(lambda: len(b.discovery.registry.find(f"{stock}.*")) == 1)
        ch = await b.connection.channel()
        props = BasicProperties(content_type="application/json", delivery_mode=2, message_id=marker)
        bad_bodies = [
            b"not json " + marker.encode(),
            json.dumps({"id": marker, "type": "ContractAnnouncement", "timestamp": "2026-01-01T00:00:00Z",
                        "payload": {"action": "registered", "contracts": "everything"}}).encode(),
            json.dumps({"id": marker, "type": "ContractAnnouncement", "timestamp": "2026-01-01T00:00:00Z",
                        "payload": {"action": "deleted", "contracts": []}}).encode(),
        ]
        for body in bad_bodies:
            await ch.publish(body, "mmate.contracts", "contract.announce", props)
        [registry_sub] = [s for s in b.discovery.subscriptions if s.queue == b.discovery.registry_queue]
        await wait_until(lambda: registry_sub.stats.dead_lettered >= 3, timeout=5)
        assert len(b.discovery.registry.find(f"{stock}.*")) == 1  # unaffected
        dead = [d for d in await drain_queue(ch, ANNOUNCE_DLQ, expect=6)
                if d.properties.message_id == marker]
        reasons = sorted({str(d.properties.headers[REASON_HEADER]) for d in dead})
        assert len(reasons) >= 2 and "handler-error" in reasons  # not json / bad field / unknown action
        # and the registry goes on
        a.add_handler(DiscGetStockQuery, lambda q: None)
        await wait_until(lambda: len(b.discovery.registry.find(f"{stock}.*")) == 2)
        if url.startswith("memory"):
            await ch.queue_delete(ANNOUNCE_DLQ)
        await ch.close()
