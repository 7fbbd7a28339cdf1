"""Pure-Python twin of the compiled frame codec (src_cy/frames.pyx). Same API; see
mmate_fast/_cy/frames.pyi for the contract.

Wire rules shared with the compiled twin (tests check both give identical results):
field tables nest at most ``MAX_DEPTH`` levels; a long string ``S`` that is not UTF-8 decodes to
bytes; ``L`` is an unsigned 64-bit int; ``D`` decimals are exact whatever the thread's decimal
context; heartbeat frames must be empty and on channel 0. A content header that frames but whose
properties do not decode, and an exchange or routing key that is not UTF-8, mark that one Delivery
``undecodable`` instead of failing the connection. Input is bounded: every frame is checked against
``frame_max`` (4096..2**32-1, no "0 = unlimited"), and a delivery whose content header declares more
than ``max_message_size`` bytes has its body frames counted and dropped as they come, then arrives
with ``body == b""`` and ``oversized`` = the declared size.
"""
from __future__ import annotations

import datetime
import decimal
import struct
from collections.abc import Callable, Mapping
from typing import Any

from pamqp import commands as _pc
from pamqp import encode as _penc
from pamqp.base import Frame as _PamqpFrame

from mmate_fast.errors import FrameError, InvalidArgumentError

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_MIN_SIZE = 4096
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"
MAX_DEPTH = 64  # nesting limit of field tables/arrays (deeper input is a 502 syntax error)
FRAME_MAX_LIMIT = 0xFFFFFFFF  # the largest frame_max a tune can carry (a long)
DEFAULT_MAX_MESSAGE_SIZE = 128 << 20  # RabbitMQ's own default max_message_size (128 MiB)

_PROP_NAMES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
    "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id",
)


#: field types amqp091-go (mmate-go's client) cannot read: one such header kills a Go consumer's connection
GO_UNSAFE_TAGS = frozenset(("u", "i", "L"))


class Typed:
    """A field-table value with an explicit AMQP type tag, e.g. ``Typed("B", 5)`` for a Go uint8.

    The Go-unsafe tags ``u``, ``i`` and ``L`` raise InvalidArgumentError unless ``go_safe=False``
    says that no Go peer reads the header. Immutable (hashable; the tag stays the checked one)."""

    __slots__ = ("go_safe", "tag", "value")

    tag: str
    value: Any
    go_safe: bool

    def __init__(self, tag: str, value: Any, *, go_safe: bool = True) -> None:
        if go_safe and isinstance(tag, str) and tag in GO_UNSAFE_TAGS:
            raise InvalidArgumentError(
                f"Typed({tag!r}, {value!r}): Go consumers cannot read AMQP field type {tag!r} (amqp091-go, "
                "mmate-go's client, closes the connection on it and the message goes back to every Go "
                "consumer of the queue): use a plain int (sent as 'I' or 'l') or Typed('I'|'l', value); "
                f"if no Go peer ever reads this header, say so: Typed({tag!r}, value, go_safe=False)", "tag")
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "go_safe", bool(go_safe))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Typed is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Typed):
            return self.tag == other.tag and self.value == other.value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.tag, self.value))

    def __repr__(self) -> str:
        if self.go_safe:
            return f"Typed({self.tag!r}, {self.value!r})"
        return f"Typed({self.tag!r}, {self.value!r}, go_safe=False)"


class BasicProperties:
    """The 14 basic content-header properties; ``None`` means absent. ``timestamp`` is POSIX seconds."""

    __slots__ = _PROP_NAMES

    def __init__(
        self,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: Mapping[str, Any] | None = None,
        delivery_mode: int | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: str | None = None,
        message_id: str | None = None,
        timestamp: int | None = None,
        type: str | None = None,  # AMQP's name (shadows the builtin)
        user_id: str | None = None,
        app_id: str | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.content_type = content_type
        self.content_encoding = content_encoding
        self.headers = dict(headers) if headers is not None else None
        self.delivery_mode = delivery_mode
        self.priority = priority
        self.correlation_id = correlation_id
        self.reply_to = reply_to
        self.expiration = expiration
        self.message_id = message_id
        self.timestamp = timestamp
        self.type = type
        self.user_id = user_id
        self.app_id = app_id
        self.cluster_id = cluster_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BasicProperties):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _PROP_NAMES)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        """Only the properties that are set."""
        return {n: v for n in _PROP_NAMES if (v := getattr(self, n)) is not None}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"BasicProperties({inner})"


class Delivery:
    """A complete message from the broker: basic.deliver (kind 0), basic.get-ok (1), basic.return (2).

    ``undecodable`` says what of it could not be decoded (None normally); ``raw_properties`` then
    holds the property bytes as they came when those were the part that failed. ``oversized`` is the
    declared body size of a delivery over the reader's ``max_message_size`` (its body was dropped:
    ``body == b""``), 0 normally.
    """

    KIND_DELIVER = 0
    KIND_GET_OK = 1
    KIND_RETURN = 2

    __slots__ = ("body", "channel", "consumer_tag", "delivery_tag", "exchange", "kind", "message_count",
                 "oversized", "properties", "raw_properties", "redelivered", "reply_code", "reply_text",
                 "routing_key", "undecodable")

    def __init__(self, kind: int = 0, channel: int = 0, consumer_tag: str = "", delivery_tag: int = 0,
                 redelivered: bool = False, exchange: str = "", routing_key: str = "",
                 message_count: int = 0, reply_code: int = 0, reply_text: str = "",
                 properties: BasicProperties | None = None, body: bytes = b"",
                 undecodable: str | None = None, raw_properties: bytes | None = None,
                 oversized: int = 0) -> None:
        self.kind = kind
        self.channel = channel
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.message_count = message_count
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.properties = properties if properties is not None else BasicProperties()
        self.body = body
        self.undecodable = undecodable
        self.raw_properties = raw_properties
        self.oversized = oversized

    def __repr__(self) -> str:
        bad = "" if self.undecodable is None else _repr_undecodable(self.undecodable, self.raw_properties)
        big = f", oversized={self.oversized}" if self.oversized else ""
        return (f"Delivery(kind={self.kind}, channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"exchange={self.exchange!r}, routing_key={self.routing_key!r}, "
                f"redelivered={self.redelivered}, body={len(self.body)} bytes{big}{bad})")


