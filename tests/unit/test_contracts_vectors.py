"""The contracts layer against the mmate-go capture (tests/data/mmate-go, spec §3.4, §6.4, §15):
payload key sets of the base kinds, and every captured body decoding into the right class."""
from __future__ import annotations

import datetime
import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from mmate_fast import stageflow
from mmate_fast._ext import load
from mmate_fast.contracts import (
    Command,
    ErrorReply,
    Event,
    GenericMessage,
    Message,
    Query,
    Reply,
    TypeRegistry,
    default_registry,
    from_envelope,
    message_type,
    to_payload,
)
from tests.vectors import VECTORS as VECTORS_PATH

_env = load("envelope")
VECTOR_DIR = str(VECTORS_PATH)
BODIES = sorted(glob.glob(os.path.join(VECTOR_DIR, "*.body.json")))


def body(prefix: str) -> dict[str, Any]:
    (path,) = [p for p in BODIES if os.path.basename(p).startswith(prefix + "-")]
    with open(path, "rb") as f:
        return json.loads(f.read())


def envelope_of(d: dict[str, Any]) -> Any:
    return _env.Envelope(id=d["id"], type=d["type"], timestamp=d["timestamp"],
                         correlation_id=d.get("correlationId"), reply_to=d.get("replyTo"),
                         headers=d.get("headers"), payload=d.get("payload"))


# --------------------------------------------------------------------------- classes seen in the bodies
@dataclass
class CreateOrderCommand(Command):
    order_id: str
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


@dataclass
class OrderCreatedEvent(Event):
    order_id: str
    amount: float = 0.0


@dataclass
class GetOrderQuery(Query):
    order_id: str = ""


@dataclass
class GetOrderStatusQuery(Query):
    order_id: str = ""


@dataclass
class OrderReply(Reply):
    order_id: str = ""
    status: str = ""
    amount: float = 0.0


@dataclass
class BaseCommandExample(Command):
    pass


@dataclass
class PlainMessage(Message):
    pass


@dataclass
class Nested:
    a: dict[str, list[Any]] = field(default_factory=dict)
    m: float = 0.0
    z: int = 0


@dataclass
class JSONEdgeCaseCommand(Command):
    big_int: int = 0
    bool_: bool = True  # trailing underscore: wire name "bool", and no shadowing of the builtin
    bytes_: bytes = b""
    duration: datetime.timedelta = datetime.timedelta(0)
    empty_slice: list[int] | None = None
    float_large: float = 0.0
    float_small: float = 0.0
    float_plain: float = 0.0
    float_whole: float = 0.0
    nested: Nested | None = None
    nil_map: dict[str, int] | None = None
    nil_pointer: int | None = None
    nil_slice: list[str] | None = None
    text: str = ""
    time: datetime.datetime | None = None
    unicode: str = ""


@dataclass
class TypedStageCompletedEvent(Event):
    """Lifecycle event of StageFlow (spec §8.5), typed here to prove nested dicts and durations (its own
    name in the default registry: ``mmate_fast.stageflow`` owns ``StageCompletedEvent`` there)."""

    workflow_id: str = ""
    instance_id: str = ""
    stage_id: str = ""
    stage_name: str = ""
    stage_index: int = 0
    current_stage: int = 0
    total_stages: int = 0
    status: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    duration: datetime.timedelta = datetime.timedelta(0)
    start_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None


# The look-alike above has a name of its own in default_registry; make sure StageFlow's event keeps
# "StageCompletedEvent" there whatever this module registers (other tests decode through it).
default_registry.register(stageflow.StageCompletedEvent)

# the classes above register themselves in default_registry; a separate registry keeps the
# StageFlow / discovery types unregistered for the GenericMessage checks
TYPED = TypeRegistry()
for _cls in (CreateOrderCommand, OrderCreatedEvent, GetOrderQuery, GetOrderStatusQuery, OrderReply,
             BaseCommandExample, PlainMessage, JSONEdgeCaseCommand, ErrorReply):
    TYPED.register(_cls)

