"""Envelope codec rules (wire-protocol.md §3), parametrized over the compiled codec and its twin."""
from __future__ import annotations

import datetime
import decimal
import enum
import math
import re
import uuid
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmate_fast._py.frames import Typed
from mmate_fast.errors import ContractError, EnvelopeError
from tests.unit._impls import impl_params

IMPLS = [p.values[0] for p in impl_params("envelope") if p.values[0] is not None]  # type: ignore[attr-defined]
UTC = datetime.UTC


def tz(hours: float) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours))


@pytest.fixture(params=impl_params("envelope"))
def E(request: pytest.FixtureRequest) -> ModuleType:
    return request.param


# --------------------------------------------------------------------------- numbers
GO_FLOATS = [
    (3.0, b"3"), (0.1, b"0.1"), (99.95, b"99.95"), (2.5, b"2.5"), (1e21, b"1e+21"), (1e22, b"1e+22"),
    (1e-7, b"1e-7"), (1.5e-10, b"1.5e-10"), (1e16, b"10000000000000000"), (1.5e20, b"150000000000000000000"),
    (1e-5, b"0.00001"), (1e-6, b"0.000001"), (9.99e-7, b"9.99e-7"), (123456789.0, b"123456789"),
    (-0.0, b"-0"), (0.0, b"0"), (-2.5, b"-2.5"), (5e-324, b"5e-324"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"), (-1e100, b"-1e+100"),
]


@pytest.mark.parametrize(("value", "go"), GO_FLOATS, ids=[repr(v) for v, _ in GO_FLOATS])
def test_go_float_format(E: ModuleType, value: float, go: bytes) -> None:
    assert E.encode_json(value) == go
    assert E.encode_json({"v": [value]}) == b'{"v":[' + go + b"]}"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(E: ModuleType, value: float) -> None:
    with pytest.raises(ContractError, match="NaN/Inf"):
        E.encode_json(value)
    with pytest.raises(ContractError, match="NaN/Inf"):
        E.encode_json({"a": [1, {"b": value}]})
    with pytest.raises(ContractError, match="NaN/Inf"):
        E.encode_envelope("i", "T", "t", None, None, {"h": value}, {})


def test_ints_are_exact(E: ModuleType) -> None:
    assert E.encode_json(9007199254740993) == b"9007199254740993"
    assert E.encode_json([2**64 - 1, -(2**63), 2**70, -(2**70)]) == (
        b"[18446744073709551615,-9223372036854775808,1180591620717411303424,-1180591620717411303424]")
    assert E.encode_json({"b": True, "i": 0}) == b'{"b":true,"i":0}'


def test_decimal_is_a_number_in_go_notation(E: ModuleType) -> None:
    assert E.encode_json(decimal.Decimal("1.50")) == b"1.5"
    assert E.encode_json(decimal.Decimal("100")) == b"100"
    assert E.encode_json(decimal.Decimal("1E+25")) == b"1e+25"
    assert E.encode_json(decimal.Decimal("0.12345678901234567890123")) == b"0.12345678901234567890123"
    with pytest.raises(ContractError):
        E.encode_json(decimal.Decimal("NaN"))


# --------------------------------------------------------------------------- strings
GO_STRINGS = [
    ("plain", b'"plain"'), ("<>&", b'"\\u003c\\u003e\\u0026"'), ("\u2028\u2029", b'"\\u2028\\u2029"'),
    ('"\\', b'"\\"\\\\"'), ("a/b", b'"a/b"'), ("\t\n\r", b'"\\t\\n\\r"'),
    ("\b\f", b'"\\b\\f"'),  # Go >= 1.22 (the vectors were made with Go 1.24)
    ("\x00\x01\x1f", b'"\\u0000\\u0001\\u001f"'), ("\x7f", b'"\x7f"'),
    ("café 日本 😀", '"café 日本 😀"'.encode()), ("\u2027\u202a", '"\u2027\u202a"'.encode()),
    ("\\u003c<", b'"\\\\u003c\\u003c"'),
]


@pytest.mark.parametrize(("value", "go"), GO_STRINGS)
def test_go_string_escaping(E: ModuleType, value: str, go: bytes) -> None:
    assert E.encode_json(value) == go
    assert E.encode_json({value: value}) == b"{" + go + b":" + go + b"}"


def test_strings_with_float_lookalikes_are_untouched(E: ModuleType) -> None:
    assert E.encode_json(["1.0", "3.0e5", "-0.0"]) == b'["1.0","3.0e5","-0.0"]'


def test_surrogates_are_refused(E: ModuleType) -> None:
    with pytest.raises(ContractError):
        E.encode_json("\ud800")


# --------------------------------------------------------------------------- other types
class Color(enum.Enum):
    RED = "red"
    ONE = 1.0


def test_special_types(E: ModuleType) -> None:
    u = uuid.UUID("0b5e0000-0000-4000-8000-000000000001")
    got = E.encode_json({
        "date": datetime.date(2025, 1, 2), "td": datetime.timedelta(seconds=1.5, microseconds=1),
        "neg": datetime.timedelta(milliseconds=-1), "bytes": b"\x00\x01\x02\xfa", "ba": bytearray(b"hi"),
        "uuid": u, "enum": Color.RED, "fenum": Color.ONE, "typed": Typed("B", 5), "tuple": (1, "a"),
    })
    assert got == (b'{"ba":"aGk=","bytes":"AAEC+g==","date":"2025-01-02","enum":"red","fenum":1,'
                   b'"neg":-1000000,"td":1500001000,"tuple":[1,"a"],"typed":5,'
                   b'"uuid":"0b5e0000-0000-4000-8000-000000000001"}')


@pytest.mark.parametrize("value", [{1, 2}, object(), datetime.time(1, 2), {1: "a"}, complex(1, 2)])
def test_unsupported_types_raise_contract_error(E: ModuleType, value: Any) -> None:
    with pytest.raises(ContractError):
        E.encode_json({"a": value})


def test_unsupported_type_error_names_it(E: ModuleType) -> None:
    with pytest.raises(ContractError, match=r"builtins\.set"):
        E.encode_json([{1}])


def test_keys_sorted_at_every_level(E: ModuleType) -> None:
    assert E.encode_json({"b": {"d": 1, "c": [{"z": 1, "a": 2}]}, "a": 0, "é": 1, "Z": 2}) == (
        '{"Z":2,"a":0,"b":{"c":[{"a":2,"z":1}],"d":1},"é":1}'.encode())


# --------------------------------------------------------------------------- times
GO_TIMES = [
    (datetime.datetime(2025, 1, 2, 3, 4, 5, 120000, tzinfo=tz(1)), "2025-01-02T03:04:05.12+01:00"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, 123456), "2025-01-02T03:04:05.123456Z"),  # naive = UTC
    (datetime.datetime(2025, 1, 2, 3, 4, 5, 100, tzinfo=tz(-5.5)), "2025-01-02T03:04:05.0001-05:30"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=tz(0)), "2025-01-02T03:04:05Z"),
    (datetime.datetime(1, 1, 1), "0001-01-01T00:00:00Z"),
]


