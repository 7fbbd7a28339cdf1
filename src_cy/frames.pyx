# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled AMQP 0-9-1 frame codec; contract: mmate_fast/_cy/frames.pyi, twin: mmate_fast/_py/frames.py.

Hot paths are C: the FrameReader parses frames from one buffer by offset (directly from the fed
buffer when nothing is pending), decodes content properties and field tables with pointer reads, and
builds Delivery objects without Python-level calls; append_* write whole frames with one resize +
memcpy. Rare paths (other methods via pamqp, Decimal/datetime objects) call into Python.

A content header that frames but whose properties do not decode, and an exchange or routing key that
is not UTF-8, mark that one Delivery ``undecodable`` (raw property bytes kept) instead of failing the
connection; the decoders raise ``_Bad`` and the caller decides which of the two it is. Input is
bounded: every frame is checked against ``frame_max`` (no "0 = unlimited"), and the body frames of a
delivery declaring more than ``max_message_size`` bytes are counted and dropped as they come.
"""
import datetime
import decimal
from collections.abc import Mapping

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_SIZE
from cpython.ref cimport PyObject
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from pamqp import commands as _pc
from pamqp import encode as _penc

from mmate_fast.errors import FrameError, InvalidArgumentError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_MIN_SIZE = 4096
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"
MAX_DEPTH = 64
DEF C_MAX_DEPTH = 64
FRAME_MAX_LIMIT = 0xFFFFFFFF
DEFAULT_MAX_MESSAGE_SIZE = 128 << 20

_PROP_NAMES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
    "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id",
)
_REPLY_TEXT = {501: "FRAME_ERROR", 502: "SYNTAX_ERROR", 505: "UNEXPECTED_FRAME"}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_SECOND = datetime.timedelta(seconds=1)
_timedelta = datetime.timedelta
_datetime = datetime.datetime
_Decimal = decimal.Decimal
# AMQP decimals are a 32-bit mantissa and a scale: exact in this context, whatever the thread's one is
_EXACT = decimal.Context(prec=64, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])


cdef object _ferr(int code, str what):
    text = _REPLY_TEXT[code]
    return FrameError(f"{what} ({code} {text}); the connection must be closed", code, text)


class _Bad(Exception):
    """A value inside an already delimited frame does not decode (the text says what). Whoever
    called the decoder decides: a method frame fails the connection (FrameError 502), a content
    header's properties fail only that delivery."""


# --------------------------------------------------------------------------- byte helpers
cdef inline uint16_t rd16(const unsigned char* p) noexcept nogil:
    return (<uint16_t>p[0] << 8) | p[1]

cdef inline uint32_t rd32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]

cdef inline uint64_t rd64(const unsigned char* p) noexcept nogil:
    return (<uint64_t>rd32(p) << 32) | rd32(p + 4)

cdef inline void wr16(unsigned char* p, uint16_t v) noexcept nogil:
    p[0] = v >> 8
    p[1] = v & 0xFF

cdef inline void wr32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = v >> 24
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF

cdef inline void wr64(unsigned char* p, uint64_t v) noexcept nogil:
    wr32(p, <uint32_t>(v >> 32))
    wr32(p + 4, <uint32_t>v)

from _bytebuf cimport _grow
from _strcache cimport _utf8_cached


cdef inline int _put(bytearray out, const void* src, Py_ssize_t n) except -1:
    cdef unsigned char* w = _grow(out, n)
    if n:
        memcpy(w, src, n)
    return 0

cdef inline int _put_tag_u8(bytearray out, char tag, uint8_t v) except -1:
    cdef unsigned char* w = _grow(out, 2)
    w[0] = tag
    w[1] = v
    return 0

cdef inline int _put_tag_u16(bytearray out, char tag, uint16_t v) except -1:
    cdef unsigned char* w = _grow(out, 3)
    w[0] = tag
    wr16(w + 1, v)
    return 0

cdef inline int _put_tag_u32(bytearray out, char tag, uint32_t v) except -1:
    cdef unsigned char* w = _grow(out, 5)
    w[0] = tag
    wr32(w + 1, v)
    return 0

cdef inline int _put_tag_u64(bytearray out, char tag, uint64_t v) except -1:
    cdef unsigned char* w = _grow(out, 9)
    w[0] = tag
    wr64(w + 1, v)
    return 0