GENERIC_TYPES = {"FlowMessageEnvelope", "CompensationMessageEnvelope", "WorkflowFailedEvent",
                 "WorkflowCompensatedEvent", "WorkflowCompletedEvent", "StageCompletedEvent",
                 "ContractAnnouncement"}


# --------------------------------------------------------------------------- key sets (§3.4)
@pytest.mark.parametrize(("prefix", "msg"), [
    ("01", CreateOrderCommand("order-1001", 99.95, ["sku-1", "sku-2"], target_service="mmate-peer")),
    ("02", OrderCreatedEvent("order-1001", 99.95, aggregate_id="order-1001", sequence=7, source="mmate-peer")),
    ("03", GetOrderQuery("order-1001", reply_to="mmate-peer.vectors.reply")),
    ("04", OrderReply(order_id="order-1001", status="shipped", amount=99.95)),
    ("05", ErrorReply(error_code="ORDER_NOT_FOUND", error_message="order order-404 not found")),
    ("06", BaseCommandExample(target_service="mmate-peer", reply_to="mmate-peer.vectors.reply")),
    ("08", PlainMessage()),
    ("09", OrderCreatedEvent("order-1009", 0.1, aggregate_id="order-1009", sequence=1)),
    ("16", CreateOrderCommand("order-1013", 13, ["sku-13"], target_service="mmate-peer-vectors",
                              reply_to="bridge.reply.dce7c29b")),
])
def test_payload_equals_go_payload(prefix: str, msg: Message) -> None:
    d = body(prefix)
    assert message_type(msg) == d["type"]
    p = to_payload(msg)
    assert set(p) == set(d["payload"])
    assert p == d["payload"]


def test_base_kinds_give_exactly_the_go_key_sets() -> None:
    assert set(to_payload(Command(target_service="x"))) == set(body("06")["payload"]) - {"replyTo"}
    assert set(to_payload(Event(source="s"))) == set(body("02")["payload"]) - {"amount", "orderId"}
    assert set(to_payload(Query())) == set(body("03")["payload"]) - {"orderId"}
    assert set(to_payload(Reply())) == set(body("04")["payload"]) - {"amount", "orderId", "status"}
    assert set(to_payload(ErrorReply(error_message="m"))) == set(body("05")["payload"])
    assert to_payload(Message()) == body("08")["payload"] == {}


# --------------------------------------------------------------------------- every body decodes
@pytest.mark.parametrize("path", BODIES, ids=[os.path.basename(p)[:2] for p in BODIES])
def test_every_vector_decodes(path: str) -> None:
    with open(path, "rb") as f:
        d = json.loads(f.read())
    msg = from_envelope(envelope_of(d), TYPED)
    if d["type"] in GENERIC_TYPES:
        assert isinstance(msg, GenericMessage)
        assert msg.type == d["type"] and msg.payload == d["payload"] and msg.headers == d["headers"]
        assert message_type(msg) == d["type"]
        assert to_payload(msg) == d["payload"]
    else:
        assert type(msg) is TYPED.resolve(d["type"])
        assert message_type(msg) == d["type"]
    assert msg.id == d["id"]
    assert msg.correlation_id == d.get("correlationId")
    assert msg.timestamp is not None and msg.timestamp.tzinfo is not None
    assert msg.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") == d["timestamp"]


