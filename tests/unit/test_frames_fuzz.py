"""Fuzz the FrameReaders: only FrameError may escape, and property bytes that do not decode inside a
well-framed content header never raise at all. The pure-Python twin is fuzzed in every run; the
compiled reader too, and must give identical results, unless MMATE_NO_EXTENSIONS=1 (then the twin
runs alone: it is the reader in use)."""
from __future__ import annotations

import importlib
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as pc
from pamqp import frame as pframe
from pamqp import header as pheader

from mmate_fast.errors import FrameError
from tests.unit._impls import NO_EXT

PY = importlib.import_module("mmate_fast._py.frames")
#: the compiled reader, None when MMATE_NO_EXTENSIONS=1 (it must import otherwise: no silent skip)
CY: Any = None if NO_EXT else importlib.import_module("mmate_fast._cy.frames")

PROPS = pc.Basic.Properties(content_type="application/json", delivery_mode=2, message_type="T",
                            headers={"a": 1, "b": "x", "c": [1.5, None], "d": {"e": True}})
VALID = (pframe.marshal(pc.Basic.Deliver("ctag", 1, False, "ex", "rk"), 1)
         + pframe.marshal(pheader.ContentHeader(0, 12, PROPS), 1)
         + pframe.marshal(pbody.ContentBody(b"hello "), 1) + pframe.marshal(pbody.ContentBody(b"world!"), 1)
         + pframe.marshal(pc.Basic.Ack(3, True), 2) + PY.HEARTBEAT_FRAME
         + pframe.marshal(pc.Basic.Return(312, "NO_ROUTE", "ex", "rk"), 3)
         + pframe.marshal(pheader.ContentHeader(0, 0, pc.Basic.Properties()), 3)
         + pframe.marshal(pc.Queue.DeclareOk("q", 1, 0), 1))


def canon(item: Any) -> Any:
    """A comparable, implementation-independent form (repr handles NaN)."""
    name = type(item).__name__
    if name == "Delivery":
        return (name, item.kind, item.channel, item.consumer_tag, item.delivery_tag, item.redelivered,
                item.exchange, item.routing_key, item.message_count, item.reply_code, item.reply_text,
                repr(sorted(item.properties.to_dict().items())), item.body, item.undecodable,
                item.raw_properties)
    if name == "Confirm":
        return (name, item.channel, item.delivery_tag, item.multiple, item.nack)
    if name == "MethodFrame":
        return (name, item.channel, type(item.method).__name__, repr(list(item.method)))
    return (name, item.channel)


def run(mod: Any, data: bytes, cuts: list[int]) -> tuple[list[Any], int | None]:
    reader = mod.FrameReader(4096)
    items: list[Any] = []
    prev = 0
    try:
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            items += reader.feed(data[prev:cut] if cut >= prev else b"")
            prev = max(prev, cut)
    except FrameError as exc:
        return [canon(i) for i in items], exc.reply_code
    return [canon(i) for i in items], None


def check(data: bytes, cuts: list[int]) -> tuple[list[Any], int | None]:
    """The twin's items and FrameError code (anything else raised fails the test); the compiled
    reader's must be identical when it is in use."""
    got = run(PY, data, cuts)
    if CY is not None:
        assert got == run(CY, data, cuts)
    return got


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes(data: bytes, cuts: list[int]) -> None:
    check(data, cuts)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate", "size"]),
                          st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.lists(st.integers(0, len(VALID) + 8), max_size=6))
def test_mutated_frames(mutations: list[tuple[str, int, int]], cuts: list[int]) -> None:
    data = bytearray(VALID)
    for op, pos, val in mutations:
        pos %= max(len(data), 1)
        if op == "flip" and data:
            data[pos] ^= val or 1
        elif op == "insert":
            data.insert(pos, val)
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
        elif op == "size" and len(data) > pos + 4:
            data[pos:pos + 4] = val.to_bytes(1, "big") * 4
    check(bytes(data), cuts)


def test_valid_stream_decodes_identically() -> None:
    items, err = check(VALID, [5, 50, 51, 100])
    assert err is None and len(items) == 5


def _framed(props: bytes, rk: bytes) -> bytes:
    def frame(ftype: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", ftype, 1, len(payload)) + payload + b"\xce"
    deliver = b"\x00\x3c\x00\x3c\x01c" + struct.pack(">QB", 1, 0) + b"\x01e" + bytes([len(rk)]) + rk
    return (frame(1, deliver) + frame(2, b"\x00\x3c\x00\x00" + struct.pack(">Q", 3) + props)
            + frame(3, b"abc") + VALID)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.builds(
           lambda flags, rest: struct.pack(">H", flags) + rest, st.integers(0, 0xFFFF), st.binary(max_size=200))),
       st.binary(max_size=8), st.lists(st.integers(0, 600), max_size=6))
def test_property_failures_are_per_message(props: bytes, rk: bytes, cuts: list[int]) -> None:
    """Any property bytes and routing key in frames that are sound: no error, the same items."""
    data = _framed(props, rk)
    items, err = check(data, cuts)
    assert err is None and len(items) == 6
