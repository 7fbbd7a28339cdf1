"""Frames of the RabbitMQ Streams protocol that are not on the hot path (requests, responses).

The hot ones (Publish content, Deliver chunks, AMQP 1.0 messages) are compiled: mmate_fast._cy.streamwire.
Layouts: the stream plugin's PROTOCOL.adoc (big-endian; string = int16 length + bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from mmate_fast.errors import StreamProtocolError

VERSION = 1

DECLARE_PUBLISHER = 0x01
PUBLISH = 0x02
PUBLISH_CONFIRM = 0x03
PUBLISH_ERROR = 0x04
QUERY_PUBLISHER_SEQUENCE = 0x05
DELETE_PUBLISHER = 0x06
SUBSCRIBE = 0x07
DELIVER = 0x08
CREDIT = 0x09
STORE_OFFSET = 0x0A
QUERY_OFFSET = 0x0B
UNSUBSCRIBE = 0x0C
CREATE = 0x0D
DELETE = 0x0E
METADATA = 0x0F
METADATA_UPDATE = 0x10
PEER_PROPERTIES = 0x11
SASL_HANDSHAKE = 0x12
SASL_AUTHENTICATE = 0x13
TUNE = 0x14
OPEN = 0x15
CLOSE = 0x16
HEARTBEAT = 0x17
RESPONSE = 0x8000

OK = 0x01
STREAM_DOES_NOT_EXIST = 0x02
STREAM_ALREADY_EXISTS = 0x05
STREAM_NOT_AVAILABLE = 0x06
AUTHENTICATION_FAILURE = 0x08
NO_OFFSET = 0x13

RESPONSE_TEXT = {
    0x01: "OK",
    0x02: "stream does not exist",
    0x03: "subscription id already exists",
    0x04: "subscription id does not exist",
    0x05: "stream already exists",
    0x06: "stream not available",
    0x07: "SASL mechanism not supported",
    0x08: "authentication failure",
    0x09: "SASL error",
    0x0A: "SASL challenge",
    0x0B: "SASL authentication failure loopback",
    0x0C: "virtual host access failure",
    0x0D: "unknown frame",
    0x0E: "frame too large",
    0x0F: "internal error",
    0x10: "access refused",
    0x11: "precondition failed",
    0x12: "publisher does not exist",
    0x13: "no offset",
}

#: offset specification types of Subscribe
OFFSET_FIRST = 1
OFFSET_LAST = 2
OFFSET_NEXT = 3
OFFSET_ABSOLUTE = 4
OFFSET_TIMESTAMP = 5

HEADER = struct.Struct(">IHH")  # size, key, version
U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
I64 = struct.Struct(">q")
U64 = struct.Struct(">Q")
REQUEST = struct.Struct(">HHI")  # key, version, correlation id
RESPONSE_HEAD = struct.Struct(">HHIH")  # key, version, correlation id, code
PUBLISH_HEAD = struct.Struct(">IHHBI")  # size, key, version, publisher id, count
HEARTBEAT_FRAME = HEADER.pack(4, HEARTBEAT, VERSION)


def string(value: str) -> bytes:
    data = value.encode()
    if len(data) > 0x7FFF:
        raise StreamProtocolError(f"string of {len(data)} bytes is too long for the stream protocol")
    return U16.pack(len(data)) + data


def string_map(values: Mapping[str, str]) -> bytes:
    return U32.pack(len(values)) + b"".join(string(k) + string(str(v)) for k, v in values.items())


def request(key: int, correlation_id: int, content: bytes) -> bytes:
    return U32.pack(8 + len(content)) + REQUEST.pack(key, VERSION, correlation_id) + content


def command(key: int, content: bytes) -> bytes:
    return HEADER.pack(4 + len(content), key, VERSION) + content


def read_string(data: bytes | bytearray, pos: int) -> tuple[str, int]:
    (n,) = U16.unpack_from(data, pos)
    pos += 2
    if n == 0xFFFF:
        return "", pos
    return data[pos : pos + n].decode("utf-8", "replace"), pos + n


def read_string_map(data: bytes, pos: int) -> tuple[dict[str, str], int]:
    (n,) = U32.unpack_from(data, pos)
    pos += 4
    out: dict[str, str] = {}
    for _ in range(n):
        k, pos = read_string(data, pos)
        v, pos = read_string(data, pos)
        out[k] = v
    return out, pos
