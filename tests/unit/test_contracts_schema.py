"""JSON Schema of contracts (mmate_fast.contracts.json_schema): the schema describes the payload as it
really travels. Checked against what our encoder writes (every contract class the tests define, both
drafts), against Go's captured payloads, and against hand-made invalid payloads."""
from __future__ import annotations

import datetime
import enum
import importlib
import json
import pkgutil
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import pytest

import tests
from mmate_fast import errors
from mmate_fast._ext import load
from mmate_fast.contracts import (
    Command,
    ErrorReply,
    Event,
    Query,
    Reply,
    contract_plan,
    default_registry,
    json_schema,
    schema_errors,
    schema_validator,
    to_payload,
    wire_field,
)
from tests.unit.test_contracts_vectors import BODIES, TYPED

_env = load("envelope")
DRAFTS = ["2020-12", "draft-07"]


def wire(msg: Any) -> dict[str, Any]:
    """The payload exactly as it goes on the wire (encoded by the envelope codec, parsed back)."""
    out: dict[str, Any] = json.loads(_env.encode_json(to_payload(msg)))
    return out


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class SLine:
    sku: str
    qty: int = 0
    price: Decimal = Decimal("0")
    child: SLine | None = None


@dataclass
class SchemaOrder(Command):
    order_id: str
    lines: list[SLine] = field(default_factory=list)
    when: datetime.datetime = datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
    day: datetime.date = datetime.date(2025, 1, 2)
    ref: uuid.UUID = field(default_factory=lambda: uuid.UUID(int=7))
    colour: Colour = Colour.RED
    pair: tuple[int, str] = (1, "a")
    tags: dict[str, int] = field(default_factory=dict)
    wait: datetime.timedelta = datetime.timedelta(seconds=3)
    blob: bytes = b"xx"
    mode: Literal["fast", "slow"] = "fast"
    note: str = wire_field(omitempty=True, default="")
    maybe: int | None = None
    anything: Any = None


@dataclass
class SchemaEvt(Event):
    n: int = 0


# ----------------------------------------------------------------------------- shape
def test_payload_schema_has_wire_names_and_top_level_base_fields() -> None:
    s = json_schema(SchemaOrder)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (s["title"], s["type"], s["description"]) == ("SchemaOrder", "object", "Schema for SchemaOrder message")
    props = s["properties"]
    # base fields as they travel: top level, not Go's nested baseCommand/baseMessage
    assert "targetService" in props and "replyTo" in props and "baseCommand" not in props
    # envelope fields are not in the payload
    assert not {"id", "type", "timestamp", "correlationId"} & set(props)
    assert "orderId" in props and "order_id" not in props
    # omitempty = not required; everything else is always written
    assert "replyTo" not in s["required"] and "note" not in s["required"]
    assert s["required"][:2] == ["targetService", "orderId"]
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["day"] == {"type": "string", "format": "date"}
    assert props["ref"]["format"] == "uuid"
    assert props["colour"] == {"enum": ["red", "blue"]}
    assert props["mode"] == {"enum": ["fast", "slow"]}
    assert props["wait"]["type"] == "integer"
    assert props["blob"]["contentEncoding"] == "base64"
    assert props["maybe"] == {"type": ["integer", "null"]}
    assert props["anything"] == {}
    assert props["lines"] == {"type": ["array", "null"], "items": {"$ref": "#/$defs/SLine"}}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    line = s["$defs"]["SLine"]
    assert line["properties"]["price"] == {"type": "number"}
    assert line["properties"]["child"] == {"anyOf": [{"$ref": "#/$defs/SLine"}, {"type": "null"}]}


def test_draft_07_uses_definitions_and_array_items() -> None:
    s = json_schema(SchemaOrder, "draft-07")
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "definitions" in s and "$defs" not in s
    assert s["properties"]["lines"]["items"] == {"$ref": "#/definitions/SLine"}
    assert s["properties"]["pair"]["items"] == [{"type": "integer"}, {"type": "string"}]


def test_schema_is_a_fresh_copy_and_bad_input_is_named() -> None:
    s = json_schema(SchemaEvt)
    s["properties"].clear()
    assert json_schema(SchemaEvt)["properties"]
    with pytest.raises(errors.ConfigurationError):
        json_schema(SchemaEvt, "draft-04")  # type: ignore[arg-type]
    with pytest.raises(errors.ContractError):
        json_schema(int)


