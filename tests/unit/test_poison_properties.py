"""A content header that frames but whose properties (or routing key) do not decode fails that one
message, not the connection: both frame readers yield a normal Delivery marked ``undecodable`` with
the raw property bytes kept (issue 7 item 1, codec level)."""
from __future__ import annotations

import importlib
import struct
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmate_fast.errors import FrameError
from tests.poison import POISON_KINDS, poison_properties, poison_routing_key

from ._impls import NO_EXT, impl_params

BODY = b'{"hello":"poison"}'
# what ``undecodable`` must say for each kind (a substring of it)
SAYS = {
    "deep-table": "nested deeper than 64",
    "timestamp-ms": "timestamp 1700000000000 out of range",
    "timestamp-2^63": f"timestamp {1 << 63} out of range",
    "header-key-not-utf8": "field table key is not UTF-8",
    "message-id-not-utf8": "property message_id is not UTF-8",
    "content-type-not-utf8": "property content_type is not UTF-8",
    "type-not-utf8": "property type is not UTF-8",
    "routing-key-not-utf8": "routing key is not UTF-8",
}


@pytest.fixture(params=impl_params("frames"))
def F(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def frame(ftype: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + b"\xce"


def deliver(channel: int = 1, tag: int = 1, exchange: bytes = b"ex", rk: bytes = b"rk") -> bytes:
    return frame(1, channel, b"\x00\x3c\x00\x3c" + b"\x04ctag" + struct.pack(">QB", tag, 0)
                 + bytes([len(exchange)]) + exchange + bytes([len(rk)]) + rk)


def header(props: bytes, size: int, channel: int = 1) -> bytes:
    return frame(2, channel, b"\x00\x3c\x00\x00" + struct.pack(">Q", size) + props)


def good(F: ModuleType, tag: int) -> bytes:
    """A normal delivery, encoded by hand with our own property encoder."""
    props = F.encode_properties(F.BasicProperties(content_type="application/json", message_id=f"m{tag}"))
    return deliver(tag=tag) + header(props, 2) + frame(3, 1, b"ok")


@pytest.mark.parametrize("kind", POISON_KINDS)
def test_poison_kind_yields_an_undecodable_delivery(F: ModuleType, kind: str) -> None:
    data = (good(F, 1) + deliver(tag=2, rk=poison_routing_key(kind, "rk"))
            + header(poison_properties(kind), len(BODY)) + frame(3, 1, BODY) + good(F, 3))
    for step in (len(data), 7, 1):
        reader = F.FrameReader(131072)
        items = []
        for i in range(0, len(data), step):
            items += reader.feed(data[i:i + step])
        assert [type(d).__name__ for d in items] == ["Delivery"] * 3
        first, poison, last = items
        for ok in (first, last):
            assert ok.undecodable is None and ok.raw_properties is None
            assert ok.properties.content_type == "application/json" and ok.body == b"ok"
        assert last.properties.message_id == "m3"
        assert poison.body == BODY
        assert SAYS[kind] in poison.undecodable
        assert poison.routing_key.encode("utf-8", "surrogateescape") == poison_routing_key(kind, "rk")
        if kind == "routing-key-not-utf8":
            assert poison.raw_properties is None  # the properties themselves decoded
        else:
            assert poison.raw_properties == poison_properties(kind)
            assert poison.properties == F.BasicProperties()
            assert poison.routing_key == "rk"


@pytest.mark.parametrize(("props", "says"), [
    (b"", "truncated property flags"),
    (b"\x00\x01", "truncated property flags"),  # continuation flag word missing
    (b"\x20\x00\x00\x00\x00\x09", "truncated field table"),  # table length runs past the frame
    (b"\x20\x00\x00\x00\x00\x02\x01k", "truncated field value"),
    (b"\x20\x00\x00\x00\x00\x03\x01kZ", "unknown field type tag 0x5a"),
    (b"\x80\x00\x05ab", "truncated property content_type"),
    (b"\x00\x40\x00\x01", "truncated property timestamp"),
    (b"\x20\x00\x00\x00\x00\x07\x01kx\x00\x00\x00\x09", "truncated byte array"),
])
def test_any_property_failure_is_per_message(F: ModuleType, props: bytes, says: str) -> None:
    reader = F.FrameReader(131072)
    items = reader.feed(deliver() + header(props, 3) + frame(3, 1, b"abc") + good(F, 2))
    poison, ok = items
    assert says in poison.undecodable and poison.raw_properties == props and poison.body == b"abc"
    assert poison.properties == F.BasicProperties()
    assert ok.undecodable is None and ok.properties.message_id == "m2"


def test_empty_body_poison_completes_at_the_header(F: ModuleType) -> None:
    items = F.FrameReader().feed(deliver() + header(poison_properties("deep-table"), 0))
    assert len(items) == 1 and items[0].body == b"" and "nested" in items[0].undecodable


@pytest.mark.parametrize("where", ["exchange", "routing key"])
def test_non_utf8_names_in_deliver_get_ok_and_return(F: ModuleType, where: str) -> None:
    bad, ok = b"a\xff\xfe", b"ok"
    ex, rk = (bad, ok) if where == "exchange" else (ok, bad)
    props = F.encode_properties(F.BasicProperties(type="T"))
    methods = [
        deliver(exchange=ex, rk=rk),
        frame(1, 1, b"\x00\x3c\x00\x47" + struct.pack(">QB", 5, 1) + bytes([len(ex)]) + ex + bytes([len(rk)])
              + rk + struct.pack(">I", 9)),
        frame(1, 1, b"\x00\x3c\x00\x32" + struct.pack(">H", 312) + b"\x08NO_ROUTE" + bytes([len(ex)]) + ex
              + bytes([len(rk)]) + rk),
    ]
    reader = F.FrameReader()
    for kind, method in enumerate(methods):
        (d,) = reader.feed(method + header(props, 1) + frame(3, 1, b"z"))
        assert d.kind == kind and d.body == b"z"
        assert d.undecodable == f"{where} is not UTF-8"
        assert d.raw_properties is None and d.properties.type == "T"
        assert d.exchange.encode("utf-8", "surrogateescape") == ex
        assert d.routing_key.encode("utf-8", "surrogateescape") == rk
    assert len(reader.feed(good(F, 7))) == 1  # the reader goes on


def test_both_names_and_properties_bad_says_all(F: ModuleType) -> None:
    data = deliver(exchange=b"\xff", rk=b"\xfe") + header(poison_properties("type-not-utf8"), 0)
    (d,) = F.FrameReader().feed(data)
    assert d.undecodable == "exchange is not UTF-8; routing key is not UTF-8; property type is not UTF-8"
    assert d.raw_properties == poison_properties("type-not-utf8")


@pytest.mark.parametrize("data", [
    frame(1, 1, b"\x00\x3c\x00\x3c\x02\xff\xfe" + b"\x00" * 11),  # consumer tag: ours, not the message's
    frame(1, 1, b"\x00\x3c\x00\x32\x01\x38\x02\xff\xfe\x00\x00"),  # reply text: the broker's
    deliver() + frame(2, 1, b"\x00\x3c\x00\x00" + b"\x00" * 7),  # no 12-byte content-header prefix
    deliver() + header(b"\x00\x00", 2) + frame(3, 1, b"abc"),  # body longer than announced
    deliver() + header(b"\x00\x00", 2)[:-1] + b"\xcd",  # bad frame end octet
])
def test_bytes_that_do_not_frame_still_fail_the_connection(F: ModuleType, data: bytes) -> None:
    with pytest.raises(FrameError):
        F.FrameReader().feed(data)


def test_delivery_carries_the_new_fields(F: ModuleType) -> None:
    d = F.Delivery()
    assert d.undecodable is None and d.raw_properties is None
    assert "undecodable" not in repr(d)
    p = F.Delivery(kind=0, body=b"b", undecodable="property type is not UTF-8", raw_properties=b"\x00\x20")
    assert (p.undecodable, p.raw_properties) == ("property type is not UTF-8", b"\x00\x20")
    assert "undecodable='property type is not UTF-8'" in repr(p) and "raw_properties=2 bytes" in repr(p)


def test_raw_properties_travel_as_a_byte_array_header(F: ModuleType) -> None:
    raw = poison_properties("deep-table")
    table = F.encode_table({"x-mmate-raw-properties": raw})
    assert table[4 + 1 + len("x-mmate-raw-properties"):][:1] == b"x"
    assert F.decode_table(table) == ({"x-mmate-raw-properties": raw}, len(table))


def test_encode_table_bytes_round_trips_across_twins() -> None:
    mods = [importlib.import_module("mmate_fast._py.frames")]
    if not NO_EXT:
        mods.append(importlib.import_module("mmate_fast._cy.frames"))
    raw = {k: poison_properties(k) for k in POISON_KINDS}
    for enc in mods:
        for dec in mods:
            out = enc.encode_table(raw)
            assert dec.decode_table(out)[0] == raw
            assert dec.decode_properties(enc.encode_properties(enc.BasicProperties(headers=raw)))[0].headers == raw


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(st.binary(max_size=120))
def test_arbitrary_property_bytes_never_raise(props: bytes) -> None:
    """Any bytes in a well-framed content header: a delivery, decoded or marked, never an error."""
    for mod in [m for m in (p.values[0] for p in impl_params("frames")) if m is not None]:
        (d,) = mod.FrameReader().feed(deliver() + header(props, 1) + frame(3, 1, b"z"))
        assert d.body == b"z"
        if d.undecodable is None:
            assert d.raw_properties is None
            assert mod.decode_properties(props)[0] == d.properties
        else:
            assert d.raw_properties == props and d.properties == mod.BasicProperties()
            with pytest.raises(FrameError):
                mod.decode_properties(props)
