"""Unit tests of mmate_fast.contracts: base field sets, wire names, registry, decode rules."""
from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import pytest

from mmate_fast._ext import load
from mmate_fast.contracts import (
    Command,
    ErrorReply,
    Event,
    GenericMessage,
    Message,
    MessageKind,
    Query,
    Reply,
    TypeRegistry,
    contract_plan,
    default_registry,
    from_envelope,
    kind_of,
    message_type,
    register,
    to_payload,
    wire_field,
)
from mmate_fast.errors import ContractError

_env = load("envelope")
TS = "2025-01-02T03:04:05Z"


def env_of(type_: str, payload: Any, *, id: str = "id-1", cid: str | None = None,
           ts: str = TS) -> Any:
    return _env.Envelope(id=id, type=type_, timestamp=ts, correlation_id=cid, payload=payload)


# --------------------------------------------------------------------------- model classes
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Address:
    street: str
    zip_code: str = ""


@dataclass
class LineItem:
    sku: str
    qty: int = 1
    address: Address | None = None


@dataclass
class UCreateOrder(Command):
    order_id: str
    amount: float = 0.0
    items: list[str] = field(default_factory=list)


@dataclass
class UOrderCreated(Event):
    order_id: str
    amount: float = 0.0


@dataclass
class UGetOrder(Query):
    order_id: str = ""


@dataclass
class UOrderReply(Reply):
    order_id: str = ""
    status: str = ""


@dataclass
class Everything(Message):
    i: int = 0
    f: float = 0.0
    s: str = ""
    b: bool = False
    when: datetime.datetime | None = None
    took: datetime.timedelta = datetime.timedelta(0)
    raw: bytes = b""
    price: Decimal = Decimal(0)
    uid: uuid.UUID | None = None
    color: Color = Color.RED
    lines: list[LineItem] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)
    maybe: int | None = None
    anything: Any = None
    addr: Address | None = None
    custom: str = wire_field("X-Custom", default="")
    note: str = wire_field(omitempty=True, default="")


try:  # module level so that the string annotations of HasModel resolve
    from pydantic import BaseModel

    class Plain(BaseModel):
        order_id: str
        n: int = 0

    @dataclass
    class HasModel:
        inner: Plain
        items: list[Plain] = field(default_factory=list)

    register(HasModel)
except ImportError:  # pragma: no cover - pydantic is optional
    pass


# --------------------------------------------------------------------------- kinds and names
def test_kinds_and_type_names() -> None:
    assert kind_of(UCreateOrder) is MessageKind.COMMAND
    assert kind_of(UOrderCreated("o")) is MessageKind.EVENT
    assert kind_of(UGetOrder) is MessageKind.QUERY
    assert kind_of(UOrderReply()) is MessageKind.REPLY
    assert kind_of(ErrorReply) is MessageKind.REPLY
    assert kind_of(Everything) is MessageKind.MESSAGE
    assert message_type(UCreateOrder) == "UCreateOrder"
    assert message_type(UOrderCreated("o")) == "UOrderCreated"
    assert message_type(ErrorReply()) == "ErrorReply"
    assert MessageKind.EVENT == "event"


def test_mmate_type_attribute() -> None:
    @dataclass
    class Renamed(Event):
        __mmate_type__ = "SomethingElse"
        x: int = 0

    assert message_type(Renamed) == "SomethingElse"
    assert default_registry.resolve("SomethingElse") is Renamed
    assert "Renamed" not in default_registry


def test_subclasses_register_themselves_and_redefinition_replaces() -> None:
    @dataclass
    class Redef(Event):
        a: int = 0

    first = Redef
    assert default_registry.resolve("Redef") is first

    @dataclass
    class Redef(Event):  # type: ignore[no-redef]
        b: str = ""

    assert default_registry.resolve("Redef") is Redef is not first
    assert "Redef" in default_registry.names()


def test_register_plain_dataclass_with_name_and_kind() -> None:
    @register(name="PlainRenamed", kind="event")
    @dataclass
    class Plain:
        aggregate_id: str = ""
        value: int = 0

    assert message_type(Plain) == "PlainRenamed"
    assert kind_of(Plain) is MessageKind.EVENT
    msg = from_envelope(env_of("PlainRenamed", {"aggregateId": "a", "value": 2}))
    assert msg == Plain("a", 2)
    assert to_payload(Plain("a", 3)) == {"aggregateId": "a", "value": 3}


