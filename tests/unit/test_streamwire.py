"""The stream wire codec (compiled and twin): AMQP 0-9-1 publish -> the AMQP 1.0 message RabbitMQ
stores, Publish frame entries, chunk splitting and body extraction; bad input gets named errors."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from mmate_fast._py import frames as pyframes
from mmate_fast.errors import StreamProtocolError
from tests.unit._impls import impl_params

IMPLS = impl_params("streamwire")

# captured from RabbitMQ 3.10.8: what it stored for a 0-9-1 publish of this body with these
# properties (content_type, headers S/B, delivery_mode 2, message_id, timestamp, type) to the
# default exchange, routing key "wt5-streams-cap" (a stream)
_PROPS = pyframes.encode_properties(
    pyframes.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        message_id="m-1",
        timestamp=1_700_000_000,
        type="T",
        headers={"a": "x", "priority": pyframes.Typed("B", 0)},
    )
)
_BODY = b'{"k":1}'
_STORED = (
    b"\x00Sr\xc1H\x06\xa3\rx-routing-key\xa1\x0fwt5-streams-cap\xa3\nx-exchange\xa1\x00\xa3\x15"
    b"x-basic-delivery-modeP\x02\x00Ss\xc0+\r\xa1\x03m-1@@@@@\xa3\x10application/json@@\x83\x00\x00"
    b"\x01\x8b\xcf\xe5h\x00@@@\x00St\xc1$\x06\xa1\x0cx-basic-type\xa1\x01T\xa1\x01a\xa1\x01x\xa1"
    b'\x08priorityP\x00\x00Su\xa0\x07{"k":1}'
)


@pytest.mark.parametrize("w", IMPLS)
def test_encode_matches_what_rabbitmq_stores(w: Any) -> None:
    assert w.encode_message(_PROPS, _BODY, "", "wt5-streams-cap") == _STORED


@pytest.mark.parametrize("w", IMPLS)
def test_both_implementations_agree_on_every_header_type(w: Any) -> None:
    from mmate_fast._py import streamwire as ref

    headers = {
        "s": "v" * 300,
        "t": True,
        "f": False,
        "i": -7,
        "big": 1 << 40,
        "neg": -(1 << 40),
        "d": 1.5,
        "b": pyframes.Typed("B", 200),
        "sb": pyframes.Typed("b", -3, go_safe=False),
        "sh": pyframes.Typed("s", -300, go_safe=False),
        "us": pyframes.Typed("u", 60000, go_safe=False),
        "ui": pyframes.Typed("i", 70000, go_safe=False),
        "ui0": pyframes.Typed("i", 0, go_safe=False),
        "ui1": pyframes.Typed("i", 9, go_safe=False),
        "fl": pyframes.Typed("f", 0.25, go_safe=False),
        "x": b"\x00\x01",
        "ts": datetime(2024, 1, 2, tzinfo=UTC),
        "none": None,
        "tbl": {"n": 1},
        "arr": [1, 2],
    }
    props = pyframes.encode_properties(
        pyframes.BasicProperties(
            content_type="application/json",
            content_encoding="gzip",
            headers=headers,
            delivery_mode=1,
            priority=5,
            correlation_id="c" * 200,
            reply_to="r",
            expiration="60000",
            message_id="m",
            timestamp=1,
            type="T",
            user_id="guest",
            app_id="app",
        )
    )
    body = b"x" * 70000
    got = w.encode_message(props, body, "ex", "rk.\u00e9")
    assert got == ref.encode_message(props, body, "ex", "rk.\u00e9")
    assert w.message_body(got) == body
    assert b"\xa1\x04none" not in got and b"tbl" not in got and b"arr" not in got  # dropped as RabbitMQ does


@pytest.mark.parametrize("w", IMPLS)
def test_append_message_frames_the_entry(w: Any) -> None:
    buf = bytearray(b"HEAD")
    w.append_message(buf, 7, _PROPS, _BODY, "", "wt5-streams-cap")
    assert buf[:4] == b"HEAD"
    assert struct.unpack_from(">QI", buf, 4) == (7, len(_STORED))
    assert bytes(buf[16:]) == _STORED


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize(
    "bad", [b"", b"\x80", b"\x80\x00\x10application", b"\x20\x00\x00\x00\x00\x09\x01aZ", b"\x00\x01"]
)
def test_bad_properties_append_nothing(w: Any, bad: bytes) -> None:
    buf = bytearray(b"HEAD")
    with pytest.raises(ValueError):
        w.append_message(buf, 1, bad, b"x", "", "q")
    assert buf == b"HEAD"


def _chunk(records: list[bytes], first: int, chunk_type: int = 0, sub_batch: bool = False) -> bytes:
    if sub_batch:
        inner = b"".join(struct.pack(">I", len(r)) + r for r in records)
        data = bytes((0x80,)) + struct.pack(">HII", len(records), len(inner), len(inner)) + inner
        entries = 1
    else:
        data = b"".join(struct.pack(">I", len(r)) + r for r in records)
        entries = len(records)
    head = struct.pack(
        ">bbHIqQQiIII", 0x50, chunk_type, entries, len(records), 1234, 1, first, 0, len(data), 0, 0
    )
    return b"\x05" + head + data  # subscription id byte first, as in a Deliver frame


@pytest.mark.parametrize("w", IMPLS)
@pytest.mark.parametrize("sub_batch", [False, True])
def test_split_chunk(w: Any, sub_batch: bool) -> None:
    recs = [b"a", b"bb", b"", b"dddd"]
    data = _chunk(recs, 100, sub_batch=sub_batch)
    assert w.split_chunk(data, 1, len(data), 0) == (100, 1234, recs)
    assert w.split_chunk(data, 1, len(data), 102) == (102, 1234, recs[2:])
    assert w.split_chunk(data, 1, len(data), 500) == (104, 1234, [])
    tracking = _chunk(recs, 100, chunk_type=1)
    assert w.split_chunk(tracking, 1, len(tracking), 0) == (104, 1234, [])


@pytest.mark.parametrize("w", IMPLS)
def test_split_chunk_refuses_what_does_not_parse(w: Any) -> None:
    data = _chunk([b"abc"], 0)
    with pytest.raises(StreamProtocolError):
        w.split_chunk(data, 1, 20, 0)  # shorter than the header
    with pytest.raises(StreamProtocolError):
        w.split_chunk(data, 1, len(data) - 1, 0)  # data overruns
    bad = bytearray(data)
    struct.pack_into(">I", bad, 49, 99)  # a record bigger than the chunk
    with pytest.raises(StreamProtocolError):
        w.split_chunk(bytes(bad), 1, len(bad), 0)
    compressed = bytearray(_chunk([b"x"], 0, sub_batch=True))
    compressed[49] = 0x80 | (1 << 4)
    with pytest.raises(StreamProtocolError, match="compressed"):
        w.split_chunk(bytes(compressed), 1, len(compressed), 0)


@pytest.mark.parametrize("w", IMPLS)
def test_message_body(w: Any) -> None:
    assert w.message_body(b"\x00Su\xa0\x02ab\x00Su\xb0\x00\x00\x00\x01c") == b"abc"
    assert w.message_body(b"\x00Sw\xa1\x02hi") == b"hi"  # amqp-value string
    assert w.message_body(b"\x00Sp\xc0\x01\x00" + b"\x00Su\xa0\x01z") == b"z"  # header section skipped
    with pytest.raises(ValueError):
        w.message_body(b"{not amqp}")
    with pytest.raises(ValueError):
        w.message_body(b"\x00Su\xb0\x00\x00\x10\x00short")


def _mixed_chunk(first: int) -> bytes:
    """A chunk of plain entries and sub-batches (one of them empty), as a Deliver frame holds it."""
    def plain(r: bytes) -> bytes:
        return struct.pack(">I", len(r)) + r

    def batch(rs: list[bytes]) -> bytes:
        inner = b"".join(plain(r) for r in rs)
        return bytes((0x80,)) + struct.pack(">HII", len(rs), len(inner), len(inner)) + inner

    entries = [plain(b"a"), batch([b"bb", b"", b"ccc"]), batch([]), plain(b""), batch([b"d"]), plain(b"eeee")]
    data = b"".join(entries)
    head = struct.pack(">bbHIqQQiIII", 0x50, 0, len(entries), 7, 1234, 1, first, 0, len(data), 0, 0)
    return b"\x05" + head + data


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except StreamProtocolError as exc:
        return ("StreamProtocolError", str(exc))


@pytest.mark.skipif(os.environ.get("MMATE_NO_EXTENSIONS") == "1", reason="compares with the compiled one")
def test_both_walks_agree_on_every_cut_and_every_bad_byte() -> None:
    """split_chunk and dispatch_chunk of both impls walk plain entries and sub-batches alike: every
    truncation of a chunk's data and every byte of it set to 0xff gives the same records, offsets
    and errors (the compiled ones share one record walker)."""
    from mmate_fast._cy import streamwire as cy
    from mmate_fast._py import streamwire as py

    good = _mixed_chunk(10)
    recs = [b"a", b"bb", b"", b"ccc", b"", b"d", b"eeee"]
    for w in (py, cy):
        assert w.split_chunk(good, 1, len(good), 0) == (10, 1234, recs)
        assert w.split_chunk(good, 1, len(good), 13) == (13, 1234, recs[3:])
    variants = []
    for cut in range(49, len(good)):  # data_len kept: the chunk says it is longer than its frame
        variants.append(good[:cut])
        shorter = bytearray(good[:cut])
        struct.pack_into(">I", shorter, 1 + 36, cut - 49)  # data_len says what is there
        variants.append(bytes(shorter))
    for i in range(49, len(good)):
        bad = bytearray(good)
        bad[i] = 0xFF
        variants.append(bytes(bad))
    fail = ValueError("not an envelope")

    def decode(body: bytes) -> Any:
        raise fail  # every record to the general path: dispatch_chunk hands on what split_chunk gives

    for data in variants:
        for min_offset in (0, 12):
            args = (data, 1, len(data), min_offset)
            assert _outcome(cy.split_chunk, *args) == _outcome(py.split_chunk, *args), data.hex()
            extra = (decode, lambda t: (), None, None)
            assert _outcome(cy.dispatch_chunk, *args, *extra) == _outcome(py.dispatch_chunk, *args, *extra)