@pytest.mark.parametrize(("value", "go"), GO_TIMES)
def test_format_go_time(E: ModuleType, value: datetime.datetime, go: str) -> None:
    assert E.format_go_time(value) == go
    assert E.encode_json({"t": value}) == b'{"t":"' + go.encode() + b'"}'


@pytest.mark.parametrize(("value", "ts"), [
    (datetime.datetime(2025, 1, 2, 3, 4, 5, 999999), "2025-01-02T03:04:05Z"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=tz(1)), "2025-01-02T02:04:05Z"),
    (datetime.datetime(2025, 1, 1, 23, 30, tzinfo=tz(-1)), "2025-01-02T00:30:00Z"),
    (datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
])
def test_format_timestamp_truncates_to_utc_seconds(E: ModuleType, value: datetime.datetime, ts: str) -> None:
    assert E.format_timestamp(value) == ts


def test_format_timestamp_rejects_non_datetime(E: ModuleType) -> None:
    with pytest.raises(ContractError):
        E.format_timestamp(datetime.date(2025, 1, 2))


def test_utc_timestamp(E: ModuleType) -> None:
    assert E.utc_timestamp(0) == "1970-01-01T00:00:00Z"
    assert E.utc_timestamp(1735787045.999) == "2025-01-02T03:04:05Z"
    assert E.utc_timestamp(-0.5) == "1969-12-31T23:59:59Z"
    assert E.utc_timestamp(951782400) == "2000-02-29T00:00:00Z"
    assert E.utc_timestamp(253402300799) == "9999-12-31T23:59:59Z"
    assert E.utc_timestamp(-62135596800) == "0001-01-01T00:00:00Z"
    now = E.utc_timestamp()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now)
    parsed = E.parse_timestamp(now)
    assert abs((datetime.datetime.now(UTC) - parsed).total_seconds()) < 5
    for bad in (253402300800, -62135596801, math.nan, math.inf, "x"):
        with pytest.raises(ContractError):
            E.utc_timestamp(bad)