cdef int _put_str(bytearray out, char tag, object value) except -1:
    """tag + uint32 length + bytes of a str (UTF-8) or bytes-like value."""
    cdef Py_ssize_t n
    cdef const char* s
    cdef Py_buffer view
    if isinstance(value, str):
        s = PyUnicode_AsUTF8AndSize(value, &n)
        _put_tag_u32(out, tag, <uint32_t>n)
        _put(out, s, n)
    else:
        PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
        try:
            if view.len > 0xFFFFFFFF:
                raise ValueError("long string longer than 2**32-1 bytes")
            _put_tag_u32(out, tag, <uint32_t>view.len)
            _put(out, view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
    return 0


# --------------------------------------------------------------------------- data classes
#: field types amqp091-go (mmate-go's client) cannot read: one such header kills a Go consumer's connection
GO_UNSAFE_TAGS = frozenset(("u", "i", "L"))


cdef class Typed:
    """A field-table value with an explicit AMQP type tag, e.g. ``Typed("B", 5)`` for a Go uint8.

    The Go-unsafe tags ``u``, ``i`` and ``L`` raise InvalidArgumentError unless ``go_safe=False``
    says that no Go peer reads the header. Immutable (hashable; the tag stays the checked one)."""

    cdef readonly object tag
    cdef readonly object value
    cdef readonly bint go_safe

    def __init__(self, tag, value, *, go_safe=True):
        if go_safe and isinstance(tag, str) and tag in GO_UNSAFE_TAGS:
            raise InvalidArgumentError(
                f"Typed({tag!r}, {value!r}): Go consumers cannot read AMQP field type {tag!r} (amqp091-go, "
                "mmate-go's client, closes the connection on it and the message goes back to every Go "
                "consumer of the queue): use a plain int (sent as 'I' or 'l') or Typed('I'|'l', value); "
                f"if no Go peer ever reads this header, say so: Typed({tag!r}, value, go_safe=False)", "tag")
        self.tag = tag
        self.value = value
        self.go_safe = go_safe

    def __eq__(self, other):
        if isinstance(other, Typed):
            return self.tag == (<Typed>other).tag and self.value == (<Typed>other).value
        return NotImplemented

    def __hash__(self):
        return hash((self.tag, self.value))

    def __repr__(self):
        if self.go_safe:
            return f"Typed({self.tag!r}, {self.value!r})"
        return f"Typed({self.tag!r}, {self.value!r}, go_safe=False)"


cdef class BasicProperties:
    """The 14 basic content-header properties; ``None`` means absent. ``timestamp`` is POSIX seconds.

    Received headers are decoded on first use: the reader checks the field table as it comes (a
    table that would not decode marks the delivery undecodable, as before) and keeps its bytes; most
    consumers never read the ~14 Go headers of a Mmate message, so they never become a dict."""

    cdef public object content_type, content_encoding, delivery_mode, priority
    cdef public object correlation_id, reply_to, expiration, message_id, timestamp, type
    cdef public object user_id, app_id, cluster_id
    cdef object _headers
    cdef bytes _raw_headers  # a checked field table (length prefix included) not decoded yet

    @property
    def headers(self):
        """The header table as a dict (None when absent), decoded on first access."""
        if self._raw_headers is not None:
            self._headers = _table_of(self._raw_headers)
            self._raw_headers = None
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value
        self._raw_headers = None

    def __init__(self, content_type=None, content_encoding=None, headers=None, delivery_mode=None,
                 priority=None, correlation_id=None, reply_to=None, expiration=None, message_id=None,
                 timestamp=None, type=None, user_id=None, app_id=None, cluster_id=None):
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

    cdef tuple _values(self):
        return (self.content_type, self.content_encoding, self.headers, self.delivery_mode, self.priority,
                self.correlation_id, self.reply_to, self.expiration, self.message_id, self.timestamp,
                self.type, self.user_id, self.app_id, self.cluster_id)

    def __eq__(self, other):
        if not isinstance(other, BasicProperties):
            return NotImplemented
        return self._values() == (<BasicProperties>other)._values()

    __hash__ = None

    def to_dict(self):
        """Only the properties that are set."""
        return {n: v for n, v in zip(_PROP_NAMES, self._values()) if v is not None}

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"BasicProperties({inner})"


cdef class Delivery:
    """A complete message from the broker: basic.deliver (kind 0), basic.get-ok (1), basic.return (2).

    ``undecodable`` says what of it could not be decoded (None normally); ``raw_properties`` then
    holds the property bytes as they came when those were the part that failed. ``oversized`` is the
    declared body size of a delivery over the reader's ``max_message_size`` (its body was dropped:
    ``body == b""``), 0 normally.
    """

    KIND_DELIVER = 0
    KIND_GET_OK = 1
    KIND_RETURN = 2

    cdef public int kind
    cdef public int channel
    cdef public object consumer_tag
    cdef public uint64_t delivery_tag
    cdef public bint redelivered
    cdef public object exchange
    cdef public object routing_key
    cdef public uint32_t message_count
    cdef public int reply_code
    cdef public object reply_text
    cdef public BasicProperties properties
    cdef public object body
    cdef public object undecodable
    cdef public object raw_properties
    cdef public uint64_t oversized
    # assembly state while its content frames arrive (FrameReader only; no extra object per message)
    cdef bint _have_header
    cdef uint64_t _size
    cdef uint64_t _dropped  # body bytes of an oversized delivery: counted, not kept
    cdef bytearray _buf

    def __init__(self, int kind=0, int channel=0, consumer_tag="", uint64_t delivery_tag=0,
                 bint redelivered=False, exchange="", routing_key="", uint32_t message_count=0,
                 int reply_code=0, reply_text="", BasicProperties properties=None, body=b"",
                 undecodable=None, raw_properties=None, uint64_t oversized=0):
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

    def __repr__(self):
        bad = "" if self.undecodable is None else _repr_undecodable(self.undecodable, self.raw_properties)
        big = f", oversized={self.oversized}" if self.oversized else ""
        return (f"Delivery(kind={self.kind}, channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"exchange={self.exchange!r}, routing_key={self.routing_key!r}, "
                f"redelivered={self.redelivered}, body={len(self.body)} bytes{big}{bad})")


cdef str _repr_undecodable(object undecodable, object raw_properties):
    raw = "None" if raw_properties is None else f"{len(raw_properties)} bytes"
    return f", undecodable={undecodable!r}, raw_properties={raw}"


cdef int _note(Delivery d, str what) except -1:
    """Add ``what`` to the things of ``d`` that could not be decoded."""
    d.undecodable = what if d.undecodable is None else f"{d.undecodable}; {what}"
    return 0


cdef class Confirm:
    """basic.ack (nack=False) or basic.nack (nack=True) from the broker (publisher confirms)."""

    cdef public int channel
    cdef public uint64_t delivery_tag
    cdef public bint multiple
    cdef public bint nack

    def __init__(self, int channel, uint64_t delivery_tag, bint multiple, bint nack):
        self.channel = channel
        self.delivery_tag = delivery_tag
        self.multiple = multiple
        self.nack = nack

    def __repr__(self):
        return (f"Confirm(channel={self.channel}, delivery_tag={self.delivery_tag}, "
                f"multiple={self.multiple}, nack={self.nack})")


cdef class MethodFrame:
    """Any other method frame, decoded by pamqp."""

    cdef public int channel
    cdef public object method

    def __init__(self, int channel, method):
        self.channel = channel
        self.method = method

    def __repr__(self):
        return f"MethodFrame(channel={self.channel}, method={self.method!r})"


cdef class Heartbeat:
    """A heartbeat frame (channel 0)."""

    cdef public int channel

    def __init__(self, int channel=0):
        self.channel = channel

    def __repr__(self):
        return "Heartbeat()"


# --------------------------------------------------------------------------- field tables: encode
cdef object _timestamp_seconds(object value):
    if isinstance(value, _datetime):
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


cdef int _encode_decimal(bytearray out, object value) except -1:
    if isinstance(value, int) and not isinstance(value, bool):
        value = _Decimal(value)
    if not isinstance(value, _Decimal):
        raise TypeError(f"decimal value must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"decimal {value} is not finite")
    exp = value.as_tuple().exponent
    scale = -exp if exp < 0 else 0
    if scale > 255:
        raise ValueError(f"decimal {value} has more than 255 decimal places")
    raw = int(value.scaleb(scale, _EXACT)) if scale else int(value)
    if not -(1 << 31) <= raw < (1 << 31):
        raise ValueError(f"decimal {value} does not fit AMQP's 32-bit decimal")
    cdef unsigned char* w = _grow(out, 5)
    w[0] = <uint8_t>scale
    wr32(w + 1, <uint32_t><int32_t>raw)
    return 0


cdef dict _INT_RANGES = {
    "b": (-(1 << 7), (1 << 7) - 1), "B": (0, (1 << 8) - 1), "s": (-(1 << 15), (1 << 15) - 1),
    "u": (0, (1 << 16) - 1), "I": (-(1 << 31), (1 << 31) - 1), "i": (0, (1 << 32) - 1),
    "l": (-(1 << 63), (1 << 63) - 1), "L": (0, (1 << 64) - 1),
}


cdef int _encode_typed(bytearray out, object tag, object value, int depth) except -1:
    cdef union_f f32
    cdef double f64
    cdef uint64_t bits64
    cdef char c
    spec = _INT_RANGES.get(tag) if isinstance(tag, str) else None
    if spec is not None:
        if not isinstance(value, int):
            raise TypeError(f"Typed({tag!r}) needs an int, got {type(value).__name__}")
        lo, hi = spec
        if not lo <= value <= hi:
            raise ValueError(f"{value} is outside the range of AMQP type {tag!r} ({lo}..{hi})")
        c = ord(tag)
        if c == b"b" or c == b"B":
            _put_tag_u8(out, c, <uint8_t>(value & 0xFF))
        elif c == b"s" or c == b"u":
            _put_tag_u16(out, c, <uint16_t>(value & 0xFFFF))
        elif c == b"I" or c == b"i":
            _put_tag_u32(out, c, <uint32_t>(value & 0xFFFFFFFF))
        else:
            _put_tag_u64(out, c, <uint64_t>(value & 0xFFFFFFFFFFFFFFFF))
    elif tag == "t":
        if not isinstance(value, int):
            raise TypeError(f"Typed('t') needs a bool, got {type(value).__name__}")
        _put_tag_u8(out, b"t", 1 if value else 0)
    elif tag == "f" or tag == "d":
        if not isinstance(value, (int, float)):
            raise TypeError(f"Typed({tag!r}) needs a float, got {type(value).__name__}")
        try:
            f64 = float(value)
        except OverflowError as exc:
            raise ValueError(f"{value!r} does not fit AMQP type {tag!r}") from exc
        if tag == "f":
            if f64 == f64 and (f64 > 3.4028234663852886e38 or f64 < -3.4028234663852886e38) \
                    and f64 != float("inf") and f64 != float("-inf"):
                raise ValueError(f"{value!r} does not fit AMQP type 'f'")
            f32.f = <float>f64
            _put_tag_u32(out, b"f", f32.u)
        else:
            memcpy(&bits64, &f64, 8)
            _put_tag_u64(out, b"d", bits64)
    elif tag == "D":
        _put(out, b"D", 1)
        _encode_decimal(out, value)
    elif tag == "S":
        if not isinstance(value, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"S value must be str or bytes, got {type(value).__name__}")
        _put_str(out, b"S", value)
    elif tag == "x":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"Typed('x') needs bytes, got {type(value).__name__}")
        _put_str(out, b"x", value)
    elif tag == "T":
        _put_tag_u64(out, b"T", <uint64_t>_timestamp_seconds(value))
    elif tag == "V":
        if value is not None:
            raise ValueError("Typed('V') takes only None")
        _put(out, b"V", 1)
    elif tag == "F":
        if not isinstance(value, Mapping):
            raise TypeError(f"Typed('F') needs a mapping, got {type(value).__name__}")
        _put(out, b"F", 1)
        _encode_table(out, value, depth + 1)
    elif tag == "A":
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"Typed('A') needs a list, got {type(value).__name__}")
        _put(out, b"A", 1)
        _encode_array(out, value, depth + 1)
    else:
        raise ValueError(f"unknown AMQP field type tag {tag!r}")
    return 0