def test_register_renames_message_subclass_and_drops_auto_name() -> None:
    @register(name="WireName")
    @dataclass
    class LocalName(Command):
        pass

    assert message_type(LocalName()) == "WireName"
    assert "LocalName" not in default_registry
    assert default_registry.resolve("WireName") is LocalName


def test_separate_registry() -> None:
    reg = TypeRegistry()

    @dataclass
    class Only:
        x: int = 0

    assert "Only" not in reg
    reg.register(Only)
    assert reg.resolve("Only") is Only and reg.names() == ["Only"] and len(reg) == 1
    assert from_envelope(env_of("Only", {"x": 1}), reg) == Only(1)
    assert isinstance(from_envelope(env_of("UOrderCreated", {}), reg), GenericMessage)
    reg.unregister("Only")
    assert reg.resolve("Only") is None


def test_register_rejects_bad_input() -> None:
    with pytest.raises(ContractError):
        register(42)  # type: ignore[call-overload]
    with pytest.raises(ContractError):
        register(Address, kind="bogus")
    with pytest.raises(ContractError):
        register(Address, name="")


# --------------------------------------------------------------------------- payload shapes (§3.4)
def test_base_key_sets() -> None:
    assert to_payload(Command()) == {"targetService": ""}
    assert to_payload(Command(target_service="s", reply_to="r")) == {"targetService": "s", "replyTo": "r"}
    assert to_payload(Event()) == {"aggregateId": "", "sequence": 0}
    assert to_payload(Event(source="x")) == {"aggregateId": "", "sequence": 0, "source": "x"}
    assert to_payload(Query()) == {"replyTo": ""}
    assert to_payload(Reply()) == {"success": True}
    assert to_payload(Message()) == {}
    assert to_payload(ErrorReply(error_code="C", error_message="m")) == {
        "error": "m", "errorCode": "C", "errorMessage": "m", "success": False}
    assert to_payload(ErrorReply(error_message="m", error="other", stack_trace="st")) == {
        "error": "other", "errorCode": "", "errorMessage": "m", "stackTrace": "st", "success": False}


