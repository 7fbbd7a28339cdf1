"""Read the sections of an AMQP 1.0 message (what a stream stores) into Python values (part of the
stream transport interface: the Mmate level reads record properties with it).

Off the hot path: the consumer takes the body with the compiled ``message_body``; this runs only when
a handler looks at headers or properties (``ctx.headers``), or a message is dead-lettered.
:class:`StreamProperties` gives them the names of AMQP 0-9-1 basic properties, as RabbitMQ maps
them back for an AMQP consumer of the stream.
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any

_U32 = struct.Struct(">I")

_FIXED: dict[int, tuple[int, Any]] = {
    0x50: (1, lambda b: b[0]),
    0x51: (1, lambda b: struct.unpack(">b", b)[0]),
    0x52: (1, lambda b: b[0]),
    0x53: (1, lambda b: b[0]),
    0x54: (1, lambda b: struct.unpack(">b", b)[0]),
    0x55: (1, lambda b: struct.unpack(">b", b)[0]),
    0x56: (1, lambda b: b[0] != 0),
    0x60: (2, lambda b: struct.unpack(">H", b)[0]),
    0x61: (2, lambda b: struct.unpack(">h", b)[0]),
    0x70: (4, lambda b: struct.unpack(">I", b)[0]),
    0x71: (4, lambda b: struct.unpack(">i", b)[0]),
    0x72: (4, lambda b: struct.unpack(">f", b)[0]),
    0x73: (4, lambda b: b.decode("utf-32-be")),
    0x80: (8, lambda b: struct.unpack(">Q", b)[0]),
    0x81: (8, lambda b: struct.unpack(">q", b)[0]),
    0x82: (8, lambda b: struct.unpack(">d", b)[0]),
    0x83: (8, lambda b: datetime.fromtimestamp(struct.unpack(">q", b)[0] / 1000, UTC)),
    0x98: (16, lambda b: uuid.UUID(bytes=b)),
}
_EMPTY: dict[int, Any] = {0x40: None, 0x41: True, 0x42: False, 0x43: 0, 0x44: 0, 0x45: []}


def decode_value(data: bytes, pos: int) -> tuple[Any, int]:
    """One AMQP 1.0 value at ``pos``: (value, position after it). ValueError when it does not parse."""
    try:
        code = data[pos]
    except IndexError:
        raise ValueError("AMQP 1.0 data ends inside a value") from None
    pos += 1
    if code == 0x00:  # described: keep the value, drop the descriptor
        _, pos = decode_value(data, pos)
        return decode_value(data, pos)
    if code in _EMPTY:
        value = _EMPTY[code]
        return (list(value) if isinstance(value, list) else value), pos
    fixed = _FIXED.get(code)
    if fixed is not None:
        size, conv = fixed
        if pos + size > len(data):
            raise ValueError("AMQP 1.0 data ends inside a value")
        return conv(data[pos : pos + size]), pos + size
    wide = code & 0x10 == 0x10
    if code in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
        size, pos = (_U32.unpack_from(data, pos)[0], pos + 4) if wide else (data[pos], pos + 1)
        raw = bytes(data[pos : pos + size])
        if len(raw) != size:
            raise ValueError("AMQP 1.0 data ends inside a string")
        return (raw if code in (0xA0, 0xB0) else raw.decode("utf-8", "replace")), pos + size
    if code in (0xC0, 0xC1, 0xD0, 0xD1):
        if wide:
            _size, count = struct.unpack_from(">II", data, pos)
            pos += 8
        else:
            _size, count = data[pos], data[pos + 1]
            pos += 2
        items = []
        for _ in range(count):
            item, pos = decode_value(data, pos)
            items.append(item)
        if code in (0xC1, 0xD1):
            return {_key(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}, pos
        return items, pos
    if code in (0xE0, 0xF0):  # arrays: kept as raw bytes (RabbitMQ drops them for AMQP consumers)
        size, pos = (_U32.unpack_from(data, pos)[0], pos + 4) if wide else (data[pos], pos + 1)
        return bytes(data[pos : pos + size]), pos + size
    raise ValueError(f"AMQP 1.0 value with unknown format code 0x{code:02x}")


def _key(value: Any) -> Any:
    return value if isinstance(value, str | int) else str(value)


def decode_sections(msg: bytes) -> dict[int, Any]:
    """Section descriptor code (0x70 header .. 0x78 footer) -> decoded value; data sections joined.
    ValueError for bytes that do not parse (whatever broke inside)."""
    try:
        return _sections(msg)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"AMQP 1.0 message does not parse: {exc}") from None


def _sections(msg: bytes) -> dict[int, Any]:
    out: dict[int, Any] = {}
    pos = 0
    n = len(msg)
    while pos < n:
        if msg[pos] != 0x00:
            raise ValueError("not an AMQP 1.0 message: a section does not start with a descriptor")
        descriptor, vpos = decode_value(msg, pos + 1)
        value, pos = decode_value(msg, vpos)
        code = descriptor if isinstance(descriptor, int) else -1
        if code == 0x75:
            out[code] = out.get(code, b"") + value
        else:
            out[code] = value
    return out


_PROPERTY_FIELDS = (
    "message_id",
    "user_id",
    "to",
    "subject",
    "reply_to",
    "correlation_id",
    "content_type",
    "content_encoding",
    "absolute_expiry_time",
    "creation_time",
    "group_id",
    "group_sequence",
    "reply_to_group_id",
)


class StreamProperties:
    """The properties of a stream message under AMQP 0-9-1 names (``headers``, ``message_id``,
    ``correlation_id``, ``reply_to``, ``content_type``, ``type``, ``timestamp``, ``delivery_mode``,
    ``priority``, ``expiration``), plus ``annotations`` (``x-routing-key``, ``x-exchange``, ...)."""

    __slots__ = (
        "annotations",
        "app_id",
        "content_encoding",
        "content_type",
        "correlation_id",
        "delivery_mode",
        "expiration",
        "headers",
        "message_id",
        "priority",
        "reply_to",
        "timestamp",
        "type",
        "user_id",
    )

    def __init__(self, msg: bytes) -> None:
        sections = decode_sections(msg)
        ann = sections.get(0x72) or {}
        props = sections.get(0x73) or []
        fields = dict(zip(_PROPERTY_FIELDS, list(props) + [None] * (13 - len(props)), strict=False))
        app = dict(sections.get(0x74) or {})
        self.annotations: dict[Any, Any] = ann
        self.message_id = _text(fields["message_id"])
        self.user_id = _text(fields["user_id"])
        self.reply_to = _text(fields["reply_to"])
        self.correlation_id = _text(fields["correlation_id"])
        self.content_type = _text(fields["content_type"])
        self.content_encoding = _text(fields["content_encoding"])
        created = fields["creation_time"]
        self.timestamp = int(created.timestamp()) if isinstance(created, datetime) else None
        self.type = _text(app.pop("x-basic-type", None))
        self.app_id = _text(app.pop("x-basic-app-id", None))
        self.delivery_mode = ann.get("x-basic-delivery-mode")
        self.priority = ann.get("x-basic-priority")
        self.expiration = _text(ann.get("x-basic-expiration"))
        #: the application properties (the Mmate headers)
        self.headers: dict[str, Any] = app

    def __repr__(self) -> str:
        return (
            f"StreamProperties(message_id={self.message_id!r}, type={self.type!r}, "
            f"headers={len(self.headers)} entries)"
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