cdef union union_f:
    float f
    uint32_t u


cdef int _encode_value(bytearray out, object value, int depth) except -1:
    cdef double f64
    cdef uint64_t bits64
    cdef long long iv
    if isinstance(value, str):
        _put_str(out, b"S", value)
    elif isinstance(value, bool):
        _put_tag_u8(out, b"t", 1 if value else 0)
    elif isinstance(value, int):
        if -(1 << 31) <= value < (1 << 31):
            iv = value
            _put_tag_u32(out, b"I", <uint32_t><int32_t>iv)
        elif -(1 << 63) <= value < (1 << 63):
            iv = value
            _put_tag_u64(out, b"l", <uint64_t><int64_t>iv)
        else:
            raise ValueError(f"int {value} does not fit a signed 64-bit AMQP field")
    elif isinstance(value, float):
        f64 = value
        memcpy(&bits64, &f64, 8)
        _put_tag_u64(out, b"d", bits64)
    elif isinstance(value, Typed):
        _encode_typed(out, (<Typed>value).tag, (<Typed>value).value, depth)
    elif value is None:
        _put(out, b"V", 1)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _put_str(out, b"x", value)
    elif isinstance(value, Mapping):
        _put(out, b"F", 1)
        _encode_table(out, value, depth + 1)
    elif isinstance(value, (list, tuple)):
        _put(out, b"A", 1)
        _encode_array(out, value, depth + 1)
    elif isinstance(value, _datetime):
        _put_tag_u64(out, b"T", <uint64_t>_timestamp_seconds(value))
    elif isinstance(value, _Decimal):
        _put(out, b"D", 1)
        _encode_decimal(out, value)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in an AMQP field table")
    return 0


cdef int _encode_table(bytearray out, object table, int depth) except -1:
    cdef Py_ssize_t start, n
    cdef const char* k
    cdef unsigned char* w
    if depth > C_MAX_DEPTH:
        raise ValueError(f"field table nested deeper than {MAX_DEPTH}")
    start = PyByteArray_GET_SIZE(out)
    _grow(out, 4)
    for key, value in table.items():
        if not isinstance(key, str):
            raise TypeError(f"field table keys must be str, got {type(key).__name__}")
        k = PyUnicode_AsUTF8AndSize(key, &n)
        if n > 255:
            raise ValueError(f"field table key longer than 255 bytes: {key[:40]!r}...")
        w = _grow(out, 1 + n)
        w[0] = <uint8_t>n
        memcpy(w + 1, k, n)
        _encode_value(out, value, depth)
    wr32(<unsigned char*>PyByteArray_AS_STRING(out) + start,
         <uint32_t>(PyByteArray_GET_SIZE(out) - start - 4))
    return 0


cdef int _encode_array(bytearray out, object items, int depth) except -1:
    cdef Py_ssize_t start
    if depth > C_MAX_DEPTH:
        raise ValueError(f"field array nested deeper than {MAX_DEPTH}")
    start = PyByteArray_GET_SIZE(out)
    _grow(out, 4)
    for value in items:
        _encode_value(out, value, depth)
    wr32(<unsigned char*>PyByteArray_AS_STRING(out) + start,
         <uint32_t>(PyByteArray_GET_SIZE(out) - start - 4))
    return 0


def encode_table(table):
    """Field table payload WITH its 4-byte length prefix. Raises ValueError/TypeError on bad values."""
    if not isinstance(table, Mapping):
        raise TypeError(f"field table must be a mapping, got {type(table).__name__}")
    cdef bytearray out = bytearray()
    _encode_table(out, table, 1)
    return bytes(out)


# --------------------------------------------------------------------------- field tables: decode
cdef Py_ssize_t _truncated(str what) except -1:
    raise _Bad(f"truncated {what}")


cdef inline int _need(Py_ssize_t off, Py_ssize_t n, Py_ssize_t end, str what) except -1:
    if n < 0 or off + n > end:
        return _truncated(what)
    return 0


cdef inline Py_ssize_t _sstr_len(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end,
                                 str what) except -1:
    """Length of the shortstr at p[off[0]], checked to fit before ``end``; off moves past its length."""
    cdef Py_ssize_t o = off[0]
    if o + 1 > end or o + 1 + p[o] > end:
        return _truncated(what)
    off[0] = o + 1
    return p[o]


cdef object _sstr(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, str what,
                  bint unique=False):
    """Decode a shortstr at p[off[0]], advancing off. Strings that repeat from message to message
    come from the small cache; ``unique`` ones (message and correlation ids) are decoded afresh."""
    cdef Py_ssize_t n = _sstr_len(p, off, end, what)
    cdef Py_ssize_t o = off[0]
    try:
        s = (PyUnicode_DecodeUTF8(<const char*>p + o, n, NULL) if unique
             else _utf8_cached(<const char*>p + o, n))
    except UnicodeDecodeError:
        raise _Bad(f"{what} is not UTF-8") from None
    off[0] = o + n
    return s


cdef object _name(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, str what, Delivery d):
    """An exchange or routing key at p[off[0]], advancing off: one that is not UTF-8 (RabbitMQ
    forwards those) is decoded with ``surrogateescape`` and noted in ``d.undecodable``."""
    cdef Py_ssize_t n = _sstr_len(p, off, end, what)
    cdef Py_ssize_t o = off[0]
    off[0] = o + n
    try:
        return _utf8_cached(<const char*>p + o, n)
    except UnicodeDecodeError:
        _note(d, f"{what} is not UTF-8")
        return PyUnicode_DecodeUTF8(<const char*>p + o, n, "surrogateescape")


