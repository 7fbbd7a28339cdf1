"""Discovery contracts against Go's announcement (vector 11, wire-protocol.md §9.1-§9.2), Go's
endpoint extraction rules, and the live registry."""
from __future__ import annotations

import asyncio
import datetime
import json
from dataclasses import dataclass
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.client import Client
from mmate_fast.contracts import (
    Command,
    Event,
    Query,
    Reply,
    TypeRegistry,
    from_envelope,
    register,
    to_payload,
)
from mmate_fast.discovery import (
    REGISTERED,
    UNREGISTERED,
    ContractAnnouncement,
    ContractRegistry,
    EndpointContract,
    endpoint_for,
    infer_reply_type,
)
from mmate_fast.errors import ContractError
from mmate_fast.transports.memory import reset_broker
from tests.vectors import VECTORS

_env = load("envelope")
VECTOR = VECTORS / "11-contract-announcement-ContractAnnouncement.body.json"
TIMES = ("createdAt", "updatedAt")


def go_body() -> dict[str, Any]:
    out: dict[str, Any] = json.loads(VECTOR.read_bytes())
    return out


@dataclass
class GetOrderQuery(Query):
    order_id: str = ""


@dataclass
class OrderReply(Reply):
    order_id: str = ""
    status: str = ""
    amount: float = 0.0


def test_vector_11_decodes_into_our_types() -> None:
    msg = from_envelope(_env.decode_envelope(VECTOR.read_bytes()))
    assert isinstance(msg, ContractAnnouncement)
    assert msg.action == REGISTERED
    [c] = msg.contracts
    assert (c.endpoint_id, c.version, c.service_name, c.queue) == (
        "mmate-peer.GetOrderQuery", "1.0.0", "mmate-peer-vectors", "mmate-peer-queue")
    assert (c.input_type, c.output_type, c.timeout, c.max_retries, c.ttl) == (
        "GetOrderQuery", "OrderReply", "30s", 3, "")
    assert c.created_at == datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
    assert c.input_schema is not None and c.input_schema["title"] == "GetOrderQuery"
    assert c.is_valid
    # re-encoded, the payload is Go's, times aside (Python keeps microseconds of Go's nanoseconds)
    ours = json.loads(_env.encode_json(to_payload(msg)))
    go = go_body()["payload"]
    for p in (ours, go):
        for k in TIMES:
            p["contracts"][0].pop(k)
    assert ours == go


async def test_our_announcement_of_the_same_endpoint_matches_go_key_for_key() -> None:
    """Announce the vector's endpoint from a Client named as the vector's service; compare the
    published body with Go's: envelope keys, header keys, payload and contract keys and values. The
    only differences allowed: times and ids, the source header, and the schemas' properties, which
    describe the real wire JSON (Go nests its embedded base structs: baseQuery.baseMessage...)."""
    reset_broker("disco-vector")
    register(GetOrderQuery)
    register(OrderReply)
    async with Client("memory://disco-vector", service_name="mmate-peer-vectors", discovery=True) as c:
        probe = await c.connection.channel()
        await probe.queue_declare("probe", exclusive=True)
        await probe.queue_bind("probe", "mmate.contracts", "contract.announce")
        await c.discovery.register_endpoint(EndpointContract(
            endpoint_id="mmate-peer.GetOrderQuery", version="1.0.0", description="Returns an order",
            queue="mmate-peer-queue", input_type="GetOrderQuery", output_type="OrderReply", timeout="30s",
            max_retries=3, created_at=datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)))
        d = None
        for _ in range(100):
            d = await probe.basic_get("probe", no_ack=True)
            if d is not None:
                break
            await asyncio.sleep(0.01)
        assert d is not None
        assert (d.exchange, d.routing_key) == ("mmate.contracts", "contract.announce")
    ours, go = json.loads(d.body), go_body()
    assert set(ours) == set(go) == {"id", "type", "timestamp", "headers", "payload"}
    assert ours["type"] == go["type"] == "ContractAnnouncement"
    assert set(ours["headers"]) == set(go["headers"])  # the 11 standard headers, no x-message-kind
    for k in ("expiration", "message-type", "x-message-type", "x-version", "priority", "delivery-mode"):
        assert ours["headers"][k] == go["headers"][k], k
    assert set(d.properties.headers) == set(go["headers"])
    [oc], [gc] = ours["payload"]["contracts"], go["payload"]["contracts"]
    assert ours["payload"]["action"] == go["payload"]["action"]
    assert list(oc) == list(gc) == sorted(gc)  # the same keys, sorted as Go writes them
    for k in gc:
        if k in TIMES or k.endswith("Schema"):
            continue
        assert oc[k] == gc[k], k
    assert oc["createdAt"].startswith("2025-01-02T03:04:05.123456")
    for k in ("inputSchema", "outputSchema"):
        assert list(oc[k]) == list(gc[k]) == ["$schema", "description", "properties", "required", "title", "type"]
        for sk in ("$schema", "description", "title", "type"):
            assert oc[k][sk] == gc[k][sk], (k, sk)
    # ours is flat where Go nests its base structs
    assert set(gc["inputSchema"]["properties"]) == {"baseQuery", "orderId"}
    assert set(oc["inputSchema"]["properties"]) == {"replyTo", "orderId"}
    assert oc["outputSchema"]["required"] == ["success", "orderId", "status", "amount"]