def _repr_undecodable(undecodable: str, raw_properties: bytes | None) -> str:
    raw = "None" if raw_properties is None else f"{len(raw_properties)} bytes"
    return f", undecodable={undecodable!r}, raw_properties={raw}"


def _note(d: Delivery, what: str) -> None:
    """Add ``what`` to the things of ``d`` that could not be decoded."""
    d.undecodable = what if d.undecodable is None else f"{d.undecodable}; {what}"


class Confirm:
    """basic.ack (nack=False) or basic.nack (nack=True) from the broker (publisher confirms)."""

    __slots__ = ("channel", "delivery_tag", "multiple", "nack")

    def __init__(self, channel: int, delivery_tag: int, multiple: bool, nack: bool) -> None:
        self.channel = channel
        self.delivery_tag = delivery_tag
        self.multiple = multiple
        self.nack = nack

    def __repr__(self) -> str:
        return (f"Confirm(channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"multiple={self.multiple}, nack={self.nack})")


class MethodFrame:
    """Any other method frame, decoded by pamqp."""

    __slots__ = ("channel", "method")

    def __init__(self, channel: int, method: Any) -> None:
        self.channel = channel
        self.method = method

    def __repr__(self) -> str:
        return f"MethodFrame(channel={self.channel}, method={self.method!r})"


class Heartbeat:
    """A heartbeat frame (channel 0)."""

    __slots__ = ("channel",)

    def __init__(self, channel: int = 0) -> None:
        self.channel = channel

    def __repr__(self) -> str:
        return "Heartbeat()"


# --------------------------------------------------------------------------- errors
_REPLY_TEXT = {501: "FRAME_ERROR", 502: "SYNTAX_ERROR", 505: "UNEXPECTED_FRAME"}


def _ferr(code: int, what: str) -> FrameError:
    """A FrameError with the AMQP reply code the connection must be closed with."""
    text = _REPLY_TEXT[code]
    return FrameError(f"{what} ({code} {text}); the connection must be closed", code, text)


class _Bad(Exception):
    """A value inside an already delimited frame does not decode (the text says what). Whoever
    called the decoder decides: a method frame fails the connection (FrameError 502), a content
    header's properties fail only that delivery."""


# --------------------------------------------------------------------------- field tables: encode
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_HDR = struct.Struct(">BHI")
_INT_TAGS: dict[str, tuple[struct.Struct, int, int]] = {
    "b": (struct.Struct(">b"), -(1 << 7), (1 << 7) - 1),
    "B": (_U8, 0, (1 << 8) - 1),
    "s": (struct.Struct(">h"), -(1 << 15), (1 << 15) - 1),
    "u": (_U16, 0, (1 << 16) - 1),
    "I": (_I32, -(1 << 31), (1 << 31) - 1),
    "i": (_U32, 0, (1 << 32) - 1),
    "l": (_I64, -(1 << 63), (1 << 63) - 1),
    "L": (_U64, 0, (1 << 64) - 1),
}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_SECOND = datetime.timedelta(seconds=1)
# AMQP decimals are a 32-bit mantissa and a scale: exact in this context, whatever the thread's one is
_EXACT = decimal.Context(prec=64, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])