cdef object _decode_value(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth):
    cdef Py_ssize_t o = off[0]
    cdef unsigned char tag
    cdef uint64_t n
    cdef union_f f32
    cdef double f64
    cdef uint64_t u64
    _need(o, 1, end, "field value")
    tag = p[o]
    o += 1
    if tag == b"S":
        _need(o, 4, end, "long string")
        n = rd32(p + o)
        o += 4
        _need(o, <Py_ssize_t>n, end, "long string")
        off[0] = o + <Py_ssize_t>n
        try:
            return PyUnicode_DecodeUTF8(<const char*>p + o, <Py_ssize_t>n, NULL)
        except UnicodeDecodeError:
            return PyBytes_FromStringAndSize(<const char*>p + o, <Py_ssize_t>n)
    elif tag == b"I":
        _need(o, 4, end, "integer field")
        off[0] = o + 4
        return <int32_t>rd32(p + o)
    elif tag == b"t":
        _need(o, 1, end, "boolean field")
        off[0] = o + 1
        return p[o] != 0
    elif tag == b"l":
        _need(o, 8, end, "integer field")
        off[0] = o + 8
        return <int64_t>rd64(p + o)
    elif tag == b"b":
        _need(o, 1, end, "integer field")
        off[0] = o + 1
        return <int8_t>p[o]
    elif tag == b"B":
        _need(o, 1, end, "integer field")
        off[0] = o + 1
        return <uint8_t>p[o]
    elif tag == b"s":
        _need(o, 2, end, "integer field")
        off[0] = o + 2
        return <int16_t>rd16(p + o)
    elif tag == b"u":
        _need(o, 2, end, "integer field")
        off[0] = o + 2
        return rd16(p + o)
    elif tag == b"i":
        _need(o, 4, end, "integer field")
        off[0] = o + 4
        return rd32(p + o)
    elif tag == b"L":
        _need(o, 8, end, "integer field")
        off[0] = o + 8
        return rd64(p + o)
    elif tag == b"V":
        off[0] = o
        return None
    elif tag == b"F":
        off[0] = o
        return _decode_table(p, off, end, depth + 1)
    elif tag == b"A":
        off[0] = o
        return _decode_array(p, off, end, depth + 1)
    elif tag == b"d":
        _need(o, 8, end, "double field")
        u64 = rd64(p + o)
        memcpy(&f64, &u64, 8)
        off[0] = o + 8
        return f64
    elif tag == b"f":
        _need(o, 4, end, "float field")
        f32.u = rd32(p + o)
        off[0] = o + 4
        return <double>f32.f
    elif tag == b"T":
        _need(o, 8, end, "timestamp field")
        u64 = rd64(p + o)
        try:
            v = _EPOCH + _timedelta(seconds=u64)
        except OverflowError:
            raise _Bad(f"timestamp {u64} out of range") from None
        off[0] = o + 8
        return v
    elif tag == b"x":
        _need(o, 4, end, "byte array")
        n = rd32(p + o)
        o += 4
        _need(o, <Py_ssize_t>n, end, "byte array")
        off[0] = o + <Py_ssize_t>n
        return PyBytes_FromStringAndSize(<const char*>p + o, <Py_ssize_t>n)
    elif tag == b"D":
        _need(o, 5, end, "decimal field")
        off[0] = o + 5
        return _Decimal(<int32_t>rd32(p + o + 1)).scaleb(-<int>p[o], _EXACT)
    raise _Bad(f"unknown field type tag 0x{tag:02x}")


cdef dict _decode_table(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth):
    cdef Py_ssize_t o = off[0]
    cdef Py_ssize_t tend
    cdef uint32_t n
    if depth > C_MAX_DEPTH:
        raise _Bad(f"field table nested deeper than {MAX_DEPTH}")
    _need(o, 4, end, "field table")
    n = rd32(p + o)
    o += 4
    _need(o, n, end, "field table")
    tend = o + n
    cdef dict table = {}
    while o < tend:
        key = _sstr(p, &o, tend, "field table key")
        table[key] = _decode_value(p, &o, tend, depth)
    off[0] = o
    return table


cdef list _decode_array(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth):
    cdef Py_ssize_t o = off[0]
    cdef Py_ssize_t tend
    cdef uint32_t n
    if depth > C_MAX_DEPTH:
        raise _Bad(f"field array nested deeper than {MAX_DEPTH}")
    _need(o, 4, end, "field array")
    n = rd32(p + o)
    o += 4
    _need(o, n, end, "field array")
    tend = o + n
    cdef list items = []
    while o < tend:
        items.append(_decode_value(p, &o, tend, depth))
    off[0] = o
    return items


cdef object _table_of(bytes raw):
    """The dict of a field table ``_check_table`` accepted."""
    cdef Py_ssize_t off = 0
    return _decode_table(<const unsigned char*>PyBytes_AS_STRING(raw), &off, PyBytes_GET_SIZE(raw), 1)


cdef int _check_key(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end) except -1:
    """``_sstr`` of a field table key without the str: length and UTF-8 checked, off advanced."""
    cdef Py_ssize_t start = off[0]
    cdef Py_ssize_t n = _sstr_len(p, off, end, "field table key")
    cdef Py_ssize_t o = off[0]
    if not _ascii(p + o, n):  # not ASCII: let the decoder judge it, as _sstr does
        off[0] = start
        _sstr(p, off, end, "field table key")
        return 0
    off[0] = o + n
    return 0