def test_vector_field_values() -> None:
    c = from_envelope(envelope_of(body("01")), TYPED)
    assert c == CreateOrderCommand("order-1001", 99.95, ["sku-1", "sku-2"], target_service="mmate-peer",
                                   id="0b5e0000-0000-4000-8000-000000000001", timestamp=c.timestamp)
    assert c.timestamp == datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    e = from_envelope(envelope_of(body("02")), TYPED)
    assert (e.order_id, e.amount, e.aggregate_id, e.sequence, e.source) == (
        "order-1001", 99.95, "order-1001", 7, "mmate-peer")
    q = from_envelope(envelope_of(body("03")), TYPED)
    assert (q.order_id, q.reply_to, q.correlation_id) == (
        "order-1001", "mmate-peer.vectors.reply", "0b5e0000-0000-4000-8000-000000000103")
    r = from_envelope(envelope_of(body("04")), TYPED)
    assert (r.success, r.order_id, r.status, r.amount) == (True, "order-1001", "shipped", 99.95)
    er = from_envelope(envelope_of(body("05")), TYPED)
    assert (er.success, er.error_code, er.error_message, er.error) == (
        False, "ORDER_NOT_FOUND", "order order-404 not found", "order order-404 not found")
    b = from_envelope(envelope_of(body("06")), TYPED)
    assert (b.target_service, b.reply_to) == ("mmate-peer", "mmate-peer.vectors.reply")
    s = from_envelope(envelope_of(body("07")), TYPED)
    assert (s.amount, type(s.amount), s.items) == (1.0, float, [])
    assert isinstance(from_envelope(envelope_of(body("08")), TYPED), PlainMessage)
    assert from_envelope(envelope_of(body("16")), TYPED).reply_to == "bridge.reply.dce7c29b"
    assert from_envelope(envelope_of(body("18")), TYPED).order_id == "order-1001"


def test_request_reply_server_error_shape_decodes_and_reencodes() -> None:
    """Vector 21: messaging.ErrorReply has no ``error`` key; decoding keeps error empty and the
    contracts.ErrorReply encoding adds it back as the errorMessage copy."""
    d = body("21")
    er = from_envelope(envelope_of(d), TYPED)
    assert (er.error_code, er.error_message, er.error, er.success) == (
        "REQUEST_FAILED", "order missing not found", "", False)
    assert to_payload(er) == {**d["payload"], "error": "order missing not found"}


def test_json_edge_cases_vector() -> None:
    m = from_envelope(envelope_of(body("10")), TYPED)
    assert isinstance(m, JSONEdgeCaseCommand)
    assert m.big_int == 9007199254740992 and m.bool_ is False
    assert m.bytes_ == bytes([0, 1, 2, 250])
    assert m.duration == datetime.timedelta(seconds=1.5)
    assert m.empty_slice == [] and m.nil_slice is None and m.nil_map is None and m.nil_pointer is None
    assert (m.float_large, m.float_small, m.float_plain, m.float_whole) == (1e21, 1e-7, 99.95, 3.0)
    assert m.nested == Nested({"y": [1, "two", None, True]}, 2.5, 1)
    assert m.text == 'a<b>&c "quoted" back\\slash tab\t nl\n'
    assert m.time == datetime.datetime(2025, 1, 2, 3, 4, 5, 120000,
                                       tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert m.unicode.startswith("café")
    assert m.timestamp == datetime.datetime(2025, 1, 2, 2, 4, 5, tzinfo=datetime.UTC)


def test_payload_re_encodes_byte_identical_for_base_kinds() -> None:
    """Decode -> to_payload -> envelope codec gives the captured payload bytes (keys sorted by it)."""
    for prefix in ("01", "02", "03", "04", "05", "06", "08", "09", "16"):
        d = body(prefix)
        msg = from_envelope(envelope_of(d), TYPED)
        assert json.loads(_env.encode_json(to_payload(msg))) == d["payload"]
        assert _env.encode_json(to_payload(msg)) == _env.encode_json(d["payload"])


def test_stageflow_event_typed_when_registered() -> None:
    reg = TypeRegistry()
    reg.register(TypedStageCompletedEvent, name="StageCompletedEvent")
    m = from_envelope(envelope_of(body("23")), reg)
    assert isinstance(m, TypedStageCompletedEvent)
    assert (m.sequence, m.source, m.stage_id, m.current_stage, m.total_stages) == (
        2, "stageflow", "validate", 1, 3)
    assert m.data == {"validated": True} and m.duration == datetime.timedelta(microseconds=28)
    assert m.end_time is not None and m.end_time.tzinfo is not None