def test_base_kinds() -> None:
    assert json_schema(Event)["required"] == ["aggregateId", "sequence"]
    assert json_schema(Query)["required"] == ["replyTo"]
    assert json_schema(Reply)["required"] == ["success"]
    assert json_schema(ErrorReply)["required"] == ["success", "errorCode", "errorMessage"]


def test_pydantic_model_schema_and_validation() -> None:
    from mmate_fast.contracts import PydanticCommand

    class PyOrder(PydanticCommand):
        order_id: str
        total: float = 0.0
        when: datetime.datetime | None = None
        items: list[str] = []

    s = json_schema(PyOrder)
    assert set(s["properties"]) == {"targetService", "replyTo", "orderId", "total", "when", "items"}
    assert "replyTo" not in s["required"]
    assert s["properties"]["when"] == {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    for d in DRAFTS:
        msg = PyOrder(order_id="1", total=2.5, when=datetime.datetime.now(datetime.UTC), items=["a"])
        assert schema_errors(PyOrder, wire(msg), d) is None  # type: ignore[arg-type]
    assert schema_errors(PyOrder, {"orderId": 1, "targetService": "", "total": 0, "when": None,
                                   "items": []}) == "/orderId: 1 is not of type 'string'"


# ----------------------------------------------------------------------------- our encoder
@pytest.mark.parametrize("draft", DRAFTS)
def test_full_message_validates_its_own_payload(draft: Any) -> None:
    msg = SchemaOrder("o-1", [SLine("a", 2, Decimal("1.25"), SLine("b"))], tags={"x": 1}, note="n",
                      maybe=3, anything={"k": [1]}, target_service="svc", reply_to="r")
    assert schema_errors(SchemaOrder, wire(msg), draft) is None
    assert schema_errors(SchemaOrder, wire(SchemaOrder("o-2")), draft) is None


def _test_contract_classes() -> list[type]:
    """Every contract class the test suite defines (imports the test modules, which register their
    classes in the default registry), plus the library's own."""
    for pkg in ("tests.unit", "tests.behaviour", "tests.integration"):
        mod = importlib.import_module(pkg)
        for info in pkgutil.iter_modules(mod.__path__):
            try:
                importlib.import_module(f"{pkg}.{info.name}")
            except Exception:  # a module needing an optional extra: its classes are not registered
                continue
    out = []
    for name in default_registry.names():
        cls = default_registry.resolve(name)
        if cls is not None and (cls.__module__.startswith((tests.__name__, "mmate_fast"))):
            out.append(cls)
    return out


CLASSES = _test_contract_classes()


def test_the_test_suite_defines_many_contracts() -> None:
    assert len(CLASSES) > 50


@pytest.mark.parametrize("draft", DRAFTS)
def test_every_contract_in_the_tests_validates_its_own_encoded_payload(draft: Any) -> None:
    checked, failures, custom = 0, [], []
    for cls in CLASSES:
        try:
            msg = contract_plan(cls).zero()  # every field at its default or Go's zero value
        except errors.ContractError:
            continue  # no zero value (an Enum without "" or 0, a required field of an odd class)
        try:
            payload = wire(msg)
        except errors.ContractError:
            continue  # a test contract that is meant not to encode
        try:
            problem = schema_errors(cls, payload, draft)
        except errors.ContractError:
            custom.append(cls)  # a codec of its own and no __mmate_schema__: no schema to check
            continue
        checked += 1
        if problem is not None:
            failures.append(f"{cls.__module__}.{cls.__qualname__}: {problem}")
    assert not failures
    assert checked > 50


# ----------------------------------------------------------------------------- Go's payloads
def _typed_bodies() -> list[str]:
    out = []
    for path in BODIES:
        with open(path, "rb") as f:
            if TYPED.resolve(json.loads(f.read())["type"]) is not None:
                out.append(path)
    return out


TYPED_BODIES = _typed_bodies()


def test_most_go_vectors_are_typed() -> None:
    assert len(TYPED_BODIES) >= 15


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("path", TYPED_BODIES, ids=[p.rsplit("/", 1)[-1][:2] for p in TYPED_BODIES])
def test_go_payloads_fit_our_schema(path: str, draft: Any) -> None:
    with open(path, "rb") as f:
        d = json.loads(f.read())
    cls = TYPED.resolve(d["type"])
    assert cls is not None
    assert schema_errors(cls, d["payload"], draft) is None


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: p.pop("orderId"), "/: 'orderId' is a required property"),
    (lambda p: p.update(orderId=5), "/orderId: 5 is not of type 'string'"),
    (lambda p: p["lines"][0].update(qty="2"), "/lines/0/qty: '2' is not of type 'integer'"),
    (lambda p: p.update(colour="green"), "/colour: 'green' is not one of ['red', 'blue']"),
    (lambda p: p.update(when="yesterday"), "/when: 'yesterday' is not a 'date-time'"),
    (lambda p: p.update(ref="nope"), "/ref: 'nope' "),
    (lambda p: p.update(pair=[1, "a", 3]), "/pair: [1, 'a', 3] is too long"),
])
def test_invalid_payloads_are_refused_with_the_validators_message(change: Any, expected: str) -> None:
    p = wire(SchemaOrder("o-1", [SLine("a")]))
    change(p)
    for d in DRAFTS:
        got = schema_errors(SchemaOrder, p, d)  # type: ignore[arg-type]
        assert got is not None
        assert got.split(" (")[0].startswith(expected.split("[")[0].rstrip()), got