cdef inline bint _ascii(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether the ``n`` bytes at ``s`` are all below 0x80: 8 bytes per step (a header table's keys
    are checked on every delivery), the last < 8 one by one."""
    cdef uint64_t word, seen = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&word, s + i, 8)
        seen |= word
        i += 8
    if seen & 0x8080808080808080ULL:
        return False
    while i < n:
        if s[i] >= 0x80:
            return False
        i += 1
    return True


cdef int _check_value(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth) except -1:
    """What ``_decode_value`` checks, in the same order and with the same errors, without building
    the value (the rare kinds that can fail on content, timestamps, are decoded and dropped)."""
    cdef Py_ssize_t o = off[0]
    cdef unsigned char tag
    cdef uint64_t n
    _need(o, 1, end, "field value")
    tag = p[o]
    o += 1
    if tag == b"S":
        _need(o, 4, end, "long string")
        n = rd32(p + o)
        o += 4
        _need(o, <Py_ssize_t>n, end, "long string")
        off[0] = o + <Py_ssize_t>n
    elif tag == b"I" or tag == b"i":
        _need(o, 4, end, "integer field")
        off[0] = o + 4
    elif tag == b"t":
        _need(o, 1, end, "boolean field")
        off[0] = o + 1
    elif tag == b"l" or tag == b"L":
        _need(o, 8, end, "integer field")
        off[0] = o + 8
    elif tag == b"b" or tag == b"B":
        _need(o, 1, end, "integer field")
        off[0] = o + 1
    elif tag == b"s" or tag == b"u":
        _need(o, 2, end, "integer field")
        off[0] = o + 2
    elif tag == b"V":
        off[0] = o
    elif tag == b"F":
        off[0] = o
        _check_table(p, off, end, depth + 1)
    elif tag == b"A":
        off[0] = o
        _check_array(p, off, end, depth + 1)
    elif tag == b"d":
        _need(o, 8, end, "double field")
        off[0] = o + 8
    elif tag == b"f":
        _need(o, 4, end, "float field")
        off[0] = o + 4
    elif tag == b"T":
        _decode_value(p, off, end, depth)
    elif tag == b"x":
        _need(o, 4, end, "byte array")
        n = rd32(p + o)
        o += 4
        _need(o, <Py_ssize_t>n, end, "byte array")
        off[0] = o + <Py_ssize_t>n
    elif tag == b"D":
        _need(o, 5, end, "decimal field")
        off[0] = o + 5
    else:
        raise _Bad(f"unknown field type tag 0x{tag:02x}")
    return 0


cdef int _check_table(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth) except -1:
    """``_decode_table`` without the dict: raises what it would raise, advances off past the table."""
    cdef Py_ssize_t o = off[0]
    cdef Py_ssize_t tend
    cdef uint32_t n
    if depth > C_MAX_DEPTH:
        raise _Bad(f"field table nested deeper than {MAX_DEPTH}")
    _need(o, 4, end, "field table")
    n = rd32(p + o)
    o += 4
    _need(o, n, end, "field table")
    tend = o + n
    while o < tend:
        _check_key(p, &o, tend)
        _check_value(p, &o, tend, depth)
    off[0] = o
    return 0


cdef int _check_array(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end, int depth) except -1:
    cdef Py_ssize_t o = off[0]
    cdef Py_ssize_t tend
    cdef uint32_t n
    if depth > C_MAX_DEPTH:
        raise _Bad(f"field array nested deeper than {MAX_DEPTH}")
    _need(o, 4, end, "field array")
    n = rd32(p + o)
    o += 4
    _need(o, n, end, "field array")
    tend = o + n
    while o < tend:
        _check_value(p, &o, tend, depth)
    off[0] = o
    return 0


cdef class _View:
    """Holds a Py_buffer of a decode_* argument for the duration of a call."""
    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, data):
        PyObject_GetBuffer(data, &self.view, PyBUF_SIMPLE)
        self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


def decode_table(data, Py_ssize_t offset=0):
    """Decode a length-prefixed field table at ``offset``; returns (table, offset after it)."""
    cdef _View v = _View(data)
    if offset < 0:
        raise _ferr(502, "negative offset")
    cdef Py_ssize_t off = offset
    try:
        table = _decode_table(<const unsigned char*>v.view.buf, &off, v.view.len, 1)
    except _Bad as exc:
        raise _ferr(502, str(exc)) from None
    return table, off


# --------------------------------------------------------------------------- content properties
cdef BasicProperties _decode_properties(const unsigned char* p, Py_ssize_t* off, Py_ssize_t end):
    cdef Py_ssize_t o = off[0]
    cdef uint16_t flags, more
    _need(o, 2, end, "property flags")
    flags = rd16(p + o)
    o += 2
    more = flags & 1
    while more:
        _need(o, 2, end, "property flags")
        more = rd16(p + o) & 1
        o += 2
    cdef BasicProperties props = BasicProperties.__new__(BasicProperties)
    if flags & 0x8000:
        props.content_type = _sstr(p, &o, end, "property content_type")
    if flags & 0x4000:
        props.content_encoding = _sstr(p, &o, end, "property content_encoding")
    cdef Py_ssize_t t0
    if flags & 0x2000:
        t0 = o
        _check_table(p, &o, end, 1)
        if o - t0 == 4:
            props._headers = {}
        else:
            props._raw_headers = PyBytes_FromStringAndSize(<const char*>p + t0, o - t0)
    if flags & 0x1000:
        _need(o, 1, end, "property delivery_mode")
        props.delivery_mode = p[o]
        o += 1
    if flags & 0x0800:
        _need(o, 1, end, "property priority")
        props.priority = p[o]
        o += 1
    if flags & 0x0400:
        props.correlation_id = _sstr(p, &o, end, "property correlation_id", True)
    if flags & 0x0200:
        props.reply_to = _sstr(p, &o, end, "property reply_to")
    if flags & 0x0100:
        props.expiration = _sstr(p, &o, end, "property expiration")
    if flags & 0x0080:
        props.message_id = _sstr(p, &o, end, "property message_id", True)
    if flags & 0x0040:
        _need(o, 8, end, "property timestamp")
        props.timestamp = rd64(p + o)
        o += 8
    if flags & 0x0020:
        props.type = _sstr(p, &o, end, "property type")
    if flags & 0x0010:
        props.user_id = _sstr(p, &o, end, "property user_id")
    if flags & 0x0008:
        props.app_id = _sstr(p, &o, end, "property app_id")
    if flags & 0x0004:
        props.cluster_id = _sstr(p, &o, end, "property cluster_id")
    off[0] = o
    return props


def decode_properties(data, Py_ssize_t offset=0):
    """Inverse of ``encode_properties``; returns (properties, offset after them)."""
    cdef _View v = _View(data)
    if offset < 0:
        raise _ferr(502, "negative offset")
    cdef Py_ssize_t off = offset
    try:
        props = _decode_properties(<const unsigned char*>v.view.buf, &off, v.view.len)
    except _Bad as exc:
        raise _ferr(502, str(exc)) from None
    return props, off


cdef int _put_sstr_prop(bytearray out, str name, object value) except -1:
    cdef Py_ssize_t n
    cdef const char* s
    cdef unsigned char* w
    if not isinstance(value, str):
        raise TypeError(f"property {name} must be str, got {type(value).__name__}")
    s = PyUnicode_AsUTF8AndSize(value, &n)
    if n > 255:
        raise ValueError(f"property {name} is longer than 255 bytes")
    w = _grow(out, n + 1)
    w[0] = <uint8_t>n
    memcpy(w + 1, s, n)
    return 0


cdef int _put_octet_prop(bytearray out, str name, object value) except -1:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"property {name} must be int, got {type(value).__name__}")
    if not 0 <= value <= 255:
        raise ValueError(f"property {name} {value} outside 0..255")
    _grow(out, 1)[0] = <uint8_t>value
    return 0


def encode_properties(BasicProperties props):
    """Property-flags + property list of a content header (no class/weight/size prefix)."""
    if props is None:
        return b"\x00\x00"
    cdef bytearray out = bytearray(b"\x00\x00")
    cdef uint16_t flags = 0
    if props.content_type is not None:
        flags |= 0x8000
        _put_sstr_prop(out, "content_type", props.content_type)
    if props.content_encoding is not None:
        flags |= 0x4000
        _put_sstr_prop(out, "content_encoding", props.content_encoding)
    if props.headers is not None:
        flags |= 0x2000
        _encode_table(out, props.headers, 1)
    if props.delivery_mode is not None:
        flags |= 0x1000
        _put_octet_prop(out, "delivery_mode", props.delivery_mode)
    if props.priority is not None:
        flags |= 0x0800
        _put_octet_prop(out, "priority", props.priority)
    if props.correlation_id is not None:
        flags |= 0x0400
        _put_sstr_prop(out, "correlation_id", props.correlation_id)
    if props.reply_to is not None:
        flags |= 0x0200
        _put_sstr_prop(out, "reply_to", props.reply_to)
    if props.expiration is not None:
        flags |= 0x0100
        _put_sstr_prop(out, "expiration", props.expiration)
    if props.message_id is not None:
        flags |= 0x0080
        _put_sstr_prop(out, "message_id", props.message_id)
    if props.timestamp is not None:
        flags |= 0x0040
        ts = props.timestamp
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise TypeError(f"property timestamp must be int, got {type(ts).__name__}")
        if not 0 <= ts < (1 << 64):
            raise ValueError(f"property timestamp {ts} outside 0..2**64-1")
        wr64(_grow(out, 8), <uint64_t>ts)
    if props.type is not None:
        flags |= 0x0020
        _put_sstr_prop(out, "type", props.type)
    if props.user_id is not None:
        flags |= 0x0010
        _put_sstr_prop(out, "user_id", props.user_id)
    if props.app_id is not None:
        flags |= 0x0008
        _put_sstr_prop(out, "app_id", props.app_id)
    if props.cluster_id is not None:
        flags |= 0x0004
        _put_sstr_prop(out, "cluster_id", props.cluster_id)
    wr16(<unsigned char*>PyByteArray_AS_STRING(out), flags)
    return bytes(out)


# --------------------------------------------------------------------------- encoders of method frames
cdef inline unsigned char* _frame_head(unsigned char* w, uint8_t ftype, uint16_t channel, uint32_t size) noexcept:
    w[0] = ftype
    wr16(w + 1, channel)
    wr32(w + 3, size)
    return w + 7


cdef inline int _check_channel(int channel) except -1:
    if channel < 0 or channel > 0xFFFF:
        raise ValueError(f"channel {channel} outside 0..65535")
    return 0


def append_publish(bytearray out, int channel, str exchange, str routing_key, body,
                   bytes encoded_properties, bint mandatory=False, Py_ssize_t frame_max=131072):
    """Append basic.publish + content header + body frame(s) (split at frame_max) to ``out``."""
    cdef Py_ssize_t exn, rkn, pn, size, chunk, nframes, total, method_size, start, part
    cdef const char* ex
    cdef const char* rk
    cdef const char* src
    cdef Py_buffer view
    cdef bint held = False
    cdef unsigned char* w
    if frame_max < FRAME_MIN_SIZE:
        raise ValueError(f"frame_max {frame_max} is below the AMQP minimum {FRAME_MIN_SIZE}")
    _check_channel(channel)
    ex = PyUnicode_AsUTF8AndSize(exchange, &exn)
    if exn > 255:
        raise ValueError("exchange name is longer than 255 bytes (UTF-8)")
    rk = PyUnicode_AsUTF8AndSize(routing_key, &rkn)
    if rkn > 255:
        raise ValueError("routing key is longer than 255 bytes (UTF-8)")
    if type(body) is bytes:
        src = PyBytes_AS_STRING(body)
        size = PyBytes_GET_SIZE(body)
    else:
        PyObject_GetBuffer(body, &view, PyBUF_SIMPLE)
        held = True
        src = <const char*>view.buf
        size = view.len
    try:
        pn = PyBytes_GET_SIZE(encoded_properties)
        chunk = frame_max - 8
        nframes = (size + chunk - 1) // chunk
        method_size = 4 + 2 + 1 + exn + 1 + rkn + 1
        total = (method_size + 8) + (12 + pn + 8) + size + 8 * nframes
        w = _grow(out, total)
        w = _frame_head(w, 1, <uint16_t>channel, <uint32_t>method_size)
        w[0] = 0; w[1] = 60; w[2] = 0; w[3] = 40; w[4] = 0; w[5] = 0
        w[6] = <uint8_t>exn
        memcpy(w + 7, ex, exn)
        w += 7 + exn
        w[0] = <uint8_t>rkn
        memcpy(w + 1, rk, rkn)
        w += 1 + rkn
        w[0] = 1 if mandatory else 0
        w[1] = 0xCE
        w = _frame_head(w + 2, 2, <uint16_t>channel, <uint32_t>(12 + pn))
        w[0] = 0; w[1] = 60; w[2] = 0; w[3] = 0
        wr64(w + 4, <uint64_t>size)
        memcpy(w + 12, PyBytes_AS_STRING(encoded_properties), pn)
        w[12 + pn] = 0xCE
        w += 13 + pn
        start = 0
        while start < size:
            part = size - start
            if part > chunk:
                part = chunk
            w = _frame_head(w, 3, <uint16_t>channel, <uint32_t>part)
            memcpy(w, src + start, part)
            w[part] = 0xCE
            w += part + 1
            start += part
    finally:
        if held:
            PyBuffer_Release(&view)


cdef int _append_tag_method(bytearray out, int channel, uint8_t method_id, uint64_t tag,
                            uint8_t bits) except -1:
    _check_channel(channel)
    cdef unsigned char* w = _grow(out, 21)
    w = _frame_head(w, 1, <uint16_t>channel, 13)
    w[0] = 0; w[1] = 60; w[2] = 0; w[3] = method_id
    wr64(w + 4, tag)
    w[12] = bits
    w[13] = 0xCE
    return 0


def append_ack(bytearray out, int channel, uint64_t delivery_tag, bint multiple=False):
    """Append a basic.ack method frame."""
    _append_tag_method(out, channel, 80, delivery_tag, 1 if multiple else 0)


#: out-of-order settled delivery tags an Acks remembers for coalescing (past it: not coalesced)
MAX_OUT_OF_ORDER = 65536


cdef class Acks:
    """One channel's settle bookkeeping (see frames.pyi): in-order acks of one loop turn leave as a
    single basic.ack(multiple) frame, written when the connection flushes."""

    cdef object _channel, _conn
    cdef int _cid
    cdef uint64_t _upto  # every tag up to here is settled
    cdef set _above  # settled tags above _upto + 1
    cdef uint64_t _run_hi
    cdef Py_ssize_t _run_count

    def __init__(self, channel, connection, int channel_id):
        _check_channel(channel_id)
        self._channel = channel
        self._conn = connection
        self._cid = channel_id
        self._above = set()

    @property
    def settled_upto(self):
        """Every delivery tag up to this one is settled."""
        return self._upto

    @property
    def pending(self):
        """In-order acks waiting for ``emit`` (the next flush)."""
        return self._run_count

    def ack(self, uint64_t delivery_tag, bint multiple=False):
        """basic.ack (the channel's ``basic_ack``)."""
        if self._channel._closed_exc is not None:
            self._channel._raise_closed()
        cdef uint64_t upto
        if not multiple and delivery_tag == self._upto + 1:
            upto = delivery_tag
            if self._above:
                while (upto + 1) in self._above:
                    upto += 1
                    self._above.discard(upto)
            self._upto = upto
            if self._run_count == 0:
                conn = self._conn
                conn._ack_dirty.append(self._channel)
                if not conn._flush_pending:
                    conn._schedule_flush()
            self._run_hi = delivery_tag
            self._run_count += 1
            return None
        self.emit()
        conn = self._conn
        _append_tag_method(conn._wbuf, self._cid, 80, delivery_tag, 1 if multiple else 0)
        self.settle(delivery_tag, multiple)
        if not conn._flush_pending:
            conn._schedule_flush()
        return None

    def shifted(self, uint64_t tag_base):
        """``ack`` for tags shifted up by ``tag_base`` (a recovering channel's later generations):
        ``shifted(base)(tag)`` acks ``tag - base`` here, in C."""
        cdef ShiftedAck a = ShiftedAck.__new__(ShiftedAck)
        a.acks = self
        a.base = tag_base
        return a

    def settle(self, uint64_t delivery_tag, bint multiple):
        """Advance the settled watermark (tags no answer is owed for any more)."""
        if multiple:
            if delivery_tag > self._upto:
                self._upto = delivery_tag
                self._above = {t for t in self._above if t > delivery_tag}
        elif delivery_tag == self._upto + 1:
            self._upto = delivery_tag
            if not self._above:  # in order, nothing settled above (a no-ack consumer's every tag)
                return
        elif delivery_tag > self._upto:
            if len(self._above) < MAX_OUT_OF_ORDER:  # bounded: past it, later acks are not coalesced
                self._above.add(delivery_tag)
            return
        while (self._upto + 1) in self._above:
            self._upto += 1
            self._above.discard(self._upto)

    def emit(self):
        """Write the pending in-order ack run into the connection's buffer (before any other settle
        frame of the channel, and when the connection flushes)."""
        cdef Py_ssize_t count = self._run_count
        if count == 0:
            return
        self._run_count = 0
        if self._channel._closed_exc is not None:
            return
        _append_tag_method(self._conn._wbuf, self._cid, 80, self._run_hi, 1 if count > 1 else 0)


cdef class ShiftedAck:
    """``Acks.shifted(base)``: acks ``tag - base`` on its channel."""

    cdef Acks acks
    cdef readonly uint64_t base

    def __call__(self, uint64_t delivery_tag, bint multiple=False):
        if delivery_tag < self.base:
            raise ValueError(f"delivery tag {delivery_tag} is below the tag base {self.base}")
        return self.acks.ack(delivery_tag - self.base, multiple)


cdef class _Shift:
    """A frame-reader hook whose deliveries get ``base`` added to their tag first (set_hook)."""

    cdef object fn
    cdef uint64_t base


def append_nack(bytearray out, int channel, uint64_t delivery_tag, bint multiple=False, bint requeue=True):
    """Append a basic.nack method frame."""
    _append_tag_method(out, channel, 120, delivery_tag, (1 if multiple else 0) | (2 if requeue else 0))


def append_reject(bytearray out, int channel, uint64_t delivery_tag, bint requeue=True):
    """Append a basic.reject method frame."""
    _append_tag_method(out, channel, 90, delivery_tag, 1 if requeue else 0)


def marshal_method(method, int channel):
    """Encode any method frame (pamqp), except that field tables in it use the Go-safe encoder."""
    _check_channel(channel)
    # no method.validate(): pamqp's name rules are narrower than RabbitMQ's (the channel checks names)
    cdef bytearray out = bytearray(b"\x00\x00\x00\x00")
    wr32(<unsigned char*>PyByteArray_AS_STRING(out), <uint32_t>method.index)
    cdef int bits = -1, nbits = -1
    for name in method.__slots__:
        dtype = method.amqp_type(name)
        value = getattr(method, name, 0)
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
    cdef bytearray frame = bytearray()
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(out)
    cdef unsigned char* w = _grow(frame, n + 8)
    w = _frame_head(w, 1, <uint16_t>channel, <uint32_t>n)
    memcpy(w, PyByteArray_AS_STRING(out), n)
    w[n] = 0xCE
    return bytes(frame)


# --------------------------------------------------------------------------- frame reader
cdef int _bad_properties(Delivery d, object exc, object raw) except -1:
    """Mark ``d``: its property list (``raw``) did not decode because of ``exc``."""
    _note(d, str(exc) if isinstance(exc, _Bad) else f"properties do not decode: {exc!r}")
    d.raw_properties = raw
    d.properties = BasicProperties()
    return 0


cdef object _pamqp_method(const unsigned char* p, Py_ssize_t off, Py_ssize_t end, int class_id,
                          int method_id):
    cls = _pc.INDEX_MAPPING.get((class_id << 16) | method_id)
    if cls is None:
        raise _ferr(502, f"unknown method {class_id}.{method_id}")
    method = cls()
    try:
        method.unmarshal(PyBytes_FromStringAndSize(<const char*>p + off, end - off))
    except Exception as exc:
        raise _ferr(502, f"undecodable {cls.__name__}: {exc}") from exc
    return method


cdef int _check_int(object value, str what) except -1:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int (bytes), got {type(value).__name__}")
    return 0


cdef uint64_t _check_frame_max(object value) except? 0:
    _check_int(value, "frame_max")
    if not FRAME_MIN_SIZE <= value <= FRAME_MAX_LIMIT:
        raise ValueError(f"frame_max {value} is outside {FRAME_MIN_SIZE}..{FRAME_MAX_LIMIT}: every "
                         "connection has a frame limit (there is no 0 = unlimited)")
    return value


cdef uint64_t _check_max_message_size(object value) except? 0:
    _check_int(value, "max_message_size")
    if not 1 <= value < (1 << 64):
        raise ValueError(f"max_message_size {value} is outside 1..2**64-1 bytes (there is no "
                         "0 = unlimited)")
    return value


cdef class FrameReader:
    """Incremental decoder: feed it whatever ``data_received`` got, get complete items back."""

    cdef uint64_t _frame_max
    cdef uint64_t _max_message_size
    cdef public uint64_t oversized_count  # deliveries handed on marked ``oversized`` so far
    cdef bytearray _buf
    cdef dict _partial  # channel -> Delivery whose content header/body have not fully arrived
    cdef object _error
    cdef dict _hooks  # channel -> {consumer tag: fn}
    cdef public list hook_errors  # (delivery, exception) of hooks that raised, for the caller to report

    def __init__(self, frame_max=131072, max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        self._frame_max = _check_frame_max(frame_max)
        self._max_message_size = _check_max_message_size(max_message_size)
        self._buf = bytearray()
        self._partial = {}
        self._error = None
        self._hooks = {}
        self.hook_errors = []

    def set_hook(self, int channel, str consumer_tag, fn, uint64_t tag_base=0):
        """Hand basic.deliver items of this channel and consumer to ``fn(delivery)`` as they complete,
        their delivery tag raised by ``tag_base`` first (see frames.pyi)."""
        cdef _Shift shift
        if not callable(fn):
            raise TypeError(f"hook must be callable, not {type(fn).__name__}")
        if tag_base:
            shift = _Shift.__new__(_Shift)
            shift.fn = fn
            shift.base = tag_base
            fn = shift
        per = self._hooks.get(channel)
        if per is None:
            per = self._hooks[channel] = {}
        per[consumer_tag] = fn

    def clear_hook(self, int channel, consumer_tag=None):
        """Forget the hook of one consumer of ``channel`` (None: every hook of the channel)."""
        if consumer_tag is None:
            self._hooks.pop(channel, None)
            return
        per = self._hooks.get(channel)
        if per is not None:
            per.pop(consumer_tag, None)
            if not per:
                del self._hooks[channel]

    cdef int _done(self, Delivery d, list items) except -1:
        """A delivery is complete: to its consumer's hook if it has one and nothing completed
        earlier in this feed waits in ``items`` (wire order), else to ``items``."""
        cdef PyObject* per
        cdef PyObject* hit
        if self._hooks and d.kind == 0 and not d.oversized and PyList_GET_SIZE(items) == 0:
            per = PyDict_GetItem(self._hooks, d.channel)
            if per is not NULL:
                hit = PyDict_GetItem(<dict>per, d.consumer_tag)
                if hit is not NULL:
                    fn = <object>hit  # a strong reference: the hook may clear itself
                    if type(fn) is _Shift:
                        d.delivery_tag += (<_Shift>fn).base
                        fn = (<_Shift>fn).fn
                    try:
                        fn(d)
                    except Exception as exc:
                        self.hook_errors.append((d, exc))
                    return 0
        items.append(d)
        return 0

    @property
    def frame_max(self):
        """Frames larger than this (payload + 8) raise FrameError(501)."""
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value):
        self._frame_max = _check_frame_max(value)

    @property
    def max_message_size(self):
        """A delivery declaring a larger body is dropped and marked ``oversized``."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, value):
        self._max_message_size = _check_max_message_size(value)

    def pending(self):
        """Bytes buffered but not yet forming a complete item."""
        cdef Py_ssize_t n = PyByteArray_GET_SIZE(self._buf)
        cdef Delivery part
        for part in self._partial.values():
            if part._buf is not None:
                n += PyByteArray_GET_SIZE(part._buf)
        return n

    def feed(self, data):
        """Consume ``data`` and return every item completed by it, in wire order."""
        cdef Py_buffer view
        cdef list items = []
        cdef Py_ssize_t used, have, rest
        cdef unsigned char* b
        if self._error is not None:
            raise _ferr(self._error.reply_code, "reader already failed")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            have = PyByteArray_GET_SIZE(self._buf)
            if have == 0:
                used = self._parse(<const unsigned char*>view.buf, view.len, items)
                if used < view.len:
                    _put(self._buf, <const char*>view.buf + used, view.len - used)
            else:  # a frame began in an earlier read: complete it, then parse the rest in place
                used = self._complete_pending(<const unsigned char*>view.buf, view.len, items)
                if 0 <= used < view.len:
                    rest = self._parse(<const unsigned char*>view.buf + used, view.len - used, items)
                    if used + rest < view.len:
                        _put(self._buf, <const char*>view.buf + used + rest, view.len - used - rest)
        except FrameError as exc:
            self._error = exc
            raise
        except _Bad as exc:  # a method frame that does not decode
            self._error = _ferr(502, str(exc))
            raise self._error from None
        except Exception as exc:  # safety net: the contract is FrameError and nothing else
            self._error = _ferr(502, f"undecodable frame: {exc!r}")
            raise self._error from exc
        finally:
            PyBuffer_Release(&view)
        return items

    cdef Py_ssize_t _complete_pending(self, const unsigned char* p, Py_ssize_t n, list items) except -2:
        """The buffer holds the start of one frame: move into it only what that frame still needs
        from ``p`` (not the whole read) and parse it. Returns the bytes of ``p`` used, or -1 when
        all of ``p`` went into the buffer and the frame is still incomplete. Errors come as early
        as before: the frame header is checked as soon as it is whole."""
        cdef Py_ssize_t have = PyByteArray_GET_SIZE(self._buf), off = 0, take
        cdef uint64_t total
        cdef unsigned char* b
        if have < 7:
            take = 7 - have if 7 - have < n else n
            _put(self._buf, p, take)
            off = take
            have += take
            if have < 7:
                return -1
        b = <unsigned char*>PyByteArray_AS_STRING(self._buf)
        self._parse(b, 7, items)  # the header checks only (frame type, heartbeat, frame_max)
        total = <uint64_t>rd32(b + 3) + 8
        take = <Py_ssize_t>(total - <uint64_t>have)
        if take > n - off:
            take = n - off
        _put(self._buf, p + off, take)
        off += take
        have += take
        if <uint64_t>have < total:
            return -1
        b = <unsigned char*>PyByteArray_AS_STRING(self._buf)
        self._parse(b, have, items)  # exactly that frame
        PyByteArray_Resize(self._buf, 0)
        return off

    cdef Py_ssize_t _parse(self, const unsigned char* p, Py_ssize_t n, list items) except -1:
        cdef Py_ssize_t pos = 0, start, end
        cdef uint8_t ftype
        cdef int channel
        cdef uint32_t size
        while n - pos >= 7:
            ftype = p[pos]
            channel = rd16(p + pos + 1)
            size = rd32(p + pos + 3)
            if ftype != 1 and ftype != 2 and ftype != 3 and ftype != 8:
                raise _ferr(501, f"unknown frame type {ftype}")
            if ftype == 8 and (channel != 0 or size != 0):
                raise _ferr(501, f"heartbeat on channel {channel} with {size} payload bytes")
            if <uint64_t>size + 8 > self._frame_max:
                raise _ferr(501, f"frame of {<uint64_t>size + 8} bytes exceeds frame_max {self._frame_max}")
            if <uint64_t>(n - pos) < <uint64_t>size + 8:
                break
            start = pos + 7
            end = start + size
            if p[end] != 0xCE:
                raise _ferr(501, f"frame end byte is 0x{p[end]:02x}, not 0xce")
            pos = end + 1
            if ftype == 1:
                self._method(p, start, end, channel, items)
            elif ftype == 2:
                self._header(p, start, end, channel, items)
            elif ftype == 3:
                self._body(p, start, end, channel, items)
            else:
                items.append(Heartbeat(0))
        return pos

    cdef int _method(self, const unsigned char* p, Py_ssize_t off, Py_ssize_t end, int channel,
                     list items) except -1:
        cdef uint16_t class_id, method_id
        cdef Delivery d
        cdef Confirm c
        if self._partial and channel in self._partial:
            raise _ferr(505, f"method frame on channel {channel} while content is being assembled")
        _need(off, 4, end, "method frame")
        class_id = rd16(p + off)
        method_id = rd16(p + off + 2)
        off += 4
        if class_id == 60:
            if method_id == 60 or method_id == 71 or method_id == 50:
                d = Delivery.__new__(Delivery)
                d.channel = channel
                if method_id == 60:
                    d.kind = 0
                    d.consumer_tag = _sstr(p, &off, end, "consumer tag")
                    _need(off, 9, end, "basic.deliver")
                    d.delivery_tag = rd64(p + off)
                    d.redelivered = p[off + 8] & 1
                    off += 9
                    d.exchange = _name(p, &off, end, "exchange", d)
                    d.routing_key = _name(p, &off, end, "routing key", d)
                    d.reply_text = ""
                elif method_id == 71:
                    d.kind = 1
                    _need(off, 9, end, "basic.get-ok")
                    d.delivery_tag = rd64(p + off)
                    d.redelivered = p[off + 8] & 1
                    off += 9
                    d.exchange = _name(p, &off, end, "exchange", d)
                    d.routing_key = _name(p, &off, end, "routing key", d)
                    _need(off, 4, end, "basic.get-ok")
                    d.message_count = rd32(p + off)
                    d.consumer_tag = ""
                    d.reply_text = ""
                else:
                    d.kind = 2
                    _need(off, 2, end, "basic.return")
                    d.reply_code = rd16(p + off)
                    off += 2
                    d.reply_text = _sstr(p, &off, end, "reply text")
                    d.exchange = _name(p, &off, end, "exchange", d)
                    d.routing_key = _name(p, &off, end, "routing key", d)
                    d.consumer_tag = ""
                self._partial[channel] = d
                return 0
            if method_id == 80 or method_id == 120:
                _need(off, 9, end, "basic.ack/nack")
                c = Confirm.__new__(Confirm)
                c.channel = channel
                c.delivery_tag = rd64(p + off)
                c.multiple = p[off + 8] & 1
                c.nack = method_id == 120
                items.append(c)
                return 0
        items.append(MethodFrame(channel, _pamqp_method(p, off, end, class_id, method_id)))
        return 0

    cdef int _header(self, const unsigned char* p, Py_ssize_t off, Py_ssize_t end, int channel,
                     list items) except -1:
        cdef Delivery d = self._partial.get(channel) if self._partial else None
        cdef Py_ssize_t o
        if d is None or d._have_header:
            raise _ferr(505, f"content header on channel {channel} without a content method")
        _need(off, 12, end, "content header")
        o = off + 12
        try:
            d.properties = _decode_properties(p, &o, end)
        except Exception as exc:  # the frame is sound: fail this message only, keep its bytes
            _bad_properties(d, exc, PyBytes_FromStringAndSize(<const char*>p + off + 12, end - off - 12))
        d._have_header = True
        d._size = rd64(p + off + 4)
        if d._size > self._max_message_size:  # its body frames are counted and dropped (_body)
            d.oversized = d._size
            _note(d, f"body of {d._size} bytes exceeds max_message_size {self._max_message_size}")
        elif d._size == 0:
            del self._partial[channel]
            d.body = b""
            self._done(d, items)
        return 0

    cdef int _body(self, const unsigned char* p, Py_ssize_t off, Py_ssize_t end, int channel,
                   list items) except -1:
        cdef Delivery d = self._partial.get(channel) if self._partial else None
        cdef uint64_t have
        if d is None or not d._have_header:
            raise _ferr(505, f"content body on channel {channel} without a content header")
        if d.oversized:
            d._dropped += <uint64_t>(end - off)
            if d._dropped > d._size:
                raise _ferr(505, f"content body of {d._dropped} bytes exceeds body size {d._size}")
            if d._dropped == d._size:
                del self._partial[channel]
                d.body = b""
                self.oversized_count += 1
                items.append(d)
            return 0
        have = <uint64_t>(end - off)
        if d._buf is not None:
            have += <uint64_t>PyByteArray_GET_SIZE(d._buf)
        if have > d._size:
            raise _ferr(505, f"content body of {have} bytes exceeds body size {d._size}")
        if have == d._size:
            if d._buf is None:
                d.body = PyBytes_FromStringAndSize(<const char*>p + off, end - off)
            else:
                _put(d._buf, p + off, end - off)
                d.body = bytes(d._buf)
                d._buf = None
            del self._partial[channel]
            self._done(d, items)
        else:
            if d._buf is None:
                d._buf = bytearray()
            _put(d._buf, p + off, end - off)
        return 0