PARSE_OK = [
    ("2025-01-02T03:04:05Z", datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2025-01-02T03:04:05.123456789Z", datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("2025-01-02T03:04:05.1234567Z", datetime.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),  # .NET
    ("2025-01-02T03:04:05.5+01:00", datetime.datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=tz(1))),
    ("2025-01-02T03:04:05-05:30", datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=tz(-5.5))),
    ("2025-01-02T03:04:05+00:00", datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2025-01-02t03:04:05z", datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),  # RFC 3339 allows lowercase
]


@pytest.mark.parametrize(("text", "value"), PARSE_OK)
def test_parse_timestamp(E: ModuleType, text: str, value: datetime.datetime) -> None:
    got = E.parse_timestamp(text)
    assert got == value
    assert got.utcoffset() == value.utcoffset()


@pytest.mark.parametrize("text", [
    "", "2025-01-02", "2025-01-02T03:04:05", "2025-01-02 03:04:05Z", "2025-13-02T03:04:05Z",
    "2025-02-30T03:04:05Z", "2025-01-02T24:00:00Z", "2025-01-02T03:04:60Z", "2025-01-02T03:04:05.Z",
    "2025-01-02T03:04:05.1234567890Z", "2025-01-02T03:04:05+24:00", "2025-01-02T03:04:05+0100",
    "0000-01-02T03:04:05Z", "2025-01-02T03:04:05Z\n", "\uff12025-01-02T03:04:05Z", 12345,
])
def test_parse_timestamp_rejects(E: ModuleType, text: Any) -> None:
    with pytest.raises(EnvelopeError) as info:
        E.parse_timestamp(text)
    assert info.value.reason == "bad-timestamp"


# --------------------------------------------------------------------------- ids
def test_new_id(E: ModuleType) -> None:
    ids = {E.new_id() for _ in range(2000)}  # crosses several 4 KiB refills in the compiled codec
    assert len(ids) == 2000
    for i in ids:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        assert uuid.UUID(i).version == 4


# --------------------------------------------------------------------------- envelope encode
def test_encode_envelope_key_order_and_omissions(E: ModuleType) -> None:
    body = E.encode_envelope("i", "T", "ts", "c", "r", {"b": 1, "a": "x"}, {"z": 1, "y": None})
    assert body == b'{"id":"i","type":"T","timestamp":"ts","correlationId":"c","replyTo":"r","headers":{"a":"x","b":1},"payload":{"y":null,"z":1}}'
    assert E.encode_envelope("i", "T", "ts", "", "", None, None) == b'{"id":"i","type":"T","timestamp":"ts","payload":{}}'
    assert E.encode_envelope("", "", "", None, None, {}, []) == b'{"id":"","type":"","timestamp":"","headers":{},"payload":[]}'
    assert E.encode_envelope("<", "&", ">", "\u2028", None, None, "s") == (
        b'{"id":"\\u003c","type":"\\u0026","timestamp":"\\u003e","correlationId":"\\u2028","payload":"s"}')


def test_encode_envelope_accepts_mappings(E: ModuleType) -> None:
    from types import MappingProxyType
    assert E.encode_envelope("i", "T", "t", None, None, MappingProxyType({"b": 2, "a": 1}), {}) == (
        b'{"id":"i","type":"T","timestamp":"t","headers":{"a":1,"b":2},"payload":{}}')


