"""Go's nulls (issue 8 item 3): a Go contract with a nil slice, map or pointer sends JSON ``null``,
and an ``omitempty`` field that is empty is not sent at all. Go's decoder takes both as the zero
value; so do we, and only a class or field that asks for strictness refuses a missing key.

Bodies are shaped exactly as mmate-go sends them (wire spec §3.3: nil slice/map/pointer -> null,
omitempty -> absent) and decoded with both envelope codecs (compiled and twin).
"""
from __future__ import annotations

import datetime
import enum
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any, ClassVar, Literal

import orjson
import pytest

from mmate_fast.contracts import Command, Event, TypeRegistry, from_envelope, wire_field
from mmate_fast.errors import ContractError

from ._impls import impl_params

GO_ZERO_TIME = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(params=impl_params("envelope"))
def E(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def go_body(type_: str, payload: dict[str, Any]) -> bytes:
    """A body as mmate-go writes it (keys sorted in the payload, as Go's map makes them)."""
    return orjson.dumps({"id": "9f0e", "type": type_, "timestamp": "2026-11-27T13:11:18Z",
                         "headers": {"x-message-type": type_}, "payload": dict(sorted(payload.items()))})


def decode(E: ModuleType, type_: str, payload: dict[str, Any], registry: TypeRegistry) -> Any:
    return from_envelope(E.decode_envelope(go_body(type_, payload)), registry)


class GnColor(enum.Enum):
    NONE = ""
    RED = "red"


class GnLevel(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class GnCustomer:
    name: str
    vip: bool
    tags: list[str]


@dataclass
class GnLine:
    sku: str
    qty: int
    customer: GnCustomer | None


@dataclass
class GnOrder(Command):
    """Go: ``OrderID string; Items []string; Attrs map[string]string; Customer *Customer;
    Billing Customer; Lines []Line; Note string `omitempty`; ...`` (no Python defaults)."""

    order_id: str
    items: list[str]
    attrs: dict[str, str]
    customer: GnCustomer | None
    billing: GnCustomer
    lines: list[GnLine]
    note: str
    qty: int
    price: float
    paid: bool
    when: datetime.datetime
    took: datetime.timedelta
    raw: bytes
    amount: Decimal
    ref: uuid.UUID
    color: GnColor
    pair: tuple[int, str]
    unique: set[str]
    anything: Any
    mode: Literal["", "fast"]
    retries: int = 3


def _registry(*classes: type) -> TypeRegistry:
    reg = TypeRegistry()
    for cls in classes:
        reg.register(cls)
    return reg


# --------------------------------------------------------------------------- dataclasses
def test_go_nil_slice_map_pointer_decode_as_zero_values(E: ModuleType) -> None:
    """What Go sends for a struct whose slices/maps/pointers are nil and whose other fields are
    empty: null for the nil ones, every other field present with its zero value."""
    payload = {"orderId": "o-1", "items": None, "attrs": None, "customer": None, "billing": None,
               "lines": None, "note": None, "qty": None, "price": None, "paid": None, "when": None,
               "took": None, "raw": None, "amount": None, "ref": None, "color": None, "pair": None,
               "unique": None, "anything": None, "mode": None, "retries": None,
               "targetService": "svc"}
    m = decode(E, "GnOrder", payload, _registry(GnOrder))
    assert isinstance(m, GnOrder)
    assert (m.order_id, m.items, m.attrs, m.customer, m.lines) == ("o-1", [], {}, None, [])
    assert m.billing == GnCustomer(name="", vip=False, tags=[])  # a nil struct value: the zero struct
    assert (m.note, m.qty, m.price, m.paid) == ("", 0, 0.0, False)
    assert type(m.qty) is int and type(m.price) is float
    assert m.when == GO_ZERO_TIME  # what Go itself sends for its zero time
    assert (m.took, m.raw, m.amount, m.ref) == (datetime.timedelta(0), b"", Decimal(0), uuid.UUID(int=0))
    assert (m.color, m.pair, m.unique, m.anything, m.mode) == (GnColor.NONE, (0, ""), set(), None, "")
    assert m.retries == 3  # a field with a default keeps it (Go leaves the field as the new value has it)


def test_go_omitempty_fields_absent_decode_as_zero_values(E: ModuleType) -> None:
    """Go's ``omitempty`` leaves empty fields out of the payload altogether."""
    m = decode(E, "GnOrder", {"orderId": "o-2", "targetService": "svc"}, _registry(GnOrder))
    assert (m.order_id, m.items, m.attrs, m.customer, m.note, m.qty, m.paid) == ("o-2", [], {}, None, "", 0,
                                                                                 False)
    assert m.billing == GnCustomer("", False, []) and m.retries == 3


def test_nulls_inside_containers_and_nested_structs(E: ModuleType) -> None:
    """Go's decoder gives the zero value for a null element of []string, a null map value, and the
    null fields of a nested struct; a null *Customer in a slice of pointers stays None."""
    payload = {"orderId": "o-3", "items": ["a", None], "attrs": {"k": None},
               "lines": [{"sku": None, "qty": None, "customer": None},
                         {"sku": "s", "customer": {"name": "n", "vip": None, "tags": None}}],
               "billing": {"name": "b"}}
    m = decode(E, "GnOrder", payload, _registry(GnOrder))
    assert m.items == ["a", ""] and m.attrs == {"k": ""}
    assert m.lines == [GnLine("", 0, None), GnLine("s", 0, GnCustomer("n", False, []))]
    assert m.billing == GnCustomer("b", False, [])


def test_values_of_the_wrong_type_are_still_refused(E: ModuleType) -> None:
    reg = _registry(GnOrder)
    for key, value in [("qty", "3"), ("items", "a"), ("billing", 5), ("lines", [{"qty": 1.5}])]:
        with pytest.raises(ContractError, match="GnOrder"):
            decode(E, "GnOrder", {"orderId": "o", key: value}, reg)


@dataclass
class GnNoZero(Event):
    level: GnLevel


def test_a_type_without_a_zero_value_says_what_to_do(E: ModuleType) -> None:
    with pytest.raises(ContractError, match=r"GnNoZero\.level.*Optional"):
        decode(E, "GnNoZero", {"level": None}, _registry(GnNoZero))
    assert decode(E, "GnNoZero", {"level": 2}, _registry(GnNoZero)).level is GnLevel.HIGH


# --------------------------------------------------------------------------- strictness (opt-in)
@dataclass
class GnStrict(Command):
    """Every field declared without a default must be present (null is still Go's zero)."""

    __mmate_strict__: ClassVar[bool] = True

    order_id: str
    items: list[str]
    note: str = ""


@dataclass
class GnOneRequired(Command):
    order_id: str = wire_field(required=True)
    items: list[str] = wire_field(required=True, default_factory=list)  # noqa: RUF009 - a field specifier
    note: str = ""
    qty: int = 0


def test_strict_class_refuses_a_missing_key_but_takes_null(E: ModuleType) -> None:
    reg = _registry(GnStrict)
    with pytest.raises(ContractError, match=r"GnStrict\.items: required payload key 'items' is missing"):
        decode(E, "GnStrict", {"orderId": "o"}, reg)
    m = decode(E, "GnStrict", {"orderId": "o", "items": None}, reg)
    assert (m.order_id, m.items, m.note) == ("o", [], "")
    # a key matched case-insensitively (as Go does) is present
    assert decode(E, "GnStrict", {"OrderId": "o", "ITEMS": None}, reg).order_id == "o"


def test_required_field_refuses_a_missing_key_but_takes_null(E: ModuleType) -> None:
    reg = _registry(GnOneRequired)
    with pytest.raises(ContractError, match=r"order_id.*'orderId' is missing"):
        decode(E, "GnOneRequired", {"items": []}, reg)
    with pytest.raises(ContractError, match=r"items.*'items' is missing"):
        decode(E, "GnOneRequired", {"orderId": "o"}, reg)
    m = decode(E, "GnOneRequired", {"orderId": None, "items": None}, reg)
    assert (m.order_id, m.items, m.note, m.qty) == ("", [], "", 0)


@dataclass
class GnStrictInner:
    __mmate_strict__: ClassVar[bool] = True
    sku: str


@dataclass
class GnHasStrictInner(Command):
    inner: GnStrictInner
    maybe: GnStrictInner | None = None


def test_strictness_applies_to_nested_objects_too(E: ModuleType) -> None:
    reg = _registry(GnHasStrictInner)
    with pytest.raises(ContractError, match=r"inner.*'sku'.*missing"):
        decode(E, "GnHasStrictInner", {"inner": {}}, reg)
    m = decode(E, "GnHasStrictInner", {"inner": None, "maybe": None}, reg)
    assert m.inner == GnStrictInner("") and m.maybe is None


# --------------------------------------------------------------------------- pydantic
def _pydantic_classes() -> tuple[type, type, type]:
    pytest.importorskip("pydantic")
    from pydantic import BaseModel

    from mmate_fast.contracts import PydanticCommand

    class PgCustomer(BaseModel):
        name: str
        vip: bool
        tags: list[str]

    class PgOrder(PydanticCommand):
        order_id: str
        items: list[str]
        attrs: dict[str, str]
        customer: PgCustomer | None
        billing: PgCustomer
        customers: list[PgCustomer]
        note: str
        qty: int
        when: datetime.datetime
        retries: int = 3

    class PgStrict(PydanticCommand):
        __mmate_strict__: ClassVar[bool] = True
        order_id: str
        items: list[str]
        note: str = ""

    return PgCustomer, PgOrder, PgStrict


def test_pydantic_go_nulls_and_absent_keys(E: ModuleType) -> None:
    PgCustomer, PgOrder, _ = _pydantic_classes()
    reg = _registry(PgOrder)
    payload = {"orderId": "o-1", "items": None, "attrs": None, "customer": None, "billing": None,
               "customers": [None, {"name": "c", "vip": None, "tags": None}], "qty": None, "retries": None,
               "targetService": "svc"}
    m: Any = decode(E, "PgOrder", payload, reg)
    assert (m.order_id, m.items, m.attrs, m.customer, m.note, m.qty, m.retries) == ("o-1", [], {}, None, "", 0, 3)
    assert m.billing == PgCustomer(name="", vip=False, tags=[])
    assert m.customers == [PgCustomer(name="", vip=False, tags=[]), PgCustomer(name="c", vip=False, tags=[])]
    assert m.when == GO_ZERO_TIME
    # still validated: a wrong value is refused
    with pytest.raises(ContractError, match="PgOrder"):
        decode(E, "PgOrder", {"orderId": "o", "qty": [1]}, reg)


def test_pydantic_strict_and_required_fields(E: ModuleType) -> None:
    pytest.importorskip("pydantic")
    from mmate_fast.contracts import PydanticCommand

    _, _, PgStrict = _pydantic_classes()

    class PgOneRequired(PydanticCommand):
        __mmate_required__: ClassVar[tuple[str, ...]] = ("order_id",)
        order_id: str
        items: list[str]

    reg = _registry(PgStrict, PgOneRequired)
    with pytest.raises(ContractError, match=r"PgStrict\.items.*'items' is missing"):
        decode(E, "PgStrict", {"orderId": "o"}, reg)
    m: Any = decode(E, "PgStrict", {"orderId": "o", "items": None}, reg)
    assert (m.order_id, m.items, m.note) == ("o", [], "")
    with pytest.raises(ContractError, match=r"PgOneRequired\.order_id.*'orderId' is missing"):
        decode(E, "PgOneRequired", {"items": ["a"]}, reg)
    m = decode(E, "PgOneRequired", {"orderId": None}, reg)
    assert (m.order_id, m.items) == ("", [])


# --------------------------------------------------------------------------- the Go vector
@dataclass
class JSONEdgeCaseCommand(Command):
    """The fields of vector 10 that Go sends as null (nil slice, nil map, nil pointer)."""

    nil_slice: list[str]
    nil_map: dict[str, int]
    nil_pointer: GnCustomer | None
    empty_slice: list[str]


def test_go_vector_10_nil_fields(E: ModuleType) -> None:
    from tests.vectors import VECTORS

    body = (VECTORS / "10-json-edge-cases-JSONEdgeCaseCommand.body.json").read_bytes()
    payload = orjson.loads(body)["payload"]
    nulls = {k for k, v in payload.items() if v is None}
    assert {"nilSlice", "nilMap", "nilPointer"} <= nulls
    reg = _registry(JSONEdgeCaseCommand)
    m = from_envelope(E.decode_envelope(body), reg)
    assert (m.nil_slice, m.nil_map, m.nil_pointer, m.empty_slice) == ([], {}, None, [])


def test_plain_defaults_still_win_over_zero(E: ModuleType) -> None:
    @dataclass
    class GnDefaults(Command):
        retries: int = 3
        names: list[str] = field(default_factory=lambda: ["x"])

    m = decode(E, "GnDefaults", {"retries": None, "names": None}, _registry(GnDefaults))
    assert (m.retries, m.names) == (3, ["x"])
