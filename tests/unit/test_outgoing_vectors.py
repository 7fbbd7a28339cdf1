"""The publisher's wire form against the captured mmate-go publishings: same body bytes, same header
names, values and AMQP field types, same exchange and routing key (given Go's source name)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from mmate_fast._ext import load
from mmate_fast.contracts import Command, ErrorReply, Event, Message, Query, Reply
from mmate_fast.messaging.outgoing import build
from mmate_fast.messaging.publisher import default_route
from tests.vectors import VECTORS

TS = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
REPLY_Q = "mmate-peer.vectors.reply"
_frames = load("frames")


def _id(n: int) -> str:
    return f"0b5e0000-0000-4000-8000-{n:012d}"


@dataclass
class CreateOrderCommand(Command):
    order_id: str = ""
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


@dataclass
class OrderCreatedEvent(Event):
    order_id: str = ""
    amount: float = 0.0


@dataclass
class GetOrderQuery(Query):
    order_id: str = ""


@dataclass
class OrderReply(Reply):
    order_id: str = ""
    amount: float = 0.0
    status: str = ""


@dataclass
class BaseCommandExample(Command):
    pass


@dataclass
class PlainMessage(Message):
    pass


def _cases() -> list[Any]:
    return [
        pytest.param("01-command-CreateOrderCommand", CreateOrderCommand(
            id=_id(1), timestamp=TS, order_id="order-1001", amount=99.95, items=["sku-1", "sku-2"],
            target_service="mmate-peer"), {}, id="01"),
        pytest.param("02-event-OrderCreatedEvent", OrderCreatedEvent(
            id=_id(2), timestamp=TS, order_id="order-1001", amount=99.95, aggregate_id="order-1001",
            sequence=7, source="mmate-peer"), {}, id="02"),
        pytest.param("03-query-GetOrderQuery", GetOrderQuery(
            id=_id(3), timestamp=TS, correlation_id=_id(103), order_id="order-1001", reply_to=REPLY_Q),
            {"reply_to_header": False}, id="03"),
        pytest.param("04-reply-OrderReply", OrderReply(
            id=_id(4), timestamp=TS, correlation_id=_id(103), order_id="order-1001", amount=99.95,
            status="shipped"), {"route": ("", REPLY_Q)}, id="04"),
        pytest.param("05-error-reply-ErrorReply", ErrorReply(
            id=_id(5), timestamp=TS, correlation_id=_id(105), error_code="ORDER_NOT_FOUND",
            error_message="order order-404 not found"), {"route": ("", REPLY_Q)}, id="05"),
        pytest.param("06-base-command-BaseCommandExample", BaseCommandExample(
            id=_id(6), timestamp=TS, target_service="mmate-peer", reply_to=REPLY_Q), {}, id="06"),
        pytest.param("08-plain-message-PlainMessage", PlainMessage(id=_id(8), timestamp=TS), {}, id="08"),
        pytest.param("09-publish-options-OrderCreatedEvent", OrderCreatedEvent(
            id=_id(9), timestamp=TS, order_id="order-1009", amount=0.1, aggregate_id="order-1009",
            sequence=1), {"ttl_ms": 1500, "priority": 5, "persistent": False, "correlation_id": None,
                          "headers": {"attempt": _frames.Typed("I", 2), "tenant": "t-1",
                                      "correlation-id": "corr-option-1", "reply-to": "some.reply.queue"}},
            id="09"),
    ]


@pytest.mark.parametrize(("vector", "msg", "opts"), _cases())
def test_publisher_output_matches_go_capture(vector: str, msg: Any, opts: dict[str, Any]) -> None:
    sidecar = json.loads((VECTORS / f"{vector}.amqp.json").read_text())
    body = (VECTORS / f"{vector}.body.json").read_bytes()
    route = opts.pop("route", None)
    out = build(msg, source="mmate-go", envelope_reply_to=False, **opts)
    assert out.body == body
    # exchange and routing key
    kind_route = route or default_route(msg, out.kind, out.type_name)
    assert kind_route == (sidecar["exchange"], sidecar["routing_key"])
    # AMQP headers: same names, values and field types as Go wrote them
    go_headers = sidecar["properties"]["headers"]
    props, _ = _frames.decode_properties(out.properties)
    assert set(props.headers) == set(go_headers)
    table = _frames.encode_table(out.headers)
    for name, tv in go_headers.items():
        assert props.headers[name] == tv["v"], name
        single = _frames.encode_table({name: out.headers[name]})
        assert single[4 + 1 + len(name.encode())] == ord(tv["T"]), f"{name}: tag differs"
    assert len(table) > 4
    # Go sets only content_type, delivery_mode and headers; we add the .NET mapping properties
    assert props.content_type == "application/json"
    assert props.delivery_mode == (1 if opts.get("persistent") is False else 2)
    assert props.message_id == msg.id and props.type == out.type_name
    assert props.timestamp == int(TS.timestamp())