@pytest.mark.parametrize("args", [
    (1, "T", "t", None, None, None, {}), ("i", None, "t", None, None, None, {}),
    ("i", "T", b"t", None, None, None, {}), ("i", "T", "t", 5, None, None, {}),
    ("i", "T", "t", None, ["r"], None, {}), ("i", "T", "t", None, None, ["h"], {}),
    ("i", "T", "t", None, None, {"h": {1}}, {}), ("i", "T", "t", None, None, None, {"p": object()}),
    ("\ud800", "T", "t", None, None, None, {}),
])
def test_encode_envelope_rejects(E: ModuleType, args: tuple[Any, ...]) -> None:
    with pytest.raises(ContractError):
        E.encode_envelope(*args)


def test_errors_identical_across_implementations() -> None:
    cases: list[tuple[Any, ...]] = [
        ({"a": {1, 2}},), ({"a": math.nan},), ({1: 2},), (decimal.Decimal("inf"),), ("\udc00",),
        ([datetime.time(1)],), ({"b": [math.inf], "a": {3}},),
    ]
    for (value,) in cases:
        msgs = set()
        for E in IMPLS:
            with pytest.raises(ContractError) as info:
                E.encode_json(value)
            msgs.add(str(info.value))
        assert len(msgs) == 1, msgs


# --------------------------------------------------------------------------- envelope decode
def test_decode_minimal_and_dotnet_forms(E: ModuleType) -> None:
    env = E.decode_envelope(b'{"type":"T"}')
    assert (env.id, env.type, env.timestamp, env.correlation_id, env.reply_to, env.headers, env.payload) == (
        "", "T", "", None, None, {}, {})
    body = (b'{"id":"x","type":"T","timestamp":"2025-01-02T03:04:05.1234567+01:00","correlationId":"c",'
            b'"replyTo":"q","payload":{"a":[1,2.5]},"extra":1}')
    for b in (body, bytearray(body), memoryview(body)):
        env = E.decode_envelope(b)
        assert env == E.Envelope("x", "T", "2025-01-02T03:04:05.1234567+01:00", "c", "q", {}, {"a": [1, 2.5]})
    assert E.parse_timestamp(env.timestamp) == datetime.datetime(2025, 1, 2, 2, 4, 5, 123456, tzinfo=UTC)
    assert E.decode_envelope(b'{"type":"T","payload":null,"headers":null,"id":null}').payload is None
    assert "Envelope(" in repr(env)


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "not-json"), (b"not json", "not-json"), (b'{"type":"T"', "not-json"), (b"\xff\xfe", "not-json"),
    (b"[1,2]", "not-an-object"), (b'"s"', "not-an-object"), (b"null", "not-an-object"),
    (b'{"id":1,"type":"T"}', "bad-field"), (b'{"type":5}', "bad-field"),
    (b'{"type":"T","timestamp":1}', "bad-field"), (b'{"type":"T","correlationId":[]}', "bad-field"),
    (b'{"type":"T","replyTo":{}}', "bad-field"), (b'{"type":"T","headers":[]}', "bad-field"),
    (b'{"type":"T","headers":"h"}', "bad-field"),
    (b'{"id":"x"}', "missing-type"), (b'{"type":null}', "missing-type"), (b'{"type":""}', "missing-type"),
])
def test_decode_errors(E: ModuleType, body: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        E.decode_envelope(body)
    assert info.value.reason == reason


# --------------------------------------------------------------------------- exact integers on receive
BIG_INTS = [2**64 + 1, -(2**64 + 1), 10**30, -(2**63) - 1, 2**64, 10**400, -(10**400)]


def _exact(sent: Any, got: Any) -> bool:
    """Equal with every int exactly an int; a float may come back as the int Go notation wrote."""
    if isinstance(sent, bool) or sent is None or isinstance(sent, str):
        return type(got) is type(sent) and got == sent
    if isinstance(sent, int):
        return type(got) is int and got == sent
    if isinstance(sent, float):  # Go writes 4.909267351727649e16 as 49092673517276490
        return (type(got) is float and got == sent) or (type(got) is int and float(got) == sent)
    if isinstance(sent, dict):
        return isinstance(got, dict) and sent.keys() == got.keys() and all(_exact(sent[k], got[k]) for k in sent)
    return isinstance(got, list) and len(got) == len(sent) and all(map(_exact, sent, got))


def test_ints_beyond_64_bits_decode_exactly(E: ModuleType) -> None:
    payload = {"big": BIG_INTS[0], "neg": BIG_INTS[1], "list": [1, BIG_INTS[2], [BIG_INTS[3]], {"x": 2**64}],
               "obj": {"deep": {"n": BIG_INTS[5], "m": BIG_INTS[6]}}, "small": 7, "u64": 2**64 - 1,
               "i64": -(2**63), "f": 2.5}
    headers = {"x-big": 2**64 + 1, "x-s": "12345678901234567890123"}
    body = E.encode_envelope("i", "T", "2025-01-02T03:04:05Z", None, None, headers, payload)
    for b in (body, bytearray(body), memoryview(body), body.decode()):
        env = E.decode_envelope(b)
        assert _exact(payload, env.payload), env.payload
        assert _exact(headers, env.headers)
    for value in BIG_INTS:
        assert _exact(value, E.decode_envelope(b'{"type":"T","payload":%d}' % value).payload)


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(st.integers(-(10**40), 10**40) | st.integers(-(2**64) - 2, 2**64 + 2), max_size=8),
       pads=st.lists(st.sampled_from([" ", "\n", ""]), min_size=8, max_size=8), key=st.text("0123456789a", max_size=30))
