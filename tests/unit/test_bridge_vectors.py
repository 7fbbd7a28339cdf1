"""The bridge against the captured mmate-go request/reply (vectors 12-21): Go's replies decode into
the registered reply classes through the bridge's reply path, Go's error shapes raise RemoteError,
and the requests we build are Go's (payload ``replyTo``, correlation id in the envelope and both
headers, same exchange and routing key)."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.bridge import Bridge, decode_reply, error_of, new_reply_queue_name
from mmate_fast.contracts import Command, ErrorReply, GenericMessage, Query, Reply, TypeRegistry
from mmate_fast.messaging.publisher import Publisher
from tests.vectors import VECTORS

GO_REPLY_Q = "bridge.reply.dce7c29b"
TS = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
_frames = load("frames")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _id(n: int) -> str:
    return f"0b5e0000-0000-4000-8000-{n:012d}"


@dataclass
class GetOrderQuery(Query):
    order_id: str = ""


@dataclass
class CreateOrderCommand(Command):
    order_id: str = ""
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


@dataclass
class OrderReply(Reply):
    order_id: str = ""
    amount: float = 0.0
    status: str = ""


def _registry() -> TypeRegistry:
    reg = TypeRegistry()
    for cls in (GetOrderQuery, CreateOrderCommand, OrderReply, ErrorReply):
        reg.register(cls)
    return reg


def _vector(prefix: str) -> tuple[bytes, dict[str, Any]]:
    [body_file] = VECTORS.glob(f"{prefix}-*.body.json")
    sidecar = json.loads(body_file.with_name(body_file.name.replace(".body.", ".amqp.")).read_text())
    return body_file.read_bytes(), sidecar


def _props(sidecar: dict[str, Any]) -> Any:
    """The AMQP properties Go sent, as the transport hands them to the consumer callback."""
    p = sidecar["properties"]
    headers = {k: v["v"] for k, v in p["headers"].items()}
    return _frames.BasicProperties(content_type=p.get("content_type"), delivery_mode=p.get("delivery_mode"),
                                   headers=headers)


# ---------------------------------------------------------------------------------- replies from Go
@pytest.mark.parametrize(("prefix", "order_id", "amount", "status"), [
    ("13", "order-1001", 42.5, "shipped"),
    ("17", "order-1013", 13.0, "created"),
    ("19", "order-1001", 42.5, "shipped"),
])
def test_go_reply_decodes_to_registered_class(prefix: str, order_id: str, amount: float, status: str) -> None:
    body, sidecar = _vector(prefix)
    corr, reply = decode_reply(body, _props(sidecar), _registry())
    assert isinstance(reply, OrderReply)
    assert (reply.order_id, reply.amount, reply.status, reply.success) == (order_id, amount, status, True)
    assert corr == json.loads(body)["correlationId"] == reply.correlation_id
    assert error_of(reply) is None


@pytest.mark.parametrize(("prefix", "code", "message"), [
    ("15", "ORDER_NOT_FOUND", "order missing not found"),  # contracts.NewErrorReply (has "error")
    ("21", "REQUEST_FAILED", "order missing not found"),  # request/reply server (no "error" key)
])
def test_go_error_reply_shapes(prefix: str, code: str, message: str) -> None:
    body, sidecar = _vector(prefix)
    _, reply = decode_reply(body, _props(sidecar), _registry())
    assert isinstance(reply, ErrorReply) and reply.success is False
    assert error_of(reply) == (code, message)
    # unregistered on our side: still recognised from the payload
    _, generic = decode_reply(body, None, TypeRegistry())
    assert isinstance(generic, GenericMessage)
    assert error_of(generic) == (code, message)


def test_correlation_fallbacks() -> None:
    body, _ = _vector("13")
    doc = json.loads(body)
    corr = doc.pop("correlationId")
    bare = json.dumps(doc).encode()
    assert decode_reply(bare, None, _registry())[0] == corr  # envelope headers
    props = _frames.BasicProperties(correlation_id="from-property")
    assert decode_reply(bare, props, _registry())[0] == "from-property"
    doc["headers"] = {}
    props = _frames.BasicProperties(headers={"x-correlation-id": "from-header"})
    assert decode_reply(json.dumps(doc).encode(), props, _registry())[0] == "from-header"


class _Delivery:
    def __init__(self, body: bytes, properties: Any, tag: int) -> None:
        self.body = body
        self.properties = properties
        self.delivery_tag = tag


class _AckLog:
    """Stands in for the bridge channel: records the acks (the callback path needs nothing else)."""

    def __init__(self) -> None:
        self.acked: list[int] = []
        self.is_open = True

    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.acked.append(tag)


async def test_reply_callback_resolves_pending_and_counts_late() -> None:
    bridge = Bridge(None, Publisher(None), registry=_registry(), reply_queue=GO_REPLY_Q)
    channel = _AckLog()
    bridge.channel = channel
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[Any]] = {}
    for prefix in ("13", "15", "17"):
        body, sidecar = _vector(prefix)
        fut: asyncio.Future[Any] = loop.create_future()
        corr = json.loads(body)["correlationId"]
        bridge._pending[corr] = waiting[prefix] = fut
    for tag, prefix in enumerate(("13", "15", "17", "13"), 1):  # the second 13 is a late duplicate
        body, sidecar = _vector(prefix)
        bridge._on_reply(_Delivery(body, _props(sidecar), tag))
    assert channel.acked == []  # the reply consumer is no-ack: nothing to settle
    assert isinstance(waiting["13"].result(), OrderReply) and waiting["17"].result().order_id == "order-1013"
    with pytest.raises(errors.RemoteError) as info:  # an error reply fails its request at once
        waiting["15"].result()
    assert isinstance(info.value.reply, ErrorReply) and info.value.code == "ORDER_NOT_FOUND"
    assert bridge.stats.replied == 3 and bridge.stats.errors == 1
    assert bridge.stats.late_replies == 1 and bridge.pending == 0
    bridge._on_reply(_Delivery(b"{not json", _frames.BasicProperties(), 5))
    assert channel.acked == [] and bridge.stats.malformed == 1


# ---------------------------------------------------------------------------------- requests we send
def test_reply_queue_name_like_go() -> None:
    names = {new_reply_queue_name() for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"bridge\.reply\.[0-9a-f]{8}", n) for n in names)
    assert re.fullmatch(r"bridge\.reply\.[0-9a-f]{8}", Bridge(None, Publisher(None)).reply_queue)


@pytest.mark.parametrize(("prefix", "msg"), [
    ("12", GetOrderQuery(id=_id(11), timestamp=TS, order_id="order-1001")),
    ("16", CreateOrderCommand(id=_id(13), timestamp=TS, order_id="order-1013", amount=13, items=["sku-13"],
                              target_service="mmate-peer-vectors")),
], ids=["12-query", "16-command"])
def test_request_is_built_like_gos(prefix: str, msg: Any) -> None:
    go_body, sidecar = _vector(prefix)
    go = json.loads(go_body)
    bridge = Bridge(None, Publisher(None, source="mmate-go"), reply_queue=GO_REPLY_Q)
    corr, exchange, routing_key, out = bridge.prepare_request(msg)
    assert _UUID4.fullmatch(corr) and corr != msg.id
    assert (exchange, routing_key) == (sidecar["exchange"], sidecar["routing_key"])
    ours = json.loads(out.body)
    # where Go puts things: payload replyTo, correlation id in the envelope and both headers
    assert ours["payload"]["replyTo"] == GO_REPLY_Q == msg.reply_to
    assert ours["correlationId"] == ours["headers"]["x-correlation-id"] == ours["headers"]["correlation-id"] == corr
    # our additions for .NET-style responders (wire spec §14 SHOULD); Go ignores them
    assert ours.pop("replyTo") == GO_REPLY_Q and ours["headers"].pop("x-reply-to") == GO_REPLY_Q
    # everything else is Go's, byte for byte once the run-specific correlation id is swapped in
    expected = go_body.replace(go["correlationId"].encode(), corr.encode())
    ours_bytes = out.body.replace(f'"replyTo":"{GO_REPLY_Q}",'.encode(), b"", 1) \
        .replace(f'"x-reply-to":"{GO_REPLY_Q}",'.encode(), b"", 1)
    assert ours_bytes == expected
    # AMQP headers: Go's names and values plus x-reply-to
    props, _ = _frames.decode_properties(out.properties)
    go_headers = {k: v["v"] for k, v in sidecar["properties"]["headers"].items()}
    go_headers["x-correlation-id"] = go_headers["correlation-id"] = corr
    assert {k: v for k, v in props.headers.items() if k != "x-reply-to"} == go_headers
    assert props.correlation_id == corr and props.reply_to == GO_REPLY_Q


def test_each_request_gets_a_fresh_correlation_id() -> None:
    bridge = Bridge(None, Publisher(None))
    q = GetOrderQuery(order_id="o")
    ids = {bridge.prepare_request(q)[0] for _ in range(20)}
    assert len(ids) == 20 and all(uuid.UUID(i).version == 4 for i in ids)


def test_caller_correlation_id_is_refused() -> None:
    bridge = Bridge(None, Publisher(None))
    with pytest.raises(errors.ContractError):
        bridge.prepare_request(GetOrderQuery(order_id="o"), correlation_id="mine")
