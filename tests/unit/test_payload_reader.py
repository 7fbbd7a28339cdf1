"""The per-class payload reader (payload_reader.PayloadReader, compiled and twin) decodes exactly as
the plan's generated decoder (the general path): the same instance, field for field, or the same
named error with the same text, for good payloads and bad ones."""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from mmate_fast import errors
from mmate_fast.contracts import Command, Event, _plan, wire_field
from mmate_fast.contracts._types import ConvError
from tests.unit._impls import impl_params

IMPLS = impl_params("payload_reader")
TS = "2026-11-30T14:55:24Z"


class Colour(enum.Enum):
    NONE = ""
    RED = "red"


@dataclass
class Line:
    sku: str
    qty: int = 1
    price: float = 0.0


@dataclass
class RdOrderPlaced(Event):
    order_id: str
    amount: float
    lines: list[Line] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    paid: bool = False
    colour: Colour = Colour.NONE
    due: dt.datetime | None = None
    extra: Any = None
    count: int = 0


@dataclass
class RdStrict(Command):
    __mmate_strict__ = True
    key: str
    must: int = wire_field(required=True, default=7)
    line: Line | None = None


@dataclass(frozen=True)
class RdFrozen:
    name: str = ""
    id: str = ""
    timestamp: dt.datetime | None = None


@dataclass
class RdPost(Event):
    a: int = 0
    doubled: int = 0

    def __post_init__(self) -> None:
        self.doubled = self.a * 2


@dataclass
class RdPrivate(Event):
    value: str = ""
    _cache: dict[str, Any] = field(default_factory=dict)


@dataclass
class RdStamp(Event):
    """timestamp kept as the envelope's string: a class may declare it so."""
    label: str = ""


CLASSES = [RdOrderPlaced, RdStrict, RdFrozen, RdPost, RdPrivate]

PAYLOADS: list[dict[str, Any]] = [
    {},
    {"orderId": "O-1", "amount": 10.5, "aggregateId": "agg", "sequence": 3},
    {"orderId": "O-1", "amount": 10, "lines": [{"sku": "a", "qty": 2, "price": 1.5}, {"sku": "b"}],
     "tags": {"x": 1}, "note": "n", "paid": True, "colour": "red", "due": "2026-01-02T03:04:05Z",
     "extra": {"any": [1, 2]}, "count": 4.0},
    {"orderId": None, "amount": None, "lines": None, "tags": None, "note": None, "sequence": None},
    {"OrderId": "folded", "AMOUNT": 2.5, "orderid": "lower"},
    {"orderId": "exact", "ORDERID": "folded-loses"},
    {"orderId": 5, "amount": 1.0},
    {"orderId": "x", "amount": "1.0"},
    {"orderId": "x", "amount": 1.0, "paid": 1},
    {"orderId": "x", "amount": 1.0, "count": 1.5},
    {"orderId": "x", "amount": 1.0, "lines": [{"sku": 3}]},
    {"orderId": "x", "amount": 1.0, "lines": "nope"},
    {"orderId": "x", "amount": 1.0, "colour": "green"},
    {"orderId": "x", "amount": 1.0, "unknown": 1, "id": "payload-id", "type": "T"},
    {"key": "k", "must": 3, "targetService": "svc", "replyTo": "r", "line": {"sku": "s"}},
    {"key": "k"},
    {"must": 3},
    {"key": "k", "must": None},
    {"KEY": "k", "MUST": 3},
    {"key": "k", "must": 3, "line": None},
    {"key": "k", "must": 3, "line": 5},
    {"name": "frozen"},
    {"a": 21},
    {"value": "v", "_cache": {"no": 1}},
    {"value": 1},
]


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        obj = fn(*args)
    except (errors.MmateError, TypeError, ValueError) as exc:
        return "error", (type(exc), str(exc))
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return "ok", (type(obj), fields, {k: v for k, v in vars(obj).items()})


def _reader(monkeypatch: pytest.MonkeyPatch, impl: ModuleType, cls: type, top: bool) -> Any:
    monkeypatch.setattr(_plan, "_reader", impl)
    return _plan.plan_for(cls).payload_reader(top=top)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_top_level_equals_the_generated_decoder(monkeypatch: pytest.MonkeyPatch, impl: ModuleType,
                                                cls: type) -> None:
    reader = _reader(monkeypatch, impl, cls, top=True)
    general = _plan.plan_for(cls).generated_decoder(top=True)
    for payload in PAYLOADS:
        for cid in (None, "", "corr-1"):
            args = ("msg-id", cls.__name__, TS, cid)
            want = _outcome(general, dict(payload), *args)
            got = _outcome(reader.decode, dict(payload), *args)
            assert got == want, (payload, cid)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cls", [*CLASSES, Line], ids=lambda c: c.__name__)