def test_every_long_integer_is_found(numbers: list[int], pads: list[str], key: str) -> None:
    """Wherever a long number sits (any offset, next to other digit runs), it decodes exactly."""
    items = ",".join(f"{pad}{n}" for pad, n in zip(pads, numbers, strict=False))
    body = f'{{"type":"T","payload":{{"{key}":[{items}]}}}}'.encode()
    for E in IMPLS:
        got = E.decode_envelope(body).payload[key]
        assert got == numbers and all(type(n) is int for n in got)


def test_typed_contract_receives_big_ints_exactly(E: ModuleType) -> None:
    """Through the contract layer too: int fields get the exact int, float fields a float."""
    from dataclasses import dataclass, field

    from mmate_fast.contracts import TypeRegistry, from_envelope, to_payload

    @dataclass
    class BigNumbers:
        n: int = 0
        items: list[int] = field(default_factory=list)
        f: float = 0.0

    reg = TypeRegistry()
    reg.register(BigNumbers)
    sent = BigNumbers(n=2**64 + 1, items=[-(2**64 + 1), 10**30], f=1e300)
    body = E.encode_envelope("i", "BigNumbers", "2025-01-02T03:04:05Z", None, None, {}, to_payload(sent))
    got = from_envelope(E.decode_envelope(body), reg)
    assert (got.n, got.items, got.f) == (sent.n, sent.items, sent.f)
    assert type(got.n) is int and type(got.f) is float


def test_long_digit_strings_next_to_big_numbers(E: ModuleType) -> None:
    """Digits inside strings (escaped quotes included) never hide a long number after them, and a
    long number after such a string still decodes exactly."""
    big = 12345678901234567890123
    for s in ('1234567890123456789012', 'a\\"1234567890123456789012', '\\\\', 'x\\\\\\"'):
        body = ('{"type":"T","payload":{"s":"' + s + '","n":' + str(big) + ',"m":[-' + str(big) + ']}}').encode()
        got = E.decode_envelope(body).payload
        assert got["n"] == big and type(got["n"]) is int and got["m"] == [-big]
        assert got["s"] == orjson.loads(body)["payload"]["s"]


def test_digits_inside_strings_skip_the_exact_parser() -> None:
    """A 19+ digit run only inside strings (a nanosecond stamp sent as text) needs no second parse;
    one in a number token does (the twin's scan, which the compiled one mirrors)."""
    from mmate_fast._py.envelope import _long_digits

    stamp = b'{"type":"T","payload":{"sentAtNs":"1764500000000000000000","a":"\\\\"}}'
    assert not _long_digits(stamp) and not _long_digits(stamp.decode())
    assert _long_digits(b'{"type":"T","payload":{"s":"\\\\","n":1764500000000000000000}}')
    assert _long_digits(b'{"type":"T","payload":[1764500000000000000000]}')


