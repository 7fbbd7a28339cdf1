"""Pure-Python twin of src_cy/streamwire.pyx: RabbitMQ Streams wire for Mmate messages.

Contract: mmate_fast/_cy/streamwire.pyi. A stream stores AMQP 1.0 messages. ``encode_message`` turns
what our AMQP 0-9-1 path publishes (the pre-encoded basic properties + the envelope body) into the
AMQP 1.0 message RabbitMQ itself stores when that publish lands in a stream (its 0-9-1 -> 1.0 mapping:
message annotations, properties, application properties, one data section), so a message written
through the stream protocol reads the same as one written through a queue publish, to any consumer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from mmate_fast.errors import StreamProtocolError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_CHUNK = struct.Struct(">bbHIqQQiIII")  # the 48-byte osiris chunk header
CHUNK_HEADER_SIZE = _CHUNK.size

# property flags of AMQP 0-9-1 basic properties, in wire order
_F_CONTENT_TYPE = 1 << 15
_F_CONTENT_ENCODING = 1 << 14
_F_HEADERS = 1 << 13
_F_DELIVERY_MODE = 1 << 12
_F_PRIORITY = 1 << 11
_F_CORRELATION_ID = 1 << 10
_F_REPLY_TO = 1 << 9
_F_EXPIRATION = 1 << 8
_F_MESSAGE_ID = 1 << 7
_F_TIMESTAMP = 1 << 6
_F_TYPE = 1 << 5
_F_USER_ID = 1 << 4
_F_APP_ID = 1 << 3
_F_CLUSTER_ID = 1 << 2

_NULL = b"\x40"


def _str(code8: int, code32: int, data: bytes) -> bytes:
    n = len(data)
    if n < 256:
        return bytes((code8, n)) + data
    return bytes((code32,)) + _U32.pack(n) + data


def _utf8(data: bytes) -> bytes:
    return _str(0xA1, 0xB1, data)


def _sym(data: bytes) -> bytes:
    return _str(0xA3, 0xB3, data)


def _compound(code8: int, code32: int, count: int, content: bytes) -> bytes:
    if len(content) + 1 <= 255 and count <= 255:
        return bytes((code8, len(content) + 1, count)) + content
    return bytes((code32,)) + _U32.pack(len(content) + 4) + _U32.pack(count) + content


def _int(v: int) -> bytes:
    return b"\x54" + struct.pack(">b", v) if -128 <= v <= 127 else b"\x71" + struct.pack(">i", v)


def _long(v: int) -> bytes:
    return b"\x55" + struct.pack(">b", v) if -128 <= v <= 127 else b"\x81" + _I64.pack(v)


def _uint(v: int) -> bytes:
    if v == 0:
        return b"\x43"
    return b"\x52" + bytes((v,)) if v < 256 else b"\x70" + _U32.pack(v)


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def take(self, n: int) -> bytes:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise ValueError("AMQP basic properties end before their fields do")
        self.pos = p + n
        return self.data[p : p + n]

    def octet(self) -> int:
        return self.take(1)[0]

    def shortstr(self) -> bytes:
        return self.take(self.octet())

    def longstr(self) -> bytes:
        return self.take(_U32.unpack(self.take(4))[0])


def _table_value(r: _Reader, t: int) -> bytes | None:
    """One 0-9-1 field value as AMQP 1.0 (RabbitMQ's mapping), or None for the types it drops."""
    if t == 0x53:  # S longstr -> utf8
        return _utf8(r.longstr())
    if t == 0x74:  # t bool
        return b"\x56" + (b"\x01" if r.octet() else b"\x00")
    if t == 0x62:  # b int8 -> byte
        return b"\x51" + r.take(1)
    if t == 0x42:  # B uint8 -> ubyte
        return b"\x50" + r.take(1)
    if t == 0x73:  # s int16 -> short
        return b"\x61" + r.take(2)
    if t == 0x75:  # u uint16 -> ushort
        return b"\x60" + r.take(2)
    if t == 0x49:  # I int32 -> int
        return _int(struct.unpack(">i", r.take(4))[0])
    if t == 0x69:  # i uint32 -> uint
        return _uint(_U32.unpack(r.take(4))[0])
    if t == 0x6C:  # l int64 -> long
        return _long(_I64.unpack(r.take(8))[0])
    if t == 0x66:  # f float32
        return b"\x72" + r.take(4)
    if t == 0x64:  # d float64
        return b"\x82" + r.take(8)
    if t == 0x78:  # x byte array -> binary
        return _str(0xA0, 0xB0, r.longstr())
    if t == 0x54:  # T timestamp (s) -> timestamp (ms)
        return b"\x83" + _I64.pack(_U64.unpack(r.take(8))[0] * 1000)
    # dropped, as RabbitMQ drops them: void, decimal, nested tables and arrays
    if t == 0x56:  # V void
        return None
    if t == 0x44:  # D decimal
        r.take(5)
        return None
    if t in (0x46, 0x41):  # F table, A array
        r.longstr()
        return None
    raise ValueError(f"AMQP field table value of unknown type {chr(t)!r}")


def _headers(raw: bytes) -> tuple[int, bytes]:
    """(count of map items, encoded items) of a 0-9-1 field table's content."""
    r = _Reader(raw, 0, len(raw))
    out = bytearray()
    count = 0
    while r.pos < r.end:
        name = r.shortstr()
        value = _table_value(r, r.octet())
        if value is not None:
            out += _utf8(name)
            out += value
            count += 2
    return count, bytes(out)


def encode_message(properties: bytes, body: bytes, exchange: str, routing_key: str) -> bytes:
    """The AMQP 1.0 message RabbitMQ stores for a 0-9-1 publish of ``body`` with ``properties``
    (pre-encoded basic properties) to ``exchange`` with ``routing_key``. ValueError for properties
    that do not decode."""
    r = _Reader(properties, 0, len(properties))
    flags = _U16.unpack(r.take(2))[0]
    if flags & 1:
        raise ValueError("AMQP basic properties with a continuation flag are not supported")
    content_type = r.shortstr() if flags & _F_CONTENT_TYPE else None
    content_encoding = r.shortstr() if flags & _F_CONTENT_ENCODING else None
    header_items = _headers(r.longstr()) if flags & _F_HEADERS else (0, b"")
    delivery_mode = r.octet() if flags & _F_DELIVERY_MODE else None
    priority = r.octet() if flags & _F_PRIORITY else None
    correlation_id = r.shortstr() if flags & _F_CORRELATION_ID else None
    reply_to = r.shortstr() if flags & _F_REPLY_TO else None
    expiration = r.shortstr() if flags & _F_EXPIRATION else None
    message_id = r.shortstr() if flags & _F_MESSAGE_ID else None
    timestamp = _U64.unpack(r.take(8))[0] if flags & _F_TIMESTAMP else None
    type_ = r.shortstr() if flags & _F_TYPE else None
    user_id = r.shortstr() if flags & _F_USER_ID else None
    app_id = r.shortstr() if flags & _F_APP_ID else None
    if flags & _F_CLUSTER_ID:
        r.shortstr()

    ann = bytearray()
    ann += _sym(b"x-routing-key") + _utf8(routing_key.encode())
    ann += _sym(b"x-exchange") + _utf8(exchange.encode())
    n_ann = 4
    if priority is not None:
        ann += _sym(b"x-basic-priority") + b"\x50" + bytes((priority,))
        n_ann += 2
    if delivery_mode is not None:
        ann += _sym(b"x-basic-delivery-mode") + b"\x50" + bytes((delivery_mode,))
        n_ann += 2
    if expiration is not None:
        ann += _sym(b"x-basic-expiration") + _utf8(expiration)
        n_ann += 2

    fields = [
        _NULL if message_id is None else _utf8(message_id),
        _NULL if user_id is None else _str(0xA0, 0xB0, user_id),
        _NULL,
        _NULL,  # to, subject
        _NULL if reply_to is None else _utf8(reply_to),
        _NULL if correlation_id is None else _utf8(correlation_id),
        _NULL if content_type is None else _sym(content_type),
        _NULL if content_encoding is None else _sym(content_encoding),
        _NULL,  # absolute-expiry-time
        _NULL if timestamp is None else b"\x83" + _I64.pack(timestamp * 1000),
        _NULL,
        _NULL,
        _NULL,  # group-id, group-sequence, reply-to-group-id
    ]

    app = bytearray()
    n_app = 0
    if type_ is not None:
        app += _utf8(b"x-basic-type") + _utf8(type_)
        n_app += 2
    if app_id is not None:
        app += _utf8(b"x-basic-app-id") + _utf8(app_id)
        n_app += 2
    app += header_items[1]
    n_app += header_items[0]

    return b"".join(
        (
            b"\x00\x53\x72",
            _compound(0xC1, 0xD1, n_ann, bytes(ann)),
            b"\x00\x53\x73",
            _compound(0xC0, 0xD0, 13, b"".join(fields)),
            b"\x00\x53\x74",
            _compound(0xC1, 0xD1, n_app, bytes(app)),
            b"\x00\x53\x75",
            _str(0xA0, 0xB0, body),
        )
    )


def append_message(
    buf: bytearray, publishing_id: int, properties: bytes, body: bytes, exchange: str, routing_key: str
) -> None:
    """Append one PublishedMessage (publishing id, size, ``encode_message(...)``) to a Publish frame
    being built in ``buf``. Nothing is appended when the properties do not decode (ValueError)."""
    msg = encode_message(properties, body, exchange, routing_key)
    buf += _U64.pack(publishing_id)
    buf += _U32.pack(len(msg))
    buf += msg


def split_chunk(data: bytes | bytearray, pos: int, end: int, min_offset: int) -> tuple[int, int, list[bytes]]:
    """The records of the osiris chunk in ``data[pos:end]`` (a Deliver frame's content after the
    subscription id): (offset of the first record returned, chunk timestamp in ms, record bytes), the
    records below ``min_offset`` left out (a chunk is delivered whole). Non-user chunks give no
    records. StreamProtocolError for a chunk that does not parse or is compressed."""
    if end - pos < CHUNK_HEADER_SIZE:
        raise StreamProtocolError(f"stream chunk of {end - pos} bytes is shorter than its header")
    (
        _magic,
        chunk_type,
        num_entries,
        num_records,
        timestamp,
        _epoch,
        first,
        _crc,
        data_len,
        _trailer,
        _reserved,
    ) = _CHUNK.unpack_from(data, pos)
    p = pos + CHUNK_HEADER_SIZE
    stop = p + data_len
    if stop > end:
        raise StreamProtocolError(f"stream chunk data ({data_len} bytes) overruns its frame")
    out: list[bytes] = []
    if chunk_type != 0:
        return first + num_records, timestamp, out
    offset = first
    for _ in range(num_entries):
        if p + 4 > stop:
            raise StreamProtocolError("stream chunk ends inside an entry header")
        head = data[p]
        if head & 0x80 == 0:  # simple entry: 31-bit size, then the record
            size = _U32.unpack_from(data, p)[0]
            p += 4
            if p + size > stop:
                raise StreamProtocolError("stream chunk record overruns the chunk")
            if offset >= min_offset:
                out.append(bytes(data[p : p + size]))
            p += size
            offset += 1
        else:  # sub-batch: type+compression, records, uncompressed size, size, then the records
            if p + 11 > stop:
                raise StreamProtocolError("stream chunk ends inside a sub-batch header")
            compression = (head >> 4) & 0x07
            n = _U16.unpack_from(data, p + 1)[0]
            size = _U32.unpack_from(data, p + 7)[0]
            p += 11
            if compression != 0:
                raise StreamProtocolError(
                    f"compressed stream sub-batch (codec {compression}) is not supported"
                )
            sub_end = p + size
            if sub_end > stop:
                raise StreamProtocolError("stream sub-batch overruns the chunk")
            for _ in range(n):
                if p + 4 > sub_end:
                    raise StreamProtocolError("stream sub-batch ends inside a record header")
                rsize = _U32.unpack_from(data, p)[0]
                p += 4
                if p + rsize > sub_end:
                    raise StreamProtocolError("stream sub-batch record overruns the sub-batch")
                if offset >= min_offset:
                    out.append(bytes(data[p : p + rsize]))
                p += rsize
                offset += 1
            p = sub_end
    if not out:
        return offset, timestamp, out
    return (first if min_offset <= first else min_offset), timestamp, out


def _value_end(msg: bytes, p: int, n: int) -> int:
    """Position after the AMQP 1.0 value at ``p`` (ValueError past ``n``)."""
    if p >= n:
        raise ValueError("AMQP 1.0 message ends inside a value")
    code = msg[p]
    p += 1
    if code == 0x00:  # described: descriptor, then the value
        return _value_end(msg, _value_end(msg, p, n), n)
    cat = code >> 4
    if cat == 0x4:
        end = p
    elif cat == 0x5:
        end = p + 1
    elif cat == 0x6:
        end = p + 2
    elif cat == 0x7:
        end = p + 4
    elif cat == 0x8:
        end = p + 8
    elif cat == 0x9:
        end = p + 16
    elif cat in (0xA, 0xC, 0xE):
        if p >= n:
            raise ValueError("AMQP 1.0 message ends inside a size")
        end = p + 1 + msg[p]
    elif cat in (0xB, 0xD, 0xF):
        if p + 4 > n:
            raise ValueError("AMQP 1.0 message ends inside a size")
        end = p + 4 + _U32.unpack_from(msg, p)[0]
    else:
        raise ValueError(f"AMQP 1.0 value with unknown format code 0x{code:02x}")
    if end > n:
        raise ValueError("AMQP 1.0 value overruns the message")
    return end


def _binary(msg: bytes, p: int, n: int) -> bytes | None:
    """The bytes of a binary/string value at ``p``, or None for another type."""
    code = msg[p]
    if code in (0xA0, 0xA1, 0xA3):
        size = msg[p + 1]
        return bytes(msg[p + 2 : p + 2 + size])
    if code in (0xB0, 0xB1, 0xB3):
        size = _U32.unpack_from(msg, p + 1)[0]
        return bytes(msg[p + 5 : p + 5 + size])
    return None


def message_body(msg: bytes) -> bytes:
    """The application data of an AMQP 1.0 message: its data sections joined (an amqp-value that is
    binary or a string counts too). ValueError for bytes that are not AMQP 1.0 sections."""
    n = len(msg)
    p = 0
    parts: list[bytes] = []
    while p < n:
        if msg[p] != 0x00 or p + 2 >= n:
            raise ValueError("not an AMQP 1.0 message: a section does not start with a descriptor")
        if msg[p + 1] == 0x53:
            code = msg[p + 2]
            vpos = p + 3
        else:
            vpos = _value_end(msg, p + 1, n)
            code = -1
        end = _value_end(msg, vpos, n)
        if code == 0x75 or code == 0x77:
            part = _binary(msg, vpos, n)
            if part is not None:
                parts.append(part)
        p = end
    return parts[0] if len(parts) == 1 else b"".join(parts)


class TypedAppender:
    """Appends typed messages to a Publish frame (the twin of the compiled loop; see the .pyi)."""

    def __init__(self, fallback: Any) -> None:
        self.plans: dict[type, tuple[Any, str]] = {}
        self.fallback = fallback

    def add_plan(self, cls: type, plan: Any) -> None:
        self.plans[cls] = (plan.encode, plan.exchange)

    def fill(self, buf: bytearray, publishing_id: int, it: Iterator[Any], max_count: int, limit: int,
             in_frame: int, ids: list[Any]) -> tuple[int, bool, tuple[bytes, bytes, str, str, Any] | None]:
        n = 0
        for msg in it:
            r = None
            plan = self.plans.get(type(msg))
            if plan is not None:
                try:
                    r = plan[0](msg)
                except Exception:  # the general path raises it again, with its diagnosis
                    r = None
            if plan is not None and r is not None:
                mid, rk, body, props = r
                exchange = plan[1]
            else:
                exchange, rk, props, body, mid = self.fallback(msg)
            message = encode_message(props, body, exchange, rk)
            if in_frame and len(buf) + 12 + len(message) > limit:  # the next frame starts with this one
                return n, False, (props, body, exchange, rk, mid)
            buf += _U64.pack(publishing_id + n)
            buf += _U32.pack(len(message))
            buf += message
            ids.append(mid)
            n += 1
            in_frame += 1
            if n >= max_count:
                return n, False, None
        return n, True, None


def _kept_decoder(decoder: Any, t: str, kept: dict[str, Any]) -> tuple[Any, Any]:
    """The payload decoder of type ``t`` (asked once per call) and, when it is a payload reader's
    ``decode``, that reader's ``decode_envelope``."""
    got = kept.get(t)
    if got is None:
        dec = decoder(t)
        dec_env = None
        if dec is not None:
            reader = getattr(dec, "__self__", None)
            if reader is not None and dec == getattr(reader, "decode", None):
                dec_env = getattr(reader, "decode_envelope", None)
        got = kept[t] = (dec, dec_env)
    return got


def _message(env: Any, convert: Any, registry: Any, decoder: Any, kept: dict[str, Any]) -> Any:
    """``convert(env, registry)``, through the type's payload decoder (kept for the call) when there
    is one and the payload is a dict (a raw payload is one; a reader's ``decode_envelope`` reads it
    without a dict): the same message, the same errors."""
    if decoder is None:
        return convert(env, registry)
    t = env.type
    dec, dec_env = _kept_decoder(decoder, t, kept)
    if dec_env is not None:
        if getattr(env, "raw_payload", None) is not None:
            return dec_env(env)
        if type(env.payload) is not dict:
            return convert(env, registry)
        return dec_env(env)
    payload = env.payload
    if dec is None or type(payload) is not dict:
        return convert(env, registry)
    return dec(payload, env.id, t, env.timestamp, env.correlation_id)


def dispatch_records(records: list[bytes], start: int, decode: Any, lookup: Any, convert: Any,
                     registry: Any, decoder: Any = None,
                     ) -> tuple[int, int, int, tuple[BaseException, bytes, Any, Any] | None]:
    """The common case of a stream consumer (the twin of the compiled loop; see the .pyi)."""
    handled = ignored = 0
    kept: dict[str, Any] = {}
    for i in range(start, len(records)):
        raw = records[i]
        if type(raw) is not bytes:
            return i, handled, ignored, None
        try:
            body = message_body(raw)
            env = decode(body)
        except Exception:
            return i, handled, ignored, None
        handlers = lookup(env.type)
        if not handlers:
            ignored += 1
            continue
        if type(handlers) is not tuple or len(handlers) != 1:
            return i, handled, ignored, None
        spec = handlers[0]
        if spec.wants_context or spec.is_async:
            return i, handled, ignored, None
        try:
            msg = _message(env, convert, registry, decoder, kept)
        except Exception:
            return i, handled, ignored, None
        try:
            spec.fn(msg)
        except Exception as exc:
            return i, handled, ignored, (exc, body, env, msg)
        handled += 1
    return len(records), handled, ignored, None


def dispatch_chunk(data: bytes | bytearray, pos: int, end: int, min_offset: int, decode: Any, lookup: Any,
                   convert: Any, registry: Any, decoder: Any = None,
                   ) -> tuple[int, int, int, int, int, Any, list[bytes]]:
    """``split_chunk`` then ``dispatch_records`` (the twin of the compiled one-pass loop)."""
    first, ts, records = split_chunk(data, pos, end, min_offset)
    if not records:
        return first, ts, 0, 0, 0, None, records
    i, handled, ignored, stopped = dispatch_records(records, 0, decode, lookup, convert, registry, decoder)
    failure = None
    if stopped is not None:
        exc, body, env, msg = stopped
        failure = (exc, records[i], body, env, msg)
        i += 1
    return first, ts, i, handled, ignored, failure, records[i:]


def sub_batch(frame: bytes | bytearray, head: int) -> tuple[bytearray, int, int, int]:
    """The PublishedMessages of a Publish frame as one uncompressed sub-entry (the twin)."""
    if len(frame) < head:
        raise ValueError("Publish frame shorter than its header")
    p, n = head, len(frame)
    records: list[bytes] = []
    ids: list[int] = []
    while p < n:
        if p + 12 > n:
            raise ValueError("Publish frame ends inside a message header")
        pid, size = _U64.unpack_from(frame, p)[0], _U32.unpack_from(frame, p + 8)[0]
        if p + 12 + size > n:
            raise ValueError("Publish frame message overruns the frame")
        ids.append(pid)
        records.append(bytes(frame[p + 8 : p + 12 + size]))
        p += 12 + size
    if not 1 <= len(records) <= 0xFFFF:
        raise ValueError(f"a sub-entry batch holds 1-65535 messages, not {len(records)}")
    inner = b"".join(records)
    out = bytearray(frame[:head]) + _U64.pack(ids[0]) + bytes((0x80,)) + _U16.pack(len(records))
    out += _U32.pack(len(inner)) + _U32.pack(len(inner)) + inner
    return out, ids[0], ids[-1], len(records)