# ----------------------------------------------------------------------------- extraction
@pytest.mark.parametrize(("name", "expected"), [
    ("CreateOrderCommand", "CreateOrderReply"),
    ("ProcessPaymentCommand", "PaymentProcessedReply"),
    ("GetOrderQuery", "OrderReply"),
    ("OrderStatusQuery", "OrderStatusReply"),
    ("Command", ""), ("Query", ""), ("GetQuery", "GetReply"), ("ProcessCommand", "ProcessReply"),
    ("OrderCreatedEvent", ""),
])
def test_go_reply_name_rule(name: str, expected: str) -> None:
    assert infer_reply_type(name) == expected


@dataclass
class ExShipCommand(Command):
    order_id: str = ""


@dataclass
class ExShipReply(Reply):
    tracking: str = ""


@dataclass
class ExShippedEvent(Event):
    order_id: str = ""


@dataclass
class ExPriceQuery(Query):
    sku: str = ""


@dataclass
class ExQuote(Reply):
    price: float = 0.0


def test_endpoint_for_a_handler() -> None:
    reg = TypeRegistry()
    for cls in (ExShipCommand, ExShipReply, ExShippedEvent, ExPriceQuery, ExQuote):
        reg.register(cls)
    ep = endpoint_for(ExShipCommand, "shipping", "shipping-queue", reg)
    assert (ep.endpoint_id, ep.version, ep.service_name, ep.queue) == (
        "shipping.ExShipCommand", "1.0.0", "shipping", "shipping-queue")
    assert (ep.description, ep.input_type, ep.output_type, ep.timeout, ep.max_retries) == (
        "Handles ExShipCommand messages", "ExShipCommand", "ExShipReply", "30s", 3)
    assert ep.input_schema is not None and ep.input_schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert ep.output_schema is not None and ep.output_schema["title"] == "ExShipReply"
    evt = endpoint_for(ExShippedEvent, "shipping", "shipping-queue", reg)
    assert (evt.output_type, evt.output_schema) == ("None", None)
    # Go's rule names ExPriceReply, which is not registered: the name stays, no schema
    q = endpoint_for(ExPriceQuery, "shipping", "shipping-queue", reg)
    assert (q.output_type, q.output_schema) == ("ExPriceReply", None)


def test_endpoint_for_uses_the_registered_reply_class() -> None:
    reg = TypeRegistry()
    register(ExPriceQuery, reply=ExQuote)
    try:
        q = endpoint_for(ExPriceQuery, "pricing", "pricing-queue", reg)
        assert q.output_type == "ExQuote" and q.output_schema is not None
    finally:
        from mmate_fast.contracts import contract_plan
        contract_plan(ExPriceQuery).reply_type = None


# ----------------------------------------------------------------------------- registry
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def contract(service: str, name: str, version: str = "1.0.0") -> EndpointContract:
    return EndpointContract(endpoint_id=f"{service}.{name}", version=version, service_name=service,
                            queue=f"{service}-queue", input_type=name, output_type="None")


def test_registry_applies_expires_and_finds() -> None:
    clock = Clock()
    reg = ContractRegistry(expire_after=30, clock=clock)
    reg.apply(ContractAnnouncement(action=REGISTERED, contracts=[contract("a", "X"), contract("a", "Y", "2.1.0")]))
    clock.now += 20
    reg.apply(ContractAnnouncement(action=REGISTERED, contracts=[contract("b", "Z")]))
    assert [c.endpoint_id for c in reg.find()] == ["a.X", "a.Y", "b.Z"]
    assert [c.endpoint_id for c in reg.find("a.*", "^2")] == ["a.Y"]
    assert reg.services() == {"a": 20, "b": 0}
    clock.now += 15  # a is silent for 35 s: gone
    assert [c.endpoint_id for c in reg.find()] == ["b.Z"]
    assert reg.expired == 2
    reg.apply(ContractAnnouncement(action=UNREGISTERED, contracts=[contract("b", "Z")]))
    assert reg.find() == []


def test_registry_ignores_invalid_contracts_and_refuses_unknown_actions() -> None:
    reg = ContractRegistry()
    reg.apply(ContractAnnouncement(action=REGISTERED, contracts=[EndpointContract(endpoint_id="x")]))
    assert len(reg) == 0 and reg.ignored == 1
    with pytest.raises(ContractError, match="action"):
        reg.apply(ContractAnnouncement(action="deleted", contracts=[contract("a", "X")]))
    assert len(reg) == 0


# ----------------------------------------------------------------------------- on the embedded broker
async def test_a_discover_queue_with_other_arguments_turns_the_responder_off_not_the_client() -> None:
    """FIFO and non-FIFO services disagree on contract.discover (spec §2.2): the client still connects,
    announces and listens; only the responder is off."""
    reset_broker("disco-fifo")
    from mmate_fast.transports import connect

    conn = await connect("memory://disco-fifo")
    ch = await conn.channel()
    await ch.queue_declare("contract.discover", durable=True, arguments={"x-single-active-consumer": True})
    try:
        async with Client("memory://disco-fifo", service_name="disco-nonfifo", discovery=True) as c:
            c.add_handler(GetOrderQuery, lambda q: None)
            assert [s.queue for s in c.discovery.subscriptions] == [c.discovery.registry_queue]
            found = await c.discover("disco-nonfifo.*", remote=False)
            assert [x.endpoint_id for x in found] == ["disco-nonfifo.GetOrderQuery"]
    finally:
        await conn.close()


async def test_discover_needs_a_connected_client() -> None:
    from mmate_fast.errors import MmateError

    c = Client("memory://disco-unconnected", service_name="x", discovery=True)
    with pytest.raises(MmateError, match="not connected"):
        await c.discover("x.*")
