"""The AMQP 1.0 reader behind a stream record's ``ctx.delivery.properties``: every value type, the
0-9-1 names RabbitMQ maps back, and a named error for bytes that do not parse."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mmate_fast._py import frames as pyframes
from mmate_fast._py import streamwire
from mmate_fast._transport.amqp10 import StreamProperties, decode_sections, decode_value


def test_properties_of_a_stored_publish_read_back_under_amqp_091_names() -> None:
    props = pyframes.encode_properties(pyframes.BasicProperties(
        content_type="application/json", delivery_mode=2, priority=4, correlation_id="c-1", reply_to="r",
        expiration="5000", message_id="m-1", timestamp=1_700_000_000, type="OrderPlaced", app_id="svc",
        headers={"x-message-type": "OrderPlaced", "n": 7, "big": 1 << 40, "ok": True, "f": 1.5,
                 "b": pyframes.Typed("B", 2), "raw": b"\x00\x01"}))
    msg = streamwire.encode_message(props, b"{}", "mmate.events", "evt.a.OrderPlaced")
    p = StreamProperties(msg)
    assert (p.message_id, p.correlation_id, p.reply_to, p.content_type, p.type, p.app_id) == (
        "m-1", "c-1", "r", "application/json", "OrderPlaced", "svc")
    assert (p.delivery_mode, p.priority, p.expiration, p.timestamp) == (2, 4, "5000", 1_700_000_000)
    assert p.headers == {"x-message-type": "OrderPlaced", "n": 7, "big": 1 << 40, "ok": True, "f": 1.5,
                         "b": 2, "raw": b"\x00\x01"}
    assert p.annotations["x-routing-key"] == "evt.a.OrderPlaced" and p.annotations["x-exchange"] == "mmate.events"
    assert decode_sections(msg)[0x75] == b"{}"


@pytest.mark.parametrize(("data", "value"), [
    (b"\x40", None), (b"\x41", True), (b"\x42", False), (b"\x56\x01", True), (b"\x50\xff", 255),
    (b"\x51\xff", -1), (b"\x43", 0), (b"\x52\x07", 7), (b"\x70\x00\x01\x00\x00", 65536),
    (b"\x44", 0), (b"\x53\x09", 9), (b"\x80" + (2**63).to_bytes(8, "big"), 2**63), (b"\x54\xfe", -2),
    (b"\x71\xff\xff\xff\xfe", -2), (b"\x55\x05", 5), (b"\x81" + (-5).to_bytes(8, "big", signed=True), -5),
    (b"\x60\x01\x00", 256), (b"\x61\xff\xfe", -2), (b"\x82?\xf8\x00\x00\x00\x00\x00\x00", 1.5),
    (b"\x72?\xc0\x00\x00", 1.5), (b"\xa1\x02hi", "hi"), (b"\xb1\x00\x00\x00\x02hi", "hi"),
    (b"\xa3\x03sym", "sym"), (b"\xa0\x01\x00", b"\x00"), (b"\x45", []),
    (b"\xc0\x05\x02\x41\xa1\x01x", [True, "x"]), (b"\xc1\x06\x02\xa1\x01k\x52\x01", {"k": 1}),
    (b"\x00\x53\x10\xa1\x01v", "v"),  # described: the descriptor is dropped
    (b"\x83" + (1_700_000_000_000).to_bytes(8, "big"), datetime.fromtimestamp(1_700_000_000, UTC)),
    (b"\x98" + uuid.UUID(int=1).bytes, uuid.UUID(int=1)),
])
def test_decode_value(data: bytes, value: object) -> None:
    assert decode_value(data, 0) == (value, len(data))


@pytest.mark.parametrize("bad", [b"", b"\xa1\x05abc", b"\x71\x00", b"\x01", b"\xc1\x04\x02\xa1"])
def test_bad_bytes_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_sections(b"\x00\x53\x74" + bad)


def test_not_amqp_at_all() -> None:
    with pytest.raises(ValueError, match=r"not an AMQP 1\.0 message"):
        StreamProperties(b"{not amqp}")