def test_nested_equals_the_generated_decoder(monkeypatch: pytest.MonkeyPatch, impl: ModuleType,
                                             cls: type) -> None:
    reader = _reader(monkeypatch, impl, cls, top=False)
    general = _plan.plan_for(cls).generated_decoder(top=False)
    for payload in [*PAYLOADS, {"id": "i", "timestamp": TS, "correlationId": "c", "sku": "s"}]:
        payload = {"id": "fixed", **payload}  # else both sides draw a new random id
        want = _outcome(general, dict(payload))
        got = _outcome(reader.decode_nested, dict(payload))
        assert got == want, payload
        if want[0] == "error":
            assert issubclass(want[1][0], errors.ContractError)


@pytest.mark.parametrize("impl", IMPLS)
def test_values_and_envelope_fields(monkeypatch: pytest.MonkeyPatch, impl: ModuleType) -> None:
    reader = _reader(monkeypatch, impl, RdOrderPlaced, top=True)
    msg = reader.decode({"orderId": "O-1", "amount": 3, "lines": [{"sku": "a"}], "due": None},
                        "id-1", "RdOrderPlaced", TS, "cid-1")
    assert isinstance(msg, RdOrderPlaced)
    assert (msg.id, msg.correlation_id, msg.order_id, msg.amount) == ("id-1", "cid-1", "O-1", 3.0)
    assert type(msg.amount) is float
    assert msg.timestamp == dt.datetime(2026, 11, 30, 14, 55, 24, tzinfo=dt.UTC)
    assert msg.lines == [Line("a")] and msg.tags == {} and msg.due is None
    assert msg == RdOrderPlaced(order_id="O-1", amount=3.0, lines=[Line("a")], id="id-1",
                                timestamp=msg.timestamp, correlation_id="cid-1")
    other = reader.decode({"orderId": "O-2", "amount": 1.0}, "id-2", "RdOrderPlaced", TS, None)
    assert other.lines is not msg.lines  # default factories run per message
    stamp = _reader(monkeypatch, impl, RdStamp, top=True)
    assert stamp.decode({}, "i", "RdStamp", "not a time", None).timestamp is None


@pytest.mark.parametrize("impl", IMPLS)
def test_direct_construction_only_for_plain_dataclasses(monkeypatch: pytest.MonkeyPatch,
                                                        impl: ModuleType) -> None:
    assert _reader(monkeypatch, impl, RdOrderPlaced, top=True).direct
    assert _reader(monkeypatch, impl, RdFrozen, top=True).direct
    post = _reader(monkeypatch, impl, RdPost, top=True)
    assert not post.direct
    assert post.decode({"a": 4}, "i", "RdPost", TS, None).doubled == 8
    frozen = _reader(monkeypatch, impl, RdFrozen, top=True).decode({"name": "n"}, "i", "RdFrozen", TS, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_input_is_a_named_error(monkeypatch: pytest.MonkeyPatch, impl: ModuleType) -> None:
    top = _reader(monkeypatch, impl, RdOrderPlaced, top=True)
    with pytest.raises(errors.ContractError, match=r"RdOrderPlaced.order_id \(payload key 'orderId'\)"):
        top.decode({"orderId": 1, "amount": 1.0}, "i", "RdOrderPlaced", TS, None)
    with pytest.raises(errors.ContractError, match=r"lines.*\[0\]"):
        top.decode({"orderId": "o", "amount": 1.0, "lines": [5]}, "i", "RdOrderPlaced", TS, None)
    with pytest.raises(TypeError):
        top.decode(["not", "a", "dict"], "i", "RdOrderPlaced", TS, None)
    nested = _reader(monkeypatch, impl, Line, top=False)
    with pytest.raises(ConvError, match="expected object"):
        nested.decode_nested([1])
    strict = _reader(monkeypatch, impl, RdStrict, top=True)
    with pytest.raises(errors.ContractError, match="required payload key 'key' is missing"):
        strict.decode({"must": 1}, "i", "RdStrict", TS, None)


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_field_specs_are_refused(impl: ModuleType) -> None:
    hooks: dict[str, Any] = {k: None for k in ("conv_error", "bad", "fail", "fold", "absent", "missing",
                                               "parse_ts", "zero")}
    good = ("a", "a", "str", None, "default", None, "", None, "")
    impl.PayloadReader(Line, [good], top=False, direct=False, hooks=hooks)
    for bad, exc in [(("a", "a", "text", None, "default", None, "", None, ""), ValueError),
                     (("a", "a", "str", None, "maybe", None, "", None, ""), ValueError),
                     (("a", "a", "int", None, "default", None, 0, None, ""), TypeError),
                     ((1, "a", "str", None, "default", None, "", None, ""), TypeError),
                     (("a", None, "any", None, "default", None, "", None, "id"), ValueError)]:
        with pytest.raises(exc):
            impl.PayloadReader(Line, [bad], top=False, direct=False, hooks=hooks)


def test_the_plan_decodes_through_the_reader() -> None:
    plan = _plan.plan_for(RdOrderPlaced)
    msg = plan.decode({"orderId": "o", "amount": 1.0}, "i", "RdOrderPlaced", TS, None)
    assert msg.order_id == "o"
    assert getattr(plan.decode, "__self__", None).__class__.__name__ == "PayloadReader"