def test_normal_floats_stay_floats(E: ModuleType) -> None:
    payload = {"a": 0.1, "b": 99.95, "c": 1e300, "d": -1e-7, "e": 2.5e-5, "g": 1.0000000000000002,
               "h": 0.000012345678901234567, "i": [1.5, -2.5], "n": 10, "s": "0.1234567890123456789012"}
    body = E.encode_envelope("i", "T", "2025-01-02T03:04:05Z", None, None, {}, payload)
    got = E.decode_envelope(body).payload
    assert got == orjson.loads(E.encode_json(payload)) == payload
    assert all(type(got[k]) is float for k in "abcdegh") and type(got["n"]) is int
    long_digits = b'{"type":"T","payload":{"x":0.000012345678901234567890123,"y":"1234567890123456789012"}}'
    assert E.decode_envelope(long_digits).payload == orjson.loads(long_digits)["payload"]


def test_big_int_literals_are_still_validated(E: ModuleType) -> None:
    for body in (b'{"type":"T","payload":[1' + b"0" * 400 + b',NaN]}',
                 b'{"type":"T","payload":[1' + b"0" * 400 + b",1e400]}",
                 b'{"type":"T","payload":1' + b"0" * 400 + b"",
                 b'{"type":"T","payload":' + b"9" * 5000 + b"}"):
        with pytest.raises(EnvelopeError) as info:
            E.decode_envelope(body)
        assert info.value.reason == "not-json"


def test_ints_too_long_for_text_are_a_contract_error(E: ModuleType) -> None:
    with pytest.raises(ContractError, match="digits"):
        E.encode_json({"n": 10**5000})


# --------------------------------------------------------------------------- properties
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """JSON equality where a float may come back as an int (Go writes 1e16 as 10000000000000000)."""
    if isinstance(a, float) or isinstance(b, float):
        return not isinstance(a, (bool, str, list, dict)) and not isinstance(b, (bool, str, list, dict)) \
            and a is not None and b is not None and float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _keys_in_order(v: Any) -> Any:
    if isinstance(v, dict):
        return [(k, _keys_in_order(x)) for k, x in v.items()]
    if isinstance(v, list):
        return [_keys_in_order(x) for x in v]
    return None


def _sorted(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


@settings(max_examples=300, deadline=None)
@given(payload=json_values, headers=st.dictionaries(st.text(max_size=8), st.text() | st.integers(0, 255), max_size=6),
       cid=st.none() | st.text(min_size=1))
def test_round_trip_property(payload: Any, headers: dict[str, Any], cid: str | None) -> None:
    bodies = set()
    for E in IMPLS:
        body = E.encode_envelope("id-1", "T", "2025-01-02T03:04:05Z", cid, None, headers, payload)
        bodies.add(body)
        env = E.decode_envelope(body)
        expect = {} if payload is None else payload
        assert _same(env.payload, expect)
        assert _keys_in_order(env.payload) == _keys_in_order(_sorted(env.payload))  # keys arrive sorted
        assert env.headers == headers and env.correlation_id == cid
        assert list(orjson.loads(body)) == (["id", "type", "timestamp"] + (["correlationId"] if cid else [])
                                            + ["headers", "payload"])
    assert len(bodies) == 1


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_payload_round_trips_exactly(payload: Any) -> None:
    for E in IMPLS:
        env = E.decode_envelope(E.encode_envelope("i", "T", "2025-01-02T03:04:05Z", None, None, {}, payload))
        assert _exact({} if payload is None else payload, env.payload)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_encode_json_agrees_with_a_json_parser(value: Any) -> None:
    outs = {E.encode_json(value) for E in IMPLS}
    assert len(outs) == 1
    assert _same(orjson.loads(outs.pop()), value)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200) | st.builds(IMPLS[0].encode_json, json_values))
def test_decode_fuzz_only_envelope_errors(data: bytes) -> None:
    results: list[tuple[Any, ...]] = []
    for E in IMPLS:
        try:
            env = E.decode_envelope(data)
            results.append(("ok", env.id, env.type, env.timestamp, env.headers, env.payload))
        except EnvelopeError as exc:
            results.append(("err", exc.reason))
    assert all(r == results[0] for r in results)