def test_unknown_keys_and_go_nulls_are_accepted() -> None:
    p = wire(SchemaOrder("o-1"))
    p.update(extra=1, lines=None, tags=None, blob=None)  # Go's nil slices / maps / []byte
    assert schema_errors(SchemaOrder, p) is None


def test_validator_is_cached_per_class_and_draft() -> None:
    assert schema_validator(SchemaEvt) is schema_validator(SchemaEvt)
    assert schema_validator(SchemaEvt) is not schema_validator(SchemaEvt, "draft-07")


# ----------------------------------------------------------------------------- the fast pre-check
def _json_values() -> Any:
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False)
               | st.sampled_from(["", "red", "fast", "2025-01-02T03:04:05Z", "2025-01-02", "x",
                                  "00000000-0000-0000-0000-000000000007"]))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["sku", "qty", "price", "child", "k"]), inner,
                                          max_size=4), max_leaves=8)


def test_pre_check_never_accepts_what_jsonschema_refuses() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mmate_fast.contracts._schema_check import compile_check

    base = wire(SchemaOrder("o-1", [SLine("a", child=SLine("b"))], tags={"x": 1}))
    keys = sorted(base)
    pairs = []
    for draft in DRAFTS:
        v = schema_validator(SchemaOrder, draft)  # type: ignore[arg-type]
        fast = compile_check(json_schema(SchemaOrder, draft), v.format_checker.conforms)  # type: ignore[arg-type]
        assert fast is not None and fast(base)
        pairs.append((v, fast))
    accepted = []

    @settings(max_examples=600, deadline=None)
    @given(st.sampled_from(keys), _json_values(), st.booleans())
    def agree(key: str, value: Any, drop: bool) -> None:
        p = json.loads(json.dumps(base))
        if drop:
            p.pop(key)
        else:
            p[key] = value
        for v, fast in pairs:
            if fast(p):
                accepted.append(key)
                assert v.is_valid(p), (key, value, drop)

    agree()
    assert accepted  # the pre-check did accept some changed payloads


def test_a_class_with_its_own_codec_declares_its_schema_or_has_none() -> None:
    @dataclass
    class SelfCoded(Event):
        n: int = 0

    plan = contract_plan(SelfCoded)
    plan.encode = lambda m: {"count": m.n}  # what StageFlow does for its envelopes
    with pytest.raises(errors.ContractError, match="__mmate_schema__"):
        json_schema(SelfCoded)

    @dataclass
    class Declared(Event):
        __mmate_schema__ = {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}
        n: int = 0

    contract_plan(Declared).encode = lambda m: {"count": m.n}
    s = json_schema(Declared, "draft-07")
    assert (s["$schema"], s["title"], s["required"]) == ("http://json-schema.org/draft-07/schema#", "Declared",
                                                           ["count"])
    assert schema_errors(Declared, {"count": "x"}) == "/count: 'x' is not of type 'integer'"
    assert json_schema(SchemaEvt)["properties"]  # a generated codec: fields as usual