def _timestamp_seconds(value: Any) -> int:
    """POSIX seconds of a datetime (naive means UTC) or an int, checked to fit uint64."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        secs = (value - _EPOCH) // _SECOND
    elif isinstance(value, int) and not isinstance(value, bool):
        secs = value
    else:
        raise TypeError(f"timestamp must be a datetime or int, got {type(value).__name__}")
    if not 0 <= secs < (1 << 64):
        raise ValueError(f"timestamp {value!r} is outside 0..2**64-1 seconds")
    return secs


def _encode_decimal(out: bytearray, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = decimal.Decimal(value)
    if not isinstance(value, decimal.Decimal):
        raise TypeError(f"decimal value must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"decimal {value} is not finite")
    exp = value.as_tuple().exponent
    assert isinstance(exp, int)
    scale = -exp if exp < 0 else 0
    if scale > 255:
        raise ValueError(f"decimal {value} has more than 255 decimal places")
    raw = int(value.scaleb(scale, _EXACT)) if scale else int(value)
    if not -(1 << 31) <= raw < (1 << 31):
        raise ValueError(f"decimal {value} does not fit AMQP's 32-bit decimal")
    out += _U8.pack(scale)
    out += _I32.pack(raw)


def _encode_bytes(out: bytearray, tag: bytes, value: Any) -> None:
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"{tag.decode()} value must be str or bytes, got {type(value).__name__}")
    if len(data) > 0xFFFFFFFF:
        raise ValueError("long string longer than 2**32-1 bytes")
    out += tag
    out += _U32.pack(len(data))
    out += data


def _encode_typed(out: bytearray, tag: str, value: Any, depth: int) -> None:
    """Encode ``value`` with exactly the AMQP type ``tag`` (range-checked)."""
    spec = _INT_TAGS.get(tag)
    if spec is not None:
        if not isinstance(value, int):
            raise TypeError(f"Typed({tag!r}) needs an int, got {type(value).__name__}")
        st, lo, hi = spec
        if not lo <= value <= hi:
            raise ValueError(f"{value} is outside the range of AMQP type {tag!r} ({lo}..{hi})")
        out += tag.encode()
        out += st.pack(value)
    elif tag == "t":
        if not isinstance(value, int):
            raise TypeError(f"Typed('t') needs a bool, got {type(value).__name__}")
        out += b"t\x01" if value else b"t\x00"
    elif tag in ("f", "d"):
        if not isinstance(value, (int, float)):
            raise TypeError(f"Typed({tag!r}) needs a float, got {type(value).__name__}")
        try:
            packed = (_F32 if tag == "f" else _F64).pack(float(value))
        except (OverflowError, struct.error) as exc:
            raise ValueError(f"{value!r} does not fit AMQP type {tag!r}") from exc
        out += tag.encode()
        out += packed
    elif tag == "D":
        out += b"D"
        _encode_decimal(out, value)
    elif tag == "S":
        _encode_bytes(out, b"S", value)
    elif tag == "x":
        if isinstance(value, str):
            raise TypeError("Typed('x') needs bytes, got str")
        _encode_bytes(out, b"x", value)
    elif tag == "T":
        out += b"T"
        out += _U64.pack(_timestamp_seconds(value))
    elif tag == "V":
        if value is not None:
            raise ValueError("Typed('V') takes only None")
        out += b"V"
    elif tag == "F":
        if not isinstance(value, Mapping):
            raise TypeError(f"Typed('F') needs a mapping, got {type(value).__name__}")
        out += b"F"
        _encode_table(out, value, depth + 1)
    elif tag == "A":
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"Typed('A') needs a list, got {type(value).__name__}")
        out += b"A"
        _encode_array(out, value, depth + 1)
    else:
        raise ValueError(f"unknown AMQP field type tag {tag!r}")


def _encode_value(out: bytearray, value: Any, depth: int) -> None:
    """Encode one field value with its Go-readable tag (see the module contract)."""
    if isinstance(value, str):
        data = value.encode("utf-8")
        out += b"S"
        out += _U32.pack(len(data))
        out += data
    elif isinstance(value, bool):
        out += b"t\x01" if value else b"t\x00"
    elif isinstance(value, int):
        if -(1 << 31) <= value < (1 << 31):
            out += b"I"
            out += _I32.pack(value)
        elif -(1 << 63) <= value < (1 << 63):
            out += b"l"
            out += _I64.pack(value)
        else:
            raise ValueError(f"int {value} does not fit a signed 64-bit AMQP field")
    elif isinstance(value, float):
        out += b"d"
        out += _F64.pack(value)
    elif isinstance(value, Typed):
        _encode_typed(out, value.tag, value.value, depth)
    elif value is None:
        out += b"V"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _encode_bytes(out, b"x", value)
    elif isinstance(value, Mapping):
        out += b"F"
        _encode_table(out, value, depth + 1)
    elif isinstance(value, (list, tuple)):
        out += b"A"
        _encode_array(out, value, depth + 1)
    elif isinstance(value, datetime.datetime):
        out += b"T"
        out += _U64.pack(_timestamp_seconds(value))
    elif isinstance(value, decimal.Decimal):
        out += b"D"
        _encode_decimal(out, value)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in an AMQP field table")


def _encode_table(out: bytearray, table: Mapping[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"field table nested deeper than {MAX_DEPTH}")
    start = len(out)
    out += b"\x00\x00\x00\x00"
    for key, value in table.items():
        if not isinstance(key, str):
            raise TypeError(f"field table keys must be str, got {type(key).__name__}")
        k = key.encode("utf-8")
        if len(k) > 255:
            raise ValueError(f"field table key longer than 255 bytes: {key[:40]!r}...")
        out += _U8.pack(len(k))
        out += k
        _encode_value(out, value, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def _encode_array(out: bytearray, items: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"field array nested deeper than {MAX_DEPTH}")
    start = len(out)
    out += b"\x00\x00\x00\x00"
    for value in items:
        _encode_value(out, value, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def encode_table(table: Mapping[str, Any]) -> bytes:
    """Field table payload WITH its 4-byte length prefix. Raises ValueError/TypeError on bad values."""
    if not isinstance(table, Mapping):
        raise TypeError(f"field table must be a mapping, got {type(table).__name__}")
    out = bytearray()
    _encode_table(out, table, 1)
    return bytes(out)


# --------------------------------------------------------------------------- field tables: decode
def _need(off: int, n: int, end: int, what: str) -> None:
    if n < 0 or off + n > end:
        raise _Bad(f"truncated {what}")


def _shortstr(buf: Any, off: int, end: int, what: str) -> tuple[str, int]:
    _need(off, 1, end, what)
    n = buf[off]
    off += 1
    _need(off, n, end, what)
    try:
        return bytes(buf[off:off + n]).decode("utf-8"), off + n
    except UnicodeDecodeError:
        raise _Bad(f"{what} is not UTF-8") from None


def _name(buf: Any, off: int, end: int, what: str, d: Delivery) -> tuple[str, int]:
    """An exchange or routing key: one that is not UTF-8 (RabbitMQ forwards those) is decoded
    with ``surrogateescape`` (``.encode("utf-8", "surrogateescape")`` gives the bytes back) and
    noted in ``d.undecodable``."""
    _need(off, 1, end, what)
    n = buf[off]
    off += 1
    _need(off, n, end, what)
    raw = bytes(buf[off:off + n])
    try:
        return raw.decode("utf-8"), off + n
    except UnicodeDecodeError:
        _note(d, f"{what} is not UTF-8")
        return raw.decode("utf-8", "surrogateescape"), off + n


def _decode_value(buf: Any, off: int, end: int, depth: int) -> tuple[Any, int]:
    _need(off, 1, end, "field value")
    tag = buf[off]
    off += 1
    if tag == 0x53:  # S
        _need(off, 4, end, "long string")
        n = _U32.unpack_from(buf, off)[0]
        off += 4
        _need(off, n, end, "long string")
        raw = bytes(buf[off:off + n])
        try:
            return raw.decode("utf-8"), off + n
        except UnicodeDecodeError:
            return raw, off + n
    spec = _INT_TAGS.get(chr(tag))
    if spec is not None:
        st = spec[0]
        _need(off, st.size, end, "integer field")
        return st.unpack_from(buf, off)[0], off + st.size
    if tag == 0x74:  # t
        _need(off, 1, end, "boolean field")
        return buf[off] != 0, off + 1
    if tag == 0x56:  # V
        return None, off
    if tag == 0x46:  # F
        return _decode_table(buf, off, end, depth + 1)
    if tag == 0x41:  # A
        return _decode_array(buf, off, end, depth + 1)
    if tag == 0x64:  # d
        _need(off, 8, end, "double field")
        return _F64.unpack_from(buf, off)[0], off + 8
    if tag == 0x66:  # f
        _need(off, 4, end, "float field")
        return _F32.unpack_from(buf, off)[0], off + 4
    if tag == 0x54:  # T
        _need(off, 8, end, "timestamp field")
        secs = _U64.unpack_from(buf, off)[0]
        try:
            return _EPOCH + datetime.timedelta(seconds=secs), off + 8
        except OverflowError:
            raise _Bad(f"timestamp {secs} out of range") from None
    if tag == 0x78:  # x
        _need(off, 4, end, "byte array")
        n = _U32.unpack_from(buf, off)[0]
        off += 4
        _need(off, n, end, "byte array")
        return bytes(buf[off:off + n]), off + n
    if tag == 0x44:  # D
        _need(off, 5, end, "decimal field")
        scale = buf[off]
        raw = _I32.unpack_from(buf, off + 1)[0]
        return decimal.Decimal(raw).scaleb(-scale, _EXACT), off + 5
    raise _Bad(f"unknown field type tag 0x{tag:02x}")


def _decode_table(buf: Any, off: int, end: int, depth: int) -> tuple[dict[str, Any], int]:
    if depth > MAX_DEPTH:
        raise _Bad(f"field table nested deeper than {MAX_DEPTH}")
    _need(off, 4, end, "field table")
    n = _U32.unpack_from(buf, off)[0]
    off += 4
    _need(off, n, end, "field table")
    tend = off + n
    table: dict[str, Any] = {}
    while off < tend:
        key, off = _shortstr(buf, off, tend, "field table key")
        table[key], off = _decode_value(buf, off, tend, depth)
    return table, off


def _decode_array(buf: Any, off: int, end: int, depth: int) -> tuple[list[Any], int]:
    if depth > MAX_DEPTH:
        raise _Bad(f"field array nested deeper than {MAX_DEPTH}")
    _need(off, 4, end, "field array")
    n = _U32.unpack_from(buf, off)[0]
    off += 4
    _need(off, n, end, "field array")
    tend = off + n
    items: list[Any] = []
    while off < tend:
        value, off = _decode_value(buf, off, tend, depth)
        items.append(value)
    return items, off


def decode_table(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[dict[str, Any], int]:
    """Decode a length-prefixed field table at ``offset``; returns (table, offset after it)."""
    buf = bytes(data)
    if offset < 0:
        raise _ferr(502, "negative offset")
    try:
        return _decode_table(buf, offset, len(buf), 1)
    except _Bad as exc:
        raise _ferr(502, str(exc)) from None


# --------------------------------------------------------------------------- content properties
_SHORTSTR_PROPS = frozenset(("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
                             "message_id", "type", "user_id", "app_id", "cluster_id"))


def encode_properties(props: BasicProperties | None) -> bytes:
    """Property-flags + property list of a content header (no class/weight/size prefix)."""
    if props is None:
        return b"\x00\x00"
    flags = 0
    out = bytearray(b"\x00\x00")
    bit = 0x8000
    for name in _PROP_NAMES:
        value = getattr(props, name)
        if value is not None:
            flags |= bit
            if name in _SHORTSTR_PROPS:
                if not isinstance(value, str):
                    raise TypeError(f"property {name} must be str, got {type(value).__name__}")
                data = value.encode("utf-8")
                if len(data) > 255:
                    raise ValueError(f"property {name} is longer than 255 bytes")
                out += _U8.pack(len(data))
                out += data
            elif name == "headers":
                _encode_table(out, value, 1)
            elif name == "timestamp":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"property timestamp must be int, got {type(value).__name__}")
                if not 0 <= value < (1 << 64):
                    raise ValueError(f"property timestamp {value} outside 0..2**64-1")
                out += _U64.pack(value)
            else:  # delivery_mode, priority: octets
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"property {name} must be int, got {type(value).__name__}")
                if not 0 <= value <= 255:
                    raise ValueError(f"property {name} {value} outside 0..255")
                out.append(value)
        bit >>= 1
    _U16.pack_into(out, 0, flags)
    return bytes(out)


def _decode_properties(buf: Any, off: int, end: int) -> tuple[BasicProperties, int]:
    _need(off, 2, end, "property flags")
    flags = _U16.unpack_from(buf, off)[0]
    off += 2
    more = flags & 1
    while more:  # continuation flag words: no basic property lives there, skip them
        _need(off, 2, end, "property flags")
        more = _U16.unpack_from(buf, off)[0] & 1
        off += 2
    props = BasicProperties()
    if not flags & 0xFFFC:
        return props, off
    bit = 0x8000
    value: Any
    for name in _PROP_NAMES:
        if flags & bit:
            if name in _SHORTSTR_PROPS:
                value, off = _shortstr(buf, off, end, f"property {name}")
            elif name == "headers":
                value, off = _decode_table(buf, off, end, 1)
            elif name == "timestamp":
                _need(off, 8, end, "property timestamp")
                value = _U64.unpack_from(buf, off)[0]
                off += 8
            else:
                _need(off, 1, end, f"property {name}")
                value = buf[off]
                off += 1
            setattr(props, name, value)
        bit >>= 1
    return props, off


def decode_properties(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[BasicProperties, int]:
    """Inverse of ``encode_properties``; returns (properties, offset after them)."""
    buf = bytes(data)
    if offset < 0:
        raise _ferr(502, "negative offset")
    try:
        return _decode_properties(buf, offset, len(buf))
    except _Bad as exc:
        raise _ferr(502, str(exc)) from None


# --------------------------------------------------------------------------- encoders of method frames
def _shortstr_bytes(value: str, what: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > 255:
        raise ValueError(f"{what} is longer than 255 bytes (UTF-8)")
    return data


def _check_channel(channel: int) -> None:
    if not 0 <= channel <= 0xFFFF:
        raise ValueError(f"channel {channel} outside 0..65535")


def append_publish(out: bytearray, channel: int, exchange: str, routing_key: str,
                   body: bytes | bytearray | memoryview, encoded_properties: bytes,
                   mandatory: bool = False, frame_max: int = 131072) -> None:
    """Append basic.publish + content header + body frame(s) (split at frame_max) to ``out``."""
    if frame_max < FRAME_MIN_SIZE:
        raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {FRAME_MIN_SIZE}")
    _check_channel(channel)
    ex = _shortstr_bytes(exchange, "exchange name")
    rk = _shortstr_bytes(routing_key, "routing key")
    mv = memoryview(body).cast("B") if not isinstance(body, bytes) else body
    size = len(mv)
    method_size = 4 + 2 + 1 + len(ex) + 1 + len(rk) + 1
    out += _HDR.pack(FRAME_METHOD, channel, method_size)
    out += b"\x00\x3c\x00\x28\x00\x00"
    out += _U8.pack(len(ex))
    out += ex
    out += _U8.pack(len(rk))
    out += rk
    out += b"\x01\xce" if mandatory else b"\x00\xce"
    out += _HDR.pack(FRAME_HEADER, channel, 12 + len(encoded_properties))
    out += b"\x00\x3c\x00\x00"
    out += _U64.pack(size)
    out += encoded_properties
    out += b"\xce"
    chunk = frame_max - 8
    for start in range(0, size, chunk):
        part = mv[start:start + chunk]
        out += _HDR.pack(FRAME_BODY, channel, len(part))
        out += part
        out += b"\xce"


def append_ack(out: bytearray, channel: int, delivery_tag: int, multiple: bool = False) -> None:
    """Append a basic.ack method frame."""
    _check_channel(channel)
    out += _HDR.pack(FRAME_METHOD, channel, 13)
    out += b"\x00\x3c\x00\x50"
    out += _U64.pack(delivery_tag)
    out += b"\x01\xce" if multiple else b"\x00\xce"


#: out-of-order settled delivery tags an Acks remembers for coalescing (past it: not coalesced)
MAX_OUT_OF_ORDER = 65536


class _Shift:
    """A frame-reader hook whose deliveries get ``base`` added to their tag first (set_hook)."""

    __slots__ = ("base", "fn")

    def __init__(self, fn: Callable[[Delivery], Any], base: int) -> None:
        self.fn = fn
        self.base = base

    def __call__(self, d: Delivery) -> Any:
        d.delivery_tag += self.base
        return self.fn(d)


class ShiftedAck:
    """``Acks.shifted(base)``: acks ``tag - base`` on its channel."""

    __slots__ = ("_acks", "base")

    def __init__(self, acks: Acks, base: int) -> None:
        self._acks = acks
        self.base = base

    def __call__(self, delivery_tag: int, multiple: bool = False) -> None:
        if delivery_tag < self.base:
            raise ValueError(f"delivery tag {delivery_tag} is below the tag base {self.base}")
        return self._acks.ack(delivery_tag - self.base, multiple)


class Acks:
    """One channel's settle bookkeeping (see frames.pyi): in-order acks of one loop turn leave as a
    single basic.ack(multiple) frame, written when the connection flushes."""

    __slots__ = ("_above", "_channel", "_cid", "_conn", "_run_count", "_run_hi", "_upto")

    def __init__(self, channel: Any, connection: Any, channel_id: int) -> None:
        _check_channel(channel_id)
        self._channel = channel
        self._conn = connection
        self._cid = channel_id
        self._upto = 0  # every tag up to here is settled
        self._above: set[int] = set()  # settled tags above _upto + 1
        self._run_hi = 0
        self._run_count = 0

    @property
    def settled_upto(self) -> int:
        """Every delivery tag up to this one is settled."""
        return self._upto

    @property
    def pending(self) -> int:
        """In-order acks waiting for ``emit`` (the next flush)."""
        return self._run_count

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """basic.ack (the channel's ``basic_ack``)."""
        if self._channel._closed_exc is not None:
            self._channel._raise_closed()
        if not multiple and delivery_tag == self._upto + 1:
            upto = delivery_tag
            above = self._above
            if above:
                while (upto + 1) in above:
                    upto += 1
                    above.discard(upto)
            self._upto = upto
            if self._run_count == 0:
                conn = self._conn
                conn._ack_dirty.append(self._channel)
                if not conn._flush_pending:
                    conn._schedule_flush()
            self._run_hi = delivery_tag
            self._run_count += 1
            return
        self.emit()
        conn = self._conn
        append_ack(conn._wbuf, self._cid, delivery_tag, multiple)
        self.settle(delivery_tag, multiple)
        if not conn._flush_pending:
            conn._schedule_flush()

    def shifted(self, tag_base: int) -> ShiftedAck:
        """``ack`` for tags shifted up by ``tag_base`` (a recovering channel's later generations):
        ``shifted(base)(tag)`` acks ``tag - base`` here."""
        if not 0 <= tag_base < 1 << 64:
            raise OverflowError(f"tag_base {tag_base} is not an unsigned 64-bit integer")
        return ShiftedAck(self, tag_base)

    def settle(self, delivery_tag: int, multiple: bool) -> None:
        """Advance the settled watermark (tags no answer is owed for any more)."""
        if multiple:
            if delivery_tag > self._upto:
                self._upto = delivery_tag
                self._above = {t for t in self._above if t > delivery_tag}
        elif delivery_tag == self._upto + 1:
            self._upto = delivery_tag
        elif delivery_tag > self._upto:
            if len(self._above) < MAX_OUT_OF_ORDER:  # bounded: past it, later acks are not coalesced
                self._above.add(delivery_tag)
            return
        above = self._above
        while (self._upto + 1) in above:
            self._upto += 1
            above.discard(self._upto)

    def emit(self) -> None:
        """Write the pending in-order ack run into the connection's buffer (before any other settle
        frame of the channel, and when the connection flushes)."""
        count = self._run_count
        if count == 0:
            return
        self._run_count = 0
        if self._channel._closed_exc is not None:
            return
        append_ack(self._conn._wbuf, self._cid, self._run_hi, count > 1)


def append_nack(out: bytearray, channel: int, delivery_tag: int, multiple: bool = False,
                requeue: bool = True) -> None:
    """Append a basic.nack method frame."""
    _check_channel(channel)
    out += _HDR.pack(FRAME_METHOD, channel, 13)
    out += b"\x00\x3c\x00\x78"
    out += _U64.pack(delivery_tag)
    out += _U8.pack((1 if multiple else 0) | (2 if requeue else 0))
    out += b"\xce"


def append_reject(out: bytearray, channel: int, delivery_tag: int, requeue: bool = True) -> None:
    """Append a basic.reject method frame."""
    _check_channel(channel)
    out += _HDR.pack(FRAME_METHOD, channel, 13)
    out += b"\x00\x3c\x00\x5a"
    out += _U64.pack(delivery_tag)
    out += b"\x01\xce" if requeue else b"\x00\xce"


def marshal_method(method: _PamqpFrame, channel: int) -> bytes:
    """Encode any method frame (pamqp), except that field tables in it use the Go-safe encoder.

    This walks the method's fields like pamqp's own ``Frame.marshal`` (same bit packing), but
    encodes ``table`` fields with :func:`encode_table` instead of pamqp's int-size-guessing one.
    """
    _check_channel(channel)
    # no method.validate(): pamqp's name rules are narrower than RabbitMQ's (the channel checks names)
    out = bytearray(_U32.pack(method.index))
    bits = nbits = -1
    for name in method.__slots__:
        dtype = method.amqp_type(name)
        value: Any = getattr(method, name, 0)
        if dtype == "bit":
            if nbits == -1 or nbits == 8:
                if nbits == 8:
                    out.append(bits)
                bits, nbits = 0, 0
            if value:
                bits |= 1 << nbits
            nbits += 1
            continue
        if nbits != -1:
            out.append(bits)
            bits = nbits = -1
        if dtype == "table":
            _encode_table(out, value or {}, 1)
        else:
            out += _penc.by_type(value, dtype)
    if nbits != -1:
        out.append(bits)
    return _HDR.pack(FRAME_METHOD, channel, len(out)) + bytes(out) + b"\xce"


# --------------------------------------------------------------------------- frame reader
class _Partial:
    """A delivery whose content header/body have not fully arrived yet (one per channel).

    ``dropped`` counts the body bytes of an oversized delivery, which are not kept."""

    __slots__ = ("body", "delivery", "dropped", "have_header", "size")

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.have_header = False
        self.size = 0
        self.dropped = 0
        self.body = bytearray()


_Item = Delivery | Confirm | MethodFrame | Heartbeat


def _bad_properties(d: Delivery, exc: Exception, raw: bytes) -> None:
    """Mark ``d``: its property list (``raw``) did not decode because of ``exc``."""
    _note(d, str(exc) if isinstance(exc, _Bad) else f"properties do not decode: {exc!r}")
    d.raw_properties = raw
    d.properties = BasicProperties()


def _check_int(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int (bytes), got {type(value).__name__}")


def _check_frame_max(value: int) -> int:
    _check_int(value, "frame_max")
    if not FRAME_MIN_SIZE <= value <= FRAME_MAX_LIMIT:
        raise ValueError(f"frame_max {value} is outside {FRAME_MIN_SIZE}..{FRAME_MAX_LIMIT}: every "
                         "connection has a frame limit (there is no 0 = unlimited)")
    return value


def _check_max_message_size(value: int) -> int:
    _check_int(value, "max_message_size")
    if not 1 <= value < (1 << 64):
        raise ValueError(f"max_message_size {value} is outside 1..2**64-1 bytes (there is no "
                         "0 = unlimited)")
    return value


def _oversized_note(size: int, limit: int) -> str:
    return f"body of {size} bytes exceeds max_message_size {limit}"


class FrameReader:
    """Incremental decoder: feed it whatever ``data_received`` got, get complete items back."""

    __slots__ = ("_buf", "_error", "_frame_max", "_hooks", "_max_message_size", "_partial", "hook_errors",
                 "oversized_count")

    def __init__(self, frame_max: int = 131072,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._frame_max = _check_frame_max(frame_max)
        self._max_message_size = _check_max_message_size(max_message_size)
        self._buf = bytearray()
        self._partial: dict[int, _Partial] = {}
        self._error: FrameError | None = None
        #: deliveries handed on marked ``oversized`` so far
        self.oversized_count = 0
        self._hooks: dict[int, dict[str, Callable[[Delivery], Any]]] = {}
        #: (delivery, exception) of hooks that raised, for the caller to report
        self.hook_errors: list[tuple[Delivery, Exception]] = []

    def set_hook(self, channel: int, consumer_tag: str, fn: Callable[[Delivery], Any],
                 tag_base: int = 0) -> None:
        """Hand basic.deliver items of this channel and consumer to ``fn(delivery)`` as they complete,
        their delivery tag raised by ``tag_base`` first (see frames.pyi)."""
        if not callable(fn):
            raise TypeError(f"hook must be callable, not {type(fn).__name__}")
        if not isinstance(consumer_tag, str):
            raise TypeError(f"consumer_tag must be str, not {type(consumer_tag).__name__}")
        if not 0 <= tag_base < 1 << 64:
            raise OverflowError(f"tag_base {tag_base} is not an unsigned 64-bit integer")
        if tag_base:
            fn = _Shift(fn, tag_base)
        self._hooks.setdefault(int(channel), {})[consumer_tag] = fn

    def clear_hook(self, channel: int, consumer_tag: str | None = None) -> None:
        """Forget the hook of one consumer of ``channel`` (None: every hook of the channel)."""
        if consumer_tag is None:
            self._hooks.pop(channel, None)
            return
        per = self._hooks.get(channel)
        if per is not None:
            per.pop(consumer_tag, None)
            if not per:
                del self._hooks[channel]

    def _done(self, d: Delivery, items: list[_Item]) -> None:
        """A delivery is complete: to its consumer's hook if it has one and nothing completed
        earlier in this feed waits in ``items`` (wire order), else to ``items``."""
        if self._hooks and d.kind == 0 and not d.oversized and not items:
            per = self._hooks.get(d.channel)
            fn = per.get(d.consumer_tag) if per is not None else None
            if fn is not None:
                try:
                    fn(d)
                except Exception as exc:
                    self.hook_errors.append((d, exc))
                return
        items.append(d)

    @property
    def frame_max(self) -> int:
        """Frames larger than this (payload + 8) raise FrameError(501)."""
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int) -> None:
        self._frame_max = _check_frame_max(value)

    @property
    def max_message_size(self) -> int:
        """A delivery declaring a larger body is dropped and marked ``oversized``."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, value: int) -> None:
        self._max_message_size = _check_max_message_size(value)

    def pending(self) -> int:
        """Bytes buffered but not yet forming a complete item."""
        return len(self._buf) + sum(len(p.body) for p in self._partial.values())

    def feed(self, data: bytes | bytearray | memoryview) -> list[_Item]:
        """Consume ``data`` and return every item completed by it, in wire order."""
        if self._error is not None:
            raise _ferr(self._error.reply_code, "reader already failed")
        buf = self._buf
        buf += data
        items: list[_Item] = []
        pos = 0
        n = len(buf)
        frame_max = self._frame_max
        try:
            while n - pos >= 7:
                ftype, channel, size = _HDR.unpack_from(buf, pos)
                if ftype not in (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT):
                    raise _ferr(501, f"unknown frame type {ftype}")
                if ftype == FRAME_HEARTBEAT and (channel != 0 or size != 0):
                    raise _ferr(501, f"heartbeat on channel {channel} with {size} payload bytes")
                if size + 8 > frame_max:
                    raise _ferr(501, f"frame of {size + 8} bytes exceeds frame_max {frame_max}")
                if n - pos < size + 8:
                    break
                start = pos + 7
                end = start + size
                if buf[end] != FRAME_END:
                    raise _ferr(501, f"frame end byte is 0x{buf[end]:02x}, not 0xce")
                pos = end + 1
                if ftype == FRAME_METHOD:
                    item = self._method(buf, start, end, channel)
                    if item is not None:
                        items.append(item)
                elif ftype == FRAME_HEADER:
                    self._header(buf, start, end, channel, items)
                elif ftype == FRAME_BODY:
                    self._body(buf, start, end, channel, items)
                else:
                    items.append(Heartbeat(0))
        except FrameError as exc:
            self._error = exc
            raise
        except _Bad as exc:  # a method frame that does not decode
            self._error = _ferr(502, str(exc))
            raise self._error from None
        except Exception as exc:  # safety net: the contract is FrameError and nothing else
            self._error = _ferr(502, f"undecodable frame: {exc!r}")
            raise self._error from exc
        del buf[:pos]
        return items

    def _method(self, buf: bytearray, off: int, end: int, channel: int) -> _Item | None:
        if channel in self._partial:
            raise _ferr(505, f"method frame on channel {channel} while content is being assembled")
        _need(off, 4, end, "method frame")
        class_id, method_id = _U16.unpack_from(buf, off)[0], _U16.unpack_from(buf, off + 2)[0]
        off += 4
        if class_id == 60:
            if method_id == 60:  # deliver
                ctag, off = _shortstr(buf, off, end, "consumer tag")
                _need(off, 9, end, "basic.deliver")
                d = Delivery(0, channel, ctag, _U64.unpack_from(buf, off)[0], bool(buf[off + 8] & 1))
                d.exchange, off = _name(buf, off + 9, end, "exchange", d)
                d.routing_key, off = _name(buf, off, end, "routing key", d)
                self._partial[channel] = _Partial(d)
                return None
            if method_id == 71:  # get-ok
                _need(off, 9, end, "basic.get-ok")
                d = Delivery(1, channel, "", _U64.unpack_from(buf, off)[0], bool(buf[off + 8] & 1))
                d.exchange, off = _name(buf, off + 9, end, "exchange", d)
                d.routing_key, off = _name(buf, off, end, "routing key", d)
                _need(off, 4, end, "basic.get-ok")
                d.message_count = _U32.unpack_from(buf, off)[0]
                self._partial[channel] = _Partial(d)
                return None
            if method_id == 50:  # return
                _need(off, 2, end, "basic.return")
                code = _U16.unpack_from(buf, off)[0]
                text, off = _shortstr(buf, off + 2, end, "reply text")
                d = Delivery(2, channel, "", 0, False, reply_code=code, reply_text=text)
                d.exchange, off = _name(buf, off, end, "exchange", d)
                d.routing_key, off = _name(buf, off, end, "routing key", d)
                self._partial[channel] = _Partial(d)
                return None
            if method_id == 80 or method_id == 120:  # ack / nack
                _need(off, 9, end, "basic.ack/nack")
                tag = _U64.unpack_from(buf, off)[0]
                return Confirm(channel, tag, bool(buf[off + 8] & 1), method_id == 120)
        cls = _pc.INDEX_MAPPING.get((class_id << 16) | method_id)
        if cls is None:
            raise _ferr(502, f"unknown method {class_id}.{method_id}")
        method = cls()
        try:
            method.unmarshal(bytes(buf[off:end]))
        except Exception as exc:
            raise _ferr(502, f"undecodable {cls.__name__}: {exc}") from exc
        return MethodFrame(channel, method)

    def _header(self, buf: bytearray, off: int, end: int, channel: int, items: list[_Item]) -> None:
        part = self._partial.get(channel)
        if part is None or part.have_header:
            raise _ferr(505, f"content header on channel {channel} without a content method")
        _need(off, 12, end, "content header")
        size = _U64.unpack_from(buf, off + 4)[0]
        try:
            part.delivery.properties = _decode_properties(buf, off + 12, end)[0]
        except Exception as exc:  # the frame is sound: fail this message only, keep its bytes
            _bad_properties(part.delivery, exc, bytes(buf[off + 12:end]))
        part.have_header = True
        part.size = size
        if size > self._max_message_size:  # its body frames are counted and dropped (_body)
            part.delivery.oversized = size
            _note(part.delivery, _oversized_note(size, self._max_message_size))
        elif size == 0:
            del self._partial[channel]
            self._done(part.delivery, items)

    def _body(self, buf: bytearray, off: int, end: int, channel: int, items: list[_Item]) -> None:
        part = self._partial.get(channel)
        if part is None or not part.have_header:
            raise _ferr(505, f"content body on channel {channel} without a content header")
        if part.delivery.oversized:
            part.dropped += end - off
            if part.dropped > part.size:
                raise _ferr(505, f"content body of {part.dropped} bytes exceeds body size {part.size}")
            if part.dropped == part.size:
                del self._partial[channel]
                self.oversized_count += 1
                items.append(part.delivery)
            return
        have = len(part.body) + (end - off)
        if have > part.size:
            raise _ferr(505, f"content body of {have} bytes exceeds body size {part.size}")
        if have == part.size:
            if part.body:
                part.body += buf[off:end]
                part.delivery.body = bytes(part.body)
            else:
                part.delivery.body = bytes(buf[off:end])
            del self._partial[channel]
            self._done(part.delivery, items)
        else:
            part.body += buf[off:end]


__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE", "FRAME_BODY", "FRAME_END", "FRAME_HEADER", "FRAME_HEARTBEAT",
    "FRAME_MAX_LIMIT", "FRAME_METHOD", "FRAME_MIN_SIZE", "GO_UNSAFE_TAGS", "HEARTBEAT_FRAME",
    "MAX_OUT_OF_ORDER", "Acks", "BasicProperties", "Confirm", "Delivery", "FrameReader", "Heartbeat",
    "MethodFrame", "ShiftedAck", "Typed",
    "append_ack", "append_nack", "append_publish", "append_reject", "decode_properties", "decode_table",
    "encode_properties", "encode_table", "marshal_method",
]