def test_payload_excludes_envelope_fields_and_uses_camel_case() -> None:
    m = UCreateOrder("o-1", 2.5, ["a"], target_service="svc", correlation_id="c",
                     timestamp=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    assert to_payload(m) == {"orderId": "o-1", "amount": 2.5, "items": ["a"], "targetService": "svc"}
    assert len(m.id) == 36


def test_wire_field_and_omitempty() -> None:
    p = to_payload(Everything(custom="c"))
    assert p["X-Custom"] == "c" and "custom" not in p and "note" not in p
    assert to_payload(Everything(note="n"))["note"] == "n"

    @dataclass
    class Omit:
        a: int = wire_field(omitempty=True, default=0)
        b: list[int] = wire_field(omitempty=True, default_factory=list)  # noqa: RUF009
        c: dict[str, int] = wire_field(omitempty=True, default_factory=dict)  # noqa: RUF009
        d: bool = wire_field(omitempty=True, default=False)
        e: str | None = wire_field(omitempty=True, default=None)
        f: Address | None = wire_field("F", omitempty=True, default=None)  # noqa: RUF009
        from_: str = ""
        _private: int = 0

    assert to_payload(Omit()) == {"from": ""}
    assert to_payload(Omit(1, [1], {"k": 1}, True, "x", Address("s"))) == {
        "a": 1, "b": [1], "c": {"k": 1}, "d": True, "e": "x", "F": {"street": "s", "zipCode": ""},
        "from": ""}


def test_leaves_rich_values_for_the_envelope_codec() -> None:
    when = datetime.datetime(2025, 1, 2, 3, 4, 5, 120000, tzinfo=datetime.UTC)
    uid = uuid.uuid4()
    m = Everything(when=when, took=datetime.timedelta(seconds=1.5), raw=b"\x00\x01", price=Decimal("9.95"),
                   uid=uid, color=Color.BLUE)
    p = to_payload(m)
    assert p["when"] is when and p["took"] == datetime.timedelta(seconds=1.5) and p["raw"] == b"\x00\x01"
    assert p["price"] == Decimal("9.95") and p["uid"] is uid and p["color"] is Color.BLUE


def test_nested_dataclasses_and_lists_are_converted() -> None:
    m = Everything(lines=[LineItem("a", 2, Address("s", "z")), LineItem("b")], addr=Address("x"),
                   anything={"k": [Address("y")]})
    p = to_payload(m)
    assert p["lines"] == [{"sku": "a", "qty": 2, "address": {"street": "s", "zipCode": "z"}},
                          {"sku": "b", "qty": 1, "address": None}]
    assert p["addr"] == {"street": "x", "zipCode": ""}
    assert p["anything"] == {"k": [{"street": "y", "zipCode": ""}]}


def test_nested_message_keeps_its_envelope_named_fields() -> None:
    @dataclass
    class Holder:
        inner: UOrderReply

    p = to_payload(Holder(UOrderReply(id="i", correlation_id="c", order_id="o")))
    assert p["inner"] == {"id": "i", "timestamp": None, "correlationId": "c", "success": True,
                          "orderId": "o", "status": ""}


def test_generic_and_mapping_payloads() -> None:
    g = GenericMessage(type="X", payload={"a": 1}, headers={"x-message-kind": "event"})
    assert to_payload(g) == {"a": 1}
    assert message_type(g) == "X" and kind_of(g) is MessageKind.EVENT
    assert kind_of(GenericMessage(type="Y")) is MessageKind.MESSAGE
    assert to_payload({"a": 1}) == {"a": 1}


def test_undecorated_subclass_with_fields_is_an_error() -> None:
    class Forgot(Event):
        x: int = 0

    with pytest.raises(ContractError, match="@dataclass"):
        to_payload(Forgot())


# --------------------------------------------------------------------------- decoding (§3.5)
def test_decode_sets_envelope_fields() -> None:
    m = from_envelope(env_of("UOrderCreated", {"orderId": "o", "aggregateId": "a", "sequence": 3},
                             id="the-id", cid="corr"))
    assert isinstance(m, UOrderCreated)
    assert (m.id, m.correlation_id, m.order_id, m.aggregate_id, m.sequence, m.source) == (
        "the-id", "corr", "o", "a", 3, "")
    assert m.timestamp == datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert m.timestamp.tzinfo is not None


def test_decode_empty_correlation_and_bad_timestamp_are_tolerated() -> None:
    m = from_envelope(env_of("UOrderCreated", {"orderId": "o"}, cid="", ts="garbage"))
    assert m.correlation_id is None and m.timestamp is None


def test_decode_case_insensitive_like_go() -> None:
    m = from_envelope(env_of("UCreateOrder", {"OrderId": "o", "AMOUNT": 2, "TargetService": "s",
                                              "unknown": 1}))
    assert (m.order_id, m.amount, m.target_service) == ("o", 2.0, "s")
    both = from_envelope(env_of("UCreateOrder", {"OrderId": "folded", "orderId": "exact"}))
    assert both.order_id == "exact"
    custom = from_envelope(env_of("Everything", {"x-custom": "c"}))
    assert custom.custom == "c"


def test_decode_missing_null_and_unknown_keys() -> None:
    """As Go decodes: null and a missing key give the default, else the zero value (strictness is
    opt-in: tests/unit/test_contracts_go_nulls.py)."""
    m = from_envelope(env_of("UCreateOrder", {"orderId": "o", "amount": None, "items": None, "zzz": 1}))
    assert m.amount == 0.0 and m.items == []
    assert from_envelope(env_of("UCreateOrder", {"amount": 1})).order_id == ""
    assert from_envelope(env_of("UCreateOrder", {"orderId": None})).order_id == ""


def test_decode_numbers_like_go() -> None:
    assert from_envelope(env_of("Everything", {"i": 3.0})).i == 3
    assert type(from_envelope(env_of("Everything", {"i": 3.0})).i) is int
    assert from_envelope(env_of("Everything", {"f": 3})).f == 3.0
    for bad in (1.5, "3", True, [1]):
        with pytest.raises(ContractError, match=r"Everything\.i \(payload key 'i'\)"):
            from_envelope(env_of("Everything", {"i": bad}))
    for wrong in ("1", False, [1.0]):
        with pytest.raises(ContractError, match=r"Everything\.f"):
            from_envelope(env_of("Everything", {"f": wrong}))


@pytest.mark.parametrize(("key", "value"), [
    ("s", 1), ("b", "true"), ("b", 0), ("when", "yesterday"), ("when", 5), ("took", 1.5), ("took", "1s"),
    ("raw", "not base64!"), ("raw", 5), ("price", "abc"), ("price", True), ("uid", "nope"),
    ("color", "green"), ("lines", {"sku": "a"}), ("lines", [{"qty": "1"}]), ("lines", [{"sku": 1}]),
    ("byName", {"a": "x"}), ("byName", []), ("maybe", "x"), ("addr", "s"), ("addr", {"street": 5}),
])
def test_decode_type_errors_name_the_field(key: str, value: Any) -> None:
    with pytest.raises(ContractError) as info:
        from_envelope(env_of("Everything", {key: value}))
    assert "Everything." in str(info.value)
    assert key.lower() in str(info.value).lower().replace("_", "")


def test_decode_nested_error_path() -> None:
    with pytest.raises(ContractError, match=r"lines.*\[1\]\.address\.street"):
        from_envelope(env_of("Everything", {"lines": [{"sku": "a"}, {"sku": "b", "address": {"street": 1}}]}))


def test_decode_all_value_kinds() -> None:
    uid = uuid.uuid4()
    payload = {
        "i": 9007199254740993, "f": 1e-7, "s": "ü", "b": True,
        "when": "2025-01-02T03:04:05.12+01:00", "took": 1500000000, "raw": "AAEC+g==",
        "price": 99.95, "uid": str(uid), "color": "blue",
        "lines": [{"sku": "a", "qty": 2.0, "address": {"street": "s", "zipCode": "z"}}],
        "byName": {"a": 1}, "maybe": None, "anything": {"x": [1, "two", None, True]},
        "addr": {"Street": "x"}, "X-Custom": "c", "note": "n",
    }
    m = from_envelope(env_of("Everything", payload))
    assert m.i == 9007199254740993 and m.f == 1e-7 and m.s == "ü" and m.b is True
    assert m.when == datetime.datetime(2025, 1, 2, 3, 4, 5, 120000,
                                       tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert m.took == datetime.timedelta(seconds=1.5)
    assert m.raw == bytes([0, 1, 2, 250])
    assert m.price == Decimal("99.95") and m.uid == uid and m.color is Color.BLUE
    assert m.lines == [LineItem("a", 2, Address("s", "z"))]
    assert m.by_name == {"a": 1} and m.maybe is None
    assert m.anything == {"x": [1, "two", None, True]}
    assert m.addr == Address("x") and m.custom == "c" and m.note == "n"


def test_decode_payload_not_an_object() -> None:
    with pytest.raises(ContractError, match="JSON object"):
        from_envelope(env_of("UCreateOrder", [1, 2]))
    assert from_envelope(env_of("Command", None)) == Command(id="id-1", timestamp=from_envelope(
        env_of("Command", {})).timestamp)


def test_unregistered_type_gives_generic_message() -> None:
    env = _env.Envelope(id="i", type="NobodyKnowsMe", timestamp=TS, correlation_id="c",
                        reply_to="rq", headers={"h": "v"}, payload={"a": 1})
    g = from_envelope(env)
    assert isinstance(g, GenericMessage)
    assert (g.type, g.id, g.correlation_id, g.payload, g.headers, g.reply_to) == (
        "NobodyKnowsMe", "i", "c", {"a": 1}, {"h": "v"}, "rq")
    assert g.timestamp == datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_tuple_set_union_literal_annotations() -> None:
    @dataclass
    class Shapes:
        t: tuple[int, str] = (0, "")
        tv: tuple[int, ...] = ()
        st: set[str] = field(default_factory=set)
        u: int | str = 0
        lit: Literal["a", "b"] = "a"

    register(Shapes)
    m = from_envelope(env_of("Shapes", {"t": [1, "x"], "tv": [1, 2], "st": ["a", "a"], "u": "s", "lit": "b"}))
    assert m == Shapes((1, "x"), (1, 2), {"a"}, "s", "b")
    assert to_payload(m)["st"] == ["a"]
    for bad in ({"t": [1]}, {"u": 1.5}, {"lit": "c"}, {"tv": ["x"]}):
        with pytest.raises(ContractError):
            from_envelope(env_of("Shapes", bad))


# --------------------------------------------------------------------------- round trips
def _round_trip(msg: Any) -> Any:
    body = _env.encode_envelope(msg.id, message_type(msg), TS, msg.correlation_id, None, {},
                                to_payload(msg))
    return from_envelope(_env.decode_envelope(body))


def test_round_trip_through_the_envelope_codec() -> None:
    when = datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
    m = Everything(i=5, f=2.5, s="<&>", b=True, when=when, took=datetime.timedelta(milliseconds=1500),
                   raw=b"\x00\xff", price=Decimal("1.25"), uid=uuid.uuid4(), color=Color.BLUE,
                   lines=[LineItem("a", 2, Address("s"))], by_name={"k": 1}, maybe=7,
                   anything=[1, "x"], addr=Address("q", "z"), custom="c", note="n", correlation_id="cid",
                   timestamp=datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    back = _round_trip(m)
    assert back == m
    for msg in (UCreateOrder("o", 1.0, ["x"], target_service="t", reply_to="r"),
                UOrderCreated("o", aggregate_id="a", sequence=2, source="s"), UGetOrder("o", reply_to="r"),
                UOrderReply(order_id="o", status="ok"), ErrorReply(error_code="E", error_message="m")):
        msg.timestamp = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        back = _round_trip(msg)
        if isinstance(msg, ErrorReply):
            msg.error = "m"  # the wire copy of errorMessage comes back
        assert back == msg


def test_plan_is_cached_and_exposes_name_and_kind() -> None:
    p = contract_plan(UOrderCreated)
    assert p is contract_plan(UOrderCreated)
    assert (p.type_name, p.kind) == ("UOrderCreated", MessageKind.EVENT)
    to_payload(UOrderCreated("o"))
    assert p.encode.__name__ == "encode" and hasattr(p.encode, "__source__")


# --------------------------------------------------------------------------- pydantic
def test_pydantic_models() -> None:
    pytest.importorskip("pydantic")
    from mmate_fast.contracts import PydanticCommand, PydanticEvent, PydanticQuery, PydanticReply

    class PShipped(PydanticEvent):
        order_id: str
        weight: float = 0.0

    assert default_registry.resolve("PShipped") is PShipped
    assert "PydanticEvent" not in default_registry
    assert kind_of(PShipped) is MessageKind.EVENT
    m = PShipped(order_id="o", weight=2, aggregate_id="a", correlation_id="c")
    assert to_payload(m) == {"aggregateId": "a", "sequence": 0, "orderId": "o", "weight": 2.0}
    assert to_payload(PShipped(order_id="o", source="s"))["source"] == "s"
    back = from_envelope(env_of("PShipped", {"orderId": "x", "sequence": 4}, id="i", cid="c"))
    assert isinstance(back, PShipped)
    assert (back.id, back.correlation_id, back.order_id, back.sequence) == ("i", "c", "x", 4)
    assert back.timestamp == datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    with pytest.raises(ContractError, match="PShipped"):
        from_envelope(env_of("PShipped", {"orderId": ["x"], "sequence": 4}))
    assert from_envelope(env_of("PShipped", {"sequence": 4})).order_id == ""  # Go's zero value

    assert to_payload(PydanticCommand(target_service="t")) == {"targetService": "t"}
    assert to_payload(PydanticCommand(target_service="t", reply_to="r"))["replyTo"] == "r"
    assert to_payload(PydanticQuery()) == {"replyTo": ""}
    assert to_payload(PydanticReply()) == {"success": True}
    assert kind_of(PydanticReply) is MessageKind.REPLY

    register(Plain, name="PlainPydantic", kind=MessageKind.COMMAND)
    assert message_type(Plain) == "PlainPydantic" and kind_of(Plain(order_id="x")) is MessageKind.COMMAND
    assert to_payload(Plain(order_id="x")) == {"order_id": "x", "n": 0}
    assert from_envelope(env_of("PlainPydantic", {"order_id": "y", "n": 2})) == Plain(order_id="y", n=2)

    assert to_payload(HasModel(Plain(order_id="a"))) == {"inner": {"order_id": "a", "n": 0}, "items": []}
    assert from_envelope(env_of("HasModel", {"inner": {"order_id": "a"}})) == HasModel(Plain(order_id="a"))
    with pytest.raises(ContractError, match="inner"):
        from_envelope(env_of("HasModel", {"inner": {"n": "x"}}))
